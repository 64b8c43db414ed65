"""
Machine images of the twin: the per-OS lower layers every node of that OS
shares (host side, at ``up``), and the boot step run inside a node at each
boot (first boot: identity, tool links, base image via
``k8stwin.boot.first_boot``; later boots: ``k8stwin.boot.on_boot``).
"""

import json
import os
import shutil
import sys
import uuid

from . import os_profiles
from .machine import LAYERS, layer_name

# Host files a process needs to run (name service, dynamic linker, TLS, time
# zone). They are copied into every image's /etc; nothing else of the host's
# /etc is visible in a node.
HOST_ETC = [
    "passwd", "group", "shadow", "gshadow", "hosts", "nsswitch.conf", "host.conf",
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "ssl", "ca-certificates",
    "protocols", "services", "resolv.conf", "alternatives", "mime.types", "login.defs",
]

HOST_HARDWARE_TOOLS = ["lspci", "lshw", "dmidecode", "lsusb"]

TWIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DISPATCH = os.path.join(TWIN_DIR, "bin", "_dispatch")


def _copy(src, dst):
    if os.path.isdir(src) and not os.path.islink(src):
        shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
    elif os.path.exists(src):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(src, dst, follow_symlinks=True)


def _write_file(root, rel, content):
    full = os.path.join(root, rel)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    if os.path.lexists(full):
        os.unlink(full)
    if isinstance(content, dict):
        os.symlink(content["link"], full)
    else:
        with open(full, "w", encoding="utf-8") as fh:
            fh.write(content)


def build(image_dir, os_key):
    """Create the lower layers for ``os_key`` under ``image_dir`` (idempotent)."""
    prof = os_profiles.profile(os_key)
    marker = os.path.join(image_dir, ".built")
    if os.path.exists(marker):
        return image_dir
    for path, _lower in LAYERS:
        os.makedirs(os.path.join(image_dir, layer_name(path)), exist_ok=True)
    etc = os.path.join(image_dir, "etc")
    for name in HOST_ETC:
        _copy(os.path.join("/etc", name), os.path.join(etc, name))
    os.chmod(os.path.join(image_dir, "root"), 0o700)
    var = os.path.join(image_dir, "var")
    for sub in ("lib", "log", "cache", "spool", "opt", "local", "empty", "mail"):
        os.makedirs(os.path.join(var, sub), exist_ok=True)
    os.makedirs(os.path.join(var, "tmp"), exist_ok=True)
    os.chmod(os.path.join(var, "tmp"), 0o1777)
    for name, target in (("run", "../run"), ("lock", "../run/lock")):
        if not os.path.lexists(os.path.join(var, name)):
            os.symlink(target, os.path.join(var, name))
    # Identity files live in /etc and /usr/lib; /usr/lib/os-release goes to
    # the /usr layer at first boot (the /usr lower is the host's own).
    for rel, content in prof["files"].items():
        if rel.startswith("etc/"):
            _write_file(image_dir, rel, content)
    for stale in ("debian_version", "lsb-release", "os-release"):
        if f"etc/{stale}" not in prof["files"]:
            path = os.path.join(etc, stale)
            if os.path.lexists(path):
                os.unlink(path)
    with open(marker, "w", encoding="utf-8") as fh:
        fh.write(os_key + "\n")
    return image_dir


# --------------------------------------------------------------------------
# inside the node


def _node():
    from . import state

    return state.node()


def _hook(module, func, **kwargs):
    """(found, result) of k8stwin.<module>.<func>(**kwargs) if another part provides it."""
    import importlib

    try:
        mod = importlib.import_module("k8stwin." + module)
    except ModuleNotFoundError as exc:
        if exc.name != "k8stwin." + module:
            raise
        return False, None
    fn = getattr(mod, func, None)
    if fn is None:
        return False, None
    return True, fn(**kwargs)


def link_tools(info):
    """Point every tool of the node's OS at the dispatcher, in the node's
    bin dir and in its /usr/bin and /usr/sbin; remove the other family's."""
    from . import state

    bindir = os.path.join(state.node_dir(), "bin")
    os.makedirs(bindir, exist_ok=True)
    tools = info.get("tools") or os_profiles.tools(info["os_key"])
    blocked = os_profiles.BLOCKED_TOOLS
    for name in tools + blocked:
        for d in (bindir, "/usr/bin", "/usr/sbin"):
            path = os.path.join(d, name)
            if os.path.islink(path) and os.readlink(path) == DISPATCH:
                continue
            if os.path.lexists(path):
                os.unlink(path)
            os.symlink(DISPATCH, path)
    # Host programs that would show the host's hardware: emulated when a
    # tool module exists, else absent from the node.
    import importlib.util

    for name in HOST_HARDWARE_TOOLS:
        emulated = importlib.util.find_spec("k8stwin.tools." + name.replace("-", "_")) is not None
        for d in ("/usr/bin", "/usr/sbin"):
            path = os.path.join(d, name)
            if os.path.lexists(path) and not (os.path.islink(path) and os.readlink(path) == DISPATCH):
                os.unlink(path)
            if emulated and not os.path.lexists(path):
                os.symlink(DISPATCH, path)
        if emulated and not os.path.lexists(os.path.join(bindir, name)):
            os.symlink(DISPATCH, os.path.join(bindir, name))
    for name in os_profiles.foreign_tools(info["os_key"]):
        for d in ("/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"):
            path = os.path.join(d, name)
            if os.path.lexists(path):
                os.unlink(path)


def _identity(info):
    prof = os_profiles.profile(info["os_key"])
    for rel, content in prof["files"].items():
        _write_file("/", rel, content)
    with open("/etc/hostname", "w", encoding="utf-8") as fh:
        fh.write(info["id"] + "\n")
    if not os.path.exists("/etc/machine-id"):
        with open("/etc/machine-id", "w", encoding="utf-8") as fh:
            fh.write(uuid.uuid4().hex + "\n")


def _fallback_first_boot(info):
    """Minimal base image when k8stwin.boot.first_boot is not there: the
    running kernel's files and a swap line in fstab."""
    kver = info["kernel"]
    os.makedirs(f"/lib/modules/{kver}/kernel", exist_ok=True)
    for name in (f"vmlinuz-{kver}",):
        path = os.path.join("/boot", name)
        if not os.path.exists(path):
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(f"twin kernel image {kver}\n")
    if not os.path.exists("/etc/fstab"):
        with open("/etc/fstab", "w", encoding="utf-8") as fh:
            fh.write("/dev/mapper/root  /     xfs   defaults  0 0\n/dev/mapper/swap  swap  swap  defaults  0 0\n")


def _fallback_on_boot():
    """Minimal reboot when k8stwin.boot.on_boot is not there: same kernel,
    runtime module list and sysctls reset."""
    from . import state

    with state.locked() as st:
        st["modules"] = []
        st["sysctl"] = {}


def boot_step(mode):
    """Run at each boot inside the node, before the minion starts.

    mode "first" (the machine's first boot, at ``up``) or "reboot"."""
    from . import state

    info = _node()
    _identity(info)
    link_tools(info)
    before = state.read().get("reboots", 0)
    if mode == "first":
        # The OS base image: boot.first_boot() if the OS part provides it,
        # else osbase.provision(), else the twin's minimal fallback; then the
        # same boot sequence as every later boot, on the cluster file's kernel.
        found, _ = _hook("boot", "first_boot")
        if not found:
            found, _ = _hook("osbase", "provision")
        if not found:
            _fallback_first_boot(info)
        found, _ = _hook("boot", "on_boot", running=info["kernel"])
        if not found:
            _hook("hw", "sync")
        with state.locked() as st:
            st["reboots"] = before
    else:
        found, _ = _hook("boot", "on_boot")
        if not found:
            _fallback_on_boot()
            _hook("hw", "sync")
        with state.locked() as st:
            if st.get("reboots", 0) == before:
                st["reboots"] = before + 1
    st = state.read()
    sys.stdout.write(json.dumps({"boot": mode, "kernel": (st.get("kernel") or {}).get("running"),
                                 "reboots": st.get("reboots", 0), "modules": st.get("modules")}) + "\n")
    return 0
