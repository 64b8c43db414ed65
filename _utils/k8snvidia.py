"""
The K8sNvidia map and its validation, shared by the state tree (through the
``k8snvidia`` execution module, at render time) and the ``cluster`` runner.

The map is built in one place, in this order (later wins):

1. ``salt/parameters/defaults.yaml``
2. ``salt/parameters/os_family.yaml`` at the node's ``os_family``
3. ``salt/parameters/osfinger.yaml`` at the node's ``osfinger``
4. the pillar key ``k8snvidia`` (without ``nodes``, ``by_os_family``, ``by_osfinger``)
5. ``k8snvidia:by_os_family:<os_family>``, then ``k8snvidia:by_osfinger:<osfinger>``
6. ``k8snvidia:nodes:<minion id>:overrides``

then ``{placeholders}`` in strings are expanded (``{version}``, ``{minor}``,
``{major}``, ``{os_id}``, ``{codename}``) and the result is validated. Every
problem names the pillar key, the bad value and what is expected.
"""

import copy
import difflib
import importlib.util
import ipaddress
import json
import os
import re

ROLES = ("control-plane", "worker")
CRIS = ("containerd", "cri-dockerd", "docker")
SELINUX = ("permissive", "enforcing", "disabled")
MODULE_TYPES = ("auto", "open", "proprietary")
FIREWALLS = ("firewalld", "ufw")
CRI_SOCKETS = {
    "containerd": "unix:///run/containerd/containerd.sock",
    "cri-dockerd": "unix:///run/cri-dockerd.sock",
    "docker": "/var/run/dockershim.sock",
}
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
K8S_VERSION_RE = re.compile(r"^1\.(\d+)\.(\d+)$")
DRIVER_VERSION_RE = re.compile(r"^\d{3}\.\d{1,3}(\.\d{1,3})?$")
HOSTNAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
PORT_RE = re.compile(r"^\d{1,5}(-\d{1,5})?/(tcp|udp)$")
SPLIT_KEYS = ("nodes", "by_os_family", "by_osfinger")


class ValidationError(Exception):
    """Raised with every problem found; str() is the full report."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__(report(self.problems))


def report(problems):
    lines = [f"K8sNvidia pillar: {len(problems)} problem(s):"]
    lines += [f"  - {p}" for p in problems]
    return "\n".join(lines)


def problem(key, value, expected):
    """One line: the pillar key, the bad value, what is expected."""
    return f"k8snvidia:{key}: {value!r} is invalid; expected {expected}"


def merge(base, over):
    """Recursive dict merge; lists and scalars in ``over`` replace."""
    out = copy.deepcopy(base) if isinstance(base, dict) else {}
    for key, val in (over or {}).items():
        if isinstance(val, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], val)
        else:
            out[key] = copy.deepcopy(val)
    return out


def family_of(osfinger):
    """The os_family for an osfinger string such as 'CentOS Linux-7'."""
    name = (osfinger or "").rsplit("-", 1)[0].lower()
    redhat = ("centos", "rocky", "alma", "red hat", "rhel", "oracle", "fedora")
    if any(n in name for n in redhat):
        return "RedHat"
    if name.startswith(("ubuntu", "debian")):
        return "Debian"
    return None


def _expand(obj, names):
    if isinstance(obj, dict):
        return {k: _expand(v, names) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_expand(v, names) for v in obj]
    if isinstance(obj, str) and "{" in obj:
        for name, val in names.items():
            obj = obj.replace("{" + name + "}", str(val))
    return obj


def build(params, pillar_cfg, minion_id, grains):
    """
    The effective configuration of one node.

    params: {"defaults": ..., "os_family": ..., "osfinger": ...} (the YAML files)
    pillar_cfg: the pillar key ``k8snvidia``
    grains: needs os_family, osfinger, osmajorrelease, os, oscodename
    """
    pillar_cfg = pillar_cfg or {}
    fam = grains.get("os_family")
    finger = grains.get("osfinger")
    cfg = merge(params.get("defaults", {}), (params.get("os_family") or {}).get(fam, {}))
    cfg = merge(cfg, (params.get("osfinger") or {}).get(finger, {}))
    cfg = merge(cfg, {k: v for k, v in pillar_cfg.items() if k not in SPLIT_KEYS})
    cfg = merge(cfg, (pillar_cfg.get("by_os_family") or {}).get(fam, {}))
    cfg = merge(cfg, (pillar_cfg.get("by_osfinger") or {}).get(finger, {}))
    nodes = pillar_cfg.get("nodes") or {}
    node = copy.deepcopy(nodes.get(minion_id) or {})
    cfg = merge(cfg, node.get("overrides") or {})
    cfg["nodes"] = copy.deepcopy(nodes)
    node.setdefault("role", "worker")
    node.setdefault("gpus", [])
    node["id"] = minion_id
    node["listed"] = minion_id in nodes
    cfg["node"] = node
    cfg["os"] = {
        "family": fam,
        "finger": finger,
        "major": grains.get("osmajorrelease"),
        "id": str(grains.get("os", "")).lower(),
        "codename": grains.get("oscodename"),
    }
    derived = cfg.setdefault("derived", {})
    cp_version = _control_plane_version(params, pillar_cfg, nodes)
    derived["control_plane_version"] = cp_version
    mine = (cfg.get("kubernetes") or {}).get("version")
    if (cp_version and node["role"] != "control-plane" and _version_tuple(mine)
            and _version_tuple(mine) > _version_tuple(cp_version)):
        # a kubelet newer than the control plane cannot join (kubeadm: "the
        # kubelet version is higher than the control plane version"), and the
        # OS maps give each OS its own default: the worker takes the control
        # plane's release
        cfg["kubernetes"]["version"] = cp_version
        derived["kubernetes_version_lowered_from"] = mine
    k8s_version = str((cfg.get("kubernetes") or {}).get("version", ""))
    minor = ".".join(k8s_version.split(".")[:2])
    names = {
        "version": (cfg.get("driver") or {}).get("version"),
        "minor": f"v{minor}",
        "major": grains.get("osmajorrelease"),
        "os_id": cfg["os"]["id"],
        "codename": grains.get("oscodename"),
    }
    for section in ("driver", "kernel", "docker", "container_toolkit", "kubernetes", "salt"):
        if isinstance(cfg.get(section), dict):
            cfg[section] = _expand(cfg[section], names)
    derived["control_plane"] = [n for n, v in nodes.items() if is_control_plane(v)]
    kube = cfg.get("kubernetes") or {}
    derived["cri_socket"] = kube.get("cri_socket") or CRI_SOCKETS.get(kube.get("cri"))
    derived["k8s_minor"] = minor
    ports = cfg.get("ports") or {}
    cluster = cfg.get("cluster") or {}
    derived["ports"] = list(ports.get(node["role"], [])) + list(
        (ports.get("cni") or {}).get(cluster.get("cni"), [])
    )
    derived["kubernetes_package_version"] = (
        f"{k8s_version}{kube.get('package_version_suffix') or ''}" if k8s_version else None
    )
    derived.update(_cgroup_derived(params, pillar_cfg, cfg, nodes))
    return cfg


# ------------------------------------------ cgroup v1 and kubeadm (issue 9)
# Small and self-contained so that the schema rewrite can move it.
CGROUPS = ("v1", "v2")
FAIL_CGROUP_V1_FROM = 35   # kubelet's failCgroupV1 defaults to true (refuses v1 hosts)
CGROUP_V1_REFUSED_FROM = 38  # cgroup v1 code removal no earlier than 1.38: refused until proven otherwise
KERNEL_CHECK_FROM = 32     # kubeadm's SystemVerification errors on kernels < 4.19
CONTAINERD_FOR = {36: (2, 2)}  # Kubernetes minor -> the oldest containerd line its CRI client needs


def _minor(version):
    match = K8S_VERSION_RE.match(str(version or ""))
    return int(match.group(1)) if match else None


def _line(text):
    try:
        return tuple(int(x) for x in str(text).split(".")[:2])
    except ValueError:
        return None


def _version_tuple(version):
    match = re.match(r"^(\d+)\.(\d+)\.(\d+)", str(version or ""))
    return tuple(int(x) for x in match.groups()) if match else None


def _control_plane_version(params, pillar_cfg, nodes):
    """The Kubernetes release of the cluster's control plane (the lowest,
    were there several), from its ``os`` through the maps; None without one."""
    versions = [((_host_of(params, pillar_cfg, n, ("kubernetes",)).get("kubernetes") or {}).get("version"))
                for n in nodes.values() if isinstance(n, dict) and n.get("role") == "control-plane"]
    versions = [str(v) for v in versions if _version_tuple(v)]
    return min(versions, key=_version_tuple) if versions else None


def _host_of(params, pillar_cfg, node, sections=("host", "kernel")):
    """``host`` and ``kernel`` (or ``sections``) of another node of the
    pillar, from its ``os`` (osfinger), as build() would merge them."""
    finger = (node or {}).get("os")
    fam = family_of(finger)
    out = {}
    layers = [
        params.get("defaults") or {},
        (params.get("os_family") or {}).get(fam) or {},
        (params.get("osfinger") or {}).get(finger) or {},
        {k: v for k, v in (pillar_cfg or {}).items() if k not in SPLIT_KEYS},
        ((pillar_cfg or {}).get("by_os_family") or {}).get(fam) or {},
        ((pillar_cfg or {}).get("by_osfinger") or {}).get(finger) or {},
        (node or {}).get("overrides") or {},
    ]
    for layer in layers:
        out = merge(out, {k: layer[k] for k in sections if isinstance(layer.get(k), dict)})
    return out


def _cgroup_derived(params, pillar_cfg, cfg, nodes):
    """cgroup facts the kubeadm configuration needs: this node's hierarchy,
    the cluster's cgroup v1 nodes (the kubelet configuration is cluster-wide:
    workers get it from the kubelet-config ConfigMap), and the preflight
    checks kubeadm must skip on this node."""
    minor = _minor((cfg.get("kubernetes") or {}).get("version"))
    cgroup = (cfg.get("host") or {}).get("cgroup") or "v2"
    v1_nodes = sorted(
        nid for nid, node in nodes.items()
        if ((_host_of(params, pillar_cfg, node if isinstance(node, dict) else {}).get("host") or {}).get("cgroup")) == "v1"
    )
    if cfg["node"].get("id") in nodes:
        v1_nodes = sorted(set(v1_nodes) - {cfg["node"]["id"]} | ({cfg["node"]["id"]} if cgroup == "v1" else set()))
    elif cgroup == "v1":
        v1_nodes = sorted(set(v1_nodes) | {cfg["node"].get("id")})
    kernel = cfg.get("kernel") or {}
    stock = _line(kernel.get("stock_release")) if kernel.get("stock_release") else None
    ignore = []
    if minor is not None and (
        (cgroup == "v1" and minor >= FAIL_CGROUP_V1_FROM)
        or (minor >= KERNEL_CHECK_FROM and stock and stock < (4, 19) and not kernel.get("manage"))
    ):
        ignore.append("SystemVerification")
    return {
        "cgroup": cgroup,
        "cgroup_v1_nodes": v1_nodes,
        # false: the kubelet runs on cgroup v1 hosts (only written where it matters)
        "fail_cgroup_v1": False if (v1_nodes and minor is not None and minor >= FAIL_CGROUP_V1_FROM) else None,
        "preflight_ignore": ignore,
    }


def validation_image(validation, driver_version):
    """The validation pod's image for a node with ``driver_version``: the
    map's ``validation:images`` entry with the highest driver branch at or
    below the driver's (``validation:image`` forces one image); None when
    no entry fits."""
    validation = validation or {}
    if validation.get("image"):
        return str(validation["image"])
    try:
        branch = int(str(driver_version).split(".")[0])
    except ValueError:
        return None
    best = None
    for key, image in (validation.get("images") or {}).items():
        try:
            floor = int(key)
        except (TypeError, ValueError):
            continue
        if floor <= branch and (best is None or floor > best[0]):
            best = (floor, image)
    return best[1] if best else None


def validate_cgroup_kernel(cfg):
    """Refusals for a node's OS and Kubernetes release (issue 9): cgroup v1
    hosts on releases without cgroup v1, 3.x kernels under kubeadm 1.32+,
    containerd too old for the release, and a driver no validation image fits.
    Returns ``(key, value, expected)`` triples."""
    problems = []
    node = cfg.get("node") or {}
    osname = (cfg.get("os") or {}).get("finger") or node.get("os") or "this OS"
    nid = node.get("id")
    kube = cfg.get("kubernetes") or {}
    version = kube.get("version")
    minor = _minor(version)
    host = cfg.get("host") or {}
    cgroup = host.get("cgroup", "v2")
    if cgroup not in CGROUPS:
        problems.append(("host:cgroup", cgroup, "v1 or v2 (the cgroup hierarchy the node boots with)"))
    elif cgroup == "v1" and minor is not None and minor >= CGROUP_V1_REFUSED_FROM:
        problems.append((
            "kubernetes:version", version,
            f"a release below 1.{CGROUP_V1_REFUSED_FROM} for node {nid} ({osname}, cgroup v1): Kubernetes "
            f"1.{CGROUP_V1_REFUSED_FROM}+ may no longer run on cgroup v1 (boot the node with cgroup v2 and set "
            "host:cgroup: v2 for it, or stay on 1.35-1.37)"))
    cp_minor = _minor((cfg.get("derived") or {}).get("control_plane_version"))
    if minor is not None and cp_minor is not None and node.get("role") != "control-plane" and cp_minor - minor > 3:
        problems.append((
            "kubernetes:version", version,
            f"a release at most 3 minors below the control plane's 1.{cp_minor} for node {nid} ({osname}): "
            "a kubelet may be up to 3 minor releases older than the API server, never more"))
    kernel = cfg.get("kernel") or {}
    stock = _line(kernel.get("stock_release")) if kernel.get("stock_release") else None
    if minor is not None and minor >= KERNEL_CHECK_FROM and stock and stock < (4, 0) and not kernel.get("manage"):
        problems.append((
            "kernel:manage", kernel.get("manage"),
            f"true for node {nid} ({osname}): kubeadm 1.{KERNEL_CHECK_FROM}+ needs a kernel >= 4.19 and "
            f"{osname} ships {kernel.get('stock_release')} (the kernel layer installs ELRepo's kernel-lt 5.4)"))
    if kube.get("cri") == "containerd" and minor is not None and (cfg.get("docker") or {}).get("manage", True):
        need = max((line for m, line in CONTAINERD_FOR.items() if minor >= m), default=None)
        have = _line((cfg.get("docker") or {}).get("containerd_line") or "0.0")
        if need and have and have < need:
            problems.append((
                "kubernetes:version", version,
                f"a release below 1.{min(m for m, line in CONTAINERD_FOR.items() if line == need)} for node {nid} "
                f"({osname}): its Docker repository ships containerd.io {cfg['docker'].get('containerd_line')} at "
                f"most, and Kubernetes {version} needs containerd {need[0]}.{need[1]}+"))
    driver = cfg.get("driver") or {}
    if driver.get("manage", True) and node.get("gpus") and DRIVER_VERSION_RE.match(str(driver.get("version"))):
        if not validation_image(cfg.get("validation"), driver["version"]):
            problems.append((
                "validation:images", (cfg.get("validation") or {}).get("images"),
                f"an entry (driver branch: image) at or below driver {driver['version']} for node {nid}: the "
                "validation pod's CUDA must not be newer than the driver's"))
    return problems


# --------------------------------------------------------------- validation
#
# Three passes, each problem named once:
# 1. the pillar as written, against the schema (_utils/pillar_schema.py):
#    types, unknown keys (with the closest known key), allowed values and
#    value formats, at every level and in every layer (by_os_family,
#    by_osfinger, nodes:<id>:overrides); what has the wrong type is dropped,
#    so the next passes (and build()) never see it;
# 2. the cluster as a whole: node addresses, names, roles, networks;
# 3. each node's effective configuration (build()): required values and
#    rules between keys (gpgcheck and gpgkey, cri and the Kubernetes version,
#    the driver and the node's GPUs). A key pass 1 already named is not
#    named again.
_SIBLINGS = {}
_DROP = object()
NODE_PLACEHOLDER = "\x00node\x00"


def _sibling(name):
    """A sibling file of this one (pillar_schema, nvidia_gpu): plain Python,
    loaded by path; the repo, a minion's extmods cache and the twin keep
    them side by side."""
    if name not in _SIBLINGS:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
        spec = importlib.util.spec_from_file_location(f"k8snvidia_sibling_{name}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        _SIBLINGS[name] = mod
    return _SIBLINGS[name]


class Found:
    """Problems and warnings, in order, each once; ``keys``: the effective
    keys (without by_*/overrides prefixes) already named."""

    def __init__(self, keys=None):
        self.problems = {}
        self.warnings = {}
        self.keys = set(keys or ())

    def error(self, key, value, expected, effective=None):
        self.keys.add(effective if effective is not None else key)
        self.problems[problem(key, value, expected)] = None

    def text(self, line, effective=None):
        if effective is not None:
            self.keys.add(effective)
        self.problems[line] = None

    def effective(self, key, value, expected):
        """A problem of an effective configuration, unless pass 1 named the key."""
        if key not in self.keys:
            self.problems[problem(key, value, expected)] = None

    def names(self, key):
        """Whether a problem already names ``key`` (any pass)."""
        return key in self.keys or any(p.startswith(f"k8snvidia:{key}: ") for p in self.problems)

    def warn(self, key, value, text):
        self.warnings[f"k8snvidia:{key}: {value!r}: {text}"] = None


def _effective_key(path):
    if path[:1] in (("by_os_family",), ("by_osfinger",)):
        path = path[2:]
    elif len(path) > 2 and path[0] == "nodes" and path[2] == "overrides":
        path = path[3:]
    return ":".join(path)


def _suggest(word, choices):
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    if not close:
        low = {str(c).lower(): str(c) for c in choices}
        close = [low[m] for m in difflib.get_close_matches(str(word).lower(), list(low), n=1, cutoff=0.6)]
    return close[0] if close else None


def _one_of(choices, value=None):
    text = "one of " + ", ".join(str(c) for c in choices)
    near = _suggest(value, choices) if value is not None else None
    return text + (f" (did you mean {near}?)" if near else "")


def _kind(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


# ------------------------------------------------------------ value checks
# Each returns None when the value is fine, else what is expected.
DURATION_RE = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
DNS_NAME_RE = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$")
ENDPOINT_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:\d{1,5})?$")
IMAGE_RE = re.compile(r"^[a-z0-9]([a-z0-9._/-]*[a-z0-9])?(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
CIDR4 = "one IPv4 network in CIDR form such as 10.244.0.0/16"
NO_V6 = "IPv6 and dual-stack are not supported by the CNI setup (flannel is rendered with one IPv4 network)"


def duration_seconds(text):
    """Seconds of a duration such as '15m', '1h30m' (kubeadm's Go form with
    whole h/m/s, as _modules/kubeadm.py reads it); None when unreadable."""
    match = DURATION_RE.match(str(text).strip())
    if not str(text).strip() or not match or not any(match.groups()):
        return None
    h, m, s = (int(g or 0) for g in match.groups())
    return h * 3600 + m * 60 + s


def _c_cidr4(value, ctx):
    text = str(value)
    if "," in text:
        return f"{CIDR4}: {NO_V6}"
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError:
        return CIDR4 + " (with no host bits set)"
    if net.version != 4:
        return f"{CIDR4}: {NO_V6}"
    return None


def _c_duration(value, ctx):
    most = ctx["facts"]["join_token_ttl_max"]
    secs = duration_seconds(value)
    if secs is None:
        return "a duration in kubeadm's form with whole hours, minutes, seconds, such as 15m, 1h or 1h30m"
    if secs <= 0:
        return "a duration longer than 0 (kubeadm's 0 makes a token that never expires)"
    if secs > most:
        return (f"a duration of at most {most // 60}m: join tokens are short-lived (they only have to outlive "
                "one orchestration's join step; for many workers raise cluster:join_batch_size)")
    return None


def _c_k8s_version(value, ctx):
    return None if K8S_VERSION_RE.match(str(value)) else "a full Kubernetes version such as 1.35.1"


def _c_driver_version(value, ctx):
    return None if DRIVER_VERSION_RE.match(str(value)) else "an NVIDIA driver version such as 580.95.05"


def _c_url(value, ctx):
    return None if re.match(r"^(https?|file)://\S+$", str(value)) else "an https://, http:// or file:// URL"


def _c_urls(value, ctx):
    """One or more URLs separated by spaces (yum's gpgkey= takes several)."""
    parts = str(value).split()
    if parts and all(re.match(r"^(https?|file)://\S+$", part) for part in parts):
        return None
    return "one or more https://, http:// or file:// URLs separated by spaces"


def _c_http_url(value, ctx):
    return None if re.match(r"^https?://\S+$", str(value)) else "an http(s):// URL"


def _c_sha256(value, ctx):
    return None if SHA256_RE.match(str(value).lower()) else "a sha256: 64 hex digits (every download is checked)"


def _c_abs_path(value, ctx):
    return None if str(value).startswith("/") else "an absolute path"


def _c_port(value, ctx):
    match = PORT_RE.match(str(value))
    ok = match and all(1 <= int(p) <= 65535 for p in str(value).split("/")[0].split("-"))
    return None if ok else "a port or range with protocol, such as 6443/tcp or 30000-32767/tcp"


def _c_dns_label(value, ctx):
    return None if HOSTNAME_RE.match(str(value)) else "a lower-case DNS label (letters, digits, '-')"


def _c_dns_name(value, ctx):
    return None if DNS_NAME_RE.match(str(value)) else "a lower-case DNS name such as cluster.local"


def _c_endpoint(value, ctx):
    return None if ENDPOINT_RE.match(str(value)) else "host[:port], such as 192.168.0.113:6443 or k8s.example.com"


def _c_image(value, ctx):
    ok = IMAGE_RE.match(str(value))
    return None if ok else "an image or registry path without scheme, such as registry.k8s.io or nvcr.io/nvidia/x"


def _c_k8s_tag(value, ctx):
    return None if TAG_RE.match(str(value)) else "an image tag such as v0.17.2"


def _c_version(value, ctx):
    return None if re.match(r"^\S+$", str(value)) else "a version string without spaces"


def _c_osfinger(value, ctx):
    known = ctx.get("osfinger")
    if not known or value in known:
        return None
    return "an OS release the map knows (a key of salt/parameters/osfinger.yaml): " + _one_of(known, value)


def _c_gpu(value, ctx):
    gpu = ctx.get("gpu")
    if gpu is None:
        return None
    cache = ctx.setdefault("gpu_known", {})
    if value not in cache:
        cache[value] = gpu.architecture_of_name(value) is not None
    if cache[value]:
        return None
    names = sorted({n for n, _a in gpu.GPUS.values()})
    near = _suggest(value, names)
    return ("a GPU model K8sNvidia knows, as nvidia-smi prints it (or a PCI device id such as 0x1b06)"
            + (f": did you mean {near}?" if near else "; the table is _utils/nvidia_gpu.py"))


CHECKS = {
    "cidr4": _c_cidr4, "duration": _c_duration, "k8s_version": _c_k8s_version,
    "driver_version": _c_driver_version, "url": _c_url, "urls": _c_urls, "http_url": _c_http_url, "sha256": _c_sha256,
    "abs_path": _c_abs_path, "port": _c_port, "dns_label": _c_dns_label, "dns_name": _c_dns_name,
    "endpoint": _c_endpoint, "image": _c_image, "k8s_tag": _c_k8s_tag, "version": _c_version,
    "osfinger": _c_osfinger, "gpu": _c_gpu,
}
QUOTE_CHECKS = ("version", "driver_version", "k8s_version")


# -------------------------------------------------------------- the walk
def _expect(spec):
    """What a key expects, in words (for type errors)."""
    kind = spec["type"]
    if spec.get("choices"):
        return _one_of(spec["choices"])
    if kind == "str":
        return {
            "duration": "a duration such as 15m or 1h", "k8s_version": "a full Kubernetes version such as 1.35.1",
            "driver_version": "an NVIDIA driver version such as 580.95.05", "sha256": "a sha256 (64 hex digits)",
            "cidr4": CIDR4, "url": "a URL", "abs_path": "an absolute path",
        }.get(spec.get("check"), "a string")
    return {"int": "a whole number", "bool": "true or false", "list": "a list", "dict": "a mapping",
            "map": "a mapping", "layer": "a mapping", "layers": "a mapping", "nodes": "a mapping"}[kind]


def _type_error(spec, value):
    kind, want = spec["type"], _expect(spec)
    if kind == "str" and isinstance(value, bool):
        return f"{want}: YAML read an unquoted yes/no/on/off/true/false as a boolean; quote it"
    if kind == "str" and isinstance(value, (int, float)):
        if spec.get("check") == "duration":
            return f"{want}: YAML read {value!r} as a number without a unit"
        if spec.get("check") in QUOTE_CHECKS:
            lost = " (a number loses trailing zeros: 440.100 reads as 440.1)" if isinstance(value, float) else ""
            return f"{want}, in quotes as written: YAML read {value!r} as a number{lost}"
        return f"{want}: YAML read {value!r} as a number; quote it"
    if kind == "int" and isinstance(value, str) and value.strip().isdigit():
        return f"{want}, without quotes"
    if kind == "bool" and isinstance(value, str):
        return f"{want}, unquoted"
    if kind == "list" and isinstance(value, str):
        return f"a list, such as [{value}]: a single string is not a list"
    if kind == "nodes":
        return f"a mapping of minion id to {{ip, role, os, gpus}}, not {_kind(value)}"
    if kind in ("map", "layer", "layers", "dict") and isinstance(value, (list, str)):
        keys = list((spec.get("keys") or {}))[:6]
        return f"a mapping{' of ' + ', '.join(keys) + ', ...' if keys else ''}, not {_kind(value)}"
    return f"{want}, not {_kind(value)}"


def _check(spec, value, path, found, ctx):
    name = spec.get("check")
    if name:
        expected = CHECKS[name](value, ctx)
        if expected:
            found.error(":".join(path), value, expected, _effective_key(path))
            return False
    return True


def _walk(spec, value, path, found, ctx):
    """Check ``value`` against ``spec``; the value with every wrongly typed
    or unknown part removed, or _DROP."""
    kind = spec["type"]
    key = ":".join(path)
    if value is None:
        if spec.get("null") or kind in ("layer", "layers"):
            return None
        if kind in ("map", "dict", "nodes"):
            expected = f"a mapping; `{path[-1] if path else 'k8snvidia'}:` with nothing under it is null"
        else:
            expected = _expect(spec) + " (null is not allowed here)"
        found.error(key, value, expected, _effective_key(path))
        return _DROP
    if kind == "str":
        if not isinstance(value, str):
            found.error(key, value, _type_error(spec, value), _effective_key(path))
            return _DROP
        if spec.get("choices") and value not in spec["choices"]:
            found.error(key, value, _one_of(spec["choices"], value), _effective_key(path))
            return value
        _check(spec, value, path, found, ctx)
        return value
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            found.error(key, value, _type_error(spec, value), _effective_key(path))
            return _DROP
        low, high = spec.get("minimum"), spec.get("maximum")
        if spec.get("choices") and value not in spec["choices"]:
            found.error(key, value, _one_of(spec["choices"]), _effective_key(path))
        elif (low is not None and value < low) or (high is not None and value > high):
            span = "a positive whole number" if low == 1 and high is None else f"a whole number from {low} to {high}"
            found.error(key, value, span, _effective_key(path))
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            found.error(key, value, _type_error(spec, value), _effective_key(path))
            return _DROP
        return value
    if kind == "list":
        if not isinstance(value, list):
            found.error(key, value, _type_error(spec, value), _effective_key(path))
            return _DROP
        out = []
        for item in value:
            if not isinstance(item, str):
                found.error(key, item, f"a list of strings; this item is {_kind(item)}", _effective_key(path))
                continue
            _check(spec, item, path, found, ctx)
            out.append(item)
        return out
    if not isinstance(value, dict):
        found.error(key, value, _type_error(spec, value), _effective_key(path))
        return _DROP
    if kind == "dict":
        out = {}
        for sub, val in value.items():
            if spec.get("values") == "url":
                if not isinstance(val, str) or _c_url(val, ctx):
                    found.error(f"{key}:{sub}", val, "an https://, http:// or file:// URL",
                                _effective_key(path + (str(sub),)))
                    continue
            elif not isinstance(val, (str, int, float, bool)):
                found.error(f"{key}:{sub}", val, f"a string or number, not {_kind(val)}",
                            _effective_key(path + (str(sub),)))
                continue
            out[sub] = val
        return out
    if kind == "layers":
        known = ctx.get(spec["names"])
        out = {}
        for name, layer in value.items():
            if known and name not in known:
                near = _suggest(name, known)
                found.text(f"k8snvidia:{key}:{name}: unknown {spec['names']}; "
                           + (f"did you mean {near}? " if near else "")
                           + f"(salt/parameters/{spec['names']}.yaml has {', '.join(known)})")
                continue
            got = _walk(ctx["layer"], layer, path + (str(name),), found, ctx)
            if got is not _DROP:
                out[name] = got or {}
        return out
    if kind == "nodes":
        out = {}
        node_spec = {"type": "map", "keys": spec["keys"]}
        for nid, node in value.items():
            if not isinstance(node, dict):
                found.error(f"{key}:{nid}", node, "a mapping with ip, role, os and gpus")
                continue
            got = _walk(node_spec, node, path + (str(nid),), found, ctx)
            if got is not _DROP:
                out[nid] = got
        return out
    keys = ctx["layer"]["keys"] if kind == "layer" else spec["keys"]
    out = {}
    for sub, val in value.items():
        sub_spec = keys.get(sub)
        here = path + (str(sub),)
        if sub_spec is None:
            near = _suggest(sub, keys)
            where = key or "k8snvidia"
            hint = f"did you mean {(key + ':') if key else ''}{near}?" if near else f"{where} has: {', '.join(keys)}"
            found.text(f"k8snvidia:{':'.join(here)}: unknown key; {hint}", _effective_key(here))
            continue
        got = _walk(sub_spec, val, here, found, ctx)
        if got is not _DROP:
            out[sub] = got
    return out


def _context(params=None, schema=None, facts=None):
    params = params or {}
    sch_mod = None
    if schema is None or facts is None:
        sch_mod = _sibling("pillar_schema")
    schema = schema if schema is not None else sch_mod.schema()
    try:
        gpu = _sibling("nvidia_gpu")
    except (OSError, ImportError):  # pragma: no cover - a partial copy of _utils
        gpu = None
    return {
        "schema": schema,
        "facts": facts if facts is not None else sch_mod.facts(),
        "layer": {"type": "map", "keys": {k: v for k, v in schema.items() if k not in SPLIT_KEYS}},
        "os_family": sorted(params.get("os_family") or {}),
        "osfinger": sorted(params.get("osfinger") or {}),
        "gpu": gpu,
    }


def check_structure(pillar_cfg, found, ctx):
    """Pass 1: the pillar as written against the schema; the cleaned pillar."""
    if pillar_cfg is None:
        pillar_cfg = {}
    if not isinstance(pillar_cfg, dict):
        found.text(problem("", pillar_cfg, f"a mapping of {', '.join(list(ctx['schema'])[:5])}, ...")
                   .replace("k8snvidia:: ", "k8snvidia: "), effective="")
        return {}
    return _walk({"type": "map", "keys": ctx["schema"]}, pillar_cfg, (), found, ctx)


# ------------------------------------------------------- the whole cluster
def _net(key, value, found):
    try:
        net = ipaddress.ip_network(str(value), strict=True)
    except ValueError:
        found.effective(key, value, CIDR4)
        return None
    if net.version != 4:
        found.effective(key, value, f"{CIDR4}: {NO_V6}")
        return None
    return net


def cluster_checks(pillar_cfg, found):
    """Pass 2: node list, addresses, names, roles, networks (a cleaned pillar)."""
    nodes = pillar_cfg.get("nodes")
    if not isinstance(nodes, dict) or not nodes:
        if "nodes" not in found.keys and "" not in found.keys:
            found.error("nodes", nodes, "a mapping of minion id to {ip, role, gpus}, with at least one node")
        return
    cluster = pillar_cfg.get("cluster") or {}
    node_net = None
    if cluster.get("node_network"):
        node_net = _net("cluster:node_network", cluster["node_network"], found)
    seen_ip, seen_name = {}, {}
    control, workers = [], []
    for nid, node in nodes.items():
        key = f"nodes:{nid}"
        name = str(node.get("hostname") or nid)
        if f"{key}:hostname" in found.keys:
            pass  # pass 1 named it
        elif not HOSTNAME_RE.match(name):
            found.effective(key, name, "a lower-case DNS label (letters, digits, '-') as the node name")
        low = name.lower()
        if low in seen_name:
            found.effective(key, name, f"a unique node name; {seen_name[low]} has it too")
        seen_name[low] = nid
        ip = node.get("ip")
        addr = None
        if f"{key}:ip" not in found.keys:
            try:
                addr = ipaddress.IPv4Address(str(ip))
            except ValueError:
                found.error(f"{key}:ip", ip, "an IPv4 address such as 192.168.0.105")
        if addr is not None:
            if str(addr) in seen_ip:
                found.error(f"{key}:ip", ip, f"a unique address; {seen_ip[str(addr)]} has it too")
            seen_ip[str(addr)] = nid
            if node_net is not None and addr not in node_net:
                found.error(f"{key}:ip", ip, f"an address inside cluster:node_network {node_net}")
        role = node.get("role")
        if role == "control-plane":
            control.append(nid)
        elif role == "worker":
            workers.append(nid)
        else:
            found.effective(f"{key}:role", role, "one of control-plane, worker")
    roles_named = any(k.startswith("nodes:") and k.endswith(":role") for k in found.keys)
    if not roles_named:
        if not control:
            found.error("nodes", sorted(nodes), "exactly one node with role: control-plane")
        elif len(control) > 1:
            found.error("nodes", sorted(control), "exactly one node with role: control-plane")
        if not workers:
            found.error("nodes", sorted(nodes), "at least one node with role: worker (the control plane is "
                        "tainted: a cluster without workers runs no GPU pods)")
    pod = _net("cluster:pod_cidr", cluster.get("pod_cidr", "10.244.0.0/16"), found)
    svc = _net("cluster:service_cidr", cluster.get("service_cidr", "10.96.0.0/12"), found)
    if pod and svc and pod.overlaps(svc):
        found.error("cluster:pod_cidr", str(pod), f"a network that does not overlap cluster:service_cidr {svc}")
    overlapping = set()
    for key, net in (("cluster:pod_cidr", pod), ("cluster:service_cidr", svc)):
        if net and node_net and net.overlaps(node_net):
            overlapping.add(key)
            found.error(key, str(net), f"a network that does not overlap the node network {node_net}")
    if seen_ip:
        addrs = [ipaddress.IPv4Address(i) for i in seen_ip]
        for key, net in (("cluster:pod_cidr", pod), ("cluster:service_cidr", svc)):
            inside = [str(i) for i in addrs if net and i in net and key not in overlapping]
            if inside:
                found.error(key, str(net), f"a network that holds no node address (it holds {', '.join(inside)})")


# -------------------------------------------------- one node's effective map
def _repo(key, repo, found):
    if not isinstance(repo, dict):
        return
    url = repo.get("baseurl")
    if url and str(url).startswith("http://") and not repo.get("gpgcheck", True):
        found.effective(f"{key}:gpgcheck", repo.get("gpgcheck"),
                        f"true: the repository {url} is plain http, so packages must be GPG-checked")
    if repo.get("gpgcheck", True) and url and not repo.get("gpgkey"):
        found.effective(f"{key}:gpgkey", repo.get("gpgkey"), "the URL of the repository's GPG key")


def node_checks(cfg, found, facts):
    """Pass 3: required values and rules between keys of one node's map."""
    cluster = cfg.get("cluster") or {}
    facts = {**_sibling("pillar_schema").facts(), **(facts or {})}
    cni = cluster.get("cni")
    settings = (cfg.get("cni") or {}).get(cni) if isinstance(cfg.get("cni"), dict) else None
    for key, doc in (facts["cni_required"].get(cni) or {}).items():
        value = (settings or {}).get(key) if isinstance(settings, dict) else None
        if value is None or value == "":
            found.effective(f"cni:{cni}:{key}", value, f"{doc}: required for cluster:cni {cni}")
    for section in ("kernel", "docker", "container_toolkit", "kubernetes", "salt"):
        _repo(f"{section}:repo", (cfg.get(section) or {}).get("repo"), found)
    _repo("driver:extra_repo", (cfg.get("driver") or {}).get("extra_repo"), found)
    kube = cfg.get("kubernetes") or {}
    if kube.get("manage", True):
        _kubernetes(kube, found, facts)
    driver = cfg.get("driver") or {}
    if driver.get("manage", True) and driver.get("method", "runfile") == "package":
        package = driver.get("package") or {}
        _repo("driver:package:repo", package.get("repo"), found)
        if not re.match(r"^\d{3}$", str(package.get("branch"))):
            found.effective("driver:package:branch", package.get("branch"),
                            "the driver branch the OS's repositories ship, such as 580 (required for method package)")
    elif driver.get("manage", True):
        ver = driver.get("version")
        if not DRIVER_VERSION_RE.match(str(ver)):
            found.effective("driver:version", ver, "an NVIDIA driver version such as 580.95.05 (required)")
        url = driver.get("url")
        if not url or not re.match(r"^(https?|file)://", str(url)):
            found.effective("driver:url", url, "the https:// URL of the NVIDIA .run installer")
        sha = driver.get("sha256")
        if not SHA256_RE.match(str(sha or "").lower()):
            found.effective("driver:sha256", sha, f"the 64-hex-digit sha256 of {url} (every download is checked)")
    headers = driver.get("headers_package")
    if (driver.get("manage", True) and "{kernel" in str(headers or "")
            and (driver.get("headers_version") or (cfg.get("pkgrepo") or {}).get("format") == "yum")):
        # yum/dnf install an rpm named with its version, then Salt's pkg.installed,
        # which finds rpms by their bare name, reports it failed
        found.effective("driver:headers_package", headers,
                        "a bare package name such as kernel-devel, with the version in driver:headers_version "
                        "(e.g. '{kernel_noarch}'): Salt's pkg.installed finds an rpm by its name only and reports "
                        "one named with its version as failed after yum/dnf installed it")
    for key, value, expected in validate_cgroup_kernel(cfg):  # cgroup v1, kernel, containerd, validation image
        if not found.names(key):
            found.effective(key, value, expected)


def _kubernetes(kube, found, facts):
    version = str(kube.get("version", ""))
    match = K8S_VERSION_RE.match(version)
    if not match:
        found.effective("kubernetes:version", kube.get("version"), "a full Kubernetes version such as 1.35.1")
    minor = int(match.group(1)) if match else None
    cri = kube.get("cri")
    if cri == "docker" and minor is not None and minor >= 24:
        found.effective("kubernetes:cri", cri,
                        f"containerd or cri-dockerd: Kubernetes {version} has no dockershim (removed in 1.24)")
    if cri == "cri-dockerd":
        dockerd = kube.get("cri_dockerd") or {}
        if not dockerd.get("source"):
            found.effective("kubernetes:cri_dockerd:source", dockerd.get("source"),
                            "the URL of the cri-dockerd .rpm/.deb for cri: cri-dockerd (it has no repository)")
        if not SHA256_RE.match(str(dockerd.get("sha256") or "").lower()):
            found.effective("kubernetes:cri_dockerd:sha256", dockerd.get("sha256"),
                            "the 64-hex-digit sha256 of kubernetes:cri_dockerd:source")
    if minor is None or "kubernetes:version" in found.keys:
        return
    eol = facts["k8s_eol"]
    newest = max(eol)
    first = facts["pkgs_k8s_first_minor"]
    supported = facts["k8s_supported"]
    baseurl = str((kube.get("repo") or {}).get("baseurl") or "")
    if minor > newest:
        found.effective("kubernetes:version", version,
                        f"a released Kubernetes version: 1.{newest} is the newest minor, so pkgs.k8s.io has no "
                        f"v1.{minor} repository (a new minor is added to K8S_EOL in _utils/pillar_schema.py)")
    elif minor < first and "pkgs.k8s.io" in baseurl:
        found.effective("kubernetes:version", version,
                        f"1.{first} or newer: pkgs.k8s.io has no v1.{minor} repository; an older version needs "
                        "kubernetes:repo:baseurl at a mirror that has it")
    elif minor not in supported:
        since = f" since {eol[minor]}" if minor in eol else ""
        found.warn("kubernetes:version", version,
                   f"Kubernetes 1.{minor} is past its end of life{since}; supported minors: "
                   + ", ".join(f"1.{m}" for m in supported))


# ------------------------------------------------------- the cluster view
def gpu_names(nvidia_grain):
    """The GPU models an ``nvidia`` grain saw: each GPU's name, else its PCI
    device id (a GPU with no driver yet); [] when it saw none."""
    gpus = nvidia_grain.get("gpus") if isinstance(nvidia_grain, dict) else None
    names = [g.get("name") or g.get("pci_device_id") for g in gpus or [] if isinstance(g, dict)]
    return [str(n) for n in names if n]


def node_gpus(node, seen=None):
    """A node's GPUs, the one rule for the highstate (salt/top.sls through
    the map), the orchestration and the runners: what its ``nvidia`` grain
    saw (``seen``: gpu_names()), else what the pillar lists for it."""
    if seen:
        return list(seen)
    listed = (node or {}).get("gpus") if isinstance(node, dict) else None
    return [str(g) for g in listed] if isinstance(listed, list) else []


def is_control_plane(node):
    """The one role rule: ``role: control-plane``; anything else (the
    default included) is a worker."""
    return isinstance(node, dict) and node.get("role") == "control-plane"


def cluster_view(params, pillar_cfg, grains=None):
    """
    The cluster as its nodes' states see it, one entry per pillar node, built
    through the same map as the states (build(): defaults, OS family, OS
    release, pillar, by_os_family, by_osfinger, the node's overrides):

    .. code-block:: python

        {"nodes": {"node-110": {"role": "worker", "os": "CentOS Linux-7",
                                "gpus": ["NVIDIA GeForce GTX 1080 Ti"], "gpu": True,
                                "driver": {"manage": True, "method": "runfile",
                                           "version": "580.95.05", "pin": "580.95.05",
                                           "kernel_module_type": "auto"},
                                "kubernetes_version": "1.35.4", "validation": {...},
                                "grains": "cached"}},
         "control_plane": [...], "workers": [...], "gpu_nodes": [...]}

    ``grains``: minion id -> that minion's grains where the master has them
    (its minion data cache); they decide the OS and the GPUs seen (as on the
    node itself). A node without them is taken from its pillar ``os`` and
    ``gpus`` (``"grains": "pillar"``). A pillar with problems still gives a
    view (cluster.validate names the problems): what has the wrong type is
    left out.
    """
    grains = grains or {}
    ctx = _context(params)
    cleaned = check_structure(pillar_cfg, Found(), ctx)
    nodes = cleaned.get("nodes") if isinstance(cleaned.get("nodes"), dict) else {}
    view = {"nodes": {}, "control_plane": [], "workers": [], "gpu_nodes": []}
    for nid in sorted(nodes):
        node = nodes[nid] if isinstance(nodes[nid], dict) else {}
        mine = grains.get(nid) if isinstance(grains.get(nid), dict) else None
        node_grains = grains_for(nid, node)
        if mine and mine.get("os_family") and mine.get("osfinger"):
            node_grains.update({k: mine.get(k) for k in node_grains if k != "id" and mine.get(k) is not None})
        cfg = build(params, cleaned, nid, node_grains)
        gpus = node_gpus(node, gpu_names((mine or {}).get("nvidia")))
        driver = cfg.get("driver") if isinstance(cfg.get("driver"), dict) else {}
        entry = {
            "role": "control-plane" if is_control_plane(node) else "worker",
            "os": node_grains.get("osfinger"),
            "gpus": gpus,
            "gpu": bool(gpus),
            "driver": {
                "manage": bool(driver.get("manage", True)),
                "method": driver.get("method") or "runfile",
                "version": str(driver["version"]) if driver.get("version") is not None else None,
                "pin": driver_pin(driver),
                "kernel_module_type": driver.get("kernel_module_type") or "auto",
            },
            "kubernetes_version": (cfg.get("kubernetes") or {}).get("version"),
            "validation": cfg.get("validation") if isinstance(cfg.get("validation"), dict) else {},
            "grains": "cached" if mine else "pillar",
        }
        view["nodes"][nid] = entry
        view["control_plane" if entry["role"] == "control-plane" else "workers"].append(nid)
        if entry["gpu"]:
            view["gpu_nodes"].append(nid)
    return view


# ------------------------------------------------------------ entry points
def grains_for(minion_id, node):
    """The grains a node's ``os`` (an osfinger) implies, before a minion exists."""
    finger = (node or {}).get("os") or "Rocky Linux-9"
    name, _, release = str(finger).rpartition("-")
    return {
        "id": minion_id,
        "os_family": family_of(finger),
        "osfinger": finger,
        "os": (name.split() or [""])[0],
        "osmajorrelease": int(release.split(".")[0]) if release[:1].isdigit() else None,
        "oscodename": None,
    }


def driver_pin(driver):
    """The driver version a node's map pins (what its method installs), or
    None: the driver is not managed, or its method follows the OS's
    repositories (``pins_version`` of pillar_schema.DRIVER_METHODS; the
    package method's branch is checked by the driver state)."""
    methods = _sibling("pillar_schema").DRIVER_METHODS
    if not driver.get("manage", True) or not (methods.get(driver.get("method") or "runfile") or {}).get("pins_version"):
        return None
    return str(driver["version"]) if driver.get("version") is not None else None


def _gpu_problems(gpu_check, node_id, gpus, driver, cache=None):
    version = driver_pin(dict(driver, manage=True))
    key = (tuple(gpus), str(version), str(driver.get("kernel_module_type")))
    if cache is None or key not in cache:
        got = list(gpu_check(NODE_PLACEHOLDER, list(gpus), version, driver.get("kernel_module_type")))
        if cache is None:
            return [p.replace(NODE_PLACEHOLDER, str(node_id)) for p in got]
        cache[key] = got
    return [p.replace(NODE_PLACEHOLDER, str(node_id)) for p in cache[key]]


def config_for(params, pillar_cfg, minion_id, grains, gpus_seen=None, gpu_check=None, schema=None, facts=None):
    """
    One node's effective configuration, and every problem and warning for it:
    ``(cfg, problems, warnings)``. Never raises on a bad pillar: what has
    the wrong type is left out of ``cfg`` (the problems name it).
    """
    ctx = _context(params, schema, facts)
    found = Found()
    cleaned = check_structure(pillar_cfg, found, ctx)
    cluster_checks(cleaned, found)
    fam, finger = grains.get("os_family"), grains.get("osfinger")
    if ctx["os_family"] and fam not in ctx["os_family"]:
        found.text(f"k8snvidia: this minion's os_family {fam!r} (osfinger {finger!r}) is not in "
                   f"salt/parameters/os_family.yaml; the map knows {', '.join(ctx['os_family'])}")
    elif ctx["osfinger"] and finger not in ctx["osfinger"]:
        found.warn("os", finger, f"this minion's osfinger is not in salt/parameters/osfinger.yaml: only the "
                   f"{fam} values of os_family.yaml apply")
    cfg = build(params, cleaned, minion_id, grains)
    cfg["node"]["gpus"] = node_gpus(cfg["node"], gpus_seen)
    if "" in found.keys:  # no pillar to speak of: its required keys are not news
        return cfg, list(found.problems), list(found.warnings)
    node_checks(cfg, found, ctx["facts"])
    driver = cfg.get("driver") or {}
    if gpu_check is not None and driver.get("manage", True):
        for line in _gpu_problems(gpu_check, minion_id, cfg["node"].get("gpus") or [], driver):
            found.text(line)
    return cfg, list(found.problems), list(found.warnings)


def _nodes_text(nids, total):
    if len(nids) == total and total > 1:
        return f"every node: {', '.join(nids)}" if total <= 10 else f"every node ({total})"
    shown = ", ".join(nids[:10])
    return f"{shown} and {len(nids) - 10} more" if len(nids) > 10 else shown


def check_pillar(params, pillar_cfg, node_pillars=None, gpu_check=None, schema=None, facts=None):
    """
    Every problem of a whole cluster's pillar, each once:
    ``{"problems": [...], "warnings": [...], "nodes": [...]}``. A problem of
    the effective configuration that several nodes share is printed once,
    naming them. ``node_pillars``: minion id -> that node's own compiled
    ``k8snvidia`` where it differs from ``pillar_cfg`` (the runner's per-node
    pillars); nodes with the same OS and overrides share one build.
    """
    ctx = _context(params, schema, facts)
    found = Found()
    cleaned = check_structure(pillar_cfg, found, ctx)
    cluster_checks(cleaned, found)
    nodes = cleaned.get("nodes") or {}
    shared = {k: v for k, v in cleaned.items() if k != "nodes"}
    grouped, warned = {}, {}
    builds, gpu_cache, own_pillars = {}, {}, {}
    for nid, node in nodes.items():
        own = shared
        mine = (node_pillars or {}).get(nid)
        if mine is not None and mine is not pillar_cfg and mine != pillar_cfg:
            sig = json.dumps(mine, sort_keys=True, default=str)
            if sig not in own_pillars:
                nfound = Found(found.keys)
                ncleaned = check_structure(mine, nfound, ctx)
                own_pillars[sig] = ({k: v for k, v in ncleaned.items() if k != "nodes"}, list(nfound.problems))
            own, extra = own_pillars[sig]
            for line in extra:
                grouped.setdefault(line, []).append(nid)
        grains = grains_for(nid, node)
        sig = (id(own), grains["osfinger"], json.dumps(node.get("overrides"), sort_keys=True, default=str))
        if sig not in builds:
            cfg = build(params, dict(own, nodes={nid: node}), nid, grains)
            nfound = Found(found.keys)
            node_checks(cfg, nfound, ctx["facts"])
            builds[sig] = (cfg.get("driver") or {}, list(nfound.problems), list(nfound.warnings))
        driver, lines, warns = builds[sig]
        if gpu_check is not None and driver.get("manage", True) and node.get("gpus"):
            lines = lines + _gpu_problems(gpu_check, nid, node["gpus"], driver, gpu_cache)
        for line in lines:
            grouped.setdefault(line, []).append(nid)
        for line in warns:
            warned.setdefault(line, []).append(nid)
    problems = list(found.problems)
    total = len(nodes)
    for line, nids in grouped.items():
        if line in found.problems:
            continue
        named = len(nids) == 1 and (f"nodes:{nids[0]}:" in line or f"node {nids[0]} " in line)
        problems.append(line if named else f"{line} [{_nodes_text(nids, total)}]")
    warnings = [f"{line} [{_nodes_text(nids, total)}]" for line, nids in warned.items()]
    return {"problems": problems, "warnings": warnings, "nodes": sorted(nodes)}


# ------------------------------------------------- the former entry points
def validate_cluster(pillar_cfg, params=None, schema=None):
    """The cluster-wide problems (schema and node list); no grains needed."""
    ctx = _context(params, schema)
    found = Found()
    cleaned = check_structure(pillar_cfg, found, ctx)
    cluster_checks(cleaned, found)
    return list(found.problems)


def validate_node(cfg):
    """Checks on one node's effective configuration (output of build())."""
    found = Found()
    node_checks(cfg, found, _sibling("pillar_schema").facts())
    return list(found.problems)


def validate(cfg, pillar_cfg, gpu_check=None, params=None, schema=None):
    """All problems for one node: cluster-wide ones plus the node's own."""
    ctx = _context(params, schema)
    found = Found()
    cleaned = check_structure(pillar_cfg, found, ctx)
    cluster_checks(cleaned, found)
    node_checks(cfg, found, ctx["facts"])
    driver = cfg.get("driver") or {}
    if gpu_check is not None and driver.get("manage", True):
        node = cfg.get("node") or {}
        for line in _gpu_problems(gpu_check, node.get("id"), node.get("gpus") or [], driver):
            found.text(line)
    return list(found.problems)
