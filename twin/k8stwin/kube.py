"""
The twin's one Kubernetes cluster, shared by every node.

Nodes live in separate mount namespaces, so the cluster state is a JSON file
outside them, at ``$K8STWIN_CLUSTER_STATE`` (read and changed under an
exclusive ``flock`` of ``<file>.lock``; read-only in the twin's nodes, which
change it through the twin's broker, :mod:`k8stwin.broker`). The emulated kubeadm writes the
control plane, bootstrap tokens and nodes; the emulated kubectl writes
objects (manifests applied) and labels; both read the other nodes' machine
state through the node directories registered here.

Contract with the twin core (see docs/twin-kube.md):

* every process of a node gets ``K8STWIN_CLUSTER_STATE`` (same file for all
  nodes) besides ``K8STWIN_NODE_DIR`` / ``K8STWIN_ROOT``;
* the core calls :func:`register_node` (``node_id``, ``node_dir`` and, when it
  has one, ``root``: a path *on the host* under which that node's files are
  visible, e.g. its overlay's merged view or ``/proc/<pid>/root``). Without a
  root, another node's container-runtime configuration is read from the
  snapshot ``kube_runtime`` that each of this module's tools stores in the
  node's own state.json (:func:`refresh_node`; systemctl may call it too).

Keys of the cluster state::

    node_dirs      {twin node id: {"dir", "root"}}
    control_plane  null | {"node", "name", "endpoint", "advertise", "version",
                   "ca_pem", "ca_hash", "pod_subnet", "service_subnet",
                   "dns_domain", "image_repository", "cluster_name",
                   "created", "certificate_key": {"key", "expires"}|null}
    tokens         [{"id", "secret", "expires" (epoch|null), "usages",
                   "groups", "description", "created"}]
    nodes          {k8s node name: {"node_id", "role", "labels", "taints",
                   "kubelet_version", "cri_socket", "ip", "created"}}
    objects        {"<kind>/<namespace>/<name>": manifest (+ "status" for Pods)}
    warnings       [text]   config warnings kubeadm printed (unknown fields...)
"""

import base64
import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import re
import secrets
import string
import sys
import time

from . import fs, state

ENV = "K8STWIN_CLUSTER_STATE"
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
GPU = "nvidia.com/gpu"

# ---------------------------------------------------------------------------
# the state file


def path():
    """The cluster state file: ``$K8STWIN_CLUSTER_STATE``; without it, the
    file ``kube-cluster.json`` beside the nodes' directory (node dirs are
    ``<run>/nodes/<id>``, so all nodes of one twin find the same file)."""
    p = os.environ.get(ENV)
    if not p and os.environ.get(state.ENV):
        p = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(os.environ[state.ENV]))), "kube-cluster.json")
    if not p:
        sys.stderr.write(f"k8stwin: {ENV} is not set: the twin passes the cluster state file to every node\n")
        sys.exit(127)
    return p


def _empty():
    return {"node_dirs": {}, "control_plane": None, "tokens": [], "nodes": {}, "objects": {}, "warnings": []}


def read():
    try:
        with open(path(), encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        data = {}
    base = _empty()
    base.update(data)
    return base


@contextlib.contextmanager
def locked():
    """Read-modify-write the cluster state under an exclusive lock. Inside
    the twin's nodes the state is read-only: the change goes through the
    twin's broker (``$K8STWIN_CLUSTER_BROKER``, :mod:`k8stwin.broker`)."""
    from . import broker

    if os.environ.get(broker.ENV):
        with broker.transaction() as raw:
            data = _empty()
            data.update(raw)
            raw.clear()
            yield data
            raw.update(data)
        return
    p = path()
    os.makedirs(os.path.dirname(os.path.abspath(p)), exist_ok=True)
    with open(p + ".lock", "a+", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = read()
        yield data
        tmp = p + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(tmp, p)


def now():
    return time.time()


def register_node(node_id, node_dir, root=None):
    """Tell the cluster where twin node ``node_id`` keeps its node directory
    (and, optionally, a host path showing its root filesystem). Called by the
    twin core when it brings a node up; safe to call again (after a reboot)."""
    with locked() as data:
        data["node_dirs"][node_id] = {"dir": os.path.abspath(node_dir), "root": root}


# ---------------------------------------------------------------------------
# versions


def parse_version(text):
    """(major, minor, patch) of '1.34.2', 'v1.34.2', '1.34.2-150500.1.1'; None if none."""
    m = re.match(r"^v?(\d+)\.(\d+)(?:\.(\d+))?", str(text or "").strip())
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def vstr(ver):
    return "v%d.%d.%d" % tuple(ver)


def package_version(st, *names):
    """Version string of the first installed package of ``names`` in a node state."""
    pkgs = st.get("packages") or {}
    for name in names:
        info = pkgs.get(name)
        if info:
            return str(info.get("version") or "")
    return None


def service_active(st, unit):
    svc = st.get("services") or {}
    for key in (unit, unit + ".service"):
        if key in svc:
            return bool(svc[key].get("active"))
    return False


def service_enabled(st, unit):
    svc = st.get("services") or {}
    for key in (unit, unit + ".service"):
        if key in svc:
            return bool(svc[key].get("enabled"))
    return False


# ---------------------------------------------------------------------------
# PKI


def new_ca(cluster_name="kubernetes"):
    """(ca_pem, "sha256:<hash of its SubjectPublicKeyInfo>") -- a real
    self-signed CA when the cryptography package is there, so the hash matches
    ``openssl x509 -pubkey | openssl rsa -pubin -outform der | sha256sum``."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
        start = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem, "sha256:" + hashlib.sha256(spki).hexdigest()
    except ImportError:  # pragma: no cover - cryptography ships with Salt
        blob = secrets.token_bytes(600)
        body = base64.b64encode(blob).decode()
        pem = "-----BEGIN CERTIFICATE-----\n" + "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
        pem += "\n-----END CERTIFICATE-----\n"
        return pem, "sha256:" + hashlib.sha256(blob).hexdigest()


_TOKEN_CHARS = string.ascii_lowercase + string.digits
TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")


def new_token():
    return "".join(secrets.choice(_TOKEN_CHARS) for _ in range(6)) + "." + "".join(
        secrets.choice(_TOKEN_CHARS) for _ in range(16)
    )


def live_tokens(cluster, at=None):
    """Bootstrap tokens not expired (the token cleaner deletes expired ones)."""
    at = now() if at is None else at
    return [t for t in cluster.get("tokens") or [] if t.get("expires") is None or t["expires"] > at]


def kubeconfig_text(cluster, user="kubernetes-admin"):
    cp = cluster["control_plane"]
    ca = base64.b64encode(cp["ca_pem"].encode()).decode()
    fake = base64.b64encode(f"twin-client-cert:{user}:{cp['ca_hash']}".encode()).decode()
    name = cp.get("cluster_name") or "kubernetes"
    return (
        "apiVersion: v1\n"
        "clusters:\n"
        "- cluster:\n"
        f"    certificate-authority-data: {ca}\n"
        f"    server: https://{cp['endpoint']}\n"
        f"  name: {name}\n"
        "contexts:\n"
        "- context:\n"
        f"    cluster: {name}\n"
        f"    user: {user}\n"
        f"  name: {user}@{name}\n"
        f"current-context: {user}@{name}\n"
        "kind: Config\n"
        "preferences: {}\n"
        "users:\n"
        f"- name: {user}\n"
        "  user:\n"
        f"    client-certificate-data: {fake}\n"
        f"    client-key-data: {fake}\n"
    )


# ---------------------------------------------------------------------------
# other nodes' machine state


class NodeView:
    """A twin node as seen from the cluster: node.json, state.json, files."""

    def __init__(self, node_id, node_dir, root):
        self.id = node_id
        self.dir = node_dir
        self.root = root
        self.node = _load_json(os.path.join(node_dir, "node.json"), {}) if node_dir else {}
        self.state = _load_json(os.path.join(node_dir, "state.json"), {}) if node_dir else {}

    def read_file(self, rel):
        if self.root is None:
            return None
        full = os.path.join(self.root, rel.lstrip("/"))
        try:
            with open(full, encoding="utf-8") as fh:
                return fh.read()
        except (OSError, UnicodeDecodeError):
            return None

    def glob(self, pattern):
        import glob as _glob

        if self.root is None:
            return []
        # absolute, so the result does not depend on the caller's cwd (a root
        # of "/" once made this a cwd-relative glob that found nothing)
        base = os.path.abspath(self.root)
        found = _glob.glob(os.path.join(base, pattern.lstrip("/")))
        return sorted("/" + os.path.relpath(p, base) for p in found)

    def runtime(self):
        """Container runtime facts: live from files when visible, else the snapshot."""
        if self.root is not None:
            return runtime_facts(self)
        return self.state.get("kube_runtime") or {}


def _load_json(p, default):
    try:
        with open(p, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return default


def this_node_id():
    try:
        return state.node().get("id")
    except (OSError, ValueError):
        return None


def view(cluster, node_id):
    """NodeView of twin node ``node_id`` (this node's own files through K8STWIN_ROOT)."""
    reg = (cluster.get("node_dirs") or {}).get(node_id) or {}
    here = os.environ.get(state.ENV)
    if here and (reg.get("dir") in (None, os.path.abspath(here))) and this_node_id() == node_id:
        return NodeView(node_id, here, fs.root())
    if not reg.get("dir"):
        return None
    return NodeView(node_id, reg["dir"], reg.get("root") or _auto_root(reg["dir"], node_id))


def _auto_root(node_dir, node_id):
    """The twin core keeps each machine's init pid in ``<run>/machines/<id>.json``;
    ``/proc/<pid>/root`` shows that node's own mounts. None when unavailable."""
    machine = _load_json(os.path.join(os.path.dirname(os.path.dirname(node_dir)), "machines", f"{node_id}.json"), {})
    pid = machine.get("init")
    if not pid:
        return None
    root = f"/proc/{int(pid)}/root"
    try:
        os.listdir(os.path.join(root, "etc"))
    except OSError:
        return None
    return root


def here_view():
    return NodeView(this_node_id(), state.node_dir(), fs.root())


# ---------------------------------------------------------------------------
# container runtime configuration (containerd config + imports, daemon.json)

CONTAINERD_CONFIG = "/etc/containerd/config.toml"
DOCKER_DAEMON_JSON = "/etc/docker/daemon.json"
CRI_PLUGIN = {1: "cri", 2: "io.containerd.grpc.v1.cri", 3: "io.containerd.cri.v1.runtime",
              4: "io.containerd.cri.v1.runtime"}


def containerd_release(st):
    """The containerd release a node state has installed (1.7.28 when none is)."""
    return parse_version(package_version(st, "containerd.io", "containerd")) or (1, 7, 28)


def containerd_effective(v, path=CONTAINERD_CONFIG):
    """(effective config, version, error) of a node's containerd: config.toml
    and its imports loaded by Debian's real containerd of the node's release
    line (k8stwin.realbins, ``config dump``); ``error`` is the message it
    refuses the config with. A node whose files are not visible has none."""
    from . import realbins

    if v.root is None:
        return {}, 2, None
    try:
        cfg, error = realbins.load(containerd_release(v.state), v.root, path)
    except realbins.Missing as exc:
        return {}, 2, str(exc)
    if error:
        return {}, 2, error
    return cfg, int(cfg.get("version") or 2), None


def runtime_facts(v):
    """What the runtimes of a node would run containers with."""
    facts = {}
    from .tools import containerd as ctd

    cfg, version, error = containerd_effective(v)
    plugin = CRI_PLUGIN.get(version, "io.containerd.cri.v1.runtime")
    cri = ctd.effective_cri(cfg)[0] if not error else {}
    ctr = cri.get("containerd") or {}
    runtimes = ctr.get("runtimes") or {}
    disabled = cfg.get("disabled_plugins") or []
    facts["containerd"] = {
        "version": version,
        "error": error,
        "cri_disabled": "cri" in disabled or plugin in disabled or "io.containerd.grpc.v1.cri" in disabled,
        "runtimes": {
            name: ((r.get("options") or {}).get("BinaryName") or "") for name, r in runtimes.items() if isinstance(r, dict)
        },
        "default": ctr.get("default_runtime_name") or "runc",
        "cdi": bool(cri.get("enable_cdi")),
        "systemd_cgroup": bool(((runtimes.get("runc") or {}).get("options") or {}).get("SystemdCgroup")),
    }
    text = v.read_file(DOCKER_DAEMON_JSON)
    daemon = {}
    derr = None
    if text is not None and text.strip():
        try:
            daemon = json.loads(text)
        except ValueError as exc:
            derr = str(exc)
    facts["docker"] = {
        "error": derr,
        "runtimes": {k: (r or {}).get("path", "") for k, r in (daemon.get("runtimes") or {}).items()},
        "default": daemon.get("default-runtime") or "runc",
        "cgroup_driver": "systemd" if "native.cgroupdriver=systemd" in (daemon.get("exec-opts") or []) else "cgroupfs",
        "exec_opts": list(daemon.get("exec-opts") or []),
    }
    return facts


def refresh_node():
    """Store this node's runtime facts in its state.json (key ``kube_runtime``)
    so that kubectl on another node can read them. Never raises."""
    try:
        facts = runtime_facts(here_view())
        with state.locked() as st:
            st["kube_runtime"] = facts
    except (Exception, SystemExit):  # noqa: BLE001 - a snapshot must never break a tool
        pass


RUNTIME_UNITS = ("containerd", "docker", "cri-docker", "kubelet", "crio")


def on_service(unit, active):
    """For the twin's service hook (systemctl start/stop/restart): a runtime
    or kubelet (re)start re-reads the runtime configuration -> snapshot."""
    if unit.replace(".service", "").replace(".socket", "") in RUNTIME_UNITS:
        refresh_node()
    return None


def cri_kind(socket):
    s = socket or ""
    if "cri-dockerd" in s:
        return "cri-dockerd"
    if "dockershim" in s or "docker.sock" in s:
        return "docker"
    if "crio" in s:
        return "crio"
    return "containerd"


def runtime_running(v, cri):
    """(bool, reason) for the container runtime behind a CRI kind on a node."""
    st = v.state
    if cri == "containerd":
        if not service_active(st, "containerd"):
            return False, "containerd is not active"
        facts = v.runtime().get("containerd") or {}
        if facts.get("cri_disabled"):
            return False, "the CRI plugin is disabled in /etc/containerd/config.toml"
        return True, ""
    if cri == "cri-dockerd":
        if not service_active(st, "docker"):
            return False, "docker is not active"
        if not (service_active(st, "cri-docker") or service_active(st, "cri-docker.socket")):
            return False, "cri-docker is not active"
        return True, ""
    if cri == "docker":
        return (True, "") if service_active(st, "docker") else (False, "docker is not active")
    return service_active(st, "crio"), "crio is not active"


def nvidia_runtime(v, cri, runtime_class_handler=None):
    """(bool, reason): containers of this node's CRI run with the NVIDIA runtime
    (default runtime, or the handler of the pod's RuntimeClass)."""
    facts = v.runtime()
    if cri == "containerd":
        c = facts.get("containerd") or {}
        runtimes = c.get("runtimes") or {}
        want = runtime_class_handler or c.get("default") or "runc"
        if want not in runtimes and want != "runc":
            return False, f'no runtime for "{want}" is configured'
        binary = runtimes.get(want, "")
        if "nvidia-container-runtime" not in binary:
            if "nvidia" in runtimes:
                return False, "containerd has the nvidia runtime but pods run with runc (not the default runtime)"
            return False, "containerd has no nvidia runtime"
        return True, ""
    d = facts.get("docker") or {}
    runtimes = d.get("runtimes") or {}
    want = runtime_class_handler or d.get("default") or "runc"
    if "nvidia-container-runtime" in (runtimes.get(want) or ""):
        return True, ""
    if "nvidia" in runtimes:
        return False, "docker has the nvidia runtime but its default-runtime is not nvidia"
    return False, "docker has no nvidia runtime in /etc/docker/daemon.json"


# firewalld's own service definitions for the Kubernetes ports (firewalld
# config/services/kube-*.xml)
FIREWALLD_SERVICES = {
    "kube-apiserver": ["6443/tcp"], "kube-api": ["6443/tcp"], "kubelet": ["10250/tcp"],
    "kube-control-plane": ["6443/tcp", "2379-2380/tcp", "10250/tcp", "10251/tcp", "10252/tcp"],
    "kube-control-plane-secure": ["6443/tcp", "2379-2380/tcp", "10250/tcp", "10257/tcp", "10259/tcp"],
    "kube-worker": ["10250/tcp", "30000-32767/tcp"], "etcd-server": ["2380/tcp"], "etcd-client": ["2379/tcp"],
}


def _in_spec(port, proto, spec):
    text = str(spec)
    p, _, pr = text.partition("/")
    if pr and pr != proto:
        return False
    lo, _, hi = p.replace(":", "-").partition("-")
    try:
        return int(lo) <= port <= int(hi or lo)
    except ValueError:
        return False


def port_blocked(st, port, proto="tcp"):
    """How a node's firewall answers a connection to ``port`` from another
    machine: None (open), "no route to host" (firewalld's reject) or
    "i/o timeout" (ufw's default deny drops)."""
    fw = st.get("firewall") or {}
    if fw.get("running") or (service_active(st, "firewalld") and fw.get("backend") != "ufw"):
        ports = fw.get("runtime_ports") if "runtime_ports" in fw else fw.get("ports")
        services = fw.get("runtime_services") if "runtime_services" in fw else fw.get("services")
        specs = list(ports or [])
        for svc in services or []:
            specs += FIREWALLD_SERVICES.get(svc, [])
        return None if any(_in_spec(port, proto, x) for x in specs) else "no route to host"
    if fw.get("ufw_enabled"):
        for rule in fw.get("rules") or []:
            to = rule.get("to") if isinstance(rule, dict) else rule
            action = (rule.get("action") if isinstance(rule, dict) else "allow") or "allow"
            if action.lower() == "allow" and _in_spec(port, proto, to):
                return None
        return "i/o timeout"
    return None


# ---------------------------------------------------------------------------
# objects


def obj_key(kind, namespace, name):
    return f"{kind}/{namespace or ''}/{name}"


def objects(cluster, kind=None):
    return [o for o in (cluster.get("objects") or {}).values() if kind is None or o.get("kind") == kind]


def namespaces(cluster):
    names = set(DEFAULT_NAMESPACES)
    names.update(o["metadata"]["name"] for o in objects(cluster, "Namespace"))
    return names


def _pod_spec(o):
    return ((o.get("spec") or {}).get("template") or {}).get("spec") or {}


def _images(o):
    spec = _pod_spec(o) if o.get("kind") != "Pod" else (o.get("spec") or {})
    return [c.get("image") or "" for c in (spec.get("containers") or []) + (spec.get("initContainers") or [])]


CNI_HINTS = ("flannel", "calico", "cilium", "weave", "canal", "antrea", "kube-router")


def cni_deployed(cluster):
    for o in objects(cluster):
        if o.get("kind") == "Installation" and "operator.tigera.io" in o.get("apiVersion", ""):
            return "calico"
        if o.get("kind") == "DaemonSet":
            text = (o["metadata"].get("name", "") + " " + " ".join(_images(o))).lower()
            for hint in CNI_HINTS:
                if hint in text:
                    return hint
    return None


def device_plugins(cluster):
    """The NVIDIA device plugin DaemonSets:
    [{"obj", "replicas", "resource", "config_missing", "config_error"}]."""
    found = []
    for o in objects(cluster, "DaemonSet"):
        imgs = " ".join(_images(o))
        if "k8s-device-plugin" not in imgs and "nvidia-device-plugin" not in o["metadata"].get("name", ""):
            continue
        replicas, resource, missing, error = 1, GPU, None, None
        spec = _pod_spec(o)
        ns = o["metadata"].get("namespace") or "default"
        for vol in spec.get("volumes") or []:
            cm = (vol.get("configMap") or {}).get("name")
            if cm and (cluster.get("objects") or {}).get(obj_key("ConfigMap", ns, cm)) is None:
                if not (vol.get("configMap") or {}).get("optional"):
                    missing = cm
        text = _plugin_config_text(cluster, ns, spec)
        if text is not None:
            try:
                replicas, resource = plugin_config(text)
            except PluginConfigError as exc:
                error = str(exc)
        found.append({"obj": o, "replicas": replicas, "resource": resource, "config_missing": missing,
                      "config_error": error})
    return found


def _plugin_config_text(cluster, ns, spec):
    """The text of the plugin's ``--config-file`` (flag or ``CONFIG_FILE``),
    read from the ConfigMap volume mounted at its directory; None when the
    plugin has no config file (or it cannot be mounted)."""
    for ctr in spec.get("containers") or []:
        path = None
        args = [str(a) for a in (ctr.get("args") or []) + (ctr.get("command") or [])[1:]]
        for i, a in enumerate(args):
            if a.lstrip("-").startswith("config-file="):
                path = a.split("=", 1)[1]
            elif a.lstrip("-") == "config-file" and i + 1 < len(args):
                path = args[i + 1]
        for env in ctr.get("env") or []:
            if env.get("name") == "CONFIG_FILE" and path is None:
                path = env.get("value")
        if not path:
            continue
        mdir, key = path.rsplit("/", 1)
        for mount in ctr.get("volumeMounts") or []:
            if mount.get("mountPath", "").rstrip("/") != mdir:
                continue
            for vol in spec.get("volumes") or []:
                cm = (vol.get("configMap") or {}).get("name")
                if vol.get("name") != mount.get("name") or not cm:
                    continue
                cmo = (cluster.get("objects") or {}).get(obj_key("ConfigMap", ns, cm))
                items = {i.get("path"): i.get("key") for i in (vol.get("configMap") or {}).get("items") or []}
                data = (cmo or {}).get("data") or {}
                return data.get(items.get(key, key)) if cmo is not None else None
    return None


class PluginConfigError(Exception):
    """The device plugin's config file is refused: the plugin exits 1."""


# k8s-device-plugin v0.20 api/config/v1 (config.go, replicas.go, resources.go)
# and cmd/nvidia-device-plugin/main.go: the error chain the plugin logs
# (klog.Error) before os.Exit(1).
_PLUGIN_ERR = ("error starting plugins: unable to load config: unable to finalize config: unable to parse config file: "
               "error parsing config file: unmarshal error: ")
_RESOURCE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _go_json_type(value):
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _replicated(rrs):
    """Validate a ``sharing.timeSlicing`` / ``sharing.mps`` block like
    ReplicatedResources.UnmarshalJSON; (max replicas, rename by default)."""
    def bad(msg):
        raise PluginConfigError(_PLUGIN_ERR + "error unmarshaling JSON: while decoding JSON: " + msg)

    if not isinstance(rrs, dict):
        bad(f"json: cannot unmarshal {_go_json_type(rrs)} into Go value of type map[string]json.RawMessage")
    for key in ("renameByDefault", "failRequestsGreaterThanOne"):
        if key in rrs and not isinstance(rrs[key], bool) and rrs[key] is not None:
            bad(f"json: cannot unmarshal {_go_json_type(rrs[key])} into Go value of type bool")
    resources = rrs.get("resources")
    if "resources" not in rrs:
        bad("no resources specified")
    if resources is not None and not isinstance(resources, list):
        bad(f"json: cannot unmarshal {_go_json_type(resources)} into Go value of type []v1.ReplicatedResource")
    if not resources:
        bad("no resources specified")
    top = 1
    for r in resources:
        if not isinstance(r, dict):
            bad(f"json: cannot unmarshal {_go_json_type(r)} into Go value of type map[string]json.RawMessage")
        if "name" not in r:
            bad("no resource name specified")
        name = r["name"]
        if not isinstance(name, str):
            bad(f"json: cannot unmarshal {_go_json_type(name)} into Go value of type string")
        full = name if name.startswith("nvidia.com/") else "nvidia.com/" + name
        if len(full) > 63:
            bad(f"fully-qualified resource name must be 63 characters or less: {full}")
        short = full.split("/", 1)[1]
        if len(short) > 253 or not _RESOURCE_RE.match(short):
            bad(f"incorrect format for resource name '{full}': [a lowercase RFC 1123 subdomain must consist of lower "
                "case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character "
                "(e.g. 'example.com', regex used for validation is "
                "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')]")
        devices = r.get("devices", "all")
        if isinstance(devices, str) and devices != "all":
            bad(f"devices set as '{devices}' but the only valid string input is 'all'")
        if isinstance(devices, int) and not isinstance(devices, bool) and devices <= 0:
            bad(f"devices set as '{devices}' but a count of devices must be > 0")
        if "replicas" not in r:
            bad("no replicas specified")
        replicas = r["replicas"]
        if isinstance(replicas, bool) or not isinstance(replicas, int):
            if isinstance(replicas, float) and replicas.is_integer():
                replicas = int(replicas)
            else:
                kind = _go_json_type(replicas) if not isinstance(replicas, float) else f"number {replicas}"
                bad(f"json: cannot unmarshal {kind} into Go value of type int")
        if replicas < 2:
            bad("number of replicas must be >= 2")
        if full == GPU:
            top = max(top, replicas)
    return top, bool(rrs.get("renameByDefault"))


def plugin_config(text):
    """(replicas, resource name) the device plugin advertises for a config
    file; raises PluginConfigError with the plugin's own message where
    the real plugin refuses the file (and exits)."""
    import yaml

    try:
        doc = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        raise PluginConfigError(_PLUGIN_ERR + f"error converting YAML to JSON: yaml: {exc}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise PluginConfigError(_PLUGIN_ERR + "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal "
                                f"{_go_json_type(doc)} into Go value of type v1.Config")
    version = doc.get("version") or ""
    if version not in ("", "v1"):
        raise PluginConfigError(_PLUGIN_ERR.rsplit("unmarshal error: ", 1)[0] + f"unknown version: {version}")
    sharing = doc.get("sharing") or {}
    if not isinstance(sharing, dict):
        raise PluginConfigError(_PLUGIN_ERR + "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal "
                                f"{_go_json_type(sharing)} into Go struct field Config.sharing of type v1.Sharing")
    replicas, rename = 1, False
    if "timeSlicing" in sharing:
        replicas, rename = _replicated(sharing["timeSlicing"])
    if sharing.get("mps") is not None:
        mps, mrename = _replicated(sharing["mps"])
        if mps > 1:
            # MPS wins over timeSlicing (Sharing.SharingStrategy); it needs the
            # plugin's --mps-root (validateFlags), which our DaemonSet lacks
            raise PluginConfigError("error starting plugins: unable to validate flags: "
                                    "using MPS requires --mps-root to be specified")
    return replicas, (GPU + ".shared" if rename and replicas > 1 else GPU)


UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
# What the DaemonSet controller adds to every pod it makes
# (pkg/controller/daemon/util/daemonset_util.go AddOrUpdateDaemonPodTolerations):
# DaemonSet pods stay on a cordoned, not-ready or pressured node.
DAEMON_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": UNSCHEDULABLE_TAINT, "operator": "Exists", "effect": "NoSchedule"},
]


def daemon_tolerations(spec):
    """A DaemonSet pod's tolerations: the template's plus the controller's
    (network-unavailable too for hostNetwork pods)."""
    extra = list(DAEMON_TOLERATIONS)
    if spec.get("hostNetwork"):
        extra.append({"key": "node.kubernetes.io/network-unavailable", "operator": "Exists", "effect": "NoSchedule"})
    return list(spec.get("tolerations") or []) + extra


def tolerates(taints, tolerations):
    for taint in taints or []:
        if taint.get("effect") == "PreferNoSchedule":
            continue
        ok = False
        for tol in tolerations or []:
            op = tol.get("operator") or "Equal"
            if tol.get("effect") and tol["effect"] != taint.get("effect"):
                continue
            if op == "Exists" and (not tol.get("key") or tol["key"] == taint.get("key")):
                ok = True
            elif op == "Equal" and tol.get("key") == taint.get("key") and (tol.get("value") or "") == (taint.get("value") or ""):
                ok = True
        if not ok:
            return False, taint
    return True, None


def full_labels(name, node):
    """A node's labels as the API shows them: the kubelet's own plus the stored ones."""
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
    }
    labels.update((node or {}).get("labels") or {})
    return labels


def selects(spec, labels, name):
    """Does a pod spec's nodeName / nodeSelector / required node affinity allow this node?"""
    if spec.get("nodeName") and spec["nodeName"] != name:
        return False
    for k, v in (spec.get("nodeSelector") or {}).items():
        if labels.get(k) != str(v):
            return False
    req = (((spec.get("affinity") or {}).get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution")) or {}
    terms = req.get("nodeSelectorTerms") or []
    if terms:
        def term_ok(term):
            for ex in term.get("matchExpressions") or []:
                key, op, values = ex.get("key"), ex.get("operator"), [str(x) for x in ex.get("values") or []]
                has = key in labels
                if op == "In" and not (has and labels[key] in values):
                    return False
                if op == "NotIn" and has and labels[key] in values:
                    return False
                if op == "Exists" and not has:
                    return False
                if op == "DoesNotExist" and has:
                    return False
            return True

        if not any(term_ok(t) for t in terms):
            return False
    return True


# ---------------------------------------------------------------------------
# node status


def apiserver(cluster):
    """(up, endpoint, reason) of the control plane."""
    cp = cluster.get("control_plane")
    if not cp:
        return False, None, "no control plane"
    v = view(cluster, cp["node"])
    if v is not None and v.dir:
        if not service_active(v.state, "kubelet"):
            return False, cp["endpoint"], "kubelet is not running on the control plane"
        node = (cluster.get("nodes") or {}).get(cp["name"]) or {}
        ok, why = runtime_running(v, cri_kind(node.get("cri_socket")))
        if not ok:
            return False, cp["endpoint"], why
    return True, cp["endpoint"], ""


def node_ready(cluster, name):
    """(ready, reason) of a registered node."""
    node = (cluster.get("nodes") or {}).get(name)
    if not node:
        return False, "not registered"
    v = view(cluster, node["node_id"])
    if v is not None and v.dir:
        if not service_active(v.state, "kubelet"):
            return False, "Kubelet stopped posting node status."
        ok, why = runtime_running(v, cri_kind(node.get("cri_socket")))
        if not ok:
            return False, f"container runtime is down: {why}"
    if not cni_deployed(cluster):
        return False, (
            "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
            "message:Network plugin returns error: cni plugin not initialized"
        )
    return True, "kubelet is posting ready status"


def gpu_status(cluster, name):
    """What the device plugin makes allocatable on node ``name``:
    ``{"gpus", "allocatable", "resource", "reasons", "plugin_log"}``."""
    node = (cluster.get("nodes") or {}).get(name) or {}
    v = view(cluster, node.get("node_id")) if node else None
    gpus = list((v.node.get("gpus") if v else None) or [])
    out = {"gpus": len(gpus), "allocatable": 0, "resource": GPU, "reasons": [], "plugin_log": None,
           "registered": False}
    if not node:
        out["reasons"].append("node has not joined")
        return out
    ready, why = node_ready(cluster, name)
    plugins = device_plugins(cluster)
    if not plugins:
        out["reasons"].append("the NVIDIA device plugin is not deployed")
        return out
    chosen = None
    for p in plugins:
        spec = _pod_spec(p["obj"])
        if selects(spec, full_labels(name, node), name) and tolerates(node.get("taints"), daemon_tolerations(spec))[0]:
            chosen = p
            break
    if chosen is None:
        out["reasons"].append("no device plugin pod is scheduled on this node (node selector or taints)")
        return out
    out["resource"] = chosen["resource"]
    # the plugin has registered the resource once its pod could start
    out["registered"] = not chosen["config_missing"]
    if not ready:
        out["reasons"].append(f"node not ready: {why}")
        return out
    if chosen["config_missing"]:
        out["reasons"].append(f'device plugin pod stuck: MountVolume.SetUp failed for volume: configmap "{chosen["config_missing"]}" not found')
        return out
    if chosen["config_error"]:
        # main.go: klog.Error(err); os.Exit(1) -> the pod crash-loops and
        # never registers nvidia.com/gpu
        out["registered"] = False
        out["crashloop"] = True
        out["reasons"].append(f"device plugin pod CrashLoopBackOff: {chosen['config_error']}")
        out["plugin_log"] = _plugin_log(True, "config", error=chosen["config_error"])
        return out
    if not gpus:
        out["reasons"].append("no NVIDIA GPU in this node")
        out["plugin_log"] = _plugin_log(False, "nvml")
        return out
    if v is None:
        out["reasons"].append("node directory not registered with the cluster")
        return out
    spec = _pod_spec(chosen["obj"])
    handler = None
    rc_name = spec.get("runtimeClassName")
    if rc_name:
        rco = (cluster.get("objects") or {}).get(obj_key("RuntimeClass", "", rc_name))
        if rco is None:
            out["reasons"].append(f'device plugin pod cannot start: RuntimeClass "{rc_name}" not found')
            return out
        handler = rco.get("handler")
    ok, why = nvidia_runtime(v, cri_kind(node.get("cri_socket")), handler)
    if not ok:
        out["reasons"].append(why)
        out["plugin_log"] = _plugin_log(True, "runtime")
        return out
    mods = v.state.get("modules") or []
    if "nvidia" not in mods or not v.state.get("nvidia_driver"):
        out["reasons"].append("the nvidia kernel module is not loaded")
        out["plugin_log"] = _plugin_log(True, "driver")
        return out
    out["allocatable"] = len(gpus) * int(chosen["replicas"])
    out["plugin_log"] = _plugin_log(True, None, len(gpus), chosen["replicas"])
    return out


def _plugin_log(gpu_node, problem, count=0, replicas=1, error=None):
    # The shape of k8s-device-plugin's log lines (main.go / factory.go, v0.14+),
    # condensed.
    lines = ["I0000 00:00:00.000000       1 main.go:235] Starting NVIDIA Device Plugin",
             "I0000 00:00:00.000000       1 main.go:324] Retrieving plugins."]
    if problem == "config":
        lines = lines[:1] + ["I0000 00:00:00.000000       1 main.go:351] Loading configuration.",
                             f"E0000 00:00:00.000000       1 main.go:198] {error}"]
    elif problem == "runtime" or problem == "nvml" or problem == "driver":
        lines += [
            "E0000 00:00:00.000000       1 factory.go:112] Incompatible strategy detected auto",
            "E0000 00:00:00.000000       1 factory.go:113] If this is a GPU node, did you configure the NVIDIA Container Toolkit?",
            "E0000 00:00:00.000000       1 factory.go:114] You can check the prerequisites at: "
            "https://github.com/NVIDIA/k8s-device-plugin#prerequisites",
            "I0000 00:00:00.000000       1 main.go:381] No devices found. Waiting indefinitely.",
        ]
    else:
        lines += [f"I0000 00:00:00.000000       1 server.go:195] Starting GRPC server for '{GPU}'",
                  f"I0000 00:00:00.000000       1 server.go:175] Registered device plugin for '{GPU}' with Kubelet"
                  + (f" ({count} devices x {replicas} replicas)" if replicas > 1 else "")]
    return "\n".join(lines) + "\n"


def role_labels_taints(version, control_plane):
    """Labels and taints kubeadm puts on a node (mark-control-plane phase)."""
    labels, taints = {}, []
    if not control_plane:
        return labels, taints
    minor = version[1] if version else 99
    if minor < 24:
        labels["node-role.kubernetes.io/master"] = ""
    if minor >= 20:
        labels["node-role.kubernetes.io/control-plane"] = ""
    if minor >= 21:
        labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
    if minor <= 24:
        taints.append({"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"})
    if minor >= 24:
        taints.append({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"})
    return labels, taints


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_object(cluster, name):
    node = cluster["nodes"][name]
    v = view(cluster, node["node_id"])
    ready, why = node_ready(cluster, name)
    gs = gpu_status(cluster, name)
    nj = v.node if v else {}
    st = v.state if v else {}
    labels = full_labels(name, node)
    cpus = str(nj.get("cpus") or 8)
    mem_kib = int(nj.get("memory_mib") or 32768) * 1024
    capacity = {"cpu": cpus, "ephemeral-storage": "102350Mi", "hugepages-1Gi": "0", "hugepages-2Mi": "0",
                "memory": f"{mem_kib}Ki", "pods": "110"}
    allocatable = dict(capacity, memory=f"{mem_kib - 102400}Ki", **{"ephemeral-storage": "94324615969"})
    if gs["allocatable"] or (gs["registered"] and gs["gpus"]):
        capacity[gs["resource"]] = str(gs["allocatable"])
        allocatable[gs["resource"]] = str(gs["allocatable"])
    cri = cri_kind(node.get("cri_socket"))
    if cri == "containerd":
        rt = "containerd://" + (package_version(st, "containerd.io", "containerd") or "1.7.27").split("-")[0]
    else:
        rt = "docker://" + (package_version(st, "docker-ce", "docker.io") or "19.3.15").split(":")[-1].split("-")[0]
    t = iso(node.get("created") or now())
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "annotations": {"kubeadm.alpha.kubernetes.io/cri-socket": node.get("cri_socket") or "",
                            "node.alpha.kubernetes.io/ttl": "0",
                            "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
            "creationTimestamp": t,
            "labels": labels,
            "name": name,
            "uid": hashlib.md5(f"{name}{node.get('created')}".encode()).hexdigest(),
        },
        "spec": dict({"taints": node.get("taints")} if node.get("taints") else {},
                     **({"unschedulable": True} if node.get("unschedulable") else {})),
        "status": {
            "addresses": [{"address": node.get("ip") or "", "type": "InternalIP"}, {"address": name, "type": "Hostname"}],
            "allocatable": allocatable,
            "capacity": capacity,
            "conditions": [
                {"lastHeartbeatTime": iso(now()), "lastTransitionTime": t, "message": why,
                 "reason": "KubeletReady" if ready else "KubeletNotReady",
                 "status": "True" if ready else "False", "type": "Ready"},
            ],
            "nodeInfo": {
                "architecture": "amd64",
                "containerRuntimeVersion": rt,
                "kernelVersion": (st.get("kernel") or {}).get("running") or nj.get("kernel") or "",
                "kubeProxyVersion": node.get("kubelet_version") or "",
                "kubeletVersion": node.get("kubelet_version") or "",
                "operatingSystem": "linux",
                "osImage": _os_image(v) or nj.get("os") or "",
            },
        },
    }


def _os_image(v):
    """PRETTY_NAME of the node's /etc/os-release (what the kubelet reports)."""
    text = v.read_file("/etc/os-release") if v else None
    m = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', text or "", re.M)
    return m.group(1) if m else None


# ---------------------------------------------------------------------------
# pods

# Newest CUDA each driver branch supports (CUDA Toolkit release notes, table
# "CUDA Toolkit and Corresponding Driver Versions", Linux x86_64 minimums).
DRIVER_CUDA = [
    (590, (13, 1)), (580, (13, 0)), (575, (12, 9)), (570, (12, 8)), (560, (12, 6)), (555, (12, 5)),
    (550, (12, 4)), (545, (12, 3)), (535, (12, 2)), (530, (12, 1)), (525, (12, 0)), (520, (11, 8)),
    (515, (11, 7)), (510, (11, 6)), (495, (11, 5)), (470, (11, 4)), (465, (11, 3)), (460, (11, 2)),
    (455, (11, 1)), (450, (11, 0)), (440, (10, 2)), (418, (10, 1)), (410, (10, 0)), (396, (9, 2)),
    (390, (9, 1)), (384, (9, 0)),
]


def driver_cuda(version):
    try:
        branch = int(str(version).split(".")[0])
    except ValueError:
        return None
    for b, cuda in DRIVER_CUDA:
        if branch >= b:
            return cuda
    return None


def _requests(spec):
    total = 0
    for c in spec.get("containers") or []:
        res = c.get("resources") or {}
        val = (res.get("limits") or {}).get(GPU) or (res.get("requests") or {}).get(GPU)
        if val:
            total += int(val)
    return total


GPU_MEMORY_MIB = {"NVIDIA GeForce GTX 1080 Ti": 11264, "NVIDIA GeForce GTX 1080": 8192, "Tesla T4": 15360,
                  "NVIDIA GeForce RTX 3090": 24576, "NVIDIA GeForce RTX 3080": 10240, "NVIDIA A100-SXM4-40GB": 40960}


def nvidia_smi_table(gpus, driver, cuda):
    """nvidia-smi's default table for the GPUs a container sees."""
    cu = "%d.%d" % cuda if cuda else "N/A"
    w = 89
    lines = [time.strftime("%a %b %d %H:%M:%S %Y") + "       ",
             "+" + "-" * (w - 2) + "+",
             ("| NVIDIA-SMI %-22s Driver Version: %-14s CUDA Version: %-8s" % (driver, driver, cu)).ljust(w - 1) + "|",
             "+-----------------------------------------+------------------------+----------------------+",
             "| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |",
             "| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage | GPU-Util  Compute M. |",
             "|                                         |                        |               MIG M. |",
             "|=========================================+========================+======================|"]
    for i, model in enumerate(gpus):
        mem = GPU_MEMORY_MIB.get(model, 8192)
        lines.append("| %3d  %-28s Off | %18s Off | %20s |" % (i, model[:28], "00000000:%02X:00.0" % (i + 1), "N/A"))
        lines.append("| %3s%%   %2dC    P8  %14s |  %9s / %6sMiB | %6s%%      Default |"
                     % ("23", 31, "9W /  250W", "1MiB", mem, "0"))
        lines.append("|                                         |                        |                  N/A |")
        lines.append("+-----------------------------------------+------------------------+----------------------+")
    lines += ["", "+" + "-" * (w - 2) + "+",
              "| Processes:".ljust(w - 1) + "|",
              "|  GPU   GI   CI              PID   Type   Process name                        GPU Memory |",
              "|        ID   ID                                                               Usage      |",
              "|" + "=" * (w - 2) + "|",
              "|  No running processes found".ljust(w - 1) + "|",
              "+" + "-" * (w - 2) + "+"]
    return "\n".join(lines) + "\n"


def container_nvidia_smi(gpus, driver, cuda, node_id):
    """What ``nvidia-smi`` prints inside a container given ``gpus``: the twin's
    emulated nvidia-smi table when available, else a table of the same shape."""
    try:
        from k8stwin import hw
        from k8stwin.tools import nvidia_smi

        return nvidia_smi.summary(hw.layout(gpus, node_id or "node"), driver or "N/A", [])
    except Exception:  # noqa: BLE001 - fall back to the local table
        return nvidia_smi_table(gpus, driver or "N/A", cuda)


def _cuda_of_image(image):
    m = re.search(r"cuda:(\d+)\.(\d+)", image or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def schedule_pod(cluster, pod):
    """Decide a pod's status now (bare pods only; returns the status dict)."""
    spec = pod.get("spec") or {}
    want = _requests(spec)
    nodes = cluster.get("nodes") or {}
    up, _, _ = apiserver(cluster)
    if not up:
        return pod.get("status") or {"phase": "Pending"}
    candidates, reasons = [], {}

    def why(text):
        reasons[text] = reasons.get(text, 0) + 1

    for name in sorted(nodes):
        node = nodes[name]
        if not selects(spec, full_labels(name, node), name):
            why("node(s) didn't match Pod's node affinity/selector")
            continue
        if node.get("unschedulable") and not spec.get("nodeName") and not tolerates(
                [{"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}], spec.get("tolerations"))[0]:
            why("node(s) were unschedulable")  # the scheduler's NodeUnschedulable plugin, before taints
            continue
        ok, taint = tolerates(node.get("taints"), spec.get("tolerations"))
        if not ok and not spec.get("nodeName"):
            why("node(s) had untolerated taint {%s: %s}" % (taint["key"], taint.get("value") or ""))
            continue
        ready, _ = node_ready(cluster, name)
        if not ready and not spec.get("nodeName"):
            why("node(s) had untolerated taint {node.kubernetes.io/not-ready: }")
            continue
        gs = gpu_status(cluster, name) if want else {"allocatable": 0}
        used = gpu_used(cluster, name, pod) if want else 0
        if want and gs["allocatable"] - used < want:
            if spec.get("nodeName"):
                return {"phase": "Failed", "reason": f"OutOf{GPU}", "node": name,
                        "message": f"Pod was rejected: Node didn't have enough resource: {GPU}, requested: {want}, "
                                   f"used: {used}, capacity: {gs['allocatable']}"}
            why(f"Insufficient {GPU}")
            continue
        candidates.append(name)
    if not candidates:
        text = "; ".join(f"{n} {r}" for r, n in sorted(reasons.items(), key=lambda x: x[0]))
        return {"phase": "Pending", "reason": "Unschedulable",
                "message": f"0/{len(nodes)} nodes are available: {text}. preemption: 0/{len(nodes)} nodes are available: "
                           f"{len(nodes)} Preemption is not helpful for scheduling."}
    name = candidates[0]
    return run_pod(cluster, pod, name, want)


def gpu_used(cluster, name, pod=None):
    """``nvidia.com/gpu`` taken on node ``name`` by the pods bound there that
    have not finished (a crash-looping pod keeps its GPU), ``pod`` left out."""
    me = (pod or {}).get("metadata") or {}
    used = 0
    for o in objects(cluster, "Pod"):
        meta = o.get("metadata") or {}
        if (meta.get("name"), meta.get("namespace")) == (me.get("name"), me.get("namespace")):
            continue
        st = o.get("status") or {}
        if st.get("node") == name and st.get("phase") not in ("Succeeded", "Failed", "Pending", None):
            used += _requests(o.get("spec") or {})
    return used


def long_running(argv):
    """A container command that keeps running (``sleep infinity``, a long
    ``sleep``, ``tail -f``): the pod stays Running."""
    argv = [str(a) for a in argv or []]
    if argv[:1] in (["sh"], ["/bin/sh"], ["bash"], ["/bin/bash"]) and "-c" in argv:
        argv = " ".join(argv[argv.index("-c") + 1:]).split()
    if not argv:
        return False
    prog = os.path.basename(argv[0])
    if prog == "sleep" and len(argv) > 1:
        return argv[1] == "infinity" or (argv[1].isdigit() and int(argv[1]) >= 600)
    return prog == "tail" and "-f" in argv


def run_pod(cluster, pod, name, want):
    node = cluster["nodes"][name]
    v = view(cluster, node["node_id"])
    spec = pod.get("spec") or {}
    ctr = (spec.get("containers") or [{}])[0]
    cmd = " ".join([str(x) for x in (ctr.get("command") or []) + (ctr.get("args") or [])])
    st = v.state if v else {}
    driver = (st.get("nvidia_driver") or {}).get("version")
    image_cuda = _cuda_of_image(ctr.get("image"))
    status = {"phase": "Succeeded", "node": name, "logs": "", "exitCode": 0, "reason": "Completed"}
    if want:
        cuda = driver_cuda(driver)
        if image_cuda and cuda and image_cuda > cuda:
            status.update(
                phase="Failed", reason="StartError", exitCode=128, logs="",
                message="failed to create containerd task: failed to create shim task: OCI runtime create failed: "
                        "runc create failed: unable to start container process: error during container init: "
                        "error running prestart hook #0: exit status 1, stdout: , stderr: Auto-detected mode as "
                        "'legacy'\nnvidia-container-cli: requirement error: unsatisfied condition: cuda>=%d.%d, "
                        "please update your driver to a newer version, or use an earlier cuda container: unknown"
                        % image_cuda)
            return _restart_policy(spec, status)
        if long_running((ctr.get("command") or []) + (ctr.get("args") or [])):
            return {"phase": "Running", "node": name, "logs": "", "started": now()}
        gpus = list((v.node.get("gpus") if v else None) or [])[:1]
        if "nvidia-smi" in cmd or not cmd:
            status["logs"] = container_nvidia_smi(gpus, driver, cuda, node.get("node_id"))
    elif long_running((ctr.get("command") or []) + (ctr.get("args") or [])):
        return {"phase": "Running", "node": name, "logs": "", "started": now()}
    elif "nvidia-smi" in cmd:
        status.update(phase="Failed", reason="Error", exitCode=127,
                      logs='/bin/sh: 1: nvidia-smi: not found\n' if "sh" in cmd else "",
                      message='exec: "nvidia-smi": executable file not found in $PATH')
    return _restart_policy(spec, status)


def _restart_policy(spec, status):
    """restartPolicy Always (the default) restarts a command that exits: the pod
    stays Running in CrashLoopBackOff; OnFailure restarts only failures."""
    policy = spec.get("restartPolicy") or "Always"
    if policy == "Always" or (policy == "OnFailure" and status["phase"] == "Failed"):
        status = dict(status, phase="Running", reason="CrashLoopBackOff", restarts=5, last=status.get("reason"),
                      message=f"back-off 2m40s restarting failed container={(spec.get('containers') or [{}])[0].get('name')}")
    return status


_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # what Kubernetes' generated names use


def _gen(seed, length):
    h = hashlib.sha1(seed.encode()).hexdigest()
    return "".join(_NAME_CHARS[int(h[i:i + 2], 16) % len(_NAME_CHARS)] for i in range(0, 2 * length, 2))


def replica_set_name(dep):
    """``<deployment>-<pod-template-hash>``: the ReplicaSet of the current template."""
    tmpl = json.dumps((dep.get("spec") or {}).get("template") or {}, sort_keys=True)
    return f"{dep['metadata']['name']}-{_gen(tmpl, 10)}"


def owned_by(o, kind, name):
    return any(r.get("kind") == kind and r.get("name") == name for r in (o.get("metadata") or {}).get(
        "ownerReferences") or [])


def reconcile_controllers(cluster):
    """The Deployment and ReplicaSet controllers, in one: each Deployment has
    ``spec.replicas`` (default 1) unfinished pods of its current template
    (``<rs>-<5 chars>``, owned by the ReplicaSet, scheduled like any pod); a
    pod deleted or evicted is replaced by a new one; pods of a Deployment
    that is gone, or of an older template, are deleted. True when changed."""
    changed = False
    objs = cluster.setdefault("objects", {})
    counters = cluster.setdefault("controllers", {})
    current = {}
    for dep in objects(cluster, "Deployment"):
        ns = dep["metadata"].get("namespace") or "default"
        current[(ns, replica_set_name(dep))] = dep
    for key, o in list(objs.items()):
        if o.get("kind") != "Pod":
            continue
        refs = [r for r in o["metadata"].get("ownerReferences") or [] if r.get("kind") == "ReplicaSet"]
        if refs and ((o["metadata"].get("namespace") or "default"), refs[0].get("name")) not in current:
            del objs[key]
            changed = True
    for (ns, rs), dep in sorted(current.items()):
        spec = dep.get("spec") or {}
        want = int(spec.get("replicas", 1))
        live = [o for o in objects(cluster, "Pod") if (o["metadata"].get("namespace") or "default") == ns
                and owned_by(o, "ReplicaSet", rs) and (o.get("status") or {}).get("phase") not in ("Succeeded", "Failed")]
        for o in live[want:]:
            del objs[obj_key("Pod", ns, o["metadata"]["name"])]
            changed = True
        for _ in range(want - len(live)):
            n = counters.get(f"{ns}/{rs}", 0)
            counters[f"{ns}/{rs}"] = n + 1
            tmpl = json.loads(json.dumps(spec.get("template") or {}))
            meta = tmpl.get("metadata") or {}
            labels = dict(meta.get("labels") or {}, **{"pod-template-hash": rs.rsplit("-", 1)[1]})
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": f"{rs}-{_gen(f'{ns}/{rs}/{n}', 5)}", "namespace": ns, "labels": labels,
                                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                                                     "controller": True, "blockOwnerDeletion": True}]},
                   "spec": tmpl.get("spec") or {}}
            pod["status"] = schedule_pod(cluster, pod)
            objs[obj_key("Pod", ns, pod["metadata"]["name"])] = pod
            changed = True
    return changed


def reconcile(cluster):
    """The controllers (:func:`reconcile_controllers`), then re-evaluate
    Pending pods (a device plugin or CNI may have come since, a node may
    have been uncordoned)."""
    changed = reconcile_controllers(cluster)
    for o in objects(cluster, "Pod"):
        st = o.get("status") or {}
        if st.get("phase") in (None, "Pending"):
            new = schedule_pod(cluster, o)
            if new != st:
                o["status"] = new
                changed = True
    return changed
