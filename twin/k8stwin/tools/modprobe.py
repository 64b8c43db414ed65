"""Emulated modprobe (kmod): load/remove with dependencies, the real messages.

A module loads only if its .ko exists under /lib/modules/<running kernel>/.
nvidia fails with "No such device" when the node has no GPU or nouveau holds it.
Loading or removing nouveau/nvidia calls k8stwin.hw.sync() when present.
"""

import os

from .. import fs, kmods, state

GPU_MODULES = ("nouveau", "nvidia", "nvidia_uvm", "nvidia_modeset", "nvidia_drm")


def _gpus():
    try:
        return state.node().get("gpus") or []
    except (OSError, ValueError):
        return []


def load(name, quiet=False, prog="modprobe"):
    """Load ``name``; returns rc and prints modprobe's messages."""
    kver = fs.running_kernel()
    n = kmods.norm(name)
    _fam, major, _key = fs.node_os()
    if n in kmods.loaded():
        return 0
    black, install = kmods.modprobe_conf()
    if n in install:
        cmd = install[n]
        if cmd.split()[0] in ("/bin/false", "/usr/bin/false", "false"):
            if not quiet:
                fs.err(f"{prog}: ERROR: Error running install command '{cmd}' for module {n}: retcode 1" if major >= 8 else f"{prog}: ERROR: Error running install command for {n}")
                fs.err(f"{prog}: ERROR: could not insert '{n}': Invalid argument")
            return 1
        if cmd.split()[0] in ("/bin/true", "/usr/bin/true", "true"):
            return 0
    if not kmods.module_path(n, kver):
        if kmods.builtin(n, kver):
            return 0
        if not quiet:
            if major == 7:
                fs.err(f"{prog}: FATAL: Module {name} not found.")
            else:
                fs.err(f"{prog}: FATAL: Module {name} not found in directory /lib/modules/{kver}")
        return 1
    if n.startswith("nvidia"):
        if not _gpus() or "nouveau" in kmods.loaded():
            if not quiet:
                fs.err(f"{prog}: ERROR: could not insert '{n}': No such device")
            return 1
    for dep in kmods.DEPENDS.get(n, []):
        if dep not in kmods.loaded():
            rc = load(dep, quiet, prog)
            if rc:
                return rc
    kmods.add_loaded(n)
    fs.hook("hw", "sync")
    return 0


def remove(name, quiet=False, prog="modprobe", verb="modprobe"):
    n = kmods.norm(name)
    mods = kmods.loaded()
    if n not in mods:
        if verb == "rmmod":
            fs.err(f"rmmod: ERROR: Module {n} is not currently loaded")
            return 1
        if not quiet:
            fs.err(f"{prog}: FATAL: Module {n} is not in kernel.")
        return 1
    users = kmods.holders(mods).get(n) or []
    if n == "nouveau" and _gpus():
        # fbcon holds the console on the GPU nouveau drives: unloading needs a reboot
        fs.err("rmmod: ERROR: Module nouveau is in use" if verb == "rmmod" else f"{prog}: FATAL: Module nouveau is in use.")
        return 1
    if users:
        fs.err(f"rmmod: ERROR: Module {n} is in use by: {' '.join(users)}" if verb == "rmmod" else f"{prog}: FATAL: Module {n} is in use.")
        return 1
    if n.startswith("nvidia") and state.read().get("gpu_processes"):
        fs.err(f"rmmod: ERROR: Module {n} is in use" if verb == "rmmod" else f"{prog}: FATAL: Module {n} is in use.")
        return 1
    kmods.drop_loaded(n)
    if verb != "rmmod":
        for dep in kmods.DEPENDS.get(n, []):
            if dep in kmods.loaded() and not kmods.holders(kmods.loaded()).get(dep):
                kmods.drop_loaded(dep)
    fs.hook("hw", "sync")
    return 0


def main(argv):
    prog = os.path.basename(argv[0])
    args = argv[1:]
    rm = quiet = dry = all_names = False
    names = []
    for a in args:
        if a in ("-r", "--remove"):
            rm = True
        elif a in ("-q", "--quiet"):
            quiet = True
        elif a in ("-n", "--dry-run", "--show"):
            dry = True
        elif a in ("-a", "--all"):
            all_names = True
        elif a in ("-v", "--verbose", "-b", "--use-blacklist", "--first-time", "-f", "--force", "-s", "--syslog"):
            pass
        elif a.startswith("-"):
            fs.err(f"{prog}: unrecognized option '{a}'" if a.startswith("--") else f"{prog}: invalid option -- '{a[1:2]}'")
            fs.err(f"{prog}: ERROR: unknown command line option")
            return 1
        else:
            names.append(a)
    if not names:
        fs.err(f"{prog}: ERROR: missing parameters. See -h.")
        return 1
    if not all_names and not rm:
        names = names[:1]  # the rest are module parameters
    if dry:
        return 0
    rc = 0
    for n in names:
        r = remove(n, quiet, prog) if rm else load(n, quiet, prog)
        rc = rc or r
    return rc
