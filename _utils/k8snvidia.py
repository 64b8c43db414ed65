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
import ipaddress
import re

ROLES = ("control-plane", "worker")
CNIS = ("flannel", "calico")
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
    derived = cfg.setdefault("derived", {})
    derived["control_plane"] = [n for n, v in nodes.items() if (v or {}).get("role") == "control-plane"]
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
    return cfg


# --------------------------------------------------------------- validation
def _net(key, value, problems):
    try:
        return ipaddress.ip_network(str(value), strict=True)
    except ValueError:
        problems.append(problem(key, value, "a network in CIDR form such as 10.244.0.0/16"))
    return None


def _repo(key, repo, problems):
    if not isinstance(repo, dict):
        return
    url = repo.get("baseurl")
    if url and not re.match(r"^(https?|file)://", str(url)):
        problems.append(problem(f"{key}:baseurl", url, "an https://, http:// or file:// URL"))
    if url and str(url).startswith("http://") and not repo.get("gpgcheck", True):
        problems.append(
            problem(
                f"{key}:gpgcheck",
                repo.get("gpgcheck"),
                f"true: the repository {url} is plain http, so packages must be GPG-checked",
            )
        )
    if repo.get("gpgcheck", True) and url and not repo.get("gpgkey"):
        problems.append(problem(f"{key}:gpgkey", repo.get("gpgkey"), "the URL of the repository's GPG key"))


def validate_cluster(pillar_cfg):
    """Checks on the cluster-wide pillar (nodes, networks); no grains needed."""
    problems = []
    pillar_cfg = pillar_cfg or {}
    nodes = pillar_cfg.get("nodes")
    if not isinstance(nodes, dict) or not nodes:
        return [problem("nodes", nodes, "a mapping of minion id to {ip, role, gpus}, with at least one node")]
    cluster = pillar_cfg.get("cluster") or {}
    node_net = None
    if cluster.get("node_network"):
        node_net = _net("cluster:node_network", cluster["node_network"], problems)
    seen_ip, seen_name = {}, {}
    control = []
    for nid, node in nodes.items():
        key = f"nodes:{nid}"
        if not isinstance(node, dict):
            problems.append(problem(key, node, "a mapping with ip, role and gpus"))
            continue
        name = str(node.get("hostname", nid))
        if not HOSTNAME_RE.match(name):
            problems.append(problem(key, name, "a lower-case DNS label (letters, digits, '-') as the node name"))
        low = name.lower()
        if low in seen_name:
            problems.append(problem(key, name, f"a unique node name; {seen_name[low]} has it too"))
        seen_name[low] = nid
        ip = node.get("ip")
        try:
            addr = ipaddress.IPv4Address(str(ip))
        except ValueError:
            problems.append(problem(f"{key}:ip", ip, "an IPv4 address such as 192.168.0.105"))
            addr = None
        if addr is not None:
            if str(addr) in seen_ip:
                problems.append(problem(f"{key}:ip", ip, f"a unique address; {seen_ip[str(addr)]} has it too"))
            seen_ip[str(addr)] = nid
            if node_net is not None and addr not in node_net:
                problems.append(problem(f"{key}:ip", ip, f"an address inside cluster:node_network {node_net}"))
        role = node.get("role")
        if role not in ROLES:
            problems.append(problem(f"{key}:role", role, "one of " + ", ".join(ROLES)))
        elif role == "control-plane":
            control.append(nid)
        gpus = node.get("gpus", [])
        if not isinstance(gpus, list):
            problems.append(problem(f"{key}:gpus", gpus, "a list of GPU model names (empty for none)"))
    if not control:
        problems.append(problem("nodes", sorted(nodes), "exactly one node with role: control-plane"))
    elif len(control) > 1:
        problems.append(problem("nodes", sorted(control), "exactly one node with role: control-plane"))
    pod = _net("cluster:pod_cidr", cluster.get("pod_cidr", "10.244.0.0/16"), problems)
    svc = _net("cluster:service_cidr", cluster.get("service_cidr", "10.96.0.0/12"), problems)
    if pod and svc and pod.overlaps(svc):
        problems.append(problem("cluster:pod_cidr", str(pod), f"a network that does not overlap cluster:service_cidr {svc}"))
    for key, net in (("cluster:pod_cidr", pod), ("cluster:service_cidr", svc)):
        if net and node_net and net.overlaps(node_net):
            problems.append(problem(key, str(net), f"a network that does not overlap the node network {node_net}"))
    if net_ips := [ipaddress.IPv4Address(i) for i in seen_ip]:
        for key, net in (("cluster:pod_cidr", pod), ("cluster:service_cidr", svc)):
            inside = [str(i) for i in net_ips if net and i in net]
            if inside:
                problems.append(problem(key, str(net), f"a network that holds no node address (it holds {', '.join(inside)})"))
    return problems


def validate_node(cfg):
    """Checks on one node's effective configuration (output of build())."""
    problems = []
    cluster = cfg.get("cluster") or {}
    if cluster.get("cni") not in CNIS:
        problems.append(problem("cluster:cni", cluster.get("cni"), "one of " + ", ".join(CNIS)))
    for key in ("join_batch_size", "reboot_timeout"):
        val = cluster.get(key)
        if not isinstance(val, int) or isinstance(val, bool) or val < 1:
            problems.append(problem(f"cluster:{key}", val, "a positive whole number"))
    cni = cluster.get("cni")
    if cni in CNIS and cni != "flannel":
        settings = (cfg.get("cni") or {}).get(cni) or {}
        if not settings.get("manifest_url"):
            problems.append(problem(f"cni:{cni}:manifest_url", settings.get("manifest_url"), f"the URL of the {cni} manifest"))
        if not SHA256_RE.match(str(settings.get("sha256") or "").lower()):
            problems.append(
                problem(f"cni:{cni}:sha256", settings.get("sha256"), "the 64-hex-digit sha256 of the manifest (every download is checked)")
            )
    host = cfg.get("host") or {}
    if host.get("selinux") not in SELINUX:
        problems.append(problem("host:selinux", host.get("selinux"), "one of " + ", ".join(SELINUX)))
    fw = host.get("firewall") or {}
    if fw.get("backend") not in FIREWALLS:
        problems.append(problem("host:firewall:backend", fw.get("backend"), "one of " + ", ".join(FIREWALLS)))
    for key in ("manage", "disable"):
        if not isinstance(fw.get(key), bool):
            problems.append(problem(f"host:firewall:{key}", fw.get(key), "true or false"))
    if not isinstance(host.get("swap_off"), bool):
        problems.append(problem("host:swap_off", host.get("swap_off"), "true or false"))
    ports = cfg.get("ports") or {}
    for group, lst in list(ports.items()):
        items = lst.items() if isinstance(lst, dict) else [(None, lst)]
        for sub, plist in items:
            for port in plist or []:
                if not PORT_RE.match(str(port)):
                    key = f"ports:{group}" + (f":{sub}" if sub else "")
                    problems.append(problem(key, port, "a port or range with protocol, such as 6443/tcp or 30000-32767/tcp"))
    kube = cfg.get("kubernetes") or {}
    version = str(kube.get("version", ""))
    match = K8S_VERSION_RE.match(version)
    if not match:
        problems.append(problem("kubernetes:version", kube.get("version"), "a full Kubernetes version such as 1.34.2"))
    cri = kube.get("cri")
    if cri not in CRIS:
        problems.append(problem("kubernetes:cri", cri, "one of " + ", ".join(CRIS)))
    elif cri == "docker" and match and int(match.group(1)) >= 24:
        problems.append(
            problem(
                "kubernetes:cri",
                cri,
                f"containerd or cri-dockerd: Kubernetes {version} has no dockershim (removed in 1.24)",
            )
        )
    for section in ("kernel", "docker", "container_toolkit", "kubernetes", "salt"):
        _repo(f"{section}:repo", (cfg.get(section) or {}).get("repo"), problems)
    _repo("driver:extra_repo", (cfg.get("driver") or {}).get("extra_repo"), problems)
    driver = cfg.get("driver") or {}
    method = driver.get("method", "runfile")
    if driver.get("manage", True) and method not in ("runfile", "package"):
        problems.append(problem("driver:method", method, "one of runfile, package"))
    if driver.get("manage", True) and method == "package":
        package = driver.get("package") or {}
        _repo("driver:package:repo", package.get("repo"), problems)
        if not re.match(r"^\d{3}$", str(package.get("branch"))):
            problems.append(problem("driver:package:branch", package.get("branch"),
                                    "the driver branch the OS's repositories ship, such as 580"))
    elif driver.get("manage", True):
        ver = driver.get("version")
        if not DRIVER_VERSION_RE.match(str(ver)):
            problems.append(problem("driver:version", ver, "an NVIDIA driver version such as 580.95.05"))
        url = driver.get("url")
        if not url or not re.match(r"^(https?|file)://", str(url)):
            problems.append(problem("driver:url", url, "the https:// URL of the NVIDIA .run installer"))
        sha = driver.get("sha256")
        if not SHA256_RE.match(str(sha or "").lower()):
            problems.append(
                problem("driver:sha256", sha, f"the 64-hex-digit sha256 of {url} (every download is checked)")
            )
        if driver.get("kernel_module_type") not in MODULE_TYPES:
            problems.append(
                problem("driver:kernel_module_type", driver.get("kernel_module_type"), "one of " + ", ".join(MODULE_TYPES))
            )
    docker = cfg.get("docker") or {}
    mirrors = docker.get("registry_mirrors") or []
    if not isinstance(mirrors, list) or any(not re.match(r"^https?://", str(m)) for m in mirrors):
        problems.append(problem("docker:registry_mirrors", mirrors, "a list of http(s):// registry mirror URLs"))
    if docker.get("data_root") and not str(docker["data_root"]).startswith("/"):
        problems.append(problem("docker:data_root", docker["data_root"], "an absolute path such as /home/dockerData"))
    return problems


def validate(cfg, pillar_cfg, gpu_check=None):
    """All problems for one node: cluster-wide ones plus the node's own."""
    problems = validate_cluster(pillar_cfg) + validate_node(cfg)
    if gpu_check is not None and (cfg.get("driver") or {}).get("manage", True):
        node = cfg.get("node") or {}
        problems += gpu_check(
            node.get("id"),
            node.get("gpus") or [],
            # the package method's branch is checked by the driver state
            (cfg.get("driver") or {}).get("version") if (cfg.get("driver") or {}).get("method", "runfile") == "runfile"
            else None,
            (cfg.get("driver") or {}).get("kernel_module_type"),
        )
    # keep order, drop repeats (cluster-wide problems show once per report)
    return list(dict.fromkeys(problems))
