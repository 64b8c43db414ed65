"""
Emulated ``kubectl`` (``main(argv) -> rc``) against the twin's cluster
(:mod:`k8stwin.kube`): what the states, the orchestration and its validation
use -- ``get`` (nodes, pods, any applied kind; ``-o json|yaml|wide|name|
jsonpath=...``), ``describe node``, ``label``, ``taint``, ``apply``/``create
-f FILE|DIR|-``, ``delete``, ``wait --for=condition=...|jsonpath=...|delete``,
``logs``, ``version``, ``cluster-info``.

The connection follows the kubeconfig (``--kubeconfig``, ``$KUBECONFIG``,
``~/.kube/config``): no file -> ``localhost:8080`` refused; a server that is
not the cluster's, or a control plane whose kubelet or runtime is down ->
"connection ... refused"; a CA that is not the cluster's (a kubeconfig left
from a reset cluster) -> the x509 error. Messages and rc are kubectl's.
"""

import base64
import functools
import json
import os
import re
import sys

import yaml

from k8stwin import fs, goflags, kube, state
from k8stwin.goflags import FlagError, parse


class Fail(Exception):
    def __init__(self, msg, rc=1):
        super().__init__(msg)
        self.msg, self.rc = msg, rc


def out(text=""):
    sys.stdout.write(text + "\n")


def err(text=""):
    sys.stderr.write(text + "\n")


GLOBAL = {"kubeconfig": "str", "namespace": "str", "context": "str", "server": "str", "v": "str",
          "request-timeout": "str", "insecure-skip-tls-verify": "bool", "user": "str", "cluster": "str",
          "help": "bool"}
GSHORT = {"n": "namespace", "v": "v", "s": "server", "h": "help"}

# kind table: (group/version, kind) -> (plural, namespaced, first minor, last minor)
KINDS = {
    ("v1", "Namespace"): ("namespaces", False, 0, 99), ("v1", "Pod"): ("pods", True, 0, 99),
    ("v1", "ConfigMap"): ("configmaps", True, 0, 99), ("v1", "Secret"): ("secrets", True, 0, 99),
    ("v1", "Service"): ("services", True, 0, 99), ("v1", "ServiceAccount"): ("serviceaccounts", True, 0, 99),
    ("v1", "Node"): ("nodes", False, 0, 99), ("v1", "Endpoints"): ("endpoints", True, 0, 99),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True, 0, 99),
    ("v1", "LimitRange"): ("limitranges", True, 0, 99), ("v1", "ResourceQuota"): ("resourcequotas", True, 0, 99),
    ("apps/v1", "DaemonSet"): ("daemonsets", True, 9, 99), ("apps/v1", "Deployment"): ("deployments", True, 9, 99),
    ("apps/v1", "StatefulSet"): ("statefulsets", True, 9, 99), ("apps/v1", "ReplicaSet"): ("replicasets", True, 9, 99),
    ("extensions/v1beta1", "DaemonSet"): ("daemonsets", True, 0, 15),
    ("extensions/v1beta1", "Deployment"): ("deployments", True, 0, 15),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False, 8, 99),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False, 8, 99),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True, 8, 99),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True, 8, 99),
    ("rbac.authorization.k8s.io/v1beta1", "ClusterRole"): ("clusterroles", False, 0, 21),
    ("rbac.authorization.k8s.io/v1beta1", "ClusterRoleBinding"): ("clusterrolebindings", False, 0, 21),
    ("policy/v1beta1", "PodSecurityPolicy"): ("podsecuritypolicies", False, 0, 24),
    ("policy/v1beta1", "PodDisruptionBudget"): ("poddisruptionbudgets", True, 0, 24),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True, 21, 99),
    ("node.k8s.io/v1", "RuntimeClass"): ("runtimeclasses", False, 20, 99),
    ("node.k8s.io/v1beta1", "RuntimeClass"): ("runtimeclasses", False, 14, 24),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): ("customresourcedefinitions", False, 16, 99),
    ("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition"): ("customresourcedefinitions", False, 0, 21),
    ("scheduling.k8s.io/v1", "PriorityClass"): ("priorityclasses", False, 14, 99),
    ("batch/v1", "Job"): ("jobs", True, 0, 99), ("batch/v1", "CronJob"): ("cronjobs", True, 21, 99),
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"):
        ("validatingwebhookconfigurations", False, 16, 99),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"):
        ("mutatingwebhookconfigurations", False, 16, 99),
    ("storage.k8s.io/v1", "StorageClass"): ("storageclasses", False, 6, 99),
    ("storage.k8s.io/v1", "CSIDriver"): ("csidrivers", False, 18, 99),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("networkpolicies", True, 7, 99),
    ("networking.k8s.io/v1", "Ingress"): ("ingresses", True, 19, 99),
}
ALIASES = {"no": "Node", "node": "Node", "nodes": "Node", "po": "Pod", "pod": "Pod", "pods": "Pod",
           "ds": "DaemonSet", "daemonset": "DaemonSet", "daemonsets": "DaemonSet",
           "cm": "ConfigMap", "configmap": "ConfigMap", "configmaps": "ConfigMap",
           "ns": "Namespace", "namespace": "Namespace", "namespaces": "Namespace",
           "deploy": "Deployment", "deployment": "Deployment", "deployments": "Deployment",
           "sa": "ServiceAccount", "serviceaccount": "ServiceAccount", "serviceaccounts": "ServiceAccount",
           "secret": "Secret", "secrets": "Secret", "svc": "Service", "service": "Service", "services": "Service",
           "runtimeclass": "RuntimeClass", "runtimeclasses": "RuntimeClass",
           "clusterrole": "ClusterRole", "clusterroles": "ClusterRole",
           "clusterrolebinding": "ClusterRoleBinding", "clusterrolebindings": "ClusterRoleBinding",
           "crd": "CustomResourceDefinition", "crds": "CustomResourceDefinition",
           "customresourcedefinition": "CustomResourceDefinition",
           "customresourcedefinitions": "CustomResourceDefinition"}


def _group(api_version):
    return api_version.rpartition("/")[0]


def _kind_info(cluster, api_version, kind, minor):
    info = KINDS.get((api_version, kind))
    if info and info[2] <= minor <= info[3]:
        return info[0], info[1]
    for crd in kube.objects(cluster, "CustomResourceDefinition"):
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        versions = [v.get("name") for v in spec.get("versions") or []] or [spec.get("version")]
        if names.get("kind") == kind and api_version in [f"{spec.get('group')}/{v}" for v in versions]:
            return names.get("plural") or kind.lower() + "s", spec.get("scope", "Namespaced") == "Namespaced"
    return None


def _display(api_version, kind):
    group = _group(api_version)
    return kind.lower() + (f".{group}" if group else "")


def _plural_of_kind(cluster, kind):
    for (_, k), info in KINDS.items():
        if k == kind:
            return info[0], info[1]
    for crd in kube.objects(cluster, "CustomResourceDefinition"):
        names = (crd.get("spec") or {}).get("names") or {}
        if names.get("kind") == kind:
            return names.get("plural"), (crd.get("spec") or {}).get("scope", "Namespaced") == "Namespaced"
    return None


def _resolve_kind(cluster, word):
    w = word.lower()
    if w in ALIASES:
        return ALIASES[w]
    for (_, k), info in KINDS.items():
        if w in (k.lower(), info[0]) or w.split(".")[0] in (k.lower(), info[0]):
            return k
    for crd in kube.objects(cluster, "CustomResourceDefinition"):
        names = (crd.get("spec") or {}).get("names") or {}
        if w in (str(names.get("kind", "")).lower(), names.get("plural"), names.get("singular")):
            return names["kind"]
    raise Fail(f'error: the server doesn\'t have a resource type "{word}"')


# ---------------------------------------------------------------------------
# connection


def connect(opts):
    """The cluster state when the kubeconfig reaches a live API server."""
    path = opts.get("kubeconfig")
    explicit = bool(path)
    if not path:
        env = os.environ.get("KUBECONFIG")
        path = env.split(":")[0] if env else os.path.join(os.environ.get("HOME") or "/root", ".kube/config")
    text = fs.read(path)
    if text is None:
        if explicit:
            raise Fail(f"error: stat {path}: no such file or directory")
        raise Fail("The connection to the server localhost:8080 was refused - did you specify the right host or port?")
    try:
        cfg = yaml.safe_load(text) or {}
        cl = (cfg.get("clusters") or [{}])[0].get("cluster") or {}
    except (yaml.YAMLError, AttributeError, IndexError):
        raise Fail(f'error: error loading config file "{path}": yaml: line 1: did not find expected key') from None
    server = str(opts.get("server") or cl.get("server") or "")
    hostport = server.replace("https://", "").rstrip("/")
    cluster = kube.read()
    cp = cluster.get("control_plane")
    up, _, _ = kube.apiserver(cluster)
    if not cp or not up or hostport not in (cp["endpoint"], cp.get("advertise")):
        raise Fail(f"The connection to the server {hostport} was refused - did you specify the right host or port?")
    ca = cl.get("certificate-authority-data")
    if ca and not opts.get("insecure-skip-tls-verify"):
        try:
            pem = base64.b64decode(ca).decode()
        except (ValueError, UnicodeDecodeError):
            pem = ""
        if pem != cp["ca_pem"]:
            raise Fail('Unable to connect to the server: tls: failed to verify certificate: x509: certificate signed by '
                       'unknown authority (possibly because of "crypto/rsa: verification error" while trying to verify '
                       'candidate authority certificate "kubernetes")')
    if kube.reconcile(cluster):
        with kube.locked() as c:
            kube.reconcile(c)
            cluster = c
    return cluster


def _minor(cluster):
    return kube.parse_version(cluster["control_plane"]["version"])[1]


# ---------------------------------------------------------------------------
# listing objects (nodes and pods are computed)


def _suffix(*parts):
    import hashlib

    h = hashlib.sha1("/".join(parts).encode()).hexdigest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    return "".join(alphabet[int(h[i:i + 2], 16) % len(alphabet)] for i in range(0, 10, 2))


MIRROR = "kubernetes.io/config.mirror"
# DaemonSets the cluster has without an applied manifest (kubeadm's addon)
IMPLICIT_DAEMONSETS = ("kube-system/kube-proxy",)


def pods(cluster):
    """All pods: static control-plane pods, DaemonSet/Deployment pods, bare pods."""
    result = []
    cp = cluster.get("control_plane") or {}
    nodes = cluster.get("nodes") or {}
    for comp in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        if cp.get("name") in nodes:
            pod = _pod("kube-system", f"{comp}-{cp['name']}", cp["name"], "Running", {})
            # static pods: the kubelet's mirror pods (drain skips them)
            pod["metadata"]["labels"] = {"component": comp, "tier": "control-plane"}
            pod["metadata"]["annotations"] = {MIRROR: _suffix(comp, cp["name"]) * 6}
            result.append(pod)
    cni = kube.cni_deployed(cluster)
    for n in sorted(nodes):
        pod = _pod("kube-system", f"kube-proxy-{_suffix('kube-proxy', n)}", n,
                   "Running" if _node_up(cluster, n) else "Pending", {})
        pod["metadata"]["labels"] = {"k8s-app": "kube-proxy", "controller-revision-hash": _suffix("kube-proxy") * 2,
                                     "pod-template-generation": "1"}
        pod["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "kube-proxy",
                                               "controller": True, "blockOwnerDeletion": True}]
        result.append(pod)
    for i in range(2):
        phase = "Running" if cni and any(kube.node_ready(cluster, n)[0] for n in nodes) else "Pending"
        result.append(_pod("kube-system", f"coredns-{_suffix('coredns')[:5]}{i}-{_suffix('coredns', str(i))}",
                           None, phase, {}))
    for ds in kube.objects(cluster, "DaemonSet"):
        spec = kube._pod_spec(ds)
        ns = ds["metadata"].get("namespace") or "default"
        tmpl_labels = (((ds.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
        for n in sorted(nodes):
            node = nodes[n]
            if not kube.selects(spec, kube.full_labels(n, node), n):
                continue
            if not kube.tolerates(node.get("taints"), kube.daemon_tolerations(spec))[0]:
                continue
            phase = "Running" if _node_up(cluster, n) and (spec.get("hostNetwork") or cni) else "Pending"
            pod = _pod(ns, f"{ds['metadata']['name']}-{_suffix(ds['metadata']['name'], n)}", n, phase, {})
            pod["metadata"]["labels"] = dict(tmpl_labels, **{"controller-revision-hash": _suffix(ds["metadata"]["name"]) * 2,
                                                              "pod-template-generation": "1"})
            pod["metadata"]["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "DaemonSet",
                                                   "name": ds["metadata"]["name"], "controller": True,
                                                   "blockOwnerDeletion": True}]
            pod["spec"]["tolerations"] = kube.daemon_tolerations(spec)
            if spec.get("volumes"):
                pod["spec"]["volumes"] = spec["volumes"]
            if "k8s-device-plugin" in " ".join(kube._images(ds)) or "nvidia-device-plugin" in ds["metadata"]["name"]:
                gs = kube.gpu_status(cluster, n)
                pod["_logs"] = gs.get("plugin_log") or ""
                if gs.get("crashloop") and phase == "Running":
                    # the plugin exits 1 on a config it refuses
                    pod["status"] = _pod_status({"phase": "Running", "reason": "CrashLoopBackOff", "exitCode": 1,
                                                 "last": "Error", "message": "back-off restarting failed container"})
            result.append(pod)
    for o in kube.objects(cluster, "Pod"):
        st = o.get("status") or {}
        pod = json.loads(json.dumps(o))
        pod["status"] = _pod_status(st)
        if st.get("node"):
            pod["spec"]["nodeName"] = st["node"]
        pod["_logs"] = st.get("logs")
        pod["_raw"] = st
        result.append(pod)
    return result


def ds_status(cluster, ds):
    """A DaemonSet's status from its pods (one per selected, tolerating node)."""
    name = ds["metadata"]["name"]
    ns = ds["metadata"].get("namespace") or "default"
    owned = [p for p in pods(cluster) if p["metadata"]["namespace"] == ns
             and any(r.get("name") == name for r in p["metadata"].get("ownerReferences") or [])]
    ready = sum(1 for p in owned if (p.get("status") or {}).get("phase") == "Running"
                and all(c.get("ready", True) for c in (p.get("status") or {}).get("containerStatuses") or []))
    return {"currentNumberScheduled": len(owned), "desiredNumberScheduled": len(owned), "numberAvailable": ready,
            "numberMisscheduled": 0, "numberReady": ready, "observedGeneration": 1,
            "updatedNumberScheduled": len(owned)}


def deployment_status(cluster, dep):
    """A Deployment's status from the pods of its current ReplicaSet."""
    ns = dep["metadata"].get("namespace") or "default"
    rs = kube.replica_set_name(dep)
    owned = [o for o in kube.objects(cluster, "Pod") if (o["metadata"].get("namespace") or "default") == ns
             and kube.owned_by(o, "ReplicaSet", rs)]
    ready = sum(1 for o in owned if (o.get("status") or {}).get("phase") == "Running"
                and not (o.get("status") or {}).get("reason"))
    want = int((dep.get("spec") or {}).get("replicas", 1))
    st = {"observedGeneration": 1, "replicas": len(owned), "updatedReplicas": len(owned)}
    if ready:
        st.update(readyReplicas=ready, availableReplicas=ready)
    if want - ready > 0:
        st["unavailableReplicas"] = want - ready
    return st


def _node_up(cluster, name):
    node = cluster["nodes"][name]
    v = kube.view(cluster, node["node_id"])
    if v is None or not v.dir:
        return True
    return kube.service_active(v.state, "kubelet") and kube.runtime_running(v, kube.cri_kind(node.get("cri_socket")))[0]


def _pod(ns, name, node, phase, extra):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns},
           "spec": {"nodeName": node} if node else {}, "status": {"phase": phase}}
    if phase == "Running":
        pod["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
        pod["status"]["containerStatuses"] = [{"ready": True, "restartCount": 0, "state": {"running": {}}}]
    pod.update(extra)
    return pod


def _pod_status(st):
    phase = st.get("phase") or "Pending"
    status = {"phase": phase}
    if phase == "Pending":
        if st.get("reason") == "Unschedulable":
            status["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                     "message": st.get("message", "")}]
        return status
    if st.get("reason") == "CrashLoopBackOff":
        status["conditions"] = [{"type": "PodScheduled", "status": "True"},
                                {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}]
        status["containerStatuses"] = [{
            "ready": False, "restartCount": st.get("restarts", 5),
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": st.get("message", "")}},
            "lastState": {"terminated": {"exitCode": st.get("exitCode", 0), "reason": st.get("last") or "Completed"}}}]
        return status
    ready = {"type": "Ready", "status": "False", "reason": "PodCompleted"}
    status["conditions"] = [{"type": "PodScheduled", "status": "True"}, ready]
    if st.get("reason") and st["reason"].startswith("OutOf"):
        status.update(reason=st["reason"], message=st.get("message"))
        return status
    term = {"exitCode": st.get("exitCode", 0), "reason": st.get("reason") or "Completed"}
    if st.get("message"):
        term["message"] = st["message"]
    status["containerStatuses"] = [{"ready": False, "restartCount": 0, "state": {"terminated": term}}]
    return status


def _pod_display_status(pod):
    st = pod.get("status") or {}
    if st.get("reason"):
        return st["reason"]
    for cs in st.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting:
            return waiting.get("reason") or "Waiting"
        term = (cs.get("state") or {}).get("terminated")
        if term:
            return term.get("reason") or ("Completed" if term.get("exitCode") == 0 else "Error")
    if st.get("phase") == "Pending" and pod.get("spec", {}).get("nodeName"):
        return "ContainerCreating"
    return st.get("phase") or "Pending"


def _clean(o):
    return {k: v for k, v in o.items() if not k.startswith("_")}


def node_list(cluster):
    return [kube.node_object(cluster, n) for n in sorted(cluster.get("nodes") or {})]


def _age(o, cluster):
    t = (cluster.get("control_plane") or {}).get("created") or kube.now()
    secs = max(0, int(kube.now() - t))
    if secs < 120:
        return f"{secs}s"
    mins = secs // 60
    if mins < 10:
        return f"{mins}m{secs % 60}s"
    if mins < 180:
        return f"{mins}m"
    hours = mins // 60
    if hours < 8:
        return f"{hours}h{mins % 60}m"
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


def table(rows):
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        cells = [str(c).ljust(widths[i] + 3) if i < len(r) - 1 else str(c) for i, c in enumerate(r)]
        out("".join(cells))


# ---------------------------------------------------------------------------
# jsonpath (kubectl's template subset: fields, [n], [*], [?(@.k=="v")], range/end, "literals")


def _split_path(path):
    parts, cur, i = [], "", 0
    while i < len(path):
        c = path[i]
        if c == "\\" and i + 1 < len(path):
            cur += path[i + 1]
            i += 2
            continue
        if c == ".":
            if cur:
                parts.append(cur)
            cur = ""
        elif c == "[":
            if cur:
                parts.append(cur)
            j = path.index("]", i)
            parts.append(path[i:j + 1])
            cur = ""
            i = j
        else:
            cur += c
        i += 1
    if cur:
        parts.append(cur)
    return parts


def _walk(values, part):
    res = []
    for v in values:
        if part.startswith("["):
            inner = part[1:-1]
            if not isinstance(v, list):
                continue
            if inner == "*":
                res.extend(v)
            elif inner.startswith("?("):
                m = re.match(r'\?\(@\.([\w.\-/]+)\s*==\s*["\']?([^"\']*)["\']?\)', inner)
                if m:
                    key, want = m.group(1), m.group(2)
                    res.extend(x for x in v if isinstance(x, dict) and str(x.get(key)) == want)
            else:
                try:
                    res.append(v[int(inner)])
                except (ValueError, IndexError):
                    pass
        elif isinstance(v, dict) and part in v:
            res.append(v[part])
        elif part == "*" and isinstance(v, dict):
            res.extend(v.values())
    return res


def _eval(expr, data):
    expr = expr.strip()
    if expr.startswith('"') and expr.endswith('"'):
        return [json.loads(expr)]
    if expr in ("@", "."):
        return [data]
    values = [data]
    for part in _split_path(expr.lstrip("@").lstrip(".") if expr != "." else ""):
        values = _walk(values, part)
    return values


def _fmt(v):
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def jsonpath(template, data):
    tokens = re.split(r"(\{[^{}]*\})", template)
    output = []

    def render(toks, ctx):
        i = 0
        while i < len(toks):
            t = toks[i]
            if t.startswith("{") and t.endswith("}"):
                inner = t[1:-1].strip()
                if inner.startswith("range "):
                    depth, j = 1, i + 1
                    while j < len(toks):
                        x = toks[j].strip()
                        if x.startswith("{range "):
                            depth += 1
                        elif x == "{end}":
                            depth -= 1
                            if depth == 0:
                                break
                        j += 1
                    for item in _eval(inner[6:], ctx):
                        render(toks[i + 1:j], item)
                    i = j + 1
                    continue
                output.append(" ".join(_fmt(v) for v in _eval(inner, ctx)))
            else:
                output.append(t)
            i += 1

    render([t for t in tokens if t != ""], data)
    return "".join(output)


def _print_objects(objs, fmt, kind, cluster, single, all_ns=False, name_prefix=None):
    objs = [_clean(o) for o in objs]
    if fmt in ("json", "yaml") or (fmt or "").startswith("jsonpath"):
        data = objs[0] if single else {"apiVersion": "v1", "items": objs, "kind": "List",
                                       "metadata": {"resourceVersion": ""}}
        if fmt == "json":
            out(json.dumps(data, indent=4))
        elif fmt == "yaml":
            out(yaml.safe_dump(data, default_flow_style=False).rstrip())
        else:
            tmpl = fmt.split("=", 1)[1] if "=" in fmt else ""
            if len(tmpl) > 1 and tmpl[0] == tmpl[-1] and tmpl[0] in "'\"":
                tmpl = tmpl[1:-1]
            sys.stdout.write(jsonpath(tmpl, data))
        return
    if fmt == "name":
        for o in objs:
            out(f"{name_prefix}/{o['metadata']['name']}")
        return
    if kind == "Node":
        rows = [["NAME", "STATUS", "ROLES", "AGE", "VERSION"]]
        if fmt == "wide":
            rows[0] += ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
        for o in objs:
            ready = next(c for c in o["status"]["conditions"] if c["type"] == "Ready")["status"] == "True"
            roles = sorted(k.split("/", 1)[1] for k in o["metadata"]["labels"] if k.startswith("node-role.kubernetes.io/"))
            status = ("Ready" if ready else "NotReady") + (",SchedulingDisabled" if (o.get("spec") or {}).get(
                "unschedulable") else "")
            row = [o["metadata"]["name"], status, ",".join(roles) or "<none>",
                   _age(o, cluster), o["status"]["nodeInfo"]["kubeletVersion"]]
            if fmt == "wide":
                info = o["status"]["nodeInfo"]
                row += [o["status"]["addresses"][0]["address"], "<none>", info["osImage"], info["kernelVersion"],
                        info["containerRuntimeVersion"]]
            rows.append(row)
        table(rows)
        return
    if kind == "Pod":
        rows = [(["NAMESPACE"] if all_ns else []) + ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]]
        if fmt == "wide":
            rows[0] += ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
        for o in objs:
            ready = 1 if (o.get("status") or {}).get("phase") == "Running" else 0
            restarts = sum(int(cs.get("restartCount") or 0) for cs in (o.get("status") or {}).get("containerStatuses") or [])
            if ready and any(not cs.get("ready", True) for cs in (o.get("status") or {}).get("containerStatuses") or []):
                ready = 0
            row = ([o["metadata"]["namespace"]] if all_ns else []) + [
                o["metadata"]["name"], f"{ready}/1", _pod_display_status(o), str(restarts), _age(o, cluster)]
            if fmt == "wide":
                row += ["<none>", (o.get("spec") or {}).get("nodeName") or "<none>", "<none>", "<none>"]
            rows.append(row)
        table(rows)
        return
    rows = [(["NAMESPACE"] if all_ns else []) + ["NAME", "AGE"]]
    for o in objs:
        rows.append(([o["metadata"].get("namespace", "")] if all_ns else []) + [o["metadata"]["name"], _age(o, cluster)])
    table(rows)


# ---------------------------------------------------------------------------
# commands

GET_FLAGS = dict(GLOBAL, **{"output": "str", "all-namespaces": "bool", "selector": "str", "show-labels": "bool",
                            "field-selector": "str", "no-headers": "bool", "watch": "bool", "ignore-not-found": "bool",
                            "chunk-size": "int", "allow-missing-template-keys": "bool", "label-columns": "list",
                            "show-kind": "bool", "sort-by": "str", "template": "str", "raw": "str",
                            "show-managed-fields": "bool", "output-watch-events": "bool", "watch-only": "bool",
                            "server-print": "bool", "subresource": "str", "filename": "list", "recursive": "bool",
                            "kustomize": "str"})
GET_SHORT = dict(GSHORT, o="output", A="all-namespaces", l="selector", w="watch", L="label-columns", f="filename",
                 R="recursive", k="kustomize")


# the fields the API server lets a field selector use (pkg/registry/core/*/strategy.go
# ToSelectableFields; metadata.name and metadata.namespace for every kind)
FIELDS = {
    "Pod": ("metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
            "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    "Node": ("metadata.name", "spec.unschedulable"),
}


def _field_value(o, field):
    cur = o
    for part in field.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if cur is None:
        return "false" if field in ("spec.unschedulable", "spec.hostNetwork") else ""
    return str(cur)


def _field_filter(items, kind, plural, opts):
    """``--field-selector k=v,k==v,k!=v`` on the fields the server knows."""
    text = opts["field-selector"]
    terms = []
    for term in [t for t in text.split(",") if t]:
        m = re.match(r"^([A-Za-z.]+)\s*(!=|==|=)\s*(.*)$", term)
        if not m:
            raise Fail(f"Error from server (BadRequest): invalid selector: '{text}'; can't understand '{term}'")
        field, op, value = m.groups()
        if field not in FIELDS.get(kind, ("metadata.name", "metadata.namespace")):
            group = next((a.rpartition("/")[0] for (a, k) in KINDS if k == kind), "")
            version = next((a.rpartition("/")[2] for (a, k) in KINDS if k == kind), "v1")
            raise Fail(f'Error from server (BadRequest): Unable to find {{"{group}" "{version}" "{plural}"}} that match '
                       f'label selector "{opts.get("selector") or ""}", field selector "{text}": field label not '
                       f"supported: {field}")
        terms.append((field, op != "!=", value))
    return [o for o in items if all((_field_value(o, f) == v) == eq for f, eq, v in terms)]


def _match_selector(labels, selector):
    for term in [t for t in (selector or "").split(",") if t]:
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if labels.get(k.rstrip("=")) != v:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _targets(pos):
    """['node/a', 'node', 'b'] style arguments -> [(kind word, name or None)]."""
    if not pos:
        raise Fail('You must specify the type of resource to get. Use "kubectl api-resources" for a complete list of '
                   "supported resources.")
    if "/" in pos[0]:
        return [tuple(p.split("/", 1)) for p in pos]
    words = pos[0].split(",")
    if len(pos) == 1:
        return [(w, None) for w in words]
    return [(words[0], n) for n in pos[1:]]


def _collect(cluster, kind, ns, all_ns):
    if kind == "Node":
        return node_list(cluster), False
    if kind == "Pod":
        items = pods(cluster)
    else:
        items = [json.loads(json.dumps(o)) for o in kube.objects(cluster, kind)]
        if kind == "DaemonSet":
            for ds in items:
                ds["status"] = ds_status(cluster, ds)
        if kind == "Deployment":
            for dep in items:
                dep["status"] = deployment_status(cluster, dep)
    info = _plural_of_kind(cluster, kind)
    namespaced = info[1] if info else True
    if namespaced and not all_ns:
        items = [o for o in items if (o["metadata"].get("namespace") or "default") == ns]
    return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])), namespaced


RAW_OK = ("/readyz", "/livez", "/healthz")


def _get_raw(opts, pos):
    """``kubectl get --raw PATH``: the API server's health endpoints answer
    ``ok`` (``?verbose`` lists the checks), ``/version`` its version; any other
    path is NotFound."""
    if pos:
        raise Fail("error: arguments may not be passed when --raw is specified")
    cluster = connect(opts)
    path, _, query = opts["raw"].partition("?")
    if path in RAW_OK:
        if "verbose" in query:
            for check in ("ping", "log", "etcd", "informer-sync", "poststarthook/start-apiextensions-controllers"):
                out(f"[+]{check} ok")
            out(f"{path[1:]} check passed")
        else:
            sys.stdout.write("ok")
        return 0
    if path == "/version":
        major, minor, patch = kube.parse_version(cluster["control_plane"]["version"])
        out(json.dumps({"major": str(major), "minor": str(minor), "gitVersion": f"v{major}.{minor}.{patch}"},
                       indent=2))
        return 0
    raise Fail("Error from server (NotFound): the server could not find the requested resource")


def cmd_get(args):
    opts, pos = parse(args, GET_FLAGS, GET_SHORT)
    if opts.get("raw"):
        return _get_raw(opts, pos)
    cluster = connect(opts)
    ns = opts.get("namespace") or "default"
    all_ns = bool(opts.get("all-namespaces"))
    fmt = opts.get("output")
    targets = _targets(pos)
    rc = 0
    for word, name in targets:
        kind = _resolve_kind(cluster, word)
        items, namespaced = _collect(cluster, kind, ns, all_ns)
        plural = (_plural_of_kind(cluster, kind) or (kind.lower() + "s",))[0]
        if name:
            found = [o for o in items if o["metadata"]["name"] == name]
            if not found:
                if opts.get("ignore-not-found"):
                    continue
                err(f'Error from server (NotFound): {plural} "{name}" not found')
                rc = 1
                continue
            _print_objects(found, fmt, kind, cluster, True, name_prefix=_display_kind(kind))
            continue
        items = [o for o in items if _match_selector((o["metadata"].get("labels") or {}), opts.get("selector"))]
        if opts.get("field-selector"):
            items = _field_filter(items, kind, plural, opts)
        if not items:
            if fmt in ("json", "yaml") or (fmt or "").startswith("jsonpath"):
                _print_objects([], fmt, kind, cluster, False)
            elif namespaced and not all_ns:
                err(f"No resources found in {ns} namespace.")
            else:
                err("No resources found")
            continue
        _print_objects(items, fmt, kind, cluster, False, all_ns and namespaced, name_prefix=_display_kind(kind))
    return rc


def _display_kind(kind):
    for (api, k) in KINDS:
        if k == kind and not api.startswith(("extensions", "policy/v1beta1")) and "v1beta1" not in api:
            return _display(api, kind)
    return kind.lower()


def cmd_describe(args):
    opts, pos = parse(args, GET_FLAGS, GET_SHORT)
    cluster = connect(opts)
    targets = _targets(pos)
    for word, name in targets:
        kind = _resolve_kind(cluster, word)
        if kind != "Node":
            raise Fail(f"error: describe {word} is not emulated by the twin")
        names = [name] if name else sorted(cluster["nodes"])
        for n in names:
            if n not in cluster["nodes"]:
                raise Fail(f'Error from server (NotFound): nodes "{n}" not found')
            o = kube.node_object(cluster, n)
            gs = kube.gpu_status(cluster, n)
            out(f"Name:               {n}")
            roles = sorted(k.split("/", 1)[1] for k in o["metadata"]["labels"] if k.startswith("node-role.kubernetes.io/"))
            out(f"Roles:              {','.join(roles) or '<none>'}")
            first = True
            for k, v in sorted(o["metadata"]["labels"].items()):
                out(("Labels:             " if first else "                    ") + f"{k}={v}")
                first = False
            taints = (o.get("spec") or {}).get("taints") or []
            out("Taints:             " + (", ".join(f"{t['key']}:{t['effect']}" for t in taints) or "<none>"))
            out(f"Unschedulable:      {'true' if (o.get('spec') or {}).get('unschedulable') else 'false'}")
            out("Conditions:")
            for c in o["status"]["conditions"]:
                out(f"  {c['type']}   {c['status']}   {c['reason']}   {c['message']}")
            for sect in ("capacity", "allocatable"):
                out(sect.capitalize() + ":")
                for k, v in sorted(o["status"][sect].items()):
                    out(f"  {k}:{' ' * max(1, 18 - len(k))}{v}")
            out("Events:")
            if gs["reasons"] and gs["gpus"]:
                out(f"  Warning  GPUsNotAllocatable  twin  {'; '.join(gs['reasons'])}")
            else:
                out("  <none>")
    return 0


def _parse_label_args(items):
    sets, removes = {}, []
    for item in items:
        if item.endswith("-") and "=" not in item:
            removes.append(item[:-1])
        elif "=" in item:
            k, v = item.split("=", 1)
            if not re.match(r"^([a-z0-9.-]+/)?[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$", k) or len(v) > 63 or (
                v and not re.match(r"^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$", v)
            ):
                raise Fail(f"error: invalid label value: \"{item}\": a valid label must be an empty string or consist of "
                           "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")
            sets[k] = v
        else:
            raise Fail("error: at least one label update is required")
    return sets, removes


def cmd_label(args):
    opts, pos = parse(args, dict(GLOBAL, overwrite="bool", all="bool", output="str", list="bool",
                                 **{"dry-run": "str", "selector": "str", "resource-version": "str",
                                    "local": "bool", "field-manager": "str"}),
                      dict(GSHORT, o="output", l="selector"))
    if not pos:
        raise Fail("error: one or more resources must be specified as <resource> <name> or <resource>/<name>")
    if "/" in pos[0]:
        word, name = pos[0].split("/", 1)
        rest = pos[1:]
    else:
        if len(pos) < 2:
            raise Fail("error: one or more resources must be specified as <resource> <name> or <resource>/<name>")
        word, name, rest = pos[0], pos[1], pos[2:]
    cluster = connect(opts)
    kind = _resolve_kind(cluster, word)
    if kind != "Node":
        raise Fail(f"error: the twin labels nodes only (got {word})")
    sets, removes = _parse_label_args(rest)
    if not sets and not removes:
        raise Fail("error: at least one label update is required")
    with kube.locked() as c:
        node = (c.get("nodes") or {}).get(name)
        if node is None:
            raise Fail(f'Error from server (NotFound): nodes "{name}" not found')
        labels = node.setdefault("labels", {})
        for k, v in sets.items():
            if k in labels and labels[k] != v and not opts.get("overwrite"):
                raise Fail(f"error: '{k}' already has a value ({labels[k]}), and --overwrite is false")
        missing = [k for k in removes if k not in labels]
        changed = any(labels.get(k) != v for k, v in sets.items()) or any(k in labels for k in removes)
        labels.update(sets)
        for k in removes:
            labels.pop(k, None)
    for k in missing:
        out(f'label "{k}" not found.')
    out(f"node/{name} {'labeled' if changed else 'not labeled'}")
    return 0


def cmd_taint(args):
    opts, pos = parse(args, dict(GLOBAL, overwrite="bool", all="bool", **{"dry-run": "str", "selector": "str"}),
                      dict(GSHORT, l="selector"))
    if len(pos) < 3 or pos[0] not in ("node", "nodes", "no"):
        raise Fail("error: at least one taint update is required")
    name = pos[1]
    connect(opts)
    with kube.locked() as c:
        node = (c.get("nodes") or {}).get(name)
        if node is None:
            raise Fail(f'Error from server (NotFound): nodes "{name}" not found')
        taints = node.setdefault("taints", [])
        removed = added = False
        for spec in pos[2:]:
            if spec.endswith("-"):
                key = spec[:-1].split(":")[0]
                effect = spec[:-1].split(":")[1] if ":" in spec else None
                before = len(taints)
                taints[:] = [t for t in taints if not (t["key"] == key and (effect is None or t["effect"] == effect))]
                if len(taints) == before:
                    raise Fail(f"error: taint \"{spec[:-1]}\" not found")
                removed = True
            else:
                m = re.match(r"^([^=:]+)(?:=([^:]*))?:(NoSchedule|PreferNoSchedule|NoExecute)$", spec)
                if not m:
                    raise Fail(f'error: invalid taint spec: {spec}, unknown taint effect')
                taint = {"key": m.group(1), "effect": m.group(3)}
                if m.group(2):
                    taint["value"] = m.group(2)
                same = [t for t in taints if t["key"] == taint["key"] and t["effect"] == taint["effect"]]
                if same and not opts.get("overwrite"):
                    raise Fail(f"error: node {name} already has {taint['key']} taint(s) with same effect(s) and "
                               "--overwrite is false")
                taints[:] = [t for t in taints if t not in same] + [taint]
                added = True
    out(f"node/{name} {'tainted' if added else 'untainted'}" if not (added and removed) else f"node/{name} modified")
    return 0


def _read_manifests(files, recursive=False):
    docs = []
    for f in files:
        if re.match(r"^https?://", f):
            host = re.sub(r"^https?://", "", f).split("/")[0]
            # the twin has no network: kubectl's error for an unreachable manifest URL
            raise Fail(f'Unable to connect to the server: dial tcp: lookup {host} on 127.0.0.53:53: no such host')
        if f != "-" and not f.startswith("/"):
            f = os.path.abspath(f)  # relative to the working directory (inside the node)
            if fs.root() != "/":
                f = fs.unroot(f)
        if f == "-":
            text, label = sys.stdin.read(), "STDIN"
            docs += [(d, label) for d in _load_docs(text, label)]
            continue
        if fs.isdir(f):
            names = [n for n in fs.listdir(f) if n.endswith((".yaml", ".yml", ".json"))]
            for n in names:
                docs += [(d, f"{f}/{n}") for d in _load_docs(fs.read(f"{f}/{n}") or "", f"{f}/{n}")]
            continue
        text = fs.read(f)
        if text is None:
            raise Fail(f'error: the path "{f}" does not exist')
        docs += [(d, f) for d in _load_docs(text, f)]
    return docs


def _load_docs(text, label):
    try:
        raw = [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError as exc:
        raise Fail(f'error: error parsing {label}: error converting YAML to JSON: yaml: {exc}') from None
    docs = []
    for d in raw:
        if not isinstance(d, dict):
            raise Fail(f"error: error parsing {label}: json: cannot unmarshal into Go value of type map[string]interface {{}}")
        if d.get("kind") == "List":
            docs += [x for x in d.get("items") or [] if x]
        else:
            docs.append(d)
    return docs


# ---------------------------------------------------------------------------
# the API server's strict field validation, judged by the real schemas
STRICT_SINCE = 25  # server-side field validation on by default (beta in 1.25, GA in 1.27)


def _field_path(parts):
    text = ""
    for p in parts:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else str(p))
    return text


def _schema_version(minor):
    """The kubernetes-validate schema set for a cluster minor: the newest
    one not newer than it (the schemas a newer server serves are a superset)."""
    from kubernetes_validate import utils as kv

    have = sorted({tuple(int(x) for x in v.split(".")[:2]) for v in kv.all_versions()})
    fit = [v for v in have if v <= (1, minor)] or have[:1]
    return f"{fit[-1][0]}.{fit[-1][1]}.0"


@functools.lru_cache(maxsize=None)
def _strict_schemas(version):
    """kubernetes-validate's strict schema files of ``version`` and the
    registry of their shared definitions (read once per process: a
    multi-document apply checks every object against the same set)."""
    import referencing
    from kubernetes_validate import utils as kv

    base = f"kubernetes-json-schema/v{version}-local-strict"
    defs = referencing.Resource.from_contents(kv.schema_contents(f"{base}/_definitions.json", version))
    return base, defs @ referencing.Registry()


def strict_problems(doc, minor):
    """What the API server refuses in ``doc`` when it decodes it strictly
    (kubectl's default ``--validate=strict``): ``(unknown fields, decoding
    errors, validation errors)``. The judge is kubernetes-validate's strict schemas of
    the cluster's minor (Kubernetes' own OpenAPI, not a copy of ours); a kind
    it has no schema for (a custom resource, decided by its CRD) passes."""
    import jsonschema
    import referencing
    from kubernetes_validate import utils as kv

    if minor < STRICT_SINCE:
        return [], [], []
    version = _schema_version(minor)
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", str(doc.get("apiVersion")))
    base, registry = _strict_schemas(version)
    try:
        schema = kv.schema_contents(f"{base}/{str(doc.get('kind')).lower()}-{api}.json", version)
    except (FileNotFoundError, kv.VersionNotSupportedError):
        return [], [], []
    registry = referencing.Resource.from_contents(schema) @ registry
    validator = jsonschema.validators.Draft202012Validator(schema, registry=registry)
    unknown, decode, other = [], [], []
    for e in sorted(validator.iter_errors(doc), key=lambda e: [str(x) for x in e.absolute_path]):
        where = list(e.absolute_path)
        if e.validator == "additionalProperties" and isinstance(e.instance, dict):
            known = set((e.schema.get("properties") or {}))
            unknown += [_field_path(where + [k]) for k in sorted(e.instance) if k not in known]
        elif e.validator == "type":
            # encoding/json's UnmarshalTypeError (the Go struct's name abridged)
            types = [e.validator_value] if isinstance(e.validator_value, str) else e.validator_value
            want = next((t for t in types if t != "null"), "")
            field = ".".join(str(x) for x in where if not isinstance(x, int))
            decode.append(f"json: cannot unmarshal {_json_type(e.instance)} into Go struct field .{field} of type "
                          f"{GO_TYPES.get(want, 'interface {}')}")
        elif e.validator == "required":
            missing = re.match(r"'([^']+)' is a required property", e.message)
            other.append(f"{_field_path(where + [missing.group(1) if missing else '?'])}: Required value")
        else:
            other.append(f"{_field_path(where) or '<root>'}: {e.message}")
    return unknown, decode, other


GO_TYPES = {"string": "string", "integer": "int32", "number": "float64", "boolean": "bool", "array": "[]interface {}",
            "object": "map[string]interface {}"}


def _json_type(value):
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "null")


def _strict_refusal(doc, minor, label, existing, validate=None):
    """The message kubectl prints when the server refuses ``doc`` (None: accepted).
    Unknown fields and wrong types are decoding errors, as the real ones
    read (create: BadRequest "cannot be handled as a"; an existing object:
    the patch is invalid -- the real message quotes the strategic merge patch
    as a Go map and names the Go struct, both abridged here); the rest are
    validation errors ("is invalid: <field>: Required value", others in
    jsonschema's words)."""
    if validate in ("false", "ignore"):
        return None
    unknown, decode, other = strict_problems(doc, minor)
    if validate == "warn":
        for f in unknown:
            err(f'Warning: unknown field "{f}"')
        unknown = []
    if not (unknown or decode or other):
        return None
    kind, ver = doc.get("kind"), str(doc.get("apiVersion")).split("/")[-1]
    name = (doc.get("metadata") or {}).get("name")
    if unknown or decode:
        why = decode[0] if decode else "strict decoding error: " + ", ".join(f'unknown field "{f}"' for f in unknown)
        if existing:
            return f'The request is invalid: patch: Invalid value: "map[...]": {why}'
        return (f'Error from server (BadRequest): error when creating "{label}": {kind} in version "{ver}" '
                f"cannot be handled as a {kind}: {why}")
    return f'The {kind} "{name}" is invalid: ' + ", ".join(other)


APPLY_FLAGS = dict(GLOBAL, **{"filename": "list", "recursive": "bool", "server-side": "bool", "force-conflicts": "bool",
                              "dry-run": "str", "output": "str", "prune": "bool", "selector": "str",
                              "field-manager": "str", "validate": "str", "overwrite": "bool", "wait": "bool",
                              "force": "bool", "timeout": "str", "kustomize": "str", "save-config": "bool",
                              "all": "bool", "cascade": "str", "grace-period": "int", "ignore-not-found": "bool",
                              "now": "bool", "all-namespaces": "bool", "edit": "bool"})
APPLY_SHORT = dict(GSHORT, f="filename", R="recursive", o="output", l="selector", k="kustomize", A="all-namespaces")


def cmd_apply(args, create=False):
    opts, pos = parse(args, APPLY_FLAGS, APPLY_SHORT)
    verb = "create" if create else "apply"
    files = opts.get("filename") or []
    if not files:
        raise Fail("error: must specify one of -f and -k" if not create else
                   "Error: must specify one of -f and -k\n\nerror: must specify one of -f and -k")
    docs = _read_manifests(files, opts.get("recursive"))
    cluster = connect(opts)
    minor = _minor(cluster)
    ns_default = opts.get("namespace") or "default"
    rc = 0
    lines = []
    with kube.locked() as c:
        for doc, label in docs:
            api, kind = str(doc.get("apiVersion") or ""), str(doc.get("kind") or "")
            meta = doc.setdefault("metadata", {}) or {}
            name = meta.get("name")
            if not api or not kind:
                err(f'error: error validating "{label}": error validating data: [apiVersion not set, kind not set]; '
                    "if you choose to ignore these errors, turn validation off with --validate=false")
                rc = 1
                continue
            info = _kind_info(c, api, kind, minor)
            if info is None:
                err(f'error: resource mapping not found for name: "{name}" namespace: "{meta.get("namespace", "")}" '
                    f'from "{label}": no matches for kind "{kind}" in version "{api}"\nensure CRDs are installed first')
                rc = 1
                continue
            if not name:
                err(f'error: error when retrieving current configuration of:\nResource: "{info[0]}", '
                    f'GroupVersionKind: "{api}, Kind={kind}"\nName: "", Namespace: "{ns_default}"\nfrom server for: '
                    f'"{label}": resource name may not be empty')
                rc = 1
                continue
            ns = (meta.get("namespace") or ns_default) if info[1] else ""
            if info[1]:
                meta["namespace"] = ns
                if ns not in kube.namespaces(c):
                    err(f'Error from server (NotFound): error when creating "{label}": namespaces "{ns}" not found')
                    rc = 1
                    continue
            key = kube.obj_key(kind, ns, name)
            old = c["objects"].get(key)
            disp = f"{_display(api, kind)}/{name}"
            refusal = _strict_refusal(doc, minor, label, old is not None and not create, opts.get("validate"))
            if refusal:
                err(refusal)
                rc = 1
                continue
            if old is not None and create:
                err(f'Error from server (AlreadyExists): error when creating "{label}": {info[0]}'
                    f'{"." + _group(api) if _group(api) else ""} "{name}" already exists')
                rc = 1
                continue
            new = json.loads(json.dumps(doc))
            if old is not None:
                same = {k: v for k, v in old.items() if k != "status"} == new
                if kind == "Pod" and not same and old.get("spec") != new.get("spec"):
                    err(f'The Pod "{name}" is invalid: spec: Forbidden: pod updates may not change fields other than '
                        "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
                        "`spec.tolerations` (only additions to existing tolerations),"
                        "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)")
                    rc = 1
                    continue
                if "status" in old:
                    new["status"] = old["status"]
                c["objects"][key] = new
                lines.append(f"{disp} {'unchanged' if same else 'configured'}")
                continue
            if kind == "Pod":
                new["status"] = kube.schedule_pod(c, new)
            c["objects"][key] = new
            lines.append(f"{disp} created")
        kube.reconcile(c)  # the controllers act on what was applied (Deployment pods)
    for line in lines:
        out(line)
    if verb == "apply":
        kube.refresh_node()
    return rc


def cmd_delete(args):
    opts, pos = parse(args, APPLY_FLAGS, APPLY_SHORT)
    cluster = connect(opts)
    ns_default = opts.get("namespace") or "default"
    targets = []
    if opts.get("filename"):
        for doc, _ in _read_manifests(opts["filename"]):
            info = _kind_info(cluster, doc.get("apiVersion", ""), doc.get("kind", ""), _minor(cluster))
            ns = ((doc.get("metadata") or {}).get("namespace") or ns_default) if (info and info[1]) else ""
            targets.append((doc.get("kind"), ns, doc["metadata"]["name"], doc.get("apiVersion", "v1")))
    else:
        for word, name in _targets(pos):
            if name is None:
                raise Fail("error: resource(s) were provided, but no name was specified")
            kind = _resolve_kind(cluster, word)
            info = _plural_of_kind(cluster, kind)
            api = next((a for (a, k) in KINDS if k == kind), "v1")
            targets.append((kind, ns_default if (info and info[1]) else "", name, api))
    rc = 0
    with kube.locked() as c:
        for kind, ns, name, api in targets:
            info = _plural_of_kind(c, kind) or (kind.lower() + "s", True)
            if kind == "Node":
                if name in c["nodes"]:
                    del c["nodes"][name]
                    out(f'node "{name}" deleted')
                elif not opts.get("ignore-not-found"):
                    err(f'Error from server (NotFound): nodes "{name}" not found')
                    rc = 1
                continue
            key = kube.obj_key(kind, ns, name)
            if key in c["objects"]:
                del c["objects"][key]
                if kind == "Namespace":
                    for k in [k for k in c["objects"] if k.split("/")[1] == name]:
                        del c["objects"][k]
                grp = _group(api)
                out(f'{kind.lower()}{"." + grp if grp else ""} "{name}" deleted')
            elif not opts.get("ignore-not-found"):
                grp = _group(api)
                err(f'Error from server (NotFound): {info[0]}{"." + grp if grp else ""} "{name}" not found')
                rc = 1
        kube.reconcile(c)  # a deleted controller's pods go, a deleted pod of one is replaced
    return rc


def cmd_wait(args):
    opts, pos = parse(args, dict(GLOBAL, **{"for": "str", "timeout": "str", "all": "bool", "selector": "str",
                                            "all-namespaces": "bool", "output": "str", "filename": "list",
                                            "field-selector": "str", "local": "bool"}),
                      dict(GSHORT, l="selector", A="all-namespaces", o="output", f="filename"))
    cond = opts.get("for")
    if not cond:
        raise Fail("error: --for must be specified")
    cluster = connect(opts)
    ns = opts.get("namespace") or "default"
    rc = 0
    for word, name in _targets(pos):
        kind = _resolve_kind(cluster, word)
        items, _ = _collect(cluster, kind, ns, False)
        plural = (_plural_of_kind(cluster, kind) or (kind.lower() + "s",))[0]
        found = [o for o in items if o["metadata"]["name"] == name] if name else items
        if cond == "delete":
            if found:
                err(f"error: timed out waiting for the condition on {plural}/{name}")
                rc = 1
            continue
        if not found:
            err(f'Error from server (NotFound): {plural} "{name}" not found')
            rc = 1
            continue
        for o in found:
            if _condition_met(o, cond):
                out(f"{_display_kind(kind)}/{o['metadata']['name']} condition met")
            else:
                err(f"error: timed out waiting for the condition on {plural}/{o['metadata']['name']}")
                rc = 1
    return rc


def _condition_met(o, cond):
    if cond.startswith("condition="):
        spec = cond[len("condition="):]
        ctype, _, want = spec.partition("=")
        want = want or "True"
        for c in (o.get("status") or {}).get("conditions") or []:
            if c.get("type", "").lower() == ctype.lower():
                return str(c.get("status")).lower() == want.lower()
        return False
    if cond.startswith("jsonpath="):
        spec = cond[len("jsonpath="):]
        m = re.match(r"^['\"]?(\{.*\})['\"]?=(.*)$", spec)
        if not m:
            raise Fail(f"error: unrecognized condition: \"{cond}\"")
        value = m.group(2).strip("'\"")
        return jsonpath(m.group(1), _clean(o)) == value
    raise Fail(f'error: unrecognized condition: "{cond}"')


def cmd_logs(args):
    opts, pos = parse(args, dict(GLOBAL, **{"container": "str", "follow": "bool", "previous": "bool", "tail": "int",
                                            "timestamps": "bool", "all-containers": "bool", "since": "str",
                                            "selector": "str", "prefix": "bool"}),
                      dict(GSHORT, c="container", f="follow", p="previous", l="selector"))
    if not pos:
        raise Fail("error: expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.\nPOD or TYPE/NAME is a required "
                   "argument for the logs command\nSee 'kubectl logs -h' for help and examples")
    cluster = connect(opts)
    ns = opts.get("namespace") or "default"
    target = pos[0]
    word, name = target.split("/", 1) if "/" in target else ("pod", target)
    kind = _resolve_kind(cluster, word)
    allp = [p for p in pods(cluster) if p["metadata"]["namespace"] == ns]
    if kind == "Pod":
        pod = next((p for p in allp if p["metadata"]["name"] == name), None)
        if pod is None:
            raise Fail(f'Error from server (NotFound): pods "{name}" not found')
    elif kind == "DaemonSet":
        owned = [p for p in allp if any(r.get("name") == name for r in p["metadata"].get("ownerReferences") or [])]
        if not owned:
            raise Fail('error: timed out waiting for the condition' if any(
                o["metadata"]["name"] == name for o in kube.objects(cluster, "DaemonSet")) else
                f'Error from server (NotFound): daemonsets.apps "{name}" not found')
        if len(owned) > 1:
            err(f"Found {len(owned)} pods, using pod/{owned[0]['metadata']['name']}")
        pod = owned[0]
    else:
        raise Fail(f"error: cannot get the logs from {word}")
    phase = (pod.get("status") or {}).get("phase")
    ctr = (((pod.get("spec") or {}).get("containers") or [{}])[0].get("name")) or pod["metadata"]["name"]
    if phase == "Pending":
        raise Fail(f'Error from server (BadRequest): container "{ctr}" in pod "{pod["metadata"]["name"]}" is '
                   "waiting to start: ContainerCreating")
    node_name = (pod.get("spec") or {}).get("nodeName")
    node = (cluster.get("nodes") or {}).get(node_name) or {}
    cp = cluster.get("control_plane") or {}
    if node and node.get("node_id") != cp.get("node"):
        v = kube.view(cluster, node["node_id"])
        blocked = kube.port_blocked(v.state, 10250) if v is not None else None
        if blocked:
            ip = node.get("ip") or node_name
            raise Fail(f'Error from server: Get "https://{ip}:10250/containerLogs/{ns}/{pod["metadata"]["name"]}/{ctr}": '
                       f"dial tcp {ip}:10250: {'connect: ' if blocked != 'i/o timeout' else ''}{blocked}")
    sys.stdout.write(pod.get("_logs") or "")
    return 0


def cmd_version(args):
    opts, pos = parse(args, dict(GLOBAL, client="bool", output="str", short="bool"), dict(GSHORT, o="output"))
    ver = kube.parse_version(kube.package_version(state.read(), "kubectl"))
    client = {"major": str(ver[0]), "minor": str(ver[1]), "gitVersion": kube.vstr(ver), "platform": "linux/amd64"}
    server = None
    if not opts.get("client"):
        try:
            cluster = connect(opts)
            sv = kube.parse_version(cluster["control_plane"]["version"])
            server = {"major": str(sv[0]), "minor": str(sv[1]), "gitVersion": kube.vstr(sv), "platform": "linux/amd64"}
        except Fail as exc:
            server = exc
    if opts.get("output") == "json":
        data = {"clientVersion": client}
        if isinstance(server, dict):
            data["serverVersion"] = server
        out(json.dumps(data, indent=2))
    else:
        out(f"Client Version: {client['gitVersion']}")
        out("Kustomize Version: v5.7.1")
        if isinstance(server, dict):
            out(f"Server Version: {server['gitVersion']}")
    if isinstance(server, Fail):
        err(server.msg)
        return 1
    return 0


def cmd_cluster_info(args):
    opts, pos = parse(args, GLOBAL, GSHORT)
    cluster = connect(opts)
    ep = cluster["control_plane"]["endpoint"]
    out(f"Kubernetes control plane is running at https://{ep}")
    out(f"CoreDNS is running at https://{ep}/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy")
    out()
    out("To further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.")
    return 0


def cmd_rollout(args):
    opts, pos = parse(args, dict(GLOBAL, timeout="str", watch="bool", revision="int"), dict(GSHORT, w="watch"))
    if not pos or pos[0] != "status":
        raise Fail("error: the twin emulates `kubectl rollout status` only")
    cluster = connect(opts)
    ns = opts.get("namespace") or "default"
    rc = 0
    for word, name in _targets(pos[1:]):
        kind = _resolve_kind(cluster, word)
        items, _ = _collect(cluster, kind, ns, False)
        found = [o for o in items if o["metadata"]["name"] == name]
        plural = (_plural_of_kind(cluster, kind) or (kind.lower() + "s",))[0]
        if not found:
            err(f'Error from server (NotFound): {plural}.apps "{name}" not found')
            rc = 1
            continue
        if kind == "Deployment":
            st = found[0]["status"]
            want = int((found[0].get("spec") or {}).get("replicas", 1))
            if st.get("availableReplicas", 0) < want:
                out(f'Waiting for deployment "{name}" rollout to finish: {st.get("availableReplicas", 0)} of {want} '
                    "updated replicas are available...")
                err("error: timed out waiting for the condition")
                rc = 1
            else:
                out(f'deployment "{name}" successfully rolled out')
            continue
        if kind != "DaemonSet":
            out(f'{kind.lower()} "{name}" successfully rolled out')
            continue
        st = found[0]["status"]
        if st["numberAvailable"] < st["desiredNumberScheduled"]:
            out(f'Waiting for daemon set "{name}" rollout to finish: {st["numberAvailable"]} of '
                f'{st["desiredNumberScheduled"]} updated pods are available...')
            err("error: timed out waiting for the condition")
            rc = 1
        else:
            out(f'daemon set "{name}" successfully rolled out')
    return rc


# ---------------------------------------------------------------------------
# cordon, uncordon, drain (k8s.io/kubectl pkg/cmd/drain/drain.go, pkg/drain/
# {cordon,drain,filters}.go)

CORDON_FLAGS = dict(GLOBAL, **{"selector": "str", "dry-run": "str"})
DRAIN_FLAGS = dict(CORDON_FLAGS, **{
    "force": "bool", "ignore-daemonsets": "bool", "delete-local-data": "bool", "delete-emptydir-data": "bool",
    "grace-period": "int", "timeout": "str", "pod-selector": "str", "disable-eviction": "bool",
    "skip-wait-for-delete-timeout": "int", "chunk-size": "int", "ignore-errors": "bool"})
DRAIN_SHORT = dict(GSHORT, l="selector")


def _dry_run(opts):
    """(strategy, suffix): none/client/server as cmdutil.GetDryRunStrategy."""
    value = opts.get("dry-run")
    if value is None or value in ("none", "false"):
        return "none", ""
    if value in ("client", "true", ""):
        return "client", " (dry run)"
    if value == "server":
        return "server", " (server dry run)"
    raise Fail(f'error: Invalid dry-run value ({value}). Must be "none", "server", or "client".')


def _nodes_of(cluster, verb, opts, pos):
    if not pos and not opts.get("selector"):
        raise Fail(f"error: USAGE: {verb} NODE [flags]\nSee 'kubectl {verb} -h' for help and examples")
    if pos and opts.get("selector"):
        raise Fail("error: error: cannot specify both a node name and a --selector option\n"
                   f"See 'kubectl {verb} -h' for help and examples")
    if opts.get("selector"):
        names = [o["metadata"]["name"] for o in node_list(cluster)
                 if _match_selector(o["metadata"]["labels"], opts["selector"])]
        if not names:
            raise Fail("No resources found")
        return names
    names = []
    for arg in pos:
        word, _, name = arg.rpartition("/")
        if word and _resolve_kind(cluster, word) != "Node":
            raise Fail(f'error: expected resource of type node, got "{word}"')
        if name not in (cluster.get("nodes") or {}):
            raise Fail(f'Error from server (NotFound): nodes "{name}" not found')
        names.append(name)
    return names


def _set_unschedulable(names, desired, dry):
    """RunCordonOrUncordon: spec.unschedulable, and the taint the node
    lifecycle controller keeps in step with it (node.kubernetes.io/
    unschedulable:NoSchedule)."""
    strategy, suffix = dry
    with kube.locked() as c:
        for name in names:
            node = c["nodes"][name]
            word = "cordon" if desired else "uncordon"
            if bool(node.get("unschedulable")) == desired:
                out(f"node/{name} already {word}ed{suffix}")
                continue
            if strategy != "client" and strategy != "server":
                node["unschedulable"] = desired
                taints = [t for t in node.get("taints") or [] if t.get("key") != kube.UNSCHEDULABLE_TAINT]
                if desired:
                    taints.append({"key": kube.UNSCHEDULABLE_TAINT, "effect": "NoSchedule",
                                   "timeAdded": kube.iso(kube.now())})
                node["taints"] = taints
                if not desired:
                    node.pop("unschedulable", None)
            out(f"node/{name} {word}ed{suffix}")
        kube.reconcile(c)


def cmd_cordon(args, desired=True):
    verb = "cordon" if desired else "uncordon"
    opts, pos = parse(args, CORDON_FLAGS, DRAIN_SHORT)
    dry = _dry_run(opts)
    cluster = connect(opts)
    _set_unschedulable(_nodes_of(cluster, verb, opts, pos), desired, dry)
    return 0


def _controller(pod):
    return next((r for r in pod["metadata"].get("ownerReferences") or [] if r.get("controller")), None)


def _daemonset_exists(cluster, ns, name):
    return f"{ns}/{name}" in IMPLICIT_DAEMONSETS or (cluster.get("objects") or {}).get(
        kube.obj_key("DaemonSet", ns, name)) is not None


def pods_for_deletion(cluster, node, opts):
    """GetPodsForDeletion: (pods to evict, warnings, errors), the filters in
    kubectl's order (DaemonSet, mirror, local storage, unreplicated); the
    first filter that keeps a pod decides."""
    selector = opts.get("pod-selector") or ""
    force = bool(opts.get("force"))
    emptydir = bool(opts.get("delete-emptydir-data") or opts.get("delete-local-data"))
    chosen, warnings, errors = [], {}, {}
    # the API lists pods by namespace and name
    for pod in sorted(pods(cluster), key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"])):
        if (pod.get("spec") or {}).get("nodeName") != node:
            continue
        if not _match_selector(pod["metadata"].get("labels") or {}, selector):
            continue
        ref = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        phase = (pod.get("status") or {}).get("phase")
        finished = phase in ("Succeeded", "Failed")
        ctl = _controller(pod)
        status = ("ok", None)
        if ctl and ctl.get("kind") == "DaemonSet" and not finished:
            if not _daemonset_exists(cluster, pod["metadata"]["namespace"], ctl["name"]):
                status = ("warn", f'daemonsets.apps "{ctl["name"]}" not found') if force else (
                    "error", f'daemonsets.apps "{ctl["name"]}" not found')
            elif not opts.get("ignore-daemonsets"):
                status = ("error", "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)")
            else:
                status = ("skip-warn", "ignoring DaemonSet-managed Pods")
        if status[0] in ("ok", "warn") and MIRROR in (pod["metadata"].get("annotations") or {}):
            status = ("skip", None)
        if status[0] in ("ok", "warn") and not finished and any(
                "emptyDir" in (v or {}) for v in (pod.get("spec") or {}).get("volumes") or []):
            status = ("warn", "deleting Pods with local storage") if emptydir else (
                "error", "Pods with local storage (use --delete-emptydir-data to override)")
        if status[0] in ("ok", "warn") and not finished and ctl is None:
            status = ("warn", "deleting Pods that declare no controller") if force else (
                "error", "cannot delete Pods that declare no controller (use --force to override)")
        kind, msg = status
        if kind in ("warn", "skip-warn"):
            warnings.setdefault(msg, []).append(ref)
        if kind == "error":
            errors.setdefault(msg, []).append(ref)
        if kind in ("ok", "warn"):
            chosen.append(pod)
    errs = [f"{m}: {', '.join(p)}" if m.lower().startswith("cannot delete") else f"cannot delete {m}: {', '.join(p)}"
            for m, p in errors.items()]
    return chosen, "; ".join(f"{m}: {', '.join(p)}" for m, p in warnings.items()), errs


def _aggregate(errs):
    return errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"


def cmd_drain(args):
    opts, pos = parse(args, DRAIN_FLAGS, DRAIN_SHORT)
    if "delete-local-data" in opts:
        err("Flag --delete-local-data has been deprecated, This option is deprecated and will be deleted. Use "
            "--delete-emptydir-data.")
    if "timeout" in opts:
        try:
            goflags.duration(opts["timeout"])
        except ValueError as exc:
            raise Fail(f'error: invalid argument "{opts["timeout"]}" for "--timeout" flag: {exc}') from None
    if opts.get("pod-selector"):
        sel = opts["pod-selector"]
        if not re.match(r"^\s*!?[A-Za-z0-9./_-]+\s*((!=|==|=)\s*[A-Za-z0-9._-]*)?(\s*,\s*!?[A-Za-z0-9./_-]+\s*"
                        r"((!=|==|=)\s*[A-Za-z0-9._-]*)?)*\s*$", sel):
            raise Fail("error: --pod-selector=<pod_selector> must be a valid label selector")
    dry = _dry_run(opts)
    cluster = connect(opts)
    names = _nodes_of(cluster, "drain", opts, pos)
    _set_unschedulable(names, True, dry)
    fatal, remaining = [], []
    for name in names:
        with kube.locked() as c:
            chosen, warnings, errs = pods_for_deletion(c, name, opts)
            if not errs:
                if warnings:
                    err(f"Warning: {warnings}")
                for pod in chosen:
                    ref = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
                    if dry[0] == "client":
                        out(f"evicting pod {ref} (dry run)")
                        continue
                    evict = not opts.get("disable-eviction")
                    if evict:
                        out(f"evicting pod {ref}" + (" (server dry run)" if dry[0] == "server" else ""))
                    if dry[0] == "none":
                        c["objects"].pop(kube.obj_key("Pod", pod["metadata"]["namespace"], pod["metadata"]["name"]),
                                         None)
                    # the pod has no grace period to wait for here: it is gone at once
                    out(f"pod/{pod['metadata']['name']} {'evicted' if evict else 'deleted'}{dry[1]}")
                kube.reconcile(c)  # controllers replace what was evicted (Pending while cordoned)
        if errs:
            agg = _aggregate(errs)
            err(f'error: unable to drain node "{name}" due to error: {agg}, continuing command...')
            fatal.append(agg)
            remaining.append(name)
            continue
        out(f"node/{name} drained{dry[1]}")
    if remaining:
        err("There are pending nodes to be drained:")
        for name in remaining:
            err(f" {name}")
        raise Fail(f"error: {_aggregate(fatal)}")
    return 0


COMMANDS = {"cordon": cmd_cordon, "uncordon": lambda a: cmd_cordon(a, desired=False), "drain": cmd_drain,
            "rollout": cmd_rollout, "get": cmd_get, "describe": cmd_describe, "label": cmd_label, "taint": cmd_taint, "apply": cmd_apply,
            "create": lambda a: cmd_apply(a, create=True), "delete": cmd_delete, "wait": cmd_wait, "logs": cmd_logs,
            "version": cmd_version, "cluster-info": cmd_cluster_info}


def _split_command(args):
    """kubectl allows global flags before the command: find the command word."""
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith("-"):
            return a, args[:i] + args[i + 1:]
        name = a.lstrip("-").split("=")[0]
        if "=" not in a and (GLOBAL.get(name) == "str" or GLOBAL.get(GSHORT.get(name, "")) == "str") and len(a) > 1:
            i += 2
        else:
            i += 1
    return None, args


def main(argv):
    st = state.read()
    ver = kube.parse_version(kube.package_version(st, "kubectl"))
    if ver is None:
        err(f"{os.path.basename(argv[0])}: command not found")
        return 127
    cmd, rest = _split_command(list(argv[1:]))
    if cmd is None:
        out("kubectl controls the Kubernetes cluster manager.")
        return 0
    if cmd not in COMMANDS:
        err(f'error: unknown command "{cmd}" for "kubectl"')
        return 1
    try:
        return COMMANDS[cmd](rest)
    except FlagError as exc:
        err(f"error: {exc}")
        err(f"See 'kubectl {cmd} --help' for usage.")
        return 1
    except Fail as exc:
        err(exc.msg)
        return exc.rc


if __name__ == "__main__":  # pragma: no cover
    state.run_tool(main)
