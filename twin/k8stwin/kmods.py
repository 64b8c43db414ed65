"""Kernel modules, sysctl keys and swap of a twin node (shared by modprobe,
lsmod, rmmod, sysctl, swapoff/swapon and boot).

State keys: ``modules`` (loaded, in load order), ``sysctl`` (runtime values),
``swap`` ({"active"}). The node's ``/proc/sys`` view is mirrored under
``$K8STWIN_NODE_DIR/proc/sys`` (one file per existing key) so that Salt's
``sysctl`` module, which checks ``/proc/sys/<key>`` exists, can be pointed at
it by a bind mount.
"""

import os
import re
import shutil

from . import fs, state

# Kernel defaults of the keys the states touch (Linux defaults).
BASE_SYSCTL = {
    "net.ipv4.ip_forward": "0",
    "net.ipv4.conf.all.forwarding": "0",
    "net.ipv6.conf.all.forwarding": "0",
    "net.ipv4.ip_local_port_range": "32768\t60999",
    "vm.swappiness": "60",
    "vm.overcommit_memory": "0",
    "vm.max_map_count": "65530",
    "kernel.panic": "0",
    "kernel.pid_max": "32768",
    "fs.inotify.max_user_watches": "8192",
    "fs.inotify.max_user_instances": "128",
    "net.core.somaxconn": "4096",
}
# Keys that exist only while a module is loaded.
MODULE_SYSCTL = {
    "br_netfilter": {
        "net.bridge.bridge-nf-call-iptables": "1",
        "net.bridge.bridge-nf-call-ip6tables": "1",
        "net.bridge.bridge-nf-call-arptables": "1",
    },
}
# Modules a module pulls in (modules.dep order: dependency first).
DEPENDS = {"nouveau": ["drm"], "br_netfilter": ["bridge"], "nvidia_drm": ["nvidia_modeset", "drm"], "nvidia_modeset": ["nvidia"], "nvidia_uvm": ["nvidia"]}
SIZES = {"nouveau": 2240512, "drm": 626688, "br_netfilter": 24576, "bridge": 401408, "overlay": 151552, "nvidia": 56258560, "nvidia_uvm": 1437696, "nvidia_modeset": 1241088, "nvidia_drm": 69632, "ip_vs": 196608, "nf_conntrack": 172032}


def norm(name):
    return name.replace("-", "_")


def module_path(name, kver):
    """Node path of ``name``'s .ko for kernel ``kver`` (search the tree), or None."""
    base = f"/lib/modules/{kver}"
    full = fs.path(base)
    want = {norm(name) + ext for ext in (".ko", ".ko.xz", ".ko.gz", ".ko.zst")}
    for dirpath, _dirs, files in os.walk(full):
        for f in files:
            if norm(f) in want:
                return fs.unroot(os.path.join(dirpath, f))
    return None


def builtin(name, kver):
    text = fs.read(f"/lib/modules/{kver}/modules.builtin") or ""
    return any(norm(os.path.basename(line.strip())).split(".ko")[0] == norm(name) for line in text.splitlines())


def loaded():
    return list(state.read().get("modules") or [])


def holders(mods):
    """{module: [modules that depend on it]} among loaded ``mods``."""
    out = {m: [] for m in mods}
    for m in mods:
        for d in DEPENDS.get(m, []):
            if d in out:
                out[d].append(m)
    return out


def modprobe_conf():
    """(blacklisted names, install-commands) from /etc/modprobe.d and /lib/modprobe.d."""
    black, install = set(), {}
    for d in ("/lib/modprobe.d", "/usr/lib/modprobe.d", "/etc/modprobe.d", "/run/modprobe.d"):
        for f in fs.glob(d + "/*.conf"):
            for line in (fs.read(f) or "").splitlines():
                words = line.split("#", 1)[0].split()
                if len(words) >= 2 and words[0] == "blacklist":
                    black.add(norm(words[1]))
                elif len(words) >= 3 and words[0] == "install":
                    install[norm(words[1])] = " ".join(words[2:])
    return black, install


def add_loaded(name):
    """Mark ``name`` (and its dependencies) loaded, adding module-owned sysctl keys."""
    name = norm(name)
    with state.locked() as st:
        mods = st.setdefault("modules", [])
        for m in DEPENDS.get(name, []) + [name]:
            if m not in mods:
                mods.append(m)
                sysctl = st.setdefault("sysctl", {})
                for k, v in MODULE_SYSCTL.get(m, {}).items():
                    sysctl.setdefault(k, v)
    sync_proc_sys()


def drop_loaded(name):
    name = norm(name)
    with state.locked() as st:
        mods = st.setdefault("modules", [])
        if name in mods:
            mods.remove(name)
        for k in MODULE_SYSCTL.get(name, {}):
            (st.get("sysctl") or {}).pop(k, None)
    sync_proc_sys()


def sysctl_values():
    st = state.read()
    vals = dict(BASE_SYSCTL)
    vals.update(st.get("sysctl") or {})
    mods = st.get("modules") or []
    for m, keys in MODULE_SYSCTL.items():
        if m not in mods:
            for k in keys:
                vals.pop(k, None)
    return vals


def sync_proc_sys():
    """Mirror the existing sysctl keys into $K8STWIN_NODE_DIR/proc/sys."""
    try:
        base = os.path.join(state.node_dir(), "proc", "sys")
    except SystemExit:
        return
    vals = sysctl_values()
    want = {}
    for k, v in vals.items():
        want[os.path.join(base, *k.split("."))] = v
    if os.path.isdir(base):
        for dirpath, _dirs, files in os.walk(base):
            for f in files:
                p = os.path.join(dirpath, f)
                if p not in want:
                    os.unlink(p)
        for dirpath, dirs, _files in os.walk(base, topdown=False):
            for d in dirs:
                p = os.path.join(dirpath, d)
                if not os.listdir(p):
                    os.rmdir(p)
    for p, v in want.items():
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w", encoding="utf-8") as fh:
            fh.write(f"{v}\n")


def sysctl_files():
    """Config files in systemd-sysctl order: (basename-sorted, /etc wins), then /etc/sysctl.conf."""
    chosen = {}
    for d in ("/usr/lib/sysctl.d", "/lib/sysctl.d", "/run/sysctl.d", "/etc/sysctl.d"):
        for f in fs.glob(d + "/*.conf"):
            chosen[os.path.basename(f)] = f
    files = [chosen[k] for k in sorted(chosen)]
    if fs.isfile("/etc/sysctl.conf"):
        files.append("/etc/sysctl.conf")
    return files


def parse_sysctl_file(p):
    out = []
    for line in (fs.read(p) or "").splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if "=" not in line:
            continue
        k, v = line.split("=", 1)
        k = k.strip().lstrip("-").replace("/", ".")
        out.append((k, v.strip()))
    return out


def set_sysctl(key, value):
    with state.locked() as st:
        st.setdefault("sysctl", {})[key] = value
        if key == "net.ipv4.ip_forward":
            st["sysctl"]["net.ipv4.conf.all.forwarding"] = value
    sync_proc_sys()


def sync_proc_swaps():
    """Mirror the swap state into $K8STWIN_NODE_DIR/proc/swaps (header + the fstab device when active)."""
    try:
        p = os.path.join(state.node_dir(), "proc", "swaps")
    except SystemExit:
        return
    active = bool((state.read().get("swap") or {}).get("active"))
    dev = fstab_swap()
    os.makedirs(os.path.dirname(p), exist_ok=True)
    text = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
    if active and dev:
        kind = "file" if dev.startswith("/") and not dev.startswith("/dev/") else "partition"
        text += f"{dev:<40}{kind}\t2097148\t\t0\t\t-2\n"
    with open(p, "w", encoding="utf-8") as fh:
        fh.write(text)


def fstab_swap():
    for line in (fs.read("/etc/fstab") or "").splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 3 and words[2] == "swap":
            return words[0]
    return None


def reset_runtime():
    """Boot-time reset: runtime sysctl from defaults (+ loaded-module keys)."""
    with state.locked() as st:
        vals = {}
        for m in st.get("modules") or []:
            vals.update(MODULE_SYSCTL.get(m, {}))
        st["sysctl"] = vals


def clear_dir(p, keep=()):
    full = fs.path(p)
    if not os.path.isdir(full):
        return
    protect = [os.path.realpath(x) for x in (os.environ.get(state.ENV) or "", os.environ.get("K8STWIN_RUN") or "") if x]
    for name in os.listdir(full):
        if name in keep:
            continue
        q = os.path.join(full, name)
        real = os.path.realpath(q)
        # never reach into bind mounts or the twin's own directories
        if os.path.ismount(q) or any(p == real or p.startswith(real + os.sep) for p in protect):
            continue
        if os.path.isdir(q) and not os.path.islink(q):
            shutil.rmtree(q, ignore_errors=True)
        else:
            os.unlink(q)


def modules_load_entries():
    names = []
    chosen = {}
    for d in ("/usr/lib/modules-load.d", "/lib/modules-load.d", "/run/modules-load.d", "/etc/modules-load.d"):
        for f in fs.glob(d + "/*.conf"):
            chosen[os.path.basename(f)] = f
    files = [chosen[k] for k in sorted(chosen)]
    if fs.isfile("/etc/modules"):
        files.append("/etc/modules")
    for f in files:
        for line in (fs.read(f) or "").splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith(";") and re.match(r"^[\w-]+$", line):
                names.append(line)
    return names
