"""
Emulated ``containerd`` binary (``main(argv) -> rc``): ``--version``,
``config default`` (the default config.toml of the installed containerd:
version 2 for 1.x, version 3 for 2.x; an abridged but same-shaped copy of
``containerd config default`` -- the sections and keys states edit are
verbatim: ``SystemdCgroup = false``, ``sandbox_image``, ``default_runtime_name``,
``disabled_plugins``) and ``config dump`` (the file plus its imports, merged).
The daemon itself runs as the ``containerd`` service (systemctl).
"""

import copy
import os
import sys

from k8stwin import kube, state, tomlw
from k8stwin.goflags import FlagError, parse

CONFIG = "/etc/containerd/config.toml"

V2 = """disabled_plugins = []
imports = []
oom_score = 0
plugin_dir = ""
required_plugins = []
root = "/var/lib/containerd"
state = "/run/containerd"
temp = ""
version = 2

[cgroup]
  path = ""

[debug]
  address = ""
  format = ""
  gid = 0
  level = ""
  uid = 0

[grpc]
  address = "/run/containerd/containerd.sock"
  gid = 0
  max_recv_message_size = 16777216
  max_send_message_size = 16777216
  tcp_address = ""
  tcp_tls_ca = ""
  tcp_tls_cert = ""
  tcp_tls_key = ""
  uid = 0

[metrics]
  address = ""
  grpc_histogram = false

[plugins]

  [plugins."io.containerd.gc.v1.scheduler"]
    deletion_threshold = 0
    mutation_threshold = 100
    pause_threshold = 0.02
    schedule_delay = "0s"
    startup_delay = "100ms"

  [plugins."io.containerd.grpc.v1.cri"]
    cdi_spec_dirs = ["/etc/cdi", "/var/run/cdi"]
    device_ownership_from_security_context = false
    disable_apparmor = false
    disable_cgroup = false
    disable_hugetlb_controller = true
    disable_proc_mount = false
    disable_tcp_service = true
    drain_exec_sync_io_timeout = "0s"
    enable_cdi = false
    enable_selinux = false
    enable_tls_streaming = false
    enable_unprivileged_icmp = false
    enable_unprivileged_ports = false
    max_concurrent_downloads = 3
    max_container_log_line_size = 16384
    netns_mounts_under_state_dir = false
    restrict_oom_score_adj = false
    sandbox_image = "{pause}"
    selinux_category_range = 1024
    stats_collect_period = 10
    stream_idle_timeout = "4h0m0s"
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    systemd_cgroup = false
    tolerate_missing_hugetlb_controller = true
    unset_seccomp_profile = ""

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/opt/cni/bin"
      conf_dir = "/etc/cni/net.d"
      conf_template = ""
      ip_pref = ""
      max_conf_num = 1
      setup_serially = false

    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      disable_snapshot_annotations = true
      discard_unpacked_layers = false
      ignore_blockio_not_enabled_errors = false
      ignore_rdt_not_enabled_errors = false
      no_pivot = false
      snapshotter = "overlayfs"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
          base_runtime_spec = ""
          cni_conf_dir = ""
          cni_max_conf_num = 0
          container_annotations = []
          pod_annotations = []
          privileged_without_host_devices = false
          privileged_without_host_devices_all_devices_allowed = false
          runtime_engine = ""
          runtime_path = ""
          runtime_root = ""
          runtime_type = "io.containerd.runc.v2"
          sandbox_mode = "podsandbox"
          snapshotter = ""

          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
            BinaryName = ""
            CriuImagePath = ""
            CriuPath = ""
            CriuWorkPath = ""
            IoGid = 0
            IoUid = 0
            NoNewKeyring = false
            NoPivotRoot = false
            Root = ""
            ShimCgroup = ""
            SystemdCgroup = false

    [plugins."io.containerd.grpc.v1.cri".image_decryption]
      key_model = "node"

    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = ""

  [plugins."io.containerd.internal.v1.opt"]
    path = "/opt/containerd"

  [plugins."io.containerd.runtime.v1.linux"]
    no_shim = false
    runtime = "runc"
    runtime_root = ""
    shim = "containerd-shim"
    shim_debug = false

  [plugins."io.containerd.runtime.v2.task"]
    platforms = ["linux/amd64"]
    sched_core = false

  [plugins."io.containerd.snapshotter.v1.overlayfs"]
    mount_options = []
    root_path = ""
    sync_remove = false
    upperdir_label = false

[proxy_plugins]

[stream_processors]

[timeouts]
  "io.containerd.timeout.bolt.open" = "0s"
  "io.containerd.timeout.metrics.shimstats" = "2s"
  "io.containerd.timeout.shim.cleanup" = "5s"
  "io.containerd.timeout.shim.load" = "5s"
  "io.containerd.timeout.shim.shutdown" = "3s"
  "io.containerd.timeout.task.state" = "2s"

[ttrpc]
  address = ""
  gid = 0
  uid = 0
"""

V3 = """version = 3
root = '/var/lib/containerd'
state = '/run/containerd'
temp = ''
disabled_plugins = []
required_plugins = []
oom_score = 0
imports = []

[grpc]
  address = '/run/containerd/containerd.sock'
  tcp_address = ''
  tcp_tls_ca = ''
  tcp_tls_cert = ''
  tcp_tls_key = ''
  uid = 0
  gid = 0
  max_recv_message_size = 16777216
  max_send_message_size = 16777216

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    disable_snapshot_annotations = true
    discard_unpacked_layers = false
    max_concurrent_downloads = 3

    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '{pause}'

    [plugins.'io.containerd.cri.v1.images'.registry]
      config_path = ''

  [plugins.'io.containerd.cri.v1.runtime']
    enable_selinux = false
    max_container_log_line_size = 16384
    enable_cdi = true
    cdi_spec_dirs = ['/etc/cdi', '/var/run/cdi']

    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      ignore_blockio_not_enabled_errors = false
      ignore_rdt_not_enabled_errors = false

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes]
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
          runtime_type = 'io.containerd.runc.v2'
          runtime_path = ''
          pod_annotations = []
          container_annotations = []
          privileged_without_host_devices = false
          privileged_without_host_devices_all_devices_allowed = false
          base_runtime_spec = ''
          cni_conf_dir = ''
          cni_max_conf_num = 0
          snapshotter = ''
          sandboxer = 'podsandbox'
          io_type = ''

          [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
            BinaryName = ''
            CriuImagePath = ''
            CriuWorkPath = ''
            IoGid = 0
            IoUid = 0
            NoNewKeyring = false
            Root = ''
            ShimCgroup = ''
            SystemdCgroup = false

    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dir = '/opt/cni/bin'
      conf_dir = '/etc/cni/net.d'
      max_conf_num = 1
      setup_serially = false
      conf_template = ''
      ip_pref = ''
      use_internal_loopback = false

  [plugins.'io.containerd.grpc.v1.cri']
    disable_tcp_service = true
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'
    stream_idle_timeout = '4h0m0s'
    enable_tls_streaming = false

[cgroup]
  path = ''

[timeouts]
  'io.containerd.timeout.bolt.open' = '0s'
  'io.containerd.timeout.metrics.shimstats' = '2s'
  'io.containerd.timeout.shim.cleanup' = '5s'
  'io.containerd.timeout.shim.load' = '5s'
  'io.containerd.timeout.shim.shutdown' = '3s'
  'io.containerd.timeout.task.state' = '2s'
"""

# sandbox (pause) image of each containerd minor (containerd pkg/cri/config defaults)
PAUSE = {(1, 2): "k8s.gcr.io/pause:3.1", (1, 3): "k8s.gcr.io/pause:3.1", (1, 4): "k8s.gcr.io/pause:3.2",
         (1, 5): "k8s.gcr.io/pause:3.5", (1, 6): "registry.k8s.io/pause:3.6", (1, 7): "registry.k8s.io/pause:3.8"}


def default_config(ver):
    if ver[0] >= 2:
        return V3.replace("{pause}", "registry.k8s.io/pause:3.10")
    return V2.replace("{pause}", PAUSE.get(ver[:2], "registry.k8s.io/pause:3.8"))


# ---------------------------------------------------------------------------
# config loading, as the real containerd does it (checked against Debian's
# containerd 1.6.20, 1.7.24 and 2.1.9 in tests/twin_judges/test_containerd.py):
# containerd services/server/config/config.go (1.x) and
# cmd/containerd/server/config/config.go (2.x) LoadConfig / mergeConfig /
# ValidateV2 / ValidateVersion, and the CRI plugins' config migration.

# v1MigratePluginName
V1_PLUGINS = {
    "cri": "io.containerd.grpc.v1.cri", "cgroups": "io.containerd.monitor.v1.cgroups",
    "linux": "io.containerd.runtime.v1.linux", "scheduler": "io.containerd.gc.v1.scheduler",
    "bolt": "io.containerd.metadata.v1.bolt", "task": "io.containerd.runtime.v2.task",
    "opt": "io.containerd.internal.v1.opt", "restart": "io.containerd.internal.v1.restart",
    "tracing": "io.containerd.internal.v1.tracing", "otlp": "io.containerd.tracing.processor.v1.otlp",
    "aufs": "io.containerd.snapshotter.v1.aufs", "btrfs": "io.containerd.snapshotter.v1.btrfs",
    "devmapper": "io.containerd.snapshotter.v1.devmapper", "native": "io.containerd.snapshotter.v1.native",
    "overlayfs": "io.containerd.snapshotter.v1.overlayfs", "zfs": "io.containerd.snapshotter.v1.zfs",
}
# keys of the 2.x CRI grpc plugin that move to the images plugin (plugins/cri/images configMigration)
_IMAGE_KEYS = ("snapshotter", "disable_snapshot_annotations", "discard_unpacked_layers", "max_concurrent_downloads",
               "image_pull_progress_timeout", "image_pull_with_sync_fs", "stats_collect_period", "registry",
               "image_decryption")


class LoadError(Exception):
    """containerd refuses its configuration (``containerd: <message>``, rc 1)."""


def native_version(ver):
    """The config version a containerd release writes and reads natively."""
    if ver[0] < 2:
        return 2
    return 3 if tuple(ver[:2]) < (2, 3) else 4


def _v1_name(name):
    if "." in name:
        return name
    if name in V1_PLUGINS:
        return V1_PLUGINS[name]
    if name.endswith("-service"):
        return "io.containerd.service.v1." + name
    return "io.containerd.grpc.v1." + name


def _deep(base, over):
    """mergo.Merge(WithOverride): maps key by key, empty values do not override."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep(out[k], v)
        elif v in (None, "", 0, False, [], {}) and k in out:
            continue
        else:
            out[k] = copy.deepcopy(v)
    return out


def _merge(to, frm, ver):
    """mergeConfig: 1.x appends lists and replaces each plugin's whole
    section; 2.x appends unique list items and merges plugins key by key."""
    out = dict(to)
    for k, v in frm.items():
        if k == "plugins" and isinstance(v, dict):
            plugins = dict(out.get("plugins") or {})
            for name, section in v.items():
                if ver[0] < 2 or not isinstance(section, dict) or not isinstance(plugins.get(name), dict):
                    plugins[name] = copy.deepcopy(section)
                else:
                    plugins[name] = _deep(plugins[name], section)
            out["plugins"] = plugins
        elif isinstance(v, list):
            old = list(out.get(k) or [])
            out[k] = old + [x for x in v if ver[0] < 2 or x not in old]
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep(out[k], v)
        elif v in (None, "", 0, False) and k in out:
            continue
        else:
            out[k] = copy.deepcopy(v)
    return out


def _migrate_cri(cfg):
    """CRI plugins' ConfigMigration (2.x reading a version 2 config): the
    grpc CRI section is split into cri.v1.runtime and cri.v1.images."""
    plugins = cfg.setdefault("plugins", {})
    src = plugins.pop("io.containerd.grpc.v1.cri", None)
    if not isinstance(src, dict):
        return
    runtime = dict(plugins.get("io.containerd.cri.v1.runtime") or {})
    images = dict(plugins.get("io.containerd.cri.v1.images") or {})
    server = {}
    for k, v in src.items():
        if k == "sandbox_image":
            images.setdefault("pinned_images", {})["sandbox"] = v
        elif k in _IMAGE_KEYS:
            images[k] = v
        elif k == "containerd" and isinstance(v, dict):
            ctr = dict(v)
            for ik in ("snapshotter", "disable_snapshot_annotations", "discard_unpacked_layers"):
                if ik in ctr:
                    images[ik] = ctr.pop(ik)
            runtime["containerd"] = _deep(runtime.get("containerd") or {}, ctr)
        elif k in ("disable_tcp_service", "stream_server_address", "stream_server_port", "stream_idle_timeout",
                   "enable_tls_streaming", "x509_key_pair_streaming"):
            server[k] = v
        else:
            runtime[k] = v
    plugins["io.containerd.cri.v1.runtime"] = runtime
    plugins["io.containerd.cri.v1.images"] = images
    if server:
        plugins["io.containerd.grpc.v1.cri"] = server


def load(read, glob, ver, path=CONFIG):
    """The effective configuration of containerd ``ver`` started with
    ``--config path``: (merged config, version). ``read(path)`` -> text or
    None, ``glob(pattern)`` -> sorted paths. Raises LoadError with the real
    message where containerd refuses to start."""
    native = native_version(ver)
    out = {"version": native} if ver[0] >= 2 else {}
    loaded, pending = [], [path]
    last = path
    while pending:
        last, pending = pending[0], pending[1:]
        if last in loaded:
            continue
        text = read(last)
        if text is None:
            if last == path and not loaded:
                break
            raise LoadError(f"failed to load TOML: open {last}: no such file or directory" if ver[0] < 2
                            else f"open {last}: no such file or directory")
        try:
            cfg = tomlw.loads(text)
        except Exception as exc:  # noqa: BLE001 - containerd refuses any TOML error
            raise LoadError(f"failed to load TOML: {last}: {exc}" if ver[0] < 2
                            else f"failed to unmarshal TOML: {exc}") from None
        if ver[0] >= 2 and int(cfg.get("version") or 0) in (0, 1):
            # 2.x migrates version 0/1 files (plugin names) to the running version
            cfg["plugins"] = {_v1_name(k): v for k, v in (cfg.get("plugins") or {}).items()}
            for key in ("disabled_plugins", "required_plugins"):
                if key in cfg:
                    cfg[key] = [_v1_name(x) for x in cfg[key]]
            cfg["version"] = int(out.get("version") or native)
        imports = list(cfg.get("imports") or [])
        out = _merge(out, {k: v for k, v in cfg.items() if k != "imports"}, ver)
        loaded.append(last)
        for imp in imports:
            imp = imp if imp.startswith("/") else os.path.join(os.path.dirname(last), imp)
            pending += glob(imp) if "*" in imp else [imp]
    out["imports"] = loaded
    version = int(out.get("version") or 0)
    if ver[0] < 2:
        version = version or 1
        strict = tuple(ver) >= ((1, 6, 32) if ver[:2] == (1, 6) else (1, 7, 17))
        if version > 2 and strict:
            raise LoadError(f"failed to load TOML from {last}: unsupported config version `{version}`")
        if version >= 2:
            def ok(p):
                return len(p.split(".")) >= 4 and (not strict or p.startswith("io.containerd."))

            for key, what in (("disabled_plugins", "disabled plugin"), ("required_plugins", "required plugin")):
                for p in out.get(key) or []:
                    if not ok(p):
                        raise LoadError(f'failed to load TOML from {last}: invalid {what} URI "{p}" '
                                        "expect io.containerd.x.vx")
            for p in out.get("plugins") or {}:
                if not ok(p):
                    raise LoadError(f'failed to load TOML from {last}: invalid plugin key URI "{p}" '
                                    "expect io.containerd.x.vx")
        else:
            # a version 1 file: short plugin names, read as their full ids
            # (disabled_plugins keep theirs: V1DisabledFilter matches both)
            out["plugins"] = {_v1_name(k): v for k, v in (out.get("plugins") or {}).items()}
        # 1.x reads (and dumps) every config as version 2; the plugin sections
        # of a higher version are unknown plugins to it, ignored
        version = 2
    else:
        if version > native:
            raise LoadError(f"failed to load TOML from {last}: expected containerd config version equal to or "
                            f"less than `{native}`, got `{version}`")
        for key, what in (("disabled_plugins", "disabled plugin"), ("required_plugins", "required plugin")):
            for p in out.get(key) or []:
                if "." not in p:
                    raise LoadError(f'failed to load TOML from {last}: invalid {what} URI "{p}" '
                                    "expect io.containerd.x.vx")
        if version < native:
            _migrate_cri(out)
            out["version"] = version = native
    out["version"] = version
    return out, version


def effective_cri(cfg, ver):
    """(CRI section with the plugin's defaults under it, plugin name) of a
    loaded config: what the CRI plugin runs with."""
    version = int(cfg.get("version") or 1)
    defaults = tomlw.loads(default_config(ver))
    plugins = cfg.get("plugins") or {}
    if version >= 3:
        name = "io.containerd.cri.v1.runtime"
        sect = _deep(defaults["plugins"].get(name) or {}, plugins.get(name) or {})
        images = _deep(defaults["plugins"].get("io.containerd.cri.v1.images") or {},
                       plugins.get("io.containerd.cri.v1.images") or {})
        sect["sandbox_image"] = (images.get("pinned_images") or {}).get("sandbox")
        return sect, name
    name = "io.containerd.grpc.v1.cri"
    base = (defaults.get("plugins") or {}).get(name) or {}
    given = plugins.get(name) or {}
    sect = _deep(base, given)
    runtimes = (given.get("containerd") or {}).get("runtimes")
    if isinstance(runtimes, dict):
        # decoding into the plugin's defaults replaces the runtimes map
        sect["containerd"]["runtimes"] = copy.deepcopy(runtimes)
    return sect, name


def _version(st):
    text = kube.package_version(st, "containerd.io", "containerd")
    return text, kube.parse_version(text)


def main(argv):
    st = state.read()
    text, ver = _version(st)
    if ver is None:
        sys.stderr.write(f"{os.path.basename(argv[0])}: command not found\n")
        return 127
    try:
        opts, pos = parse(argv[1:], {"version": "bool", "help": "bool", "config": "str", "address": "str",
                                     "log-level": "str", "root": "str", "state": "str"},
                          {"v": "version", "h": "help", "c": "config", "a": "address", "l": "log-level"})
    except FlagError as exc:
        flag = str(exc).split(": ", 1)[-1]
        sys.stderr.write(f"Incorrect Usage: flag provided but not defined: {flag.lstrip('-').join(['-', ''])}\n")
        return 1
    if opts.get("version") or pos[:1] == ["--version"]:
        pkg = "containerd.io" if "containerd.io" in (st.get("packages") or {}) else "containerd"
        sys.stdout.write(f"containerd {pkg} {text.split('-')[0]} 05044ec0a9a75232cad458027ca83437aae3f4da\n")
        return 0
    if pos[:2] == ["config", "default"]:
        sys.stdout.write(default_config(ver))
        return 0
    if pos[:2] == ["config", "dump"]:
        v = kube.here_view()
        try:
            cfg, _ = load(v.read_file, v.glob, ver, opts.get("config") or CONFIG)
        except LoadError as exc:
            sys.stderr.write(f"containerd: {exc}\n")
            return 1
        sys.stdout.write(tomlw.dumps(cfg))
        return 0
    if pos[:1] == ["config"]:
        sys.stderr.write("NAME:\n   containerd config - Information on the containerd config\n")
        return 1
    sys.stderr.write("containerd: the twin runs containerd as a service only (systemctl start containerd)\n")
    return 1


if __name__ == "__main__":  # pragma: no cover
    state.run_tool(main)
