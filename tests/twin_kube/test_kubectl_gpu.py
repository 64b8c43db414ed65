"""kubectl against the shared cluster: connection rules, nodes, labels, apply,
and the GPU rules -- allocatable only with the device plugin, the driver
loaded and the nvidia runtime; the validation pod Succeeded or Pending."""

import json

import pytest

from .conftest import GTX, configure_nvidia, init_master, join_cmd

ADMIN = "--kubeconfig=/etc/kubernetes/admin.conf"

FLANNEL = """apiVersion: v1
kind: Namespace
metadata:
  name: kube-flannel
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: kube-flannel-ds
  namespace: kube-flannel
spec:
  selector: {matchLabels: {app: flannel}}
  template:
    metadata: {labels: {app: flannel}}
    spec:
      hostNetwork: true
      tolerations: [{operator: Exists, effect: NoSchedule}]
      containers:
      - name: kube-flannel
        image: ghcr.io/flannel-io/flannel:v0.26.7
"""

PLUGIN = """apiVersion: v1
kind: ConfigMap
metadata:
  name: nvidia-device-plugin-config
  namespace: kube-system
data:
  config.yaml: |
    version: v1{sharing}
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: nvidia-device-plugin-daemonset
  namespace: kube-system
spec:
  selector: {{matchLabels: {{name: nvidia-device-plugin-ds}}}}
  template:
    metadata: {{labels: {{name: nvidia-device-plugin-ds}}}}
    spec:
      tolerations: [{{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}}]
      containers:
      - name: nvidia-device-plugin-ctr
        image: nvcr.io/nvidia/k8s-device-plugin:v0.17.4
        args: ["--config-file=/config/config.yaml"]
        volumeMounts: [{{name: config, mountPath: /config}}]
      volumes:
      - name: config
        configMap: {{name: nvidia-device-plugin-config}}
"""

SHARING = """
    sharing:
      timeSlicing:
        resources:
        - name: nvidia.com/gpu
          replicas: {replicas}"""


def plugin(replicas=1):
    """The plugin manifest; replicas 1: no sharing (the plugin refuses < 2)."""
    return PLUGIN.format(sharing=SHARING.format(replicas=replicas) if replicas != 1 else "")


POD = """apiVersion: v1
kind: Pod
metadata:
  name: gpu-check-{node}
spec:
  restartPolicy: Never
  nodeSelector: {{kubernetes.io/hostname: {node}}}
  containers:
  - name: cuda
    image: nvcr.io/nvidia/cuda:{cuda}-base-ubuntu22.04
    command: [nvidia-smi]
    resources:
      limits: {{nvidia.com/gpu: 1}}
"""


def kubectl(node, *args, stdin=""):
    return node.run("kubectl", ADMIN, *args, stdin=stdin)


@pytest.fixture
def cluster(twin):
    master, _ = init_master(twin)
    workers = {}
    for name in ("node-110", "node-109"):
        w = twin.add(name, gpus=[GTX])
        configure_nvidia(w)
        rc, _, err = w.run("kubeadm", "join", *join_cmd(master))
        assert rc == 0, err
        workers[name] = w
    return master, workers


def deploy(master, replicas=1):
    assert kubectl(master, "apply", "-f", "-", stdin=FLANNEL)[0] == 0
    rc, out, err = kubectl(master, "apply", "-f", "-", stdin=plugin(replicas))
    assert rc == 0, err
    return out


def allocatable(master, node):
    rc, out, err = kubectl(master, "get", "node", node, "-o", "jsonpath={.status.allocatable.nvidia\\.com/gpu}")
    assert rc == 0, err
    return out


def twin_objects(master):
    return master.twin.cluster()["objects"]


def test_connection_rules(twin):
    w = twin.add("node-110")
    rc, _, err = w.run("kubectl", "get", "nodes")
    assert rc == 1 and err == ("The connection to the server localhost:8080 was refused - did you specify the right "
                               "host or port?\n")
    rc, _, err = w.run("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "get", "nodes")
    assert rc == 1 and "error: stat /etc/kubernetes/admin.conf: no such file or directory" in err
    master, _ = init_master(twin)
    old = master.read("/etc/kubernetes/admin.conf")
    master.write("/root/.kube/config", old)
    assert master.run("kubectl", "get", "nodes")[0] == 0
    master.run("kubeadm", "reset", "-f")
    master.run("kubeadm", "init", "--config", "/root/init.yaml")
    rc, _, err = master.run("kubectl", "get", "nodes")
    assert rc == 1 and "x509: certificate signed by unknown authority" in err
    # the control plane's kubelet down -> refused
    master.edit(lambda st: st["services"]["kubelet"].update(active=False))
    rc, _, err = kubectl(master, "get", "nodes")
    assert rc == 1 and "The connection to the server 192.168.0.113:6443 was refused" in err


def test_nodes_notready_until_cni(cluster):
    master, _ = cluster
    rc, out, _ = kubectl(master, "get", "nodes")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert lines[1].split()[:3] == ["cluster-master", "NotReady", "control-plane"]
    assert lines[2].split()[1:3] == ["NotReady", "<none>"]
    rc, out, err = kubectl(master, "wait", "--for=condition=Ready", "node/node-110", "--timeout=300s")
    assert rc == 1 and err == "error: timed out waiting for the condition on nodes/node-110\n"
    rc, out, _ = kubectl(master, "apply", "-f", "-", stdin=FLANNEL)
    assert out == "namespace/kube-flannel created\ndaemonset.apps/kube-flannel-ds created\n"
    rc, out, _ = kubectl(master, "apply", "-f", "-", stdin=FLANNEL)
    assert out == "namespace/kube-flannel unchanged\ndaemonset.apps/kube-flannel-ds unchanged\n"
    rc, out, _ = kubectl(master, "wait", "--for=condition=Ready", "node/node-110", "--timeout=300s")
    assert (rc, out) == (0, "node/node-110 condition met\n")
    rc, out, _ = kubectl(master, "get", "nodes", "-o", "json")
    items = json.loads(out)["items"]
    assert [i["metadata"]["name"] for i in items] == ["cluster-master", "node-109", "node-110"]
    assert all(c["status"] == "True" for i in items for c in i["status"]["conditions"] if c["type"] == "Ready")


def test_allocatable_needs_plugin_driver_runtime(cluster, twin):
    master, workers = cluster
    assert kubectl(master, "apply", "-f", "-", stdin=FLANNEL)[0] == 0
    assert allocatable(master, "node-110") == ""          # no device plugin
    deploy(master)
    assert allocatable(master, "node-110") == "1"
    assert allocatable(master, "cluster-master") == ""    # no GPU, plugin not scheduled (taint)
    # driver not loaded on node-109
    workers["node-109"].edit(lambda st: st.update(modules=["br_netfilter", "overlay"]))
    assert allocatable(master, "node-109") == "0"
    # node-110: nvidia runtime configured but not the default -> runc -> no NVML
    w = workers["node-110"]
    w.write("/etc/containerd/config.toml",
            w.read("/etc/containerd/config.toml").replace('default_runtime_name = "nvidia"',
                                                          'default_runtime_name = "runc"'))
    assert allocatable(master, "node-110") == "0"
    rc, out, _ = kubectl(master, "describe", "node", "node-110")
    assert "containerd has the nvidia runtime but pods run with runc" in out
    rc, out, _ = kubectl(master, "logs", "-n", "kube-system", "ds/nvidia-device-plugin-daemonset")
    assert rc == 0


def test_time_slicing_replicas(cluster):
    master, _ = cluster
    deploy(master, replicas=4)
    assert allocatable(master, "node-110") == "4"
    rc, out, _ = kubectl(master, "get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.allocatable.nvidia\\.com/gpu}{\"\\n\"}{end}")
    assert out.splitlines() == ["cluster-master=", "node-109=4", "node-110=4"]


def test_time_slicing_one_replica_crash_loops(cluster):
    # k8s-device-plugin refuses replicas < 2 (api/config/v1/replicas.go) and
    # exits: the pod crash-loops and the node never offers nvidia.com/gpu
    master, _ = cluster
    assert kubectl(master, "apply", "-f", "-", stdin=FLANNEL)[0] == 0
    bad = PLUGIN.format(sharing=SHARING.format(replicas=1))
    assert kubectl(master, "apply", "-f", "-", stdin=bad)[0] == 0
    assert allocatable(master, "node-110") == ""
    rc, out, _ = kubectl(master, "logs", "-n", "kube-system", "ds/nvidia-device-plugin-daemonset")
    assert rc == 0 and "number of replicas must be >= 2" in out
    rc, out, _ = kubectl(master, "get", "pods", "-n", "kube-system", "-o",
                         "jsonpath={range .items[*]}{.metadata.name}={.status.containerStatuses[0].state.waiting.reason}"
                         "{\"\\n\"}{end}")
    plugin_pods = [line for line in out.splitlines() if line.startswith("nvidia-device-plugin-daemonset-")]
    assert plugin_pods and all(line.endswith("=CrashLoopBackOff") for line in plugin_pods), out


def test_plugin_configmap_missing(cluster):
    master, _ = cluster
    assert kubectl(master, "apply", "-f", "-", stdin=FLANNEL)[0] == 0
    ds_only = plugin(1).split("---\n", 1)[1]
    assert kubectl(master, "apply", "-f", "-", stdin=ds_only)[0] == 0
    assert allocatable(master, "node-110") == ""


def test_docker_cri_needs_default_runtime(twin):
    master = twin.add("cluster-master", ip="192.168.0.113", os_key="centos7")
    w = twin.add("node-110", gpus=[GTX], os_key="centos7")
    for n in (master, w):
        def seed(st):
            for p in ("kubeadm", "kubelet", "kubectl"):
                st["packages"][p]["version"] = "1.18.20"
            st["services"] = {"docker": {"enabled": True, "active": True}, "kubelet": {"enabled": True, "active": False}}
        n.edit(seed)
    rc, _, err = master.run("kubeadm", "init", "--kubernetes-version", "v1.18.20")
    assert rc == 0, err
    w.run("nvidia-ctk", "runtime", "configure", "--runtime=docker")   # no --set-as-default
    assert w.run("kubeadm", "join", *join_cmd(master))[0] == 0
    deploy(master)
    assert allocatable(master, "node-110") == "0"
    w.run("nvidia-ctk", "runtime", "configure", "--runtime=docker", "--set-as-default")
    assert allocatable(master, "node-110") == "1"


def test_validation_pod_succeeds_or_pending(cluster):
    master, workers = cluster
    deploy(master)
    workers["node-109"].edit(lambda st: st.update(modules=["br_netfilter", "overlay"]))
    for node in ("node-110", "node-109"):
        rc, out, err = kubectl(master, "apply", "-f", "-", stdin=POD.format(node=node, cuda="12.4.1"))
        assert (rc, out) == (0, f"pod/gpu-check-{node} created\n"), err
    rc, out, err = kubectl(master, "wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/gpu-check-node-110")
    assert rc == 0, err + str(twin_objects(master))
    rc, out, _ = kubectl(master, "logs", "gpu-check-node-110")
    assert "NVIDIA-SMI 580.95.05" in out and GTX in out and "CUDA Version: 13.0" in out
    rc, out, _ = kubectl(master, "get", "pod", "gpu-check-node-109", "-o", "jsonpath={.status.phase}")
    assert out == "Pending"
    rc, out, _ = kubectl(master, "get", "pod", "gpu-check-node-109", "-o", "json")
    cond = json.loads(out)["status"]["conditions"][0]
    assert cond["reason"] == "Unschedulable" and "Insufficient nvidia.com/gpu" in cond["message"]
    rc, out, _ = kubectl(master, "get", "pods")
    rows = {ln.split()[0]: ln.split()[2] for ln in out.splitlines()[1:]}
    assert rows == {"gpu-check-node-109": "Pending", "gpu-check-node-110": "Completed"}
    # the driver comes back: the pending pod runs
    workers["node-109"].edit(lambda st: st.update(modules=["br_netfilter", "overlay", "nvidia"]))
    rc, out, _ = kubectl(master, "get", "pod", "gpu-check-node-109", "-o", "jsonpath={.status.phase}")
    assert out == "Succeeded"
    rc, out, _ = kubectl(master, "delete", "pod", "gpu-check-node-109")
    assert out == 'pod "gpu-check-node-109" deleted\n'


def test_validation_pod_cuda_too_new_for_driver(cluster):
    master, workers = cluster
    deploy(master)
    workers["node-110"].edit(lambda st: st["nvidia_driver"].update(version="440.100"))
    kubectl(master, "apply", "-f", "-", stdin=POD.format(node="node-110", cuda="12.4.1"))
    rc, out, _ = kubectl(master, "get", "pod", "gpu-check-node-110", "-o", "json")
    st = json.loads(out)["status"]
    assert st["phase"] == "Failed"
    assert "unsatisfied condition: cuda>=12.4" in st["containerStatuses"][0]["state"]["terminated"]["message"]


def test_label_node_and_get_labels(cluster):
    master, _ = cluster
    rc, out, _ = kubectl(master, "label", "node", "node-110", "nvidia.com/gpu.product=NVIDIA-GeForce-GTX-1080-Ti",
                         "nvidia.com/gpu.count=1", "--overwrite")
    assert (rc, out) == (0, "node/node-110 labeled\n")
    rc, out, _ = kubectl(master, "label", "node", "node-110", "nvidia.com/gpu.count=1", "--overwrite")
    assert out == "node/node-110 not labeled\n"
    rc, _, err = kubectl(master, "label", "node", "node-110", "nvidia.com/gpu.count=2")
    assert rc == 1 and "'nvidia.com/gpu.count' already has a value (1), and --overwrite is false" in err
    rc, out, _ = kubectl(master, "get", "node", "node-110", "-o", "json")
    labels = json.loads(out)["metadata"]["labels"]
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-GeForce-GTX-1080-Ti"
    assert labels["kubernetes.io/hostname"] == "node-110"
    rc, _, err = kubectl(master, "label", "node", "node-999", "a=b")
    assert rc == 1 and 'nodes "node-999" not found' in err


def test_apply_errors(cluster):
    master, _ = cluster
    psp = "apiVersion: policy/v1beta1\nkind: PodSecurityPolicy\nmetadata:\n  name: psp.flannel.unprivileged\n"
    rc, _, err = kubectl(master, "apply", "-f", "-", stdin=psp)
    assert rc == 1 and 'no matches for kind "PodSecurityPolicy" in version "policy/v1beta1"' in err
    cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: nope\n"
    rc, _, err = kubectl(master, "apply", "-f", "-", stdin=cm)
    assert rc == 1 and 'namespaces "nope" not found' in err
    rc, _, err = kubectl(master, "apply", "-f", "https://raw.githubusercontent.com/x/y.yml")
    assert rc == 1 and "no such host" in err
    rc, _, err = kubectl(master, "apply", "-f", "/nonexistent.yaml")
    assert rc == 1 and 'the path "/nonexistent.yaml" does not exist' in err
    rc, _, err = kubectl(master, "get", "nodes", "--bogus")
    assert rc == 1 and err.startswith("error: unknown flag: --bogus")
    rc, _, err = kubectl(master, "frob")
    assert rc == 1


def test_get_pods_all_namespaces(cluster):
    master, _ = cluster
    deploy(master)
    rc, out, _ = kubectl(master, "get", "pods", "-A")
    lines = out.splitlines()
    assert lines[0].split() == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    names = [ln.split()[1] for ln in lines[1:]]
    assert "kube-apiserver-cluster-master" in names
    assert sum(n.startswith("nvidia-device-plugin-daemonset-") for n in names) == 2
    assert sum(n.startswith("kube-flannel-ds-") for n in names) == 3
    rc, _, err = kubectl(master, "get", "pods")
    assert rc == 0 and err == "No resources found in default namespace.\n"


def test_kubectl_version(cluster):
    master, _ = cluster
    rc, out, _ = kubectl(master, "version")
    assert out.splitlines()[0] == "Client Version: v1.34.2" and "Server Version: v1.34.2" in out


def test_kubelet_down_makes_node_notready_and_gpus_go(cluster):
    master, workers = cluster
    deploy(master)
    assert allocatable(master, "node-110") == "1"
    # a reboot with the kubelet not enabled: the kubelet does not come back
    workers["node-110"].edit(lambda st: st["services"]["kubelet"].update(active=False))
    rc, out, _ = kubectl(master, "get", "nodes", "-o", "wide")
    row = next(ln for ln in out.splitlines() if ln.startswith("node-110"))
    assert row.split()[1] == "NotReady" and "containerd://1.7.27" in row
    assert allocatable(master, "node-110") == "0"
    rc, out, _ = kubectl(master, "get", "node", "node-110", "-o",
                         'jsonpath={.status.conditions[?(@.type=="Ready")].status}')
    assert out == "False"


def test_taint_and_toleration(cluster):
    master, _ = cluster
    deploy(master)
    rc, out, _ = kubectl(master, "taint", "node", "node-110", "dedicated=gpu:NoSchedule")
    assert (rc, out) == (0, "node/node-110 tainted\n")
    assert allocatable(master, "node-110") == ""   # the plugin does not tolerate it
    rc, out, _ = kubectl(master, "taint", "node", "node-110", "dedicated:NoSchedule-")
    assert out == "node/node-110 untainted\n"
    assert allocatable(master, "node-110") == "1"


def test_device_plugin_node_selector(cluster):
    master, _ = cluster
    selective = plugin(1).replace(
        "      tolerations:", "      nodeSelector: {nvidia.com/gpu.present: \"true\"}\n      tolerations:")
    assert kubectl(master, "apply", "-f", "-", stdin=FLANNEL)[0] == 0
    assert kubectl(master, "apply", "-f", "-", stdin=selective)[0] == 0
    assert allocatable(master, "node-110") == ""
    kubectl(master, "label", "node", "node-110", "nvidia.com/gpu.present=true")
    assert allocatable(master, "node-110") == "1"
    assert allocatable(master, "node-109") == ""


def test_firewall_blocks_join_and_logs(twin):
    master = twin.add("cluster-master", ip="192.168.0.113")
    master.edit(lambda st: st.update(firewall={"running": True, "enabled": True, "ports": [], "runtime_ports": []}))
    master, _ = init_master(twin)
    w = twin.add("node-110", gpus=[GTX])
    cmd = join_cmd(master)
    rc, _, err = w.run("kubeadm", "join", *cmd)
    assert rc == 1 and "dial tcp 192.168.0.113:6443: connect: no route to host" in err
    master.edit(lambda st: st["firewall"].update(runtime_ports=["6443/tcp", "10250/tcp"]))
    configure_nvidia(w)
    rc, _, err = w.run("kubeadm", "join", *cmd)
    assert rc == 0, err
    deploy(master)
    kubectl(master, "apply", "-f", "-", stdin=POD.format(node="node-110", cuda="12.4.1"))
    w.edit(lambda st: st.update(firewall={"backend": "ufw", "ufw_enabled": True, "rules": []}))
    rc, _, err = kubectl(master, "logs", "gpu-check-node-110")
    assert rc == 1 and "dial tcp 192.168.0.101:10250: i/o timeout" in err
    w.edit(lambda st: st.update(firewall={"backend": "ufw", "ufw_enabled": True,
                                          "rules": [{"to": "10250/tcp", "action": "allow"}]}))
    rc, out, _ = kubectl(master, "logs", "gpu-check-node-110")
    assert rc == 0 and "NVIDIA-SMI" in out


def test_daemonset_status_and_rollout(cluster):
    master, workers = cluster
    rc, out, err = kubectl(master, "apply", "-f", "-", stdin=plugin(1))
    rc, out, err = kubectl(master, "rollout", "status", "ds/nvidia-device-plugin-daemonset", "-n", "kube-system",
                           "--timeout=120s")
    assert rc == 1 and "0 of 2 updated pods are available" in out   # no CNI yet
    kubectl(master, "apply", "-f", "-", stdin=FLANNEL)
    rc, out, _ = kubectl(master, "rollout", "status", "daemonset/nvidia-device-plugin-daemonset", "-n", "kube-system")
    assert (rc, out) == (0, 'daemon set "nvidia-device-plugin-daemonset" successfully rolled out\n')
    rc, out, _ = kubectl(master, "get", "ds", "-n", "kube-system", "nvidia-device-plugin-daemonset",
                         "-o", "jsonpath={.status.numberReady}")
    assert out == "2"


def test_validation_pod_without_restart_policy_never(cluster):
    master, _ = cluster
    deploy(master)
    kubectl(master, "apply", "-f", "-", stdin=POD.format(node="node-110", cuda="12.4.1").replace(
        "  restartPolicy: Never\n", ""))
    rc, _, err = kubectl(master, "wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/gpu-check-node-110",
                         "--timeout=60s")
    assert rc == 1 and "timed out waiting for the condition on pods/gpu-check-node-110" in err
    rc, out, _ = kubectl(master, "get", "pods")
    assert out.splitlines()[1].split()[1:4] == ["0/1", "CrashLoopBackOff", "5"]
    rc, out, _ = kubectl(master, "logs", "gpu-check-node-110")
    assert "NVIDIA-SMI" in out


CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: strict\n  namespace: default\n"


def test_apply_refuses_what_the_api_servers_strict_decoding_refuses(cluster):
    """kubectl's default --validate=strict: the server refuses unknown fields
    and wrong types (judged by kubernetes-validate's strict schemas of the
    cluster's minor, the real OpenAPI), and names what is missing."""
    master, _ = cluster
    rc, _, err = kubectl(master, "apply", "-f", "-", stdin=CM + "datta:\n  a: b\n")
    assert rc == 1 and err == ('Error from server (BadRequest): error when creating "STDIN": ConfigMap in version "v1" '
                               'cannot be handled as a ConfigMap: strict decoding error: unknown field "datta"\n')
    assert kubectl(master, "get", "configmap", "strict")[0] == 1  # nothing was stored
    rc, out, _ = kubectl(master, "apply", "-f", "-", stdin=CM + "data:\n  a: b\n")
    assert (rc, out) == (0, "configmap/strict created\n")
    rc, _, err = kubectl(master, "apply", "-f", "-", stdin=CM + "data:\n  a: b\nextra: 1\n")
    assert rc == 1 and err.startswith("The request is invalid: patch: Invalid value: ") \
        and err.endswith('strict decoding error: unknown field "extra"\n')
    rc, _, err = kubectl(master, "create", "-f", "-", stdin=CM + "data:\n  a: b\nextra: 1\n")
    assert rc == 1 and err.startswith('Error from server (BadRequest): error when creating "STDIN"')  # create: no patch
    rc, _, err = kubectl(master, "apply", "-f", "-", stdin=CM.replace("strict", "typed") + "immutable: maybe\n")
    assert rc == 1 and "cannot be handled as a ConfigMap: json: cannot unmarshal string into Go struct field " \
        ".immutable of type bool" in err
    pod = ("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - image: busybox\n"
           "    volumes: []\n")
    rc, _, err = kubectl(master, "apply", "-f", "-", stdin=pod)
    assert rc == 1 and 'unknown field "spec.containers[0].volumes"' in err  # a field one indent too deep
    rc, _, err = kubectl(master, "apply", "-f", "-", stdin=pod.replace("    volumes: []\n", ""))
    assert (rc, err) == (1, 'The Pod "p" is invalid: spec.containers[0].name: Required value\n')
    rc, out, err = kubectl(master, "apply", "--validate=warn", "-f", "-", stdin=CM.replace("strict", "w") + "x: 1\n")
    assert (rc, out, err) == (0, "configmap/w created\n", 'Warning: unknown field "x"\n')
    assert kubectl(master, "apply", "--validate=false", "-f", "-", stdin=CM.replace("strict", "f") + "x: 1\n")[0] == 0


def test_strict_schemas_follow_the_cluster_minor():
    from k8stwin.tools import kubectl as tool

    rc = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "nvidia"}, "handler": "nvidia"}
    assert tool.strict_problems(rc, 37) == ([], [], [])
    assert tool.strict_problems(dict(rc, x=1), 99)[0] == ["x"]  # newer than the schemas: the newest set
    assert tool.strict_problems(dict(rc, x=1), 24) == ([], [], [])  # before server-side field validation
    custom = {"apiVersion": "operator.tigera.io/v1", "kind": "Installation", "metadata": {"name": "default"}, "x": 1}
    assert tool.strict_problems(custom, 35) == ([], [], [])  # a custom resource: its CRD decides
