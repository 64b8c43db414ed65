"""
Emulated ``kubeadm`` (``main(argv) -> rc``): init, join, token, reset,
version, config images list -- against the twin's one cluster
(:mod:`k8stwin.kube`) and this node's machine state.

Behaviour follows ../shared/guides/real-tools.md section 2 (kubernetes
``cmd/kubeadm/app``: ``preflight/checks.go``, ``cmd/token.go``,
``discovery/token/token.go``, ``util/config/*``): preflight checks in the real
order with the real names and messages, warnings before errors, rc 1 for
phase errors, rc 3 for configuration validation errors. The version that
decides the behaviour is the installed ``kubeadm`` package; the kubelet's is
the ``kubelet`` package.
"""

import json
import os
import re
import sys
import time

import yaml

from k8stwin import fs, kube, os_profiles, state
from k8stwin.goflags import FlagError, duration, parse

STACK = "To see the stack trace of this error execute with --v=5 or higher"
GLOBAL = {"v": "str", "rootfs": "str", "add-dir-header": "bool", "log-file": "str", "skip-headers": "bool",
          "skip-log-headers": "bool", "log-file-max-size": "str", "one-output": "bool", "help": "bool"}
GSHORT = {"v": "v", "h": "help"}

MANIFESTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
KUBECONFIGS = ("admin.conf", "super-admin.conf", "kubelet.conf", "bootstrap-kubelet.conf",
               "controller-manager.conf", "scheduler.conf")


class Fail(Exception):
    """A kubeadm error: message on stderr, then rc."""

    def __init__(self, msg, rc=1, stack=True):
        super().__init__(msg)
        self.msg, self.rc, self.stack = msg, rc, stack


# ---------------------------------------------------------------------------
# output helpers


def out(text=""):
    sys.stdout.write(text + "\n")


def err(text=""):
    sys.stderr.write(text + "\n")


def klog(level, src, msg):
    t = time.time()
    stamp = time.strftime("%m%d %H:%M:%S", time.gmtime(t)) + ".%06d" % int((t % 1) * 1e6)
    err(f"{level}{stamp} {os.getpid():>7} {src}] {msg}")


def phase_error(ver, phase, msg):
    """kubeadm's error output for a failed phase (format by version)."""
    if ver >= (1, 35, 0):
        return Fail(f"error: error execution phase {phase}: {msg}")
    return Fail(f"error execution phase {phase}: {msg}")


# ---------------------------------------------------------------------------
# versions and images

# etcd, CoreDNS, pause per control-plane minor (kubeadm app/constants/constants.go
# of each release; unverified for some patch releases).
IMAGES = {
    18: ("3.4.3-0", "1.6.7", "3.2"), 19: ("3.4.13-0", "1.7.0", "3.2"), 20: ("3.4.13-0", "1.7.0", "3.2"),
    21: ("3.4.13-0", "v1.8.0", "3.4.1"), 22: ("3.5.0-0", "v1.8.4", "3.5"), 23: ("3.5.1-0", "v1.8.6", "3.6"),
    24: ("3.5.3-0", "v1.8.6", "3.7"), 25: ("3.5.4-0", "v1.9.3", "3.8"), 26: ("3.5.6-0", "v1.9.3", "3.9"),
    27: ("3.5.7-0", "v1.10.1", "3.9"), 28: ("3.5.9-0", "v1.10.1", "3.9"), 29: ("3.5.10-0", "v1.11.1", "3.9"),
    30: ("3.5.12-0", "v1.11.1", "3.9"), 31: ("3.5.15-0", "v1.11.3", "3.10"), 32: ("3.5.16-0", "v1.11.3", "3.10"),
    33: ("3.5.21-0", "v1.12.0", "3.10"), 34: ("3.6.4-0", "v1.12.1", "3.10.1"), 35: ("3.6.5-0", "v1.13.1", "3.10.1"),
}


def default_repo(ver):
    return "registry.k8s.io" if ver >= (1, 25, 0) else "k8s.gcr.io"


def images(ver, repo=None):
    etcd, dns, pause = IMAGES.get(ver[1], IMAGES[max(IMAGES)] if ver[1] > max(IMAGES) else IMAGES[min(IMAGES)])
    base = repo or default_repo(ver)
    v = kube.vstr(ver)
    dns_img = f"{base}/coredns/coredns:{dns}" if (repo is None and ver[1] >= 21) else f"{base}/coredns:{dns}"
    return [f"{base}/kube-apiserver:{v}", f"{base}/kube-controller-manager:{v}", f"{base}/kube-scheduler:{v}",
            f"{base}/kube-proxy:{v}", dns_img, f"{base}/pause:{pause}", f"{base}/etcd:{etcd}"]


# ---------------------------------------------------------------------------
# configuration files


def supported_apis(ver):
    """kubeadm.k8s.io versions this kubeadm reads -> deprecated? (util/config/common.go)."""
    m = ver[1]
    apis = {}
    if 15 <= m <= 26:
        apis["v1beta2"] = False
    if m >= 22:
        apis["v1beta3"] = m >= 31
    if m >= 31:
        apis["v1beta4"] = False
    if m <= 17:
        apis["v1beta1"] = True
    return apis


OLD_APIS = {"v1alpha1": "v1.11", "v1alpha2": "v1.12", "v1alpha3": "v1.14", "v1beta1": "v1.15", "v1beta2": "v1.22"}

# Fields per kind and API version (kubeadm apis/kubeadm/v1beta{2,3,4}/types.go).
_NODEREG = {"name", "criSocket", "taints", "kubeletExtraArgs", "ignorePreflightErrors", "imagePullPolicy",
            "imagePullSerial"}
_ENDPOINT = {"advertiseAddress", "bindPort"}
_TOKEN = {"token", "description", "ttl", "expires", "usages", "groups"}
_COMPONENT = {"extraArgs", "extraVolumes", "extraEnvs"}
FIELDS = {
    "InitConfiguration": {"apiVersion", "kind", "bootstrapTokens", "nodeRegistration", "localAPIEndpoint",
                          "certificateKey", "skipPhases", "patches", "timeouts", "dryRun"},
    "ClusterConfiguration": {"apiVersion", "kind", "etcd", "networking", "kubernetesVersion",
                             "controlPlaneEndpoint", "apiServer", "controllerManager", "scheduler", "dns",
                             "certificatesDir", "imageRepository", "featureGates", "clusterName",
                             "encryptionAlgorithm", "certificateValidityPeriod", "caCertificateValidityPeriod",
                             "proxy", "useHyperKubeImage"},
    "JoinConfiguration": {"apiVersion", "kind", "nodeRegistration", "caCertPath", "discovery", "controlPlane",
                          "skipPhases", "patches", "timeouts", "dryRun"},
    "ResetConfiguration": {"apiVersion", "kind", "cleanupTmpDir", "certificatesDir", "criSocket", "dryRun",
                           "force", "ignorePreflightErrors", "skipPhases", "unmountFlags"},
}
SUB = {
    "nodeRegistration": _NODEREG,
    "localAPIEndpoint": _ENDPOINT,
    "bootstrapTokens[]": _TOKEN,
    "networking": {"serviceSubnet", "podSubnet", "dnsDomain"},
    "apiServer": _COMPONENT | {"certSANs", "timeoutForControlPlane"},
    "controllerManager": _COMPONENT,
    "scheduler": _COMPONENT,
    "etcd": {"local", "external"},
    "etcd.local": {"imageRepository", "imageTag", "dataDir", "extraArgs", "extraEnvs", "serverCertSANs",
                   "peerCertSANs"},
    "dns": {"imageRepository", "imageTag", "disabled", "type"},
    "proxy": {"disabled"},
    "discovery": {"bootstrapToken", "file", "tlsBootstrapToken", "timeout"},
    "discovery.bootstrapToken": {"token", "apiServerEndpoint", "caCertHashes", "unsafeSkipCAVerification"},
    "controlPlane": {"localAPIEndpoint", "certificateKey"},
    "timeouts": {"controlPlaneComponentHealthCheck", "kubeletHealthCheck", "kubernetesAPICall", "etcdAPICall",
                 "tlsBootstrap", "discovery", "upgradeManifests"},
}
V1BETA4_ONLY = {"timeouts", "encryptionAlgorithm", "certificateValidityPeriod", "caCertificateValidityPeriod",
                "proxy", "dryRun", "imagePullSerial", "extraEnvs", "dns.disabled"}
NOT_V1BETA4 = {"timeoutForControlPlane", "discovery.timeout", "useHyperKubeImage", "dns.type"}
NOT_V1BETA3 = {"useHyperKubeImage", "dns.type"}


def _unknown_fields(kind, api, doc):
    """Fields of ``doc`` the Go types of ``kind``/``api`` do not have (json names)."""
    bad = []
    allowed = set(FIELDS.get(kind, ()))
    for key, value in doc.items():
        if key not in allowed or (api != "v1beta4" and key in V1BETA4_ONLY) or (api == "v1beta4" and key in NOT_V1BETA4):
            bad.append(key)
            continue
        sub = SUB.get("bootstrapTokens[]" if key == "bootstrapTokens" else key)
        items = value if isinstance(value, list) else [value]
        if sub is None:
            continue
        for item in items:
            if not isinstance(item, dict):
                continue
            for k2, v2 in item.items():
                full = f"{key}.{k2}"
                if k2 not in sub or (api != "v1beta4" and (k2 in V1BETA4_ONLY or full in V1BETA4_ONLY)) or (
                    api == "v1beta4" and (k2 in NOT_V1BETA4 or full in NOT_V1BETA4)
                ) or (api == "v1beta3" and full in NOT_V1BETA3):
                    bad.append(k2)
                    continue
                deeper = SUB.get(full) or (SUB.get(k2) if k2 in ("localAPIEndpoint",) else None)
                if isinstance(v2, dict) and deeper:
                    bad.extend(k3 for k3 in v2 if k3 not in deeper)
    return bad


def load_config(path, ver, want):
    """Parse a kubeadm --config file. Returns {kind: doc} (kubeadm kinds) plus
    "_component": [docs]. Warnings are printed and recorded as kubeadm does."""
    full = fs.path(path) if path.startswith("/") else os.path.abspath(path)
    try:
        with open(full, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise Fail(f'unable to read config from "{path}" : open {path}: {exc.strerror.lower()}') from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise Fail(f"error converting YAML to JSON: yaml: {exc}") from None
    found = {"_component": []}
    apis = supported_apis(ver)
    for doc in docs:
        if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind"):
            raise Fail("invalid configuration for GroupVersionKind /, Kind=: kind and apiVersion is mandatory "
                       "information that must be specified")
        group, _, api = str(doc["apiVersion"]).rpartition("/")
        kind = doc["kind"]
        if group == "kubeadm.k8s.io":
            if api in OLD_APIS and api not in apis:
                raise Fail(f'your configuration file uses an old API spec: "kubeadm.k8s.io/{api}" (kind: "{kind}"). '
                           f"Please use kubeadm {OLD_APIS[api]} instead and run 'kubeadm config migrate "
                           "--old-config old-config-file --new-config new-config-file', which will write the new, "
                           "similar spec using a newer API version.")
            if api not in apis or kind not in FIELDS:
                raise Fail(f'no kind "{kind}" is registered for version "kubeadm.k8s.io/{api}" in scheme '
                           '"k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/scheme/scheme.go:31"')
            if apis[api]:
                klog("W", "common.go:101", f'your configuration file uses a deprecated API spec: "kubeadm.k8s.io/{api}" '
                     f'(kind: "{kind}"). Please use \'kubeadm config migrate --old-config old-config-file '
                     "--new-config new-config-file', which will write the new, similar spec using a newer API version.")
            bad = _unknown_fields(kind, api, doc)
            if bad:
                # strict.VerifyUnmarshalStrict: only a klog warning (util/config/strict/strict.go)
                msg = (f'error unmarshaling configuration schema.GroupVersionKind{{Group:"kubeadm.k8s.io", '
                       f'Version:"{api}", Kind:"{kind}"}}: strict decoding error: '
                       + ", ".join(f'unknown field "{b}"' for b in bad))
                klog("W", "strict.go:55", msg)
                _record_warning(msg)
            doc = dict(doc)
            doc["_api"] = api
            found[kind] = doc
        elif group in ("kubelet.config.k8s.io", "kubeproxy.config.k8s.io"):
            found["_component"].append(doc)
        else:
            out(f"[config] WARNING: Ignored YAML document with GroupVersionKind {group}/{api}, Kind={kind}")
    if not any(k in found for k in want):
        names = " or ".join(want)
        raise Fail(f"no {names} kind was found in the YAML file")
    return found


def _record_warning(msg):
    try:
        with kube.locked() as cluster:
            cluster["warnings"].append(msg)
    except SystemExit:
        pass


def _args_map(value):
    """kubeletExtraArgs / extraArgs: map (<= v1beta3) or [{name, value}] (v1beta4)."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, list):
        return {str(a.get("name")): str(a.get("value")) for a in value if isinstance(a, dict)}
    return {}


# ---------------------------------------------------------------------------
# validation (rc 3)

CIDR_RE = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})/(\d{1,2})$")
IP_RE = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")


def _cidr_ok(text):
    m = CIDR_RE.match(str(text))
    return bool(m) and all(int(x) < 256 for x in m.groups()[:4]) and int(m.group(5)) <= 32


def _net(text):
    import ipaddress

    return ipaddress.ip_network(str(text), strict=False)


def validate_ignore(names, from_file=False):
    lowered = [n.strip().lower() for n in names if n.strip()]
    if "all" in lowered and from_file:
        return ["ignorePreflightErrors: Invalid value: \"all\": 'all' cannot be used in configuration file"]
    if "all" in lowered and len(lowered) > 1:
        return [f'ignore-preflight-errors: Invalid value: "{",".join(lowered)}": don\'t specify individual checks '
                "if 'all' is used"]
    return []


def raise_validation(problems):
    if problems:
        msg = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
        raise Fail(msg, rc=3)


# ---------------------------------------------------------------------------
# preflight


class Preflight:
    """Collects checks in order; warnings print at once, errors at the end."""

    def __init__(self, ignore):
        self.ignore = {n.strip().lower() for n in ignore if n.strip()}
        self.errors = []

    def warn(self, name, msg):
        err(f"\t[WARNING {name}]: {msg}")

    def error(self, name, msg):
        if "all" in self.ignore or name.lower() in self.ignore:
            self.warn(name, msg)
        else:
            self.errors.append((name, msg))

    def finish(self, ver):
        if not self.errors:
            return
        lines = ["[preflight] Some fatal errors occurred:"]
        lines += [f"\t[ERROR {n}]: {m}" for n, m in self.errors]
        lines.append("[preflight] If you know what you are doing, you can make a check non-fatal with "
                     "`--ignore-preflight-errors=...`")
        if ver >= (1, 35, 0):
            raise Fail("\n".join(lines) + "\nerror: error execution phase preflight: preflight checks failed")
        lines[0] = "error execution phase preflight: " + lines[0]
        raise Fail("\n".join(lines))


def _sysctl(st, name):
    val = (st.get("sysctl") or {}).get(name)
    return None if val is None else str(val).strip()


def _cri_socket_default(st, ver):
    """kubeadm's CRI detection (util/runtime): the known sockets that are up."""
    found = []
    if ver < (1, 24, 0) and kube.service_active(st, "docker"):
        return "/var/run/dockershim.sock"
    if kube.service_active(st, "containerd"):
        found.append("unix:///var/run/containerd/containerd.sock")
    if kube.service_active(st, "cri-docker") or kube.service_active(st, "cri-docker.socket"):
        found.append("unix:///var/run/cri-dockerd.sock")
    if kube.service_active(st, "crio"):
        found.append("unix:///var/run/crio/crio.sock")
    if len(found) > 1:
        raise Fail("found multiple CRI endpoints on the host. Please define which one do you wish to use by setting "
                   "the 'criSocket' field in the kubeadm configuration file: " + ", ".join(found))
    return found[0] if found else "unix:///var/run/containerd/containerd.sock"


def _crictl_fatal(socket, detail):
    t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return (f'container runtime is not running: output: time="{t}" level=fatal msg="validate service connection: '
            f'validate CRI v1 runtime API for endpoint \\"{socket}\\": rpc error: code = {detail}"\n'
            ", error: exit status 1")


def _sock_path(socket):
    return socket.replace("unix://", "")


CGROUP_V1_DEPRECATED = (
    "cgroups v1 support is deprecated and will be removed in a future release. Please migrate to cgroups v2. To "
    "explicitly enable cgroups v1 support for kubelet v1.35 or newer, you must set the kubelet configuration option "
    "'FailCgroupV1' to 'false'. You must also explicitly skip this validation. For more information, see "
    "https://git.k8s.io/enhancements/keps/sig-node/5573-remove-cgroup-v1")


def node_cgroup(here):
    """The cgroup hierarchy of the node (its OS profile's, or the node's own
    ``cgroup`` in the cluster file)."""
    node = (here.node or {}) if here is not None else {}
    if node.get("cgroup") in ("v1", "v2"):
        return node["cgroup"]
    return os_profiles.cgroup(node.get("os_key") or node.get("os") or "")


def common_checks(pf, ver, st, socket, kubelet_ver, cp_ver, here):
    """Checks shared by init and join, in kubeadm's order (addCommonChecks)."""
    cri = kube.cri_kind(socket)
    if cri == "docker":
        if not kube.service_active(st, "docker"):
            pf.error("Service-Docker", "docker service is not active, please run 'systemctl start docker.service'")
        elif not kube.service_enabled(st, "docker"):
            pf.warn("Service-Docker", "docker service is not enabled, please run 'systemctl enable docker.service'")
        facts = here.runtime().get("docker") or {}
        if kube.service_active(st, "docker") and facts.get("cgroup_driver") != "systemd":
            pf.warn("IsDockerSystemdCheck", 'detected "cgroupfs" as the Docker cgroup driver. The recommended driver '
                    'is "systemd". Please follow the guide at https://kubernetes.io/docs/setup/cri/')
    else:
        ok, why = kube.runtime_running(here, cri)
        if not ok:
            if "disabled" in why:
                detail = "Unimplemented desc = unknown service runtime.v1.RuntimeService"
            else:
                sock = _sock_path(socket)
                detail = ('Unavailable desc = connection error: desc = \\"transport: Error while dialing: dial unix '
                          f'{sock}: connect: no such file or directory\\"')
            pf.error("CRI", _crictl_fatal(socket, detail))
    if (st.get("swap") or {}).get("active"):
        if ver < (1, 28, 0):
            pf.error("Swap", "running with swap on is not supported. Please disable swap")
        elif ver < (1, 31, 0):
            pf.warn("Swap", "swap is enabled; production deployments should disable swap unless testing the NodeSwap "
                    "feature gate of the kubelet")
        else:
            pf.warn("Swap", "swap is supported for cgroup v2 only. The kubelet must be properly configured to use "
                    "swap. Please refer to https://kubernetes.io/docs/concepts/architecture/nodes/#swap-memory, or "
                    "disable swap on the node")
    if node_cgroup(here) == "v1":
        # system-validators' cgroup check as kubeadm runs it: a warning in
        # maintenance mode (1.31-1.34), an error from 1.35 (the kubelet's
        # failCgroupV1 defaults to true), printed as a WARNING when skipped
        if ver >= (1, 35, 0):
            pf.error("SystemVerification", CGROUP_V1_DEPRECATED)
        elif ver >= (1, 31, 0):
            pf.warn("SystemVerification", "cgroups v1 support is in maintenance mode, please migrate to cgroups v2")
    kernel = (st.get("kernel") or {}).get("running") or (here.node or {}).get("kernel") or ""
    kv = kube.parse_version(kernel)
    if ver >= (1, 32, 0) and kv and kv[:2] < (4, 19):
        # system-validators' kernel check as kubeadm 1.32+ runs it (real outputs on el7/el8)
        pf.error("SystemVerification", f"kernel release {kernel} is unsupported. Recommended LTS version from the 4.x "
                 "series is 4.19. Any 5.x or 6.x versions are also supported. For cgroups v2 support, the minimal "
                 "version is 4.15 and the recommended version is 5.8+")
        if kv[0] < 4:
            pf.error("SystemVerification", "unexpected kernel config: CONFIG_CGROUP_BPF")
    if kubelet_ver is None:
        pf.error("KubeletVersion", 'couldn\'t get kubelet version: cannot execute \'kubelet --version\': exec: '
                 '"kubelet": executable file not found in $PATH')
    else:
        if kubelet_ver[:2] > cp_ver[:2]:
            pf.error("KubeletVersion", f'the kubelet version is higher than the control plane version. This is not a '
                     f'supported version skew and may lead to a malfunctional cluster. Kubelet version: '
                     f'"{kube.vstr(kubelet_ver)}" Control plane version: "{kube.vstr(cp_ver)}"')
        skew = 3 if cp_ver >= (1, 28, 0) else 1
        if kubelet_ver[1] < cp_ver[1] - skew:
            pf.error("KubeletVersion", f'Kubelet version "{kube.vstr(kubelet_ver)}" is lower than kubeadm can support. '
                     "Please upgrade kubelet")
    if not kube.service_enabled(st, "kubelet"):
        pf.warn("Service-Kubelet", "kubelet service is not enabled, please run 'systemctl enable kubelet.service'")
    if _kubelet_serving(st):
        pf.error("Port-10250", "Port 10250 is in use")


def _kubelet_serving(st):
    return bool((st.get("kubeadm") or {}).get("kubelet_configured")) and kube.service_active(st, "kubelet")


def netfilter_checks(pf, ver, st):
    mods = st.get("modules") or []
    if ver < (1, 30, 0):
        path = "/proc/sys/net/bridge/bridge-nf-call-iptables"
        if "br_netfilter" not in mods:
            pf.error("FileContent--proc-sys-net-bridge-bridge-nf-call-iptables", f"{path} does not exist")
        elif (_sysctl(st, "net.bridge.bridge-nf-call-iptables") or "1")[:1] != "1":
            pf.error("FileContent--proc-sys-net-bridge-bridge-nf-call-iptables", f"{path} contents are not set to 1")
    if (_sysctl(st, "net.ipv4.ip_forward") or "0")[:1] != "1":
        pf.error("FileContent--proc-sys-net-ipv4-ip_forward", "/proc/sys/net/ipv4/ip_forward contents are not set to 1")


def _firewalld_active(st, here):
    if kube.service_active(st, "firewalld"):
        return True
    fam = "Debian" if ((here.node or {}).get("os_key") or "").startswith(("ubuntu", "debian")) else "RedHat"
    return fam == "RedHat" and bool((st.get("firewall") or {}).get("running"))


# ---------------------------------------------------------------------------
# init


INIT_FLAGS = {
    "config": "str", "ignore-preflight-errors": "list", "upload-certs": "bool", "skip-phases": "list",
    "kubernetes-version": "str", "apiserver-advertise-address": "str", "apiserver-bind-port": "int",
    "control-plane-endpoint": "str", "pod-network-cidr": "str", "service-cidr": "str",
    "service-dns-domain": "str", "image-repository": "str", "cri-socket": "str", "node-name": "str",
    "token": "str", "token-ttl": "str", "certificate-key": "str", "dry-run": "bool", "skip-token-print": "bool",
    "skip-certificate-key-print": "bool", "feature-gates": "str", "apiserver-cert-extra-sans": "list",
    "cert-dir": "str", "patches": "str", **GLOBAL,
}
CONFIG_MIX_OK = {"config", "ignore-preflight-errors", "upload-certs", "skip-phases", "dry-run",
                 "skip-token-print", "skip-certificate-key-print", "certificate-key", "patches", "v", "rootfs",
                 "add-dir-header", "log-file", "skip-headers", "skip-log-headers", "one-output", "help"}


def _node_id():
    return state.node().get("id")


def _node_ip():
    return state.node().get("ip") or "127.0.0.1"


def resolve_version(text, kubeadm_ver):
    if not text:
        klog("W", "version.go:109", 'could not fetch a Kubernetes version from the internet: unable to get URL '
             '"https://dl.k8s.io/release/stable-1.txt": Get "https://dl.k8s.io/release/stable-1.txt": dial tcp: '
             "lookup dl.k8s.io on 127.0.0.53:53: server misbehaving")
        klog("W", "version.go:110", f"falling back to the local client version: {kube.vstr(kubeadm_ver)}")
        return kubeadm_ver
    ver = kube.parse_version(text)
    if ver is None or not re.match(r"^v?\d+\.\d+\.\d+", str(text)):
        raise Fail(f'version "{text}" doesn\'t match patterns for neither semantic version nor labels '
                   '(stable, latest, ...)')
    return ver


def cmd_init(args, kver):
    opts, pos = parse(args, INIT_FLAGS, GSHORT)
    if pos:
        raise Fail(f'unknown command "{pos[0]}" for "kubeadm init"')
    if "config" in opts:
        mixed = sorted(k for k in opts if k not in CONFIG_MIX_OK)
        if mixed:
            raise Fail("can not mix '--config' with arguments " + "[" + " ".join(mixed) + "]")
    problems = validate_ignore(opts.get("ignore-preflight-errors") or [])
    raise_validation(problems)
    st = state.read()
    here = kube.here_view()
    init_doc, cluster_doc, components = {}, {}, []
    if "config" in opts:
        found = load_config(opts["config"], kver, ("InitConfiguration", "ClusterConfiguration"))
        init_doc = found.get("InitConfiguration") or {}
        cluster_doc = found.get("ClusterConfiguration") or {}
        components = found["_component"]
    nodereg = init_doc.get("nodeRegistration") or {}
    endpoint_cfg = init_doc.get("localAPIEndpoint") or {}
    networking = cluster_doc.get("networking") or {}
    ignore = list(opts.get("ignore-preflight-errors") or [])
    file_ignore = nodereg.get("ignorePreflightErrors") or []
    raise_validation(validate_ignore(file_ignore, from_file=True))
    ignore += file_ignore
    skip = set(opts.get("skip-phases") or []) | set(init_doc.get("skipPhases") or [])
    # values: flags or config
    ver = resolve_version(opts.get("kubernetes-version") or cluster_doc.get("kubernetesVersion"), kver)
    advertise = opts.get("apiserver-advertise-address") or endpoint_cfg.get("advertiseAddress") or _node_ip()
    port = int(opts.get("apiserver-bind-port") or endpoint_cfg.get("bindPort") or 6443)
    pod_subnet = opts.get("pod-network-cidr") or networking.get("podSubnet") or ""
    svc_subnet = opts.get("service-cidr") or networking.get("serviceSubnet") or "10.96.0.0/12"
    cp_endpoint = opts.get("control-plane-endpoint") or cluster_doc.get("controlPlaneEndpoint") or ""
    repo = opts.get("image-repository") or cluster_doc.get("imageRepository") or default_repo(ver)
    node_name = (opts.get("node-name") or nodereg.get("name") or _node_id() or "localhost").lower()
    socket = opts.get("cri-socket") or nodereg.get("criSocket")
    # validation (rc 3), ValidateInitConfiguration
    problems = []
    if not IP_RE.match(str(advertise)):
        raise Fail(f'couldn\'t use "{advertise}" as "apiserver-advertise-address", must be ipv4 or ipv6 address')
    if pod_subnet and not _cidr_ok(pod_subnet):
        problems.append(f'networking.podSubnet: Invalid value: "{pod_subnet}": couldn\'t parse subnet')
    if not _cidr_ok(svc_subnet):
        problems.append(f'networking.serviceSubnet: Invalid value: "{svc_subnet}": couldn\'t parse subnet')
    elif pod_subnet and _cidr_ok(pod_subnet) and _net(pod_subnet).overlaps(_net(svc_subnet)):
        problems.append(f'networking.podSubnet: Invalid value: "{pod_subnet}": pod subnet and service subnet overlap')
    tokens_cfg = init_doc.get("bootstrapTokens")
    for i, tok in enumerate(tokens_cfg or []):
        if tok.get("token") and not kube.TOKEN_RE.match(str(tok["token"])):
            problems.append(f'bootstrapTokens[{i}].token: Invalid value: "{tok["token"]}": the bootstrap token '
                            f'"{tok["token"]}" was not of the form "^([a-z0-9]{{6}})\\.([a-z0-9]{{16}})$"')
    if opts.get("token") and not kube.TOKEN_RE.match(opts["token"]):
        problems.append(f'bootstrapTokens[0].token: Invalid value: "{opts["token"]}": the bootstrap token '
                        f'"{opts["token"]}" was not of the form "^([a-z0-9]{{6}})\\.([a-z0-9]{{16}})$"')
    raise_validation(problems)
    if socket is None:
        socket = _cri_socket_default(st, ver)
    min_ver = (kver[0], kver[1] - 1, 0)
    if ver[:2] < min_ver[:2]:
        raise Fail(f"this version of kubeadm only supports deploying clusters with the control plane version >= "
                   f"{min_ver[0]}.{min_ver[1]}.0. Current version: {kube.vstr(ver)}")
    out(f"[init] Using Kubernetes version: {kube.vstr(ver)}")
    kubelet_ver = kube.parse_version(kube.package_version(st, "kubelet"))
    if "preflight" not in skip:
        out("[preflight] Running pre-flight checks")
        pf = Preflight(ignore)
        cpus = int(state.node().get("cpus") or 8)
        if cpus < 2:
            pf.error("NumCPU", f"the number of available CPUs {cpus} is less than the required 2")
        mem = int(state.node().get("memory_mib") or 32768)
        if mem < 1700:
            pf.error("Mem", f"the system RAM ({mem} MB) is less than the minimum 1700 MB")
        if ver[:2] > kver[:2]:
            pf.warn("KubernetesVersion", f"Kubernetes version is greater than kubeadm version. Please consider to "
                    f"upgrade kubeadm. Kubernetes version: {kube.vstr(ver)[1:]}. Kubeadm version: {kver[0]}.{kver[1]}.x")
        if _firewalld_active(st, here):
            pf.warn("Firewalld", f"firewalld is active, please ensure ports [{port} 10250] are open or your cluster "
                    "may not function correctly")
        serving = _apiserver_here(st)
        ports = (port, 10259, 10257) if ver >= (1, 18, 0) else (port, 10251, 10252)
        for p in ports:
            if serving:
                pf.error(f"Port-{p}", f"Port {p} is in use")
        for m in MANIFESTS:
            rel = f"/etc/kubernetes/manifests/{m}.yaml"
            if fs.exists(rel):
                pf.error(f"FileAvailable--etc-kubernetes-manifests-{m}.yaml", f"{rel} already exists")
        common_checks(pf, ver, st, socket, kubelet_ver, ver, here)
        netfilter_checks(pf, ver, st)
        for p in (2379, 2380):
            if serving:
                pf.error(f"Port-{p}", f"Port {p} is in use")
        if fs.listdir("/var/lib/etcd"):
            pf.error("DirAvailable--var-lib-etcd", "/var/lib/etcd is not empty")
        pf.finish(ver)
        out("[preflight] Pulling images required for setting up a Kubernetes cluster")
        out("[preflight] This might take a minute or two, depending on the speed of your internet connection")
        out("[preflight] You can also perform this action beforehand using 'kubeadm config images pull'")
    if opts.get("dry-run"):
        out("[dryrun] Would write files and call the API server; nothing changed (twin).")
        return 0
    return _do_init(opts, ver, st, node_name, socket, advertise, port, cp_endpoint, pod_subnet, svc_subnet,
                    repo, cluster_doc, init_doc, components, kubelet_ver)


def _apiserver_here(st):
    return bool((st.get("kubeadm") or {}).get("role") == "control-plane") and kube.service_active(st, "kubelet")


def _fail_swap_on(components):
    for doc in components:
        if doc.get("kind") == "KubeletConfiguration" and doc.get("failSwapOn") is False:
            return False
    return True


def _write_pki(ca_pem):
    fs.write("/etc/kubernetes/pki/ca.crt", ca_pem, 0o644)
    fs.write("/etc/kubernetes/pki/ca.key", "-----BEGIN RSA PRIVATE KEY-----\n(twin)\n-----END RSA PRIVATE KEY-----\n", 0o600)


def _kubelet_files(version, socket, extra_args=None):
    fs.write("/var/lib/kubelet/config.yaml",
             "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\n"
             "clusterDNS:\n- 10.96.0.10\nclusterDomain: cluster.local\n")
    flags = [f"--container-runtime-endpoint={socket}", "--pod-infra-container-image=registry.k8s.io/pause:3.10"]
    if version < (1, 24, 0) and kube.cri_kind(socket) == "docker":
        flags = ["--network-plugin=cni", "--pod-infra-container-image=k8s.gcr.io/pause:3.2"]
    for k, v in (extra_args or {}).items():
        flags.append(f"--{k}={v}")
    fs.write("/var/lib/kubelet/kubeadm-flags.env", 'KUBELET_KUBEADM_ARGS="' + " ".join(flags) + '"\n')


KUBELET_CLIENT_PEM = "/var/lib/kubelet/pki/kubelet-client-current.pem"


def _kubelet_finalize(pseudo, node_name):
    """kubeadm init's kubelet-finalize phase (phases/init/kubeletfinalize.go):
    the kubelet's rotated client certificate, and kubelet.conf pointing at it
    (user ``default-auth``, ``client-certificate``/``client-key`` paths instead
    of embedded data). Only an init that got this far has it; reset removes
    both (kubelet.conf, /var/lib/kubelet)."""
    ca_hash = pseudo["control_plane"]["ca_hash"]
    fs.write(KUBELET_CLIENT_PEM, f"-----BEGIN CERTIFICATE-----\n(twin system:node:{node_name} {ca_hash})\n"
             "-----END CERTIFICATE-----\n", 0o600)
    text = kube.kubeconfig_text(pseudo, "default-auth").split("users:\n")[0] + (
        "users:\n- name: default-auth\n  user:\n"
        f"    client-certificate: {KUBELET_CLIENT_PEM}\n    client-key: {KUBELET_CLIENT_PEM}\n")
    fs.write("/etc/kubernetes/kubelet.conf", text, 0o600)


def _start_kubelet(role, cluster_uid, healthy=True):
    """kubeadm's kubelet-start: (re)starts the kubelet service (not enabling it)."""
    with state.locked() as st:
        svc = st.setdefault("services", {})
        unit = "kubelet.service" if "kubelet.service" in svc else "kubelet"
        entry = svc.setdefault(unit, {"enabled": False, "active": False})
        entry["active"] = True
        st["kubeadm"] = {"role": role, "joined": role is not None, "kubelet_configured": bool(healthy),
                         "cluster": cluster_uid, "at": round(time.time(), 3)}


def kubelet_cgroup_driver(components, ver):
    """The kubelet's cgroupDriver: the KubeletConfiguration's, else kubeadm's
    default (systemd since 1.22, cgroupfs before)."""
    for doc in components:
        if doc.get("kind") == "KubeletConfiguration" and doc.get("cgroupDriver"):
            return str(doc["cgroupDriver"])
    return "systemd" if ver >= (1, 22, 0) else "cgroupfs"


def _fail_cgroup_v1(components, ver):
    """The kubelet's failCgroupV1: the KubeletConfiguration's, else the
    default (true from 1.35; the field exists since 1.31)."""
    for doc in components:
        if doc.get("kind") == "KubeletConfiguration" and isinstance(doc.get("failCgroupV1"), bool):
            return doc["failCgroupV1"]
    return ver >= (1, 35, 0)


# The kubelet's start-up refusal on a cgroup v1 host (cmd/kubelet/app/server.go;
# the same text k3s's embedded kubelet v1.35 logs).
KUBELET_CGROUP_V1 = "kubelet is configured to not run on a host using cgroup v1"


def kubelet_problem(components, ver, st, here, socket, driver, fail_swap=None, fail_cgroup_v1=None):
    """Why the kubelet (or the control plane it starts) will not come up, or None.

    * a cgroup v1 host and failCgroupV1 (true by default from 1.35) -> the
      kubelet exits ("kubelet is configured to not run on a host using
      cgroup v1"); the installed kubelet's version decides;
    * swap on and failSwapOn (the default) -> the kubelet exits;
    * dockershim (< 1.24) and a cgroup driver other than docker's -> the
      kubelet exits ("misconfiguration: kubelet cgroup driver ... is different
      from docker cgroup driver");
    * containerd with runc's SystemdCgroup unlike the kubelet's driver ->
      static pods are killed and restarted (sandbox churn): the control plane
      never gets healthy."""
    kubelet_ver = kube.parse_version(kube.package_version(st, "kubelet")) or ver
    if node_cgroup(here) == "v1" and kubelet_ver >= (1, 31, 0):
        fail = _fail_cgroup_v1(components, kubelet_ver) if fail_cgroup_v1 is None else fail_cgroup_v1
        if fail:
            _kubelet_log(f'"Failed to run kubelet" err="failed to validate kubelet configuration: {KUBELET_CGROUP_V1}"')
            return "cgroup-v1"
    if (st.get("swap") or {}).get("active") and (_fail_swap_on(components) if fail_swap is None else fail_swap):
        return "swap"
    cri = kube.cri_kind(socket)
    facts = here.runtime()
    if cri == "docker" and ver < (1, 24, 0):
        d = facts.get("docker") or {}
        docker_driver = d.get("cgroup_driver") or "cgroupfs"
        if not any("native.cgroupdriver" in x for x in (d.get("exec_opts") or [])) and node_cgroup(here) == "v2":
            docker_driver = "systemd"
        if docker_driver != driver:
            return "cgroup-docker"
    if cri == "containerd":
        c = facts.get("containerd") or {}
        if c and ("systemd" if c.get("systemd_cgroup") else "cgroupfs") != driver:
            return "cgroup-containerd"
    return None


def _kubelet_log(line):
    """The kubelet's last words, where `journalctl -u kubelet` would show them."""
    try:
        fs.write("/var/log/k8stwin-kubelet.log", line + "\n")
    except OSError:
        pass


def _kubelet_check_fails(components, ver, st, here=None, socket=None):
    if state.fault("kubeadm_init_fails"):
        return "fault"
    if here is None:
        return "swap" if (st.get("swap") or {}).get("active") and _fail_swap_on(components) else None
    return kubelet_problem(components, ver, st, here, socket, kubelet_cgroup_driver(components, ver))


KUBELET_CHECK_FAIL = """[kubelet-check] Waiting for a healthy kubelet at http://127.0.0.1:10248/healthz. This can take up to 4m0s
[kubelet-check] The kubelet is not healthy after 4m0.000305017s

Unfortunately, an error has occurred, likely caused by:
	- The kubelet is not running
	- The kubelet is unhealthy due to a misconfiguration of the node in some way (required cgroups disabled)

If you are on a systemd-powered system, you can try to troubleshoot the error with the following commands:
	- 'systemctl status kubelet'
	- 'journalctl -xeu kubelet'
"""


KUBELET_CHECK_FAIL_OLD = """[kubelet-check] Initial timeout of 40s passed.
[kubelet-check] It seems like the kubelet isn't running or healthy.
[kubelet-check] The HTTP call equal to 'curl -sSL http://localhost:10248/healthz' failed with error: Get "http://localhost:10248/healthz": dial tcp [::1]:10248: connect: connection refused.

	Unfortunately, an error has occurred:
		timed out waiting for the condition

	This error is likely caused by:
		- The kubelet is not running
		- The kubelet is unhealthy due to a misconfiguration of the node in some way (required cgroups disabled)

	If you are on a systemd-powered system, you can try to troubleshoot the error with the following commands:
		- 'systemctl status kubelet'
		- 'journalctl -xeu kubelet'
"""


def _do_init(opts, ver, st, node_name, socket, advertise, port, cp_endpoint, pod_subnet, svc_subnet, repo,
             cluster_doc, init_doc, components, kubelet_ver):
    ca_pem, ca_hash = kube.new_ca()
    endpoint = cp_endpoint or f"{advertise}:{port}"
    if ":" not in endpoint:
        endpoint = f"{endpoint}:{port}"
    out('[certs] Using certificateDir folder "/etc/kubernetes/pki"')
    for c in ("ca", "apiserver", "apiserver-kubelet-client", "front-proxy-ca", "front-proxy-client", "etcd/ca",
              "etcd/server", "etcd/peer", "etcd/healthcheck-client", "apiserver-etcd-client"):
        out(f'[certs] Generating "{c}" certificate and key')
    out('[certs] Generating "sa" key and public key')
    _write_pki(ca_pem)
    fs.write("/etc/kubernetes/pki/sa.pub", "(twin)\n")
    fs.write("/etc/kubernetes/pki/sa.key", "(twin)\n", 0o600)
    out('[kubeconfig] Using kubeconfig folder "/etc/kubernetes"')
    pseudo = {"control_plane": {"ca_pem": ca_pem, "ca_hash": ca_hash, "endpoint": endpoint,
                                "cluster_name": cluster_doc.get("clusterName") or "kubernetes"}}
    confs = ["admin.conf", "super-admin.conf", "kubelet.conf", "controller-manager.conf", "scheduler.conf"]
    if ver < (1, 29, 0):
        confs.remove("super-admin.conf")
    for name in confs:
        out(f'[kubeconfig] Writing "{name}" kubeconfig file')
        user = {"admin.conf": "kubernetes-admin", "super-admin.conf": "kubernetes-super-admin",
                "kubelet.conf": f"system:node:{node_name}"}.get(name, "system:" + name.split(".")[0])
        fs.write(f"/etc/kubernetes/{name}", kube.kubeconfig_text(pseudo, user), 0o600)
    out('[etcd] Creating static Pod manifest for local etcd in "/etc/kubernetes/manifests"')
    out('[control-plane] Using manifest folder "/etc/kubernetes/manifests"')
    imgs = images(ver, None if repo == default_repo(ver) else repo)
    for m in MANIFESTS:
        if m != "etcd":
            out(f'[control-plane] Creating static Pod manifest for "{m}"')
        image = next(i for i in imgs if f"/{m}:" in i)
        fs.write(f"/etc/kubernetes/manifests/{m}.yaml",
                 f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: {m}\n  namespace: kube-system\n"
                 f"spec:\n  containers:\n  - name: {m}\n    image: {image}\n  hostNetwork: true\n")
    fs.write("/var/lib/etcd/member/snap/db", "(twin etcd)\n")
    kubelet_args = _args_map((init_doc.get("nodeRegistration") or {}).get("kubeletExtraArgs"))
    out('[kubelet-start] Writing kubelet environment file with flags to file "/var/lib/kubelet/kubeadm-flags.env"')
    out('[kubelet-start] Writing kubelet configuration to file "/var/lib/kubelet/config.yaml"')
    _kubelet_files(ver, socket, kubelet_args)
    out("[kubelet-start] Starting the kubelet")
    out('[wait-control-plane] Waiting for the kubelet to boot up the control plane as static Pods from directory '
        '"/etc/kubernetes/manifests"')
    uid = ca_hash[7:23]
    failing = _kubelet_check_fails(components, ver, st, kube.here_view(), socket)
    _start_kubelet(None if failing else "control-plane", uid, healthy=not failing)
    if failing == "cgroup-containerd":
        # the kubelet is healthy, the static pods keep being recreated
        out("[kubelet-check] Waiting for a healthy kubelet at http://127.0.0.1:10248/healthz. This can take up to 4m0s")
        out("[kubelet-check] The kubelet is healthy after 1.001558056s")
        out("[api-check] Waiting for a healthy API server. This can take up to 4m0s")
        if ver >= (1, 29, 0):
            raise phase_error(ver, "wait-control-plane", "failed while waiting for the control plane to start: "
                              "kube-apiserver check failed at https://" + f"{advertise}:{port}/livez: "
                              "context deadline exceeded")
        raise phase_error(ver, "wait-control-plane", "couldn't initialize a Kubernetes cluster")
    if failing:
        if ver >= (1, 29, 0):
            sys.stdout.write(KUBELET_CHECK_FAIL)
            raise phase_error(ver, "wait-control-plane", "failed while waiting for the kubelet to start: The HTTP "
                              "call equal to 'curl -sSL http://127.0.0.1:10248/healthz' returned error: Get "
                              '"http://127.0.0.1:10248/healthz": context deadline exceeded')
        sys.stdout.write(KUBELET_CHECK_FAIL_OLD)
        raise phase_error(ver, "wait-control-plane", "couldn't initialize a Kubernetes cluster")
    out("[apiclient] All control plane components are healthy after 6.502123 seconds")
    out('[upload-config] Storing the configuration used in ConfigMap "kubeadm-config" in the "kube-system" Namespace')
    out('[kubelet] Creating a ConfigMap "kubelet-config" in namespace kube-system with the configuration for the '
        "kubelets in the cluster")
    cert_key = None
    if opts.get("upload-certs"):
        cert_key = opts.get("certificate-key") or init_doc.get("certificateKey") or os.urandom(32).hex()
        out('[upload-certs] Storing the certificates in Secret "kubeadm-certs" in the "kube-system" Namespace')
        out("[upload-certs] Using certificate key:")
        out(cert_key)
    else:
        out("[upload-certs] Skipping phase. Please see --upload-certs")
    labels, taints = kube.role_labels_taints(ver, True)
    nodereg = init_doc.get("nodeRegistration") or {}
    if nodereg.get("taints") is not None:
        taints = [dict(t) for t in nodereg["taints"]]
    out(f"[mark-control-plane] Marking the node {node_name} as control-plane by adding the labels: "
        f"[{' '.join(k for k in labels)}]")
    out(f"[mark-control-plane] Marking the node {node_name} as control-plane by adding the taints "
        f"[{' '.join(t['key'] + ':' + t['effect'] for t in taints)}]")
    # bootstrap tokens
    token_specs = init_doc.get("bootstrapTokens")
    if token_specs is None:
        token_specs = [{}]
    tokens = []
    t0 = kube.now()
    for i, spec in enumerate(token_specs):
        text = spec.get("token") or (opts.get("token") if i == 0 else None) or kube.new_token()
        ttl_text = (opts.get("token-ttl") if i == 0 else None) or spec.get("ttl") or "24h0m0s"
        try:
            ttl = duration(ttl_text)
        except ValueError as exc:
            raise Fail(str(exc), rc=3) from None
        tid, sec = text.split(".")
        tokens.append({"id": tid, "secret": sec, "expires": None if ttl == 0 else t0 + ttl, "created": t0,
                       "usages": spec.get("usages") or ["signing", "authentication"],
                       "groups": spec.get("groups") or ["system:bootstrappers:kubeadm:default-node-token"],
                       "description": spec.get("description")
                       or "The default bootstrap token generated by 'kubeadm init'."})
    out(f"[bootstrap-token] Using token: {tokens[0]['id']}.{tokens[0]['secret']}")
    out("[bootstrap-token] Configuring bootstrap tokens, cluster-info ConfigMap, RBAC Roles")
    out("[bootstrap-token] Configured RBAC rules to allow Node Bootstrap tokens to get nodes")
    out("[bootstrap-token] Configured RBAC rules to allow Node Bootstrap tokens to post CSRs in order for nodes to "
        "get long term certificate credentials")
    out("[bootstrap-token] Configured RBAC rules to allow the csrapprover controller automatically approve CSRs from "
        "a Node Bootstrap Token")
    out("[bootstrap-token] Configured RBAC rules to allow certificate rotation for all node client certificates in "
        "the cluster")
    out('[bootstrap-token] Creating the "cluster-info" ConfigMap in the "kube-public" namespace')
    out('[kubelet-finalize] Updating "/etc/kubernetes/kubelet.conf" to point to a rotatable kubelet client '
        "certificate and key")
    _kubelet_finalize(pseudo, node_name)
    out("[addons] Applied essential addon: CoreDNS")
    out("[addons] Applied essential addon: kube-proxy")
    with kube.locked() as cluster:
        cluster["control_plane"] = {
            "node": _node_id(), "name": node_name, "endpoint": endpoint, "advertise": f"{advertise}:{port}",
            "version": kube.vstr(ver), "ca_pem": ca_pem, "ca_hash": ca_hash, "uid": uid,
            "pod_subnet": pod_subnet, "service_subnet": svc_subnet,
            "dns_domain": (cluster_doc.get("networking") or {}).get("dnsDomain") or "cluster.local",
            "image_repository": repo, "cluster_name": cluster_doc.get("clusterName") or "kubernetes",
            "created": t0, "cgroup_driver": kubelet_cgroup_driver(components, ver),
            "fail_swap_on": _fail_swap_on(components),
            "fail_cgroup_v1": _fail_cgroup_v1(components, ver),
            "certificate_key": {"key": cert_key, "expires": t0 + 7200} if cert_key else None,
        }
        cluster["tokens"] = tokens
        cluster["nodes"] = {node_name: {
            "node_id": _node_id(), "role": "control-plane", "labels": labels, "taints": taints,
            "kubelet_version": kube.vstr(kubelet_ver) if kubelet_ver else kube.vstr(ver),
            "cri_socket": socket, "ip": advertise, "created": t0}}
        cluster["objects"] = {}
        cluster.setdefault("node_dirs", {})[_node_id()] = cluster["node_dirs"].get(_node_id()) or {
            "dir": os.path.abspath(state.node_dir()), "root": None}
    tok = f"{tokens[0]['id']}.{tokens[0]['secret']}"
    join = f"kubeadm join {endpoint} --token {tok} \\\n\t--discovery-token-ca-cert-hash {ca_hash} "
    out()
    out("Your Kubernetes control-plane has initialized successfully!")
    out()
    out("To start using your cluster, you need to run the following as a regular user:")
    out()
    out("  mkdir -p $HOME/.kube")
    out("  sudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config")
    out("  sudo chown $(id -u):$(id -g) $HOME/.kube/config")
    out()
    out("Alternatively, if you are the root user, you can run:")
    out()
    out("  export KUBECONFIG=/etc/kubernetes/admin.conf")
    out()
    out("You should now deploy a pod network to the cluster.")
    out('Run "kubectl apply -f [podnetwork].yaml" with one of the options listed at:')
    out("  https://kubernetes.io/docs/concepts/cluster-administration/addons/")
    out()
    if cert_key and cp_endpoint:
        out("You can now join any number of control-plane nodes running the following command on each as root:")
        out()
        out(f"  {join.replace(chr(10), chr(10) + '  ')}\\\n\t--control-plane --certificate-key {cert_key}")
        out()
        out("Please note that the certificate-key gives access to cluster sensitive data, keep it secret!")
        out('As a safeguard, uploaded-certs will be deleted in two hours; If necessary, you can use')
        out('"kubeadm init phase upload-certs --upload-certs" to reload certs afterward.')
        out()
    out("Then you can join any number of worker nodes by running the following on each as root:")
    out()
    out(join)
    kube.refresh_node()
    return 0


# ---------------------------------------------------------------------------
# join

JOIN_FLAGS = {
    "config": "str", "token": "str", "discovery-token": "str", "discovery-token-ca-cert-hash": "list",
    "discovery-token-unsafe-skip-ca-verification": "bool", "discovery-file": "str", "tls-bootstrap-token": "str",
    "control-plane": "bool", "certificate-key": "str", "apiserver-advertise-address": "str",
    "apiserver-bind-port": "int", "cri-socket": "str", "node-name": "str", "ignore-preflight-errors": "list",
    "skip-phases": "list", "dry-run": "bool", "patches": "str", **GLOBAL,
}
JOIN_MIX_OK = {"config", "ignore-preflight-errors", "skip-phases", "dry-run", "certificate-key", "control-plane",
               "patches", "v", "rootfs", "add-dir-header", "log-file", "skip-headers", "skip-log-headers",
               "one-output", "help", "node-name"}


def cmd_join(args, kver):
    opts, pos = parse(args, JOIN_FLAGS, GSHORT)
    if "config" in opts:
        mixed = sorted(k for k in opts if k not in JOIN_MIX_OK)
        if mixed or pos:
            raise Fail("can not mix '--config' with arguments " + "[" + " ".join(mixed + pos) + "]")
    raise_validation(validate_ignore(opts.get("ignore-preflight-errors") or []))
    doc = {}
    if "config" in opts:
        doc = load_config(opts["config"], kver, ("JoinConfiguration",)).get("JoinConfiguration") or {}
    disc = doc.get("discovery") or {}
    bt = disc.get("bootstrapToken") or {}
    nodereg = doc.get("nodeRegistration") or {}
    token = bt.get("token") or opts.get("discovery-token") or opts.get("token") or ""
    endpoint = bt.get("apiServerEndpoint") or (pos[0] if pos else "")
    hashes = list(bt.get("caCertHashes") or opts.get("discovery-token-ca-cert-hash") or [])
    unsafe = bool(bt.get("unsafeSkipCAVerification") or opts.get("discovery-token-unsafe-skip-ca-verification"))
    file_ignore = nodereg.get("ignorePreflightErrors") or []
    raise_validation(validate_ignore(file_ignore, from_file=True))
    ignore = list(opts.get("ignore-preflight-errors") or []) + list(file_ignore)
    skip = set(opts.get("skip-phases") or []) | set(doc.get("skipPhases") or [])
    node_name = (opts.get("node-name") or nodereg.get("name") or _node_id() or "localhost").lower()
    st = state.read()
    socket = opts.get("cri-socket") or nodereg.get("criSocket")
    problems = []
    if not token and not disc.get("file") and not opts.get("discovery-file"):
        problems.append('discovery: Invalid value: "": bootstrapToken or file must be set')
    elif token and not kube.TOKEN_RE.match(token):
        problems.append(f'discovery.bootstrapToken.token: Invalid value: "{token}": the bootstrap token "{token}" '
                        'was not of the form "^([a-z0-9]{6})\\.([a-z0-9]{16})$"')
    if token and not endpoint:
        problems.append('discovery.bootstrapToken.apiServerEndpoint: Invalid value: "": bootstrapToken.APIServerEndpoint '
                        "or discovery.file must be set")
    if token and not hashes and not unsafe:
        problems.append('discovery.bootstrapToken: Invalid value: "": using token-based discovery without '
                        "caCertHashes can be unsafe. Set unsafeSkipCAVerification as true in your kubeadm config "
                        "file or pass --discovery-token-unsafe-skip-ca-verification flag to continue")
    for h in hashes:
        if not re.match(r"^sha256:[0-9a-f]{64}$", str(h)):
            problems.append(f'discovery.bootstrapToken.caCertHashes: Invalid value: "{h}": invalid hash "{h}", '
                            'expected "format:hex-value"' if ":" not in str(h) else
                            f'discovery.bootstrapToken.caCertHashes: Invalid value: "{h}": hash must be 32 bytes long')
    raise_validation(problems)
    if opts.get("control-plane") or doc.get("controlPlane"):
        raise Fail("the twin emulates one control plane: joining another control-plane node is not emulated")
    if socket is None:
        socket = _cri_socket_default(st, kver)
    here = kube.here_view()
    kubelet_ver = kube.parse_version(kube.package_version(st, "kubelet"))
    if "preflight" not in skip:
        out("[preflight] Running pre-flight checks")
        pf = Preflight(ignore)
        for f in ("kubelet.conf", "bootstrap-kubelet.conf"):
            if fs.exists(f"/etc/kubernetes/{f}"):
                pf.error(f"FileAvailable--etc-kubernetes-{f}", f"/etc/kubernetes/{f} already exists")
        common_checks(pf, kver, st, socket, kubelet_ver, kver, here)
        if fs.exists("/etc/kubernetes/pki/ca.crt"):
            pf.error("FileAvailable--etc-kubernetes-pki-ca.crt", "/etc/kubernetes/pki/ca.crt already exists")
        netfilter_checks(pf, kver, st)
        pf.finish(kver)
    # discovery
    cluster = kube.read()
    cp = cluster.get("control_plane")
    up, cp_endpoint, _ = kube.apiserver(cluster)
    ep_ok = cp and endpoint in (cp["endpoint"], cp.get("advertise"))
    if not (cp and up and ep_ok):
        host = endpoint
        raise phase_error(kver, "preflight", "couldn't validate the identity of the API Server: failed to request the "
                          f'cluster-info ConfigMap: Get "https://{host}/api/v1/namespaces/kube-public/configmaps/'
                          f'cluster-info?timeout=10s": dial tcp {host}: connect: connection refused')
    cpv = kube.view(cluster, cp["node"])
    blocked = kube.port_blocked(cpv.state, int(endpoint.rsplit(":", 1)[1])) if (
        cpv is not None and cpv.dir and cp["node"] != _node_id()) else None
    if blocked:
        raise phase_error(kver, "preflight", "couldn't validate the identity of the API Server: failed to request the "
                          f'cluster-info ConfigMap: Get "https://{endpoint}/api/v1/namespaces/kube-public/configmaps/'
                          f'cluster-info?timeout=10s": dial tcp {endpoint}: connect: {blocked}'
                          if blocked != "i/o timeout" else
                          "couldn't validate the identity of the API Server: failed to request the cluster-info "
                          f'ConfigMap: Get "https://{endpoint}/api/v1/namespaces/kube-public/configmaps/cluster-info'
                          f'?timeout=10s": dial tcp {endpoint}: i/o timeout')
    tid = token.split(".")[0]
    live = {(t["id"], t["secret"]) for t in kube.live_tokens(cluster)}
    if tuple(token.split(".")) not in live:
        if kver < (1, 16, 0):
            raise phase_error(kver, "preflight", "couldn't validate the identity of the API Server: abort connecting "
                              "to API servers after timeout of 5m0s")
        raise phase_error(kver, "preflight", "couldn't validate the identity of the API Server: could not find a JWS "
                          f'signature in the cluster-info ConfigMap for token ID "{tid}"')
    if not unsafe and cp["ca_hash"] not in hashes:
        raise phase_error(kver, "preflight", "couldn't validate the identity of the API Server: cluster CA found in "
                          f'cluster-info ConfigMap is invalid: none of the public keys "{cp["ca_hash"]}" are pinned')
    cp_ver = kube.parse_version(cp["version"])
    if cp_ver[:2] < (kver[0], kver[1] - 1):
        raise phase_error(kver, "preflight", "unable to fetch the kubeadm-config ConfigMap: this version of kubeadm only "
                          f"supports deploying clusters with the control plane version >= {kver[0]}.{kver[1] - 1}.0. "
                          f"Current version: {cp['version']}")
    if "preflight" not in skip:
        out("[preflight] Reading configuration from the cluster...")
        out("[preflight] FYI: You can look at this config file with 'kubectl -n kube-system get cm kubeadm-config -o yaml'")
    if kubelet_ver and kubelet_ver[:2] > cp_ver[:2]:
        raise phase_error(kver, "kubelet-start", f'cannot get Node "{node_name}": the kubelet version is higher than '
                          "the control plane version")
    existing = (cluster.get("nodes") or {}).get(node_name)
    if existing and kube.node_ready(cluster, node_name)[0] and existing.get("node_id") != _node_id():
        raise phase_error(kver, "kubelet-start", f'a Node with name "{node_name}" and status "Ready" already exists '
                          "in the cluster. You must delete the existing Node or change the name of this new joining Node")
    if opts.get("dry-run"):
        out("[dryrun] Would write files and start the kubelet; nothing changed (twin).")
        return 0
    out('[kubelet-start] Writing kubelet configuration to file "/var/lib/kubelet/config.yaml"')
    out('[kubelet-start] Writing kubelet environment file with flags to file "/var/lib/kubelet/kubeadm-flags.env"')
    _kubelet_files(cp_ver, socket, _args_map(nodereg.get("kubeletExtraArgs")))
    _write_pki(cp["ca_pem"])
    fs.write("/etc/kubernetes/bootstrap-kubelet.conf", kube.kubeconfig_text(cluster, "tls-bootstrap-token-user"), 0o600)
    out("[kubelet-start] Starting the kubelet")
    fault = _join_fault()
    if not fault:
        # the kubelet-config ConfigMap of the cluster: failCgroupV1 as init wrote it
        problem = kubelet_problem([], cp_ver, st, here, socket, cp.get("cgroup_driver") or "systemd",
                                  fail_swap=cp.get("fail_swap_on", True),
                                  fail_cgroup_v1=cp.get("fail_cgroup_v1", cp_ver >= (1, 35, 0)))
        if problem in ("swap", "cgroup-docker", "cgroup-v1"):
            fault = ("error uploading crisocket: timed out waiting for the condition" if cp_ver < (1, 26, 0)
                     else "timed out waiting for the condition")
    if fault:
        _start_kubelet(None, cp.get("uid"), healthy=False)
        out("[kubelet-check] Waiting for a healthy kubelet at http://127.0.0.1:10248/healthz. This can take up to 4m0s")
        out("[kubelet-check] The kubelet is healthy after 1.001s")
        out("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap")
        out("[kubelet-check] Initial timeout of 40s passed.")
        raise phase_error(kver, "kubelet-start", fault)
    out("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap...")
    fs.remove("/etc/kubernetes/bootstrap-kubelet.conf")
    with kube.locked() as cluster:
        cluster["nodes"][node_name] = {
            "node_id": _node_id(), "role": "worker", "labels": {}, "taints": [],
            "kubelet_version": kube.vstr(kubelet_ver or cp_ver), "cri_socket": socket,
            "ip": state.node().get("ip") or "", "created": kube.now()}
        cluster.setdefault("node_dirs", {})[_node_id()] = cluster["node_dirs"].get(_node_id()) or {
            "dir": os.path.abspath(state.node_dir()), "root": None}
        fs.write("/etc/kubernetes/kubelet.conf", kube.kubeconfig_text(cluster, f"system:node:{node_name}"), 0o600)
    _start_kubelet("worker", cp.get("uid"))
    kube.refresh_node()
    out()
    out("This node has joined the cluster:")
    out("* Certificate signing request was sent to apiserver and a response was received.")
    out("* The Kubelet was informed of the new secure connection details.")
    out()
    out("Run 'kubectl get nodes' on the control-plane to see this node join the cluster.")
    out()
    return 0


def _join_fault():
    """The kubeadm_join_fails fault: true (always), an int N (the first N
    joins fail), or {"times": N, "message": text}. Returns the message or None."""
    f = state.fault("kubeadm_join_fails")
    if not f:
        return None
    msg = "timed out waiting for the condition"
    times = None
    if isinstance(f, dict):
        times = f.get("times")
        msg = f.get("message") or msg
    elif isinstance(f, int) and not isinstance(f, bool):
        times = f
    if times is not None:
        with state.locked() as st:
            done = (st.get("kubeadm_faults") or {}).get("join_failures", 0)
            if done >= int(times):
                return None
            st.setdefault("kubeadm_faults", {})["join_failures"] = done + 1
    return msg


# ---------------------------------------------------------------------------
# token

TOKEN_FLAGS = {"kubeconfig": "str", "dry-run": "bool", "ttl": "str", "print-join-command": "bool",
               "description": "str", "usages": "list", "groups": "list", "certificate-key": "str",
               "output": "str", "show-managed-fields": "bool", "allow-missing-template-keys": "bool",
               "config": "str", **GLOBAL}


def _admin(opts, kver):
    path = opts.get("kubeconfig") or "/etc/kubernetes/admin.conf"
    if not fs.exists(path):
        raise Fail(f"failed to load admin kubeconfig: open {path}: no such file or directory")
    cluster = kube.read()
    up, endpoint, _ = kube.apiserver(cluster)
    if not cluster.get("control_plane"):
        text = fs.read(path) or ""
        m = re.search(r"server: https://(\S+)", text)
        endpoint = m.group(1) if m else "127.0.0.1:6443"
        up = False
    if not up:
        raise Fail(f'failed to list bootstrap tokens: Get "https://{endpoint}/api/v1/namespaces/kube-system/secrets?'
                   f'fieldSelector=type%3Dbootstrap.kubernetes.io%2Ftoken": dial tcp {endpoint}: connect: connection refused')
    return cluster


def cmd_token(args, kver):
    opts, pos = parse(args, TOKEN_FLAGS, dict(GSHORT, o="output"))
    if not pos:
        out("This command manages bootstrap tokens. ...")
        return 0
    sub, rest = pos[0], pos[1:]
    if sub == "generate":
        out(kube.new_token())
        return 0
    if sub == "create":
        text = rest[0] if rest else None
        if text and not kube.TOKEN_RE.match(text):
            raise Fail(f'the bootstrap token "{text}" was not of the form "^([a-z0-9]{{6}})\\.([a-z0-9]{{16}})$"', rc=3)
        try:
            ttl = duration(opts.get("ttl", "24h0m0s"))
        except ValueError as exc:
            raise Fail(f'invalid argument "{opts.get("ttl")}" for "--ttl" flag: {exc}') from None
        _admin(opts, kver)
        text = text or kube.new_token()
        tid, sec = text.split(".")
        t0 = kube.now()
        with kube.locked() as cluster:
            cluster["tokens"] = [t for t in cluster["tokens"] if t["id"] != tid]
            cluster["tokens"].append({
                "id": tid, "secret": sec, "expires": None if ttl == 0 else t0 + ttl, "created": t0,
                "usages": opts.get("usages") or ["signing", "authentication"],
                "groups": opts.get("groups") or ["system:bootstrappers:kubeadm:default-node-token"],
                "description": opts.get("description")})
            cp = cluster["control_plane"]
        if opts.get("print-join-command"):
            line = f"kubeadm join {cp['endpoint']} --token {text} --discovery-token-ca-cert-hash {cp['ca_hash']} "
            if opts.get("certificate-key"):
                line += f"--control-plane --certificate-key {opts['certificate-key']} "
            sys.stdout.write(line + "\n")
        else:
            out(text)
        return 0
    if sub == "list":
        cluster = _admin(opts, kver)
        rows = [("TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS")]
        t = kube.now()
        for tok in kube.live_tokens(cluster, t):
            if tok.get("expires") is None:
                ttl, exp = "<forever>", "<never>"
            else:
                left = tok["expires"] - t
                ttl = f"{int(left // 3600)}h" if left >= 3600 else (f"{int(left // 60)}m" if left >= 60 else f"{int(left)}s")
                exp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(tok["expires"]))
            rows.append((f"{tok['id']}.{tok['secret']}", ttl, exp, ",".join(sorted(tok.get("usages") or [])),
                         tok.get("description") or "<none>", ",".join(tok.get("groups") or [])))
        widths = [max(len(r[i]) for r in rows) for i in range(6)]
        for r in rows:
            out("   ".join(r[i].ljust(widths[i]) for i in range(5)) + "   " + r[5])
        return 0
    if sub == "delete":
        if not rest:
            raise Fail("missing subcommand; 'token delete' is missing token of form "
                       '"^([a-z0-9]{6})\\.([a-z0-9]{16})$" or "^([a-z0-9]{6})$"')
        _admin(opts, kver)
        for item in rest:
            tid = item.split(".")[0]
            with kube.locked() as cluster:
                before = len(cluster["tokens"])
                cluster["tokens"] = [t for t in cluster["tokens"] if t["id"] != tid]
                gone = len(cluster["tokens"]) != before
            if not gone:
                raise Fail(f'failed to delete bootstrap token with ID "{tid}": secrets "bootstrap-token-{tid}" not found')
            out(f'bootstrap token "{tid}" deleted')
        return 0
    raise Fail(f'unknown command "{sub}" for "kubeadm token"')


# ---------------------------------------------------------------------------
# reset, version, config

RESET_FLAGS = {"force": "bool", "cri-socket": "str", "ignore-preflight-errors": "list", "cert-dir": "str",
               "kubeconfig": "str", "skip-phases": "list", "dry-run": "bool", "cleanup-tmp-dir": "bool",
               "config": "str", **GLOBAL}


def _reset_dirs(opts):
    """cleanupnode.go: the manifests, the kubelet's run directory, the
    certificates directory, and /etc/kubernetes/tmp with --cleanup-tmp-dir.
    Everything else in /etc/kubernetes (files kubeadm did not write) stays."""
    dirs = ["/etc/kubernetes/manifests", "/var/lib/kubelet", opts.get("cert-dir") or "/etc/kubernetes/pki"]
    if opts.get("cleanup-tmp-dir"):
        dirs.append("/etc/kubernetes/tmp")
    return dirs


def _reset_dry_run(opts):
    out("[reset] Would stop the kubelet service")
    out('[reset] Would unmount mounted directories in "/var/lib/kubelet"')
    out("[reset] Would remove Kubernetes-managed containers")
    out(f"[reset] Would delete contents of directories: [{' '.join(_reset_dirs(opts))}]")
    out(f"[reset] Would delete files: [{' '.join(f'/etc/kubernetes/{c}' for c in KUBECONFIGS)}]")
    return 0


def cmd_reset(args, kver):
    opts, pos = parse(args, RESET_FLAGS, dict(GSHORT, f="force"))
    if not opts.get("force"):
        sys.stdout.write("[reset] WARNING: Changes made to this host by 'kubeadm init' or 'kubeadm join' will be "
                         "reverted.\n[reset] Are you sure you want to proceed? [y/N]: ")
        answer = sys.stdin.readline().strip().lower() if not sys.stdin.isatty() else ""
        if answer not in ("y", "yes"):
            raise Fail("aborted reset operation")
    st = state.read()
    was_cp = (st.get("kubeadm") or {}).get("role") == "control-plane"
    out("[preflight] Running pre-flight checks")
    if opts.get("dry-run"):
        return _reset_dry_run(opts)
    if fs.exists("/var/lib/etcd"):
        fs.remove("/var/lib/etcd")
        fs.makedirs("/var/lib/etcd")
        out("[reset] Deleted contents of the etcd data directory: /var/lib/etcd")
    out("[reset] Stopping the kubelet service")
    with state.locked() as st:
        for unit in ("kubelet", "kubelet.service"):
            if unit in (st.get("services") or {}):
                st["services"][unit]["active"] = False
        st.pop("kubeadm", None)
    out('[reset] Unmounting mounted directories in "/var/lib/kubelet"')
    dirs = _reset_dirs(opts)
    out(f"[reset] Deleting contents of directories: [{' '.join(dirs)}]")
    for d in dirs:
        for name in fs.listdir(d):
            fs.remove(f"{d}/{name}")
    files = [f"/etc/kubernetes/{c}" for c in KUBECONFIGS]
    out(f"[reset] Deleting files: [{' '.join(files)}]")
    for f in files:
        fs.remove(f)
    if was_cp:
        with kube.locked() as cluster:
            cp = cluster.get("control_plane") or {}
            if cp.get("node") == _node_id():
                dirs_keep = cluster.get("node_dirs") or {}
                cluster.clear()
                cluster.update(kube._empty())
                cluster["node_dirs"] = dirs_keep
    out()
    out("The reset process does not clean CNI configuration. To do so, you must remove /etc/cni/net.d")
    out()
    out("The reset process does not reset or clean up iptables rules or IPVS tables.")
    out('If you wish to reset iptables, you must do so manually by using the "iptables" command.')
    out()
    out("If your cluster was setup to utilize IPVS, run ipvsadm --clear (or similar)")
    out("to reset your system's IPVS tables.")
    out()
    out("The reset process does not clean your kubeconfig files and you must remove them manually.")
    out("Please, check the contents of the $HOME/.kube/config file.")
    kube.refresh_node()
    return 0


def cmd_version(args, kver):
    opts, pos = parse(args, dict(GLOBAL, output="str"), dict(GSHORT, o="output"))
    fmt = opts.get("output", "")
    v = kube.vstr(kver)
    info = {"major": str(kver[0]), "minor": str(kver[1]), "gitVersion": v,
            "gitCommit": "0" * 40, "gitTreeState": "clean", "buildDate": "2025-11-11T00:00:00Z",
            "goVersion": "go1.24.9", "compiler": "gc", "platform": "linux/amd64"}
    if fmt == "short":
        out(v)
    elif fmt == "json":
        out(json.dumps({"clientVersion": info}, indent=2))
    elif fmt == "yaml":
        out(yaml.safe_dump({"clientVersion": info}, default_flow_style=False).rstrip())
    elif fmt == "":
        out(f'kubeadm version: &version.Info{{Major:"{kver[0]}", Minor:"{kver[1]}", GitVersion:"{v}", '
            f'GitCommit:"{info["gitCommit"]}", GitTreeState:"clean", BuildDate:"{info["buildDate"]}", '
            f'GoVersion:"{info["goVersion"]}", Compiler:"gc", Platform:"linux/amd64"}}')
    else:
        raise Fail(f'invalid output format: {fmt}')
    return 0


CONFIG_FLAGS = {"kubernetes-version": "str", "image-repository": "str", "config": "str", "feature-gates": "str",
                "kubeconfig": "str", "output": "str", "allow-missing-template-keys": "bool",
                "show-managed-fields": "bool", "cri-socket": "str", **GLOBAL}


def cmd_config(args, kver):
    opts, pos = parse(args, CONFIG_FLAGS, dict(GSHORT, o="output"))
    if pos[:2] == ["images", "list"] or pos[:2] == ["images", "pull"]:
        repo = opts.get("image-repository")
        text = opts.get("kubernetes-version")
        if opts.get("config"):
            found = load_config(opts["config"], kver, ("InitConfiguration", "ClusterConfiguration"))
            cdoc = found.get("ClusterConfiguration") or {}
            repo = repo or cdoc.get("imageRepository")
            text = text or cdoc.get("kubernetesVersion")
        ver = resolve_version(text, kver)
        for img in images(ver, repo if repo and repo != default_repo(ver) else None):
            out(img if pos[1] == "list" else f"[config/images] Pulled {img}")
        return 0
    raise Fail(f'unknown command "{" ".join(pos)}" for "kubeadm config"' if pos else "missing subcommand")


COMMANDS = {"init": cmd_init, "join": cmd_join, "token": cmd_token, "reset": cmd_reset, "version": cmd_version,
            "config": cmd_config}


def main(argv):
    args = list(argv[1:])
    st = state.read()
    kver = kube.parse_version(kube.package_version(st, "kubeadm"))
    if kver is None:
        err(f"{os.path.basename(argv[0])}: command not found")
        return 127
    # the first non-flag word is the command
    cmd = next((a for a in args if not a.startswith("-")), None)
    if cmd is None:
        if "--version" in args:
            err("unknown flag: --version")
            err(STACK)
            return 1
        out("kubeadm: easily bootstrap a secure Kubernetes cluster")
        return 0
    if cmd not in COMMANDS:
        err(f'unknown command "{cmd}" for "kubeadm"')
        err(STACK)
        return 1
    rest = list(args)
    rest.remove(cmd)
    try:
        return COMMANDS[cmd](rest, kver)
    except FlagError as exc:
        err(str(exc))
        err(STACK)
        return 1
    except Fail as exc:
        err(exc.msg)
        if exc.stack:
            err(STACK)
        return exc.rc
    finally:
        kube.refresh_node()


if __name__ == "__main__":  # pragma: no cover
    state.run_tool(main)
