"""
The schema of the K8sNvidia pillar (the key ``k8snvidia``): every key at
every level, its type, allowed values, a one-line doc and, where
``salt/parameters/defaults.yaml`` has no value for it, its default.

The validator (``_utils/k8snvidia.py``) walks it; tests check that
``docs/pillar.md`` documents and ``pillar.example`` shows exactly these keys,
and that defaults.yaml and the OS maps fit it. Plain data, no Salt imports:
the execution module and the runner reach it through the Salt loader
(``__utils__["pillar_schema.schema"]()``), tests and the bench by path.

Adding a key is one entry here (plus its line in docs/pillar.md and in
pillar.example, and its default in defaults.yaml or ``default=`` here)::

    "driver": Map("...", {
        ...
        "method": Str("how the driver is installed", choices=("runfile", "package")),
    }),

An entry is made by one of the constructors below. Common arguments:
``doc`` (one line), ``null=True`` (``null`` is a valid value),
``default=`` (only for keys defaults.yaml does not set), ``os_map=True``
(the OS maps set it: best left alone, or set under by_os_family/by_osfinger).
``check=`` names a value check of ``_utils/k8snvidia.py`` (``CHECKS``):
cidr4, duration, k8s_version, driver_version, url, https_url, sha256,
abs_path, port, dns_label, dns_name, endpoint, image, k8s_tag.
"""

UNSET = "<unset>"


def _entry(kind, doc, **kw):
    out = {"type": kind, "doc": doc}
    out.update({k: v for k, v in kw.items() if v is not None and v is not False and v is not UNSET})
    if kw.get("default", UNSET) is not UNSET:
        out["default"] = kw["default"]
    return out


def Str(doc, check=None, choices=None, null=False, default=UNSET, os_map=False, required_for=None):
    """A string (a YAML number or boolean is refused: quote it). ``required_for``
    (under ``cni:<name>``): must be set when ``cluster:cni`` is that name."""
    return _entry("str", doc, check=check, choices=tuple(choices) if choices else None, null=null,
                  default=default, os_map=os_map, required_for=required_for)


def Int(doc, minimum=None, maximum=None, choices=None, null=False, default=UNSET, os_map=False):
    """A whole number (not a boolean, not a string)."""
    return _entry("int", doc, minimum=minimum, maximum=maximum, choices=tuple(choices) if choices else None,
                  null=null, default=default, os_map=os_map)


def Bool(doc, null=False, default=UNSET, os_map=False):
    """true or false."""
    return _entry("bool", doc, null=null, default=default, os_map=os_map)


def List(doc, check=None, null=False, default=UNSET, os_map=False):
    """A list of strings (a single string is refused); ``check`` applies to each item."""
    return _entry("list", doc, check=check, null=null, default=default, os_map=os_map)


def Dict(doc, values="scalar", null=False, default=UNSET, os_map=False):
    """A mapping with free keys; values: 'scalar' (string, number, bool) or 'url'."""
    return _entry("dict", doc, values=values, null=null, default=default, os_map=os_map)


def Map(doc, keys, null=False, default=UNSET, os_map=False, ref=None):
    """A mapping with exactly these keys (any of them may be left out)."""
    return _entry("map", doc, keys=keys, null=null, default=default, os_map=os_map, ref=ref)


def Repo(doc, extra=None, null=False, os_map=False, nullable_name=False):
    """A package repository (docs/pillar.md: the repository keys, once)."""
    keys = {
        "name": Str("the .repo/.list file name (and the apt keyring's)", null=nullable_name),
        "humanname": Str("the yum repository's name", null=True),
        "baseurl": Str("the repository URL ({major}, {minor}, {os_id}, $basearch expanded)", check="url",
                       null=True),
        "gpgkey": Str("the URL of the repository's GPG key (yum: several, separated by spaces)", check="urls",
                      null=True),
        "gpgkey_format": Str("apt: the key's form, armored (saved as .asc) or binary (saved as .gpg)",
                             choices=("armored", "binary"), default="armored"),
        "gpgkey_sha256": Str("sha256 of the key file: the apt key download is checked too", check="sha256",
                             null=True, default=None),
        "gpgcheck": Bool("check packages (yum) / sign-check the repository (apt signed-by)"),
        "repo_gpgcheck": Bool("yum: check the signature of the repository metadata", default=False),
        "suite": Str("apt: what follows the URL in the deb line", null=True, default=None),
    }
    keys.update(extra or {})
    return Map(doc, keys, null=null, os_map=os_map, ref="repo")


# Kubernetes minors and their end of life (kubernetes.io releases page; the
# state of December 2026 in shared/guides/facts.md). pkgs.k8s.io has one
# repository per minor from v1.24 on. A minor after NEWEST has no release and
# no repository yet: add it here when it ships.
K8S_EOL = {
    24: "2023-07-28", 25: "2023-10-28", 26: "2024-02-28", 27: "2024-06-28", 28: "2024-10-28",
    29: "2025-02-28", 30: "2025-06-28", 31: "2025-10-28", 32: "2026-02-28", 33: "2026-06-28",
    34: "2026-10-27", 35: "2027-02-28", 36: "2027-06-28", 37: "2027-10-28",
}
K8S_SUPPORTED = (35, 36, 37)
PKGS_K8S_FIRST_MINOR = 24

# cluster:join_token_ttl: kubeadm itself has no maximum (its default is 24h,
# '0' never expires: kubeadm token create --help). The token only has to
# outlive one orchestration's join step, so K8sNvidia keeps it short.
JOIN_TOKEN_TTL_MAX_SECONDS = 3600

# The pod networks (CNIs): ``cluster:cni`` is one of these names, each has its
# settings under ``cni:<name>`` and its ports under ``ports:cni:<name>``. A
# setting with ``required_for="cni"`` must be set when that CNI is chosen.
# Adding a CNI is its entry here, its defaults and ports in
# salt/parameters/defaults.yaml and its manifest state in
# salt/kubernetes/master.sls (docs/changing.md).
CNIS = {
    "flannel": Map("flannel, rendered from a template", {
        "image": Str("flannel's image", check="image"),
        "version": Str("its tag", check="k8s_tag"),
        "cni_plugin_image": Str("the flannel CNI plugin's image", check="image"),
        "cni_plugin_version": Str("its tag", check="k8s_tag"),
        "backend": Str("flannel's backend", choices=("vxlan", "host-gw", "wireguard", "ipip", "udp")),
    }),
    "calico": Map("calico, applied from its manifest", {
        "manifest_url": Str("the calico manifest (required for cni: calico)", check="url", null=True,
                            required_for="cni"),
        "sha256": Str("its sha256 (required for cni: calico)", check="sha256", null=True, required_for="cni"),
    }),
}

# The driver's install methods (driver:method). Each has its states in
# salt/nvidia/driver/<method>.sls and its removal in clean.sls, its facts and
# acts in _states/nvidia_driver.py. ``pins_version``: the map's driver:version
# is what gets installed (checked by cluster.validate, compared by
# cluster.inventory); false: the OS's repositories decide the version.
DRIVER_METHODS = {
    "runfile": {"pins_version": True},
    "package": {"pins_version": False},
}

NODE = {
    "ip": Str("the node's IPv4 address (unique, inside cluster:node_network)", default=None),
    "role": Str("control-plane (exactly one node) or worker (at least one)", choices=("control-plane", "worker"),
                default=None),
    "os": Str("the osfinger the machine runs (a key of salt/parameters/osfinger.yaml): the OS the "
              "node's map is built for by cluster.validate, cluster.roster and cluster.view until "
              "its minion has reported its grains (then those decide)", check="osfinger",
              default="Rocky Linux-9"),
    "gpus": List("GPU model names as nvidia-smi prints them ([] for none)", check="gpu", default=[]),
    "hostname": Str("the Kubernetes node name (default: the minion id)", check="dns_label", null=True,
                    default=None),
    "overrides": {"type": "layer", "doc": "any keys of this schema, for this node only (last map layer)",
                  "default": {}},
}

# {proprietary: [...], open: [...]}: package lists of the driver's package method
_PER_MODULE_TYPE = {
    "proprietary": List("packages for the proprietary kernel module"),
    "open": List("packages for the open kernel module"),
}

SCHEMA = {
    "cluster": Map("cluster-wide settings", {
        "name": Str("the cluster's name", check="dns_label"),
        "node_network": Str("the network (IPv4 CIDR) of the node addresses; null: not checked", check="cidr4",
                            null=True),
        "pod_cidr": Str("kubeadm podSubnet and flannel's network (one IPv4 CIDR)", check="cidr4"),
        "service_cidr": Str("kubeadm serviceSubnet (one IPv4 CIDR)", check="cidr4"),
        "dns_domain": Str("kubeadm networking.dnsDomain", check="dns_name"),
        "control_plane_endpoint": Str("host[:port] of the API server; null: the control-plane ip:6443",
                                      check="endpoint", null=True),
        "cni": Str("the pod network", choices=tuple(CNIS)),
        "join_batch_size": Int("workers joined at the same time by the orchestration", minimum=1),
        "reboot_timeout": Int("seconds the orchestration waits for a rebooted node", minimum=1),
        "reboot_grace": Int("seconds a node still away is waited for once the other rebooted nodes are back",
                            minimum=1),
        "node_timeout": Int("seconds a node may stay silent before the orchestration fails it", minimum=1),
        "join_token_ttl": Str("lifetime of the kubeadm bootstrap token that joins workers (at most 1h)",
                              check="duration"),
        "admin_kubeconfig": Str("kubeadm's admin kubeconfig on the control plane", check="abs_path"),
        "admin_user": Str("a user that gets ~/.kube/config on the control plane", null=True),
    }),
    "nodes": {"type": "nodes", "doc": "minion id -> the node", "keys": NODE},
    "salt": Map("enrolment of minions (SLS salt.minion) and the salt-ssh roster", {
        "master": Str("the address minions connect to; null: the control-plane node's ip", null=True),
        "version": Str("salt-minion version installed by salt.minion", check="version"),
        "packages": List("Salt packages installed at version", os_map=True),
        "repo": Repo("Salt's package repository", os_map=True),
        "minion_config": Str("the minion config file written with master and id", check="abs_path"),
        "ssh_user": Str("the salt-ssh roster's user; another user than root gets sudo: true"),
    }),
    "host": Map("host preparation", {
        "swap_off": Bool("swap off now and in /etc/fstab"),
        "selinux": Str("the SELinux mode (RedHat family)", choices=("permissive", "enforcing", "disabled")),
        "selinux_managed": Bool("whether the SELinux step applies", os_map=True, default=False),
        "firewall": Map("the node's firewall", {
            "manage": Bool("open the ports of the node's role and of the CNI"),
            "disable": Bool("the seed's route: stop and disable the firewall instead"),
            "backend": Str("the firewall tool", choices=("firewalld", "ufw"), os_map=True),
        }),
        "kernel_modules": List("kernel modules loaded now and at boot"),
        "modules_load_file": Str("where the boot-time module list goes", check="abs_path"),
        "sysctl_file": Str("where the sysctls persist", check="abs_path"),
        "sysctl": Dict("sysctls set now and persistently (name: value)"),
        "kernel_module_evidence": Dict("module -> a path whose existence shows it built in, for a kernel with no "
                                       "/lib/modules here (a container)"),
        "cgroup": Str("the cgroup hierarchy the node boots with (v1: failCgroupV1 false, 1.38+ refused)",
                      choices=("v1", "v2"), os_map=True),
    }),
    "os_repos": Dict("CentOS 7: the OS's own repositories (name: URL), pointed at the vault", values="url",
                     os_map=True, default={}),
    "os_repo_gpgkey": Str("CentOS 7: the GPG key of os_repos", check="url", null=True, os_map=True,
                          default=None),
    "pkgrepo": Map("how package repositories are written", {
        "format": Str("yum or apt", choices=("yum", "apt"), null=True, os_map=True),
        "keyring_dir": Str("apt keyrings", check="abs_path"),
        "sources_dir": Str("apt source lists", check="abs_path"),
    }),
    "ports": Map("firewall ports by role and by CNI", {
        "control-plane": List("ports of the control plane", check="port"),
        "worker": List("ports of a worker", check="port"),
        "cni": Map("ports of each CNI", {name: List(f"{name}'s ports", check="port") for name in CNIS}),
    }),
    "kernel": Map("the kernel layer", {
        "manage": Bool("false: leave the kernel alone"),
        "package": Str("the kernel package installed and made the boot default", null=True, os_map=True),
        "devel_package": Str("its headers", null=True, os_map=True),
        "version": Str("the package version to pin; null: the repository's newest", check="version", null=True),
        "repo": Repo("the kernel repository (ELRepo on the RedHat family)", os_map=True, nullable_name=True),
        "boot_tool": Str("how the new kernel becomes the default",
                         choices=("grub2-mkconfig", "grubby", "update-grub"), null=True, os_map=True),
        "grub_config": Str("the grub.cfg the boot tool writes", check="abs_path", os_map=True),
        "stock_release": Str("the OS's own kernel line, e.g. '3.10' (kubeadm 1.32+ needs 4.19)", null=True,
                             os_map=True),
    }),
    "nouveau": Map("the nouveau blacklist", {
        "blacklist_file": Str("the modprobe.d blacklist file", check="abs_path"),
        "initramfs_tool": Str("rebuilds the initramfs", choices=("dracut", "update-initramfs"), null=True,
                              os_map=True),
    }),
    "driver": Map("the NVIDIA driver", {
        "manage": Bool("false: no driver (and no driver checks)"),
        "method": Str("how the driver is installed: NVIDIA's .run or the repositories' packages",
                      choices=tuple(DRIVER_METHODS), os_map=True),
        "stop_services": List("GPU services stopped while the driver is replaced (they hold /dev/nvidia*)"),
        "package": Map("the package method (OS map data; {branch}, {kernel}: the boot kernel)", {
            "branch": Int("the driver branch the OS's repositories ship, e.g. 580", minimum=100, maximum=999,
                          null=True, os_map=True),
            "packages": Map("driver and userspace packages per module type", _PER_MODULE_TYPE, os_map=True),
            "precompiled": Map("signed prebuilt module packages per module type", _PER_MODULE_TYPE, os_map=True),
            "dkms_packages": Map("DKMS module packages per module type", _PER_MODULE_TYPE, os_map=True),
            "dkms_module": Map("the DKMS module name dkms status must list, per module type", {
                "proprietary": Str("the DKMS module of the proprietary kernel module"),
                "open": Str("the DKMS module of the open kernel module"),
            }, os_map=True),
            "components": List("apt: the archive areas the packages come from, which the node's sources for its "
                               "suite must enable (Debian: contrib, non-free, non-free-firmware)", os_map=True),
            "module_stream": Map("dnf module streams per module type", {
                "proprietary": Str("the stream for the proprietary module"),
                "open": Str("the stream for the open module"),
            }, null=True, os_map=True),
            "repo": Repo("an extra repository for the packages (NVIDIA's CUDA repository on EL)", null=True,
                         os_map=True),
        }),
        "version": Str("the .run driver version, e.g. 580.95.05 (quoted if YAML would read a number)",
                       check="driver_version", null=True),
        "url": Str("where the .run installer comes from ({version} expanded)", check="url"),
        "sha256": Str("the installer's sha256 (required)", check="sha256", null=True),
        "kernel_module_type": Str("the kernel module flavour", choices=("auto", "open", "proprietary")),
        "dkms": Bool("register with DKMS so new kernels get the module"),
        "force": Bool("upgrade even while GPU processes run"),
        "cache_dir": Str("where downloads are kept", check="abs_path"),
        "prerequisites": List("packages installed before the driver", os_map=True),
        "headers_package": Str("headers for the running kernel when kernel:manage is false ({kernel} expanded)",
                               null=True, os_map=True),
        "headers_version": Str("the version headers_package is installed at ({kernel}, {kernel_noarch} expanded); "
                               "null: none", null=True, os_map=True),
        "extra_repo": Repo("a repository for the prerequisites (EPEL on RedHat)", null=True, os_map=True),
    }),
    "docker": Map("Docker CE", {
        "manage": Bool("false: no docker layer"),
        "repo": Repo("the Docker CE repository", os_map=True),
        "packages": List("docker packages installed"),
        "users": List("users added to the docker group"),
        "data_root": Str("data-root in daemon.json", check="abs_path", null=True),
        "registry_mirrors": List("registry-mirrors in daemon.json", check="http_url"),
        "exec_opts": List("exec-opts in daemon.json"),
        "daemon_json": Str("docker's daemon.json (merged, never overwritten)", check="abs_path"),
        "source": Str("upstream: Docker CE's repository and packages; distribution: the OS's own packages",
                      choices=("upstream", "distribution")),
        "distribution_packages": List("the OS's docker packages, for source: distribution"),
        "containerd_line": Str("the newest containerd.io line the OS's Docker repository ships", null=True,
                               os_map=True),
    }),
    "containerd": Map("containerd as the Kubernetes CRI", {
        "config": Str("containerd's config.toml", check="abs_path"),
        "dropin_dir": Str("the imported drop-in directory", check="abs_path"),
        "cri_dropin": Str("the CRI drop-in written by K8sNvidia", check="abs_path"),
        "packages": List("packages the installed containerd's version is read from (its config version follows)"),
        "systemd_cgroup": Bool("SystemdCgroup = true for runc and nvidia"),
        "sandbox_image": Str("the pause image; null: containerd's default", check="image", null=True),
    }),
    "container_toolkit": Map("the NVIDIA Container Toolkit", {
        "manage": Bool("false: no toolkit"),
        "version": Str("pins every package of packages; null: newest", check="version", null=True),
        "repo": Repo("NVIDIA's toolkit repository", os_map=True),
        "packages": List("toolkit packages installed"),
        "docker_default_runtime": Bool('"default-runtime": "nvidia" in daemon.json'),
        "runtime_path": Str("the nvidia runtime binary", check="abs_path"),
        "containerd_dropin": Str("containerd drop-in with the nvidia runtime", check="abs_path"),
        "containerd_default_runtime": Bool('default_runtime_name = "nvidia" for CRI pods'),
    }),
    "kubernetes": Map("kubelet, kubeadm, kubectl", {
        "manage": Bool("false: no Kubernetes packages"),
        "version": Str("the Kubernetes version, 1.<minor>.<patch>", check="k8s_version"),
        "repo": Repo("the Kubernetes package repository", os_map=True, extra={
            "exclude": List("yum: exclude= so yum update never moves these packages"),
        }),
        "packages": List("packages installed at the pinned version"),
        "package_version_suffix": Str("the package release appended to version", null=True, os_map=True),
        "protect": Str("how the pinned packages are kept from upgrades", choices=("exclude", "hold"), null=True,
                       os_map=True),
        "cri_dockerd": Map("cri-dockerd, for cri: cri-dockerd", {
            "source": Str("URL of the cri-dockerd .rpm/.deb for this OS", check="url", null=True),
            "sha256": Str("its sha256 (required with source)", check="sha256", null=True),
            "services": List("its units, enabled and running"),
        }),
        "cri": Str("the container runtime kubelet talks to", choices=("containerd", "cri-dockerd", "docker")),
        "image_repository": Str("kubeadm's imageRepository", check="image"),
        "cri_socket": Str("kubelet's CRI socket; null: derived from cri", null=True),
    }),
    "device_plugin": Map("the NVIDIA device plugin", {
        "image": Str("its image", check="image"),
        "version": Str("its image tag", check="k8s_tag"),
        "time_slicing_replicas": Int("each GPU advertised this many times (1: no sharing)", minimum=1),
        "namespace": Str("its namespace", check="dns_label"),
    }),
    "validation": Map("the GPU test pods of the orchestration", {
        "image": Str("one test pod image for every node (overrides images)", check="image", null=True),
        "images": Dict("driver branch -> the test pod's image (highest branch at or below the node's driver)"),
        "timeout": Int("seconds for a GPU test pod", minimum=1),
    }),
    "cni": Map("the CNI manifests", CNIS),
    "by_os_family": {"type": "layers", "names": "os_family",
                     "doc": "os_family (a key of os_family.yaml) -> any keys of this schema", "default": {}},
    "by_osfinger": {"type": "layers", "names": "osfinger",
                    "doc": "osfinger (a key of osfinger.yaml) -> any keys of this schema", "default": {}},
}

# The top-level keys that are not map sections (split off by build()).
SPLIT_KEYS = ("nodes", "by_os_family", "by_osfinger")


def schema():
    """
    The pillar schema (a nested mapping; see the module docstring).

    CLI Example:

    .. code-block:: bash

        salt-call --local pillar_schema.schema  # (a utils function: through __utils__)
    """
    return SCHEMA


def facts():
    """The tables the value checks use (Kubernetes releases, token TTL limit,
    each CNI's required settings, the driver methods)."""
    return {
        "cni_required": {name: {key: spec["doc"] for key, spec in entry["keys"].items() if spec.get("required_for")}
                         for name, entry in CNIS.items()},
        "driver_methods": DRIVER_METHODS,
        "k8s_eol": K8S_EOL,
        "k8s_supported": K8S_SUPPORTED,
        "pkgs_k8s_first_minor": PKGS_K8S_FIRST_MINOR,
        "join_token_ttl_max": JOIN_TOKEN_TTL_MAX_SECONDS,
    }
