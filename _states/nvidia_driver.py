"""
The NVIDIA driver from NVIDIA's ``.run`` installer, built with DKMS for the
kernel that boots next.

.. code-block:: yaml

    nvidia-driver:
      nvidia_driver.installed:
        - name: 580.95.05
        - url: https://us.download.nvidia.com/XFree86/Linux-x86_64/580.95.05/NVIDIA-Linux-x86_64-580.95.05.run
        - sha256: 849ef0ef8e842b9806b2cde9f11c1303d54f1a9a769467e4e5d961b2fe1182a7
        - kernel_module_type: auto

What it does, in order (every refusal happens before anything is changed):

1. the kernel is ``bootkernel.default`` (the one that boots next; it may not
   be running yet); the module type ``auto`` is ``nvidia.recommended``'s
   (Pascal and older: proprietary);
2. nothing to do when that version is installed and built for that kernel;
3. refuse while nouveau is loaded (the ``nouveau`` SLS and a reboot come
   first), when the kernel's headers are missing, and when the node's GPUs
   need an older branch;
4. an upgrade from another version is refused while processes use the GPUs,
   unless ``force``;
5. download (artifact mirror first) with the sha256 checked, then
   ``sh <run> --silent --dkms --kernel-name=<K> [--kernel-module-type=<T>]``;
6. "reboot pending" (``k8snvidia.set_reboot_pending``) when the new module
   cannot be loaded now: the kernel is not running yet, or another module is
   still loaded.

With ``test=True`` it predicts all of this without downloading or installing.
"""

import logging
import os

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "nvidia_driver"

BLACKLIST_DIRS = ("/etc/modprobe.d", "/usr/lib/modprobe.d", "/lib/modprobe.d")


def __virtual__():
    if "nvidia_driver.installed_version" in __salt__:
        return __virtualname__
    return (False, "nvidia_driver state: the nvidia_driver execution module is not loaded")


# ------------------------------------------------------------------ helpers
def _call(fun, *args, default=None, **kwargs):
    """Call another module's function when it is loaded; ``default`` when it
    is not or when it fails (it is written by another component)."""
    func = __salt__.get(fun)
    if func is None:
        return default
    try:
        return func(*args, **kwargs)
    except Exception as exc:  # pylint: disable=broad-except
        log.warning("nvidia_driver: %s failed: %s", fun, exc)
        return default


def _running_kernel():
    return _call("bootkernel.running") or __grains__.get("kernelrelease") or os.uname().release


def _boot_kernel(boot_tool=None, grub_config=None):
    kwargs = {k: v for k, v in (("boot_tool", boot_tool), ("grub_config", grub_config)) if v}
    return _call("bootkernel.default", **kwargs) or _running_kernel()


def _loaded_modules():
    """Names of the loaded kernel modules, from /proc/modules (procfs root
    option honoured), else from kmod.lsmod."""
    path = os.path.join(__opts__.get("nvidia.procfs_root", "/proc") or "/proc", "modules")
    try:
        with open(path, encoding="utf-8") as fh:
            return [line.split()[0] for line in fh if line.strip()]
    except OSError:
        pass
    mods = _call("kmod.lsmod", default=[]) or []
    return [m.get("module") for m in mods if isinstance(m, dict)]


def _nouveau_blacklisted():
    """A modprobe.d file that blacklists nouveau, or None."""
    root = __opts__.get("nvidia_driver.root", "/") or "/"
    for d in BLACKLIST_DIRS:
        full = os.path.join(root, d.lstrip("/"))
        try:
            names = sorted(os.listdir(full))
        except OSError:
            continue
        for name in names:
            if not name.endswith(".conf"):
                continue
            try:
                with open(os.path.join(full, name), encoding="utf-8", errors="replace") as fh:
                    if any(line.split()[:2] == ["blacklist", "nouveau"] for line in fh if line.strip()):
                        return os.path.join(d, name)
            except OSError:
                continue
    return None


def _vt(version):
    return __salt__["nvidia_driver.version_tuple"](version)


def _module_type(requested, version):
    """(type or None, problem or None). None: let the installer choose
    (drivers before 555 have no --kernel-module-type)."""
    rec = _call("nvidia.recommended", default=None) or {}
    max_branch = rec.get("max_branch") if isinstance(rec, dict) else None
    vt = _vt(version)
    if max_branch and vt[0] > int(max_branch):
        return None, (
            f"driver {version} is newer than this node's GPUs support (branch R{max_branch} is the last one "
            f"for them); set k8snvidia:driver:version to an R{max_branch} release"
        )
    min_branch = rec.get("min_branch") if isinstance(rec, dict) else None
    if min_branch and vt[0] < int(min_branch):
        return None, (
            f"driver {version} is older than this node's GPUs need (branch R{min_branch} or newer); "
            "set k8snvidia:driver:version to a newer release"
        )
    if requested in (None, "", "auto"):
        chosen = rec.get("module_type") if isinstance(rec, dict) else None
        if chosen not in ("open", "proprietary"):
            chosen = "proprietary"  # supported by every GPU the driver supports
        if vt < (555,):
            return None, None  # the installer builds its proprietary module
        return chosen, None
    if requested not in ("open", "proprietary"):
        return None, f"kernel_module_type {requested!r} is not one of auto, open, proprietary"
    if requested == "open" and vt < (555,):
        return None, (
            f"the open kernel module cannot be chosen with driver {version}: the installer's "
            "--kernel-module-type exists from 555; use a newer driver or 'proprietary'"
        )
    if requested == "open" and rec.get("module_type") == "proprietary":
        return None, (
            "the open kernel module does not support this node's GPUs (Turing and newer only); "
            "use kernel_module_type: proprietary or auto"
        )
    if vt < (555,):
        return None, None
    return requested, None


def _gpu_processes():
    """(processes using the GPUs, None), or (None, why) when they cannot be
    listed: then nobody can say the GPUs are idle, and replacing the driver
    is refused like a busy node's."""
    func = __salt__.get("nvidia.processes")
    if func is None:
        return None, "the nvidia execution module is not loaded (run saltutil.sync_modules)"
    try:
        procs = func() or []
    except Exception as exc:  # pylint: disable=broad-except
        return None, f"nvidia.processes failed: {exc}"
    return [p for p in procs if isinstance(p, dict)], None


def _describe(procs):
    return ", ".join(f"{p.get('name', '?')} (pid {p.get('pid', '?')})" for p in procs)


# ------------------------------------------------------------------ states
def installed(
    name,
    url,
    sha256,
    kernel_module_type="auto",
    force=False,
    cache_dir="/var/cache/k8snvidia",
    dkms=True,
    kernel=None,
    boot_tool=None,
    grub_config=None,
):
    """
    Make driver ``name`` (e.g. ``580.95.05``) the installed ``.run`` driver,
    built for the kernel that boots next.

    name
        The driver version; the ``.run`` at ``url`` must be that version.
    url
        Where the ``.run`` file is (https://, http:// or file://). The minion
        option ``k8snvidia.artifact_mirror`` is looked in first, by basename.
    sha256
        Required; a mismatch removes the file and installs nothing.
    kernel_module_type
        ``auto`` (``nvidia.recommended``'s choice), ``open`` or ``proprietary``.
        Passed to the installer from driver 555 on.
    force
        Upgrade (or downgrade) even while processes use the GPUs.
    cache_dir
        Where the ``.run`` file is kept.
    dkms
        Register the module with DKMS so that new kernels get it at boot.
    kernel
        Build for this kernel release instead of ``bootkernel.default``.
    boot_tool, grub_config
        Passed to ``bootkernel.default`` (the map's ``kernel`` section).
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    version = str(name)
    test = bool(__opts__.get("test"))
    boot = kernel or _boot_kernel(boot_tool, grub_config)
    running = _running_kernel()
    notes = []

    url_ver = __salt__["nvidia_driver.version_from_runfile"](url)
    if url_ver and url_ver != version:
        ret["comment"] = f"{url} is driver {url_ver}, not {version}: check k8snvidia:driver:url. Nothing was installed."
        return ret
    mtype, problem = _module_type(kernel_module_type, version)
    if problem:
        ret["comment"] = problem
        return ret
    installed_ver = __salt__["nvidia_driver.installed_version"]()
    built = __salt__["nvidia_driver.built_for"](boot)
    loaded = __salt__["nvidia_driver.loaded_version"]()
    type_ok = mtype is None or built is None or built.get("module_type") in (None, mtype)

    if installed_ver == version and built and built.get("version") == version and type_ok:
        ret["result"] = True
        ret["comment"] = f"NVIDIA driver {version} is installed and built for kernel {boot}"
        if loaded and loaded != version:
            reason = f"NVIDIA driver {version} is installed but module {loaded} is still loaded"
            if test:
                ret["comment"] += f"; would mark reboot pending: {reason}"
            else:
                _call("k8snvidia.set_reboot_pending", reason)
                ret["comment"] += f"; reboot pending: {reason}"
        return ret

    # ---- refusals: nothing has been changed yet
    if "nouveau" in _loaded_modules():
        blacklist = _nouveau_blacklisted()
        if blacklist:
            todo = (
                f"nouveau is blacklisted in {blacklist} but the node has not rebooted since: reboot it "
                "(the `nouveau` SLS rebuilt the initramfs), then apply nvidia.driver again"
            )
        else:
            todo = "apply the `nouveau` SLS (blacklist + initramfs rebuild), reboot, then apply nvidia.driver again"
        ret["comment"] = (
            f"Refusing to install NVIDIA driver {version}: the nouveau kernel module is loaded and the "
            f"NVIDIA installer cannot replace it; {todo}. Nothing was installed."
        )
        return ret

    source = __salt__["nvidia_driver.kernel_source"](boot)
    if source is None:
        msg = (
            f"the kernel headers for {boot} (the kernel that boots next) are missing: the installer would fail "
            f"with 'Unable to find the kernel source tree'; install them (k8snvidia:kernel:devel_package, "
            f"or the headers package for {boot})"
        )
        if not test:
            ret["comment"] = f"Refusing to install NVIDIA driver {version}: {msg}. Nothing was installed."
            return ret
        notes.append(f"note: {msg} -- an earlier state in this run must install them")

    upgrade_from = installed_ver if installed_ver and installed_ver != version else None
    allow_running = False
    if upgrade_from:
        procs, unknown = _gpu_processes()
        if unknown and not force:
            ret["comment"] = (
                f"Refusing to replace NVIDIA driver {upgrade_from} with {version}: cannot tell whether processes "
                f"use the GPUs ({unknown}). Fix that or set k8snvidia:driver:force: true. Nothing was installed."
            )
            return ret
        if procs and not force:
            ret["comment"] = (
                f"Refusing to replace NVIDIA driver {upgrade_from} with {version}: processes are using the "
                f"GPUs: {_describe(procs)}. Stop them or set k8snvidia:driver:force: true. Nothing was installed."
            )
            return ret
        if procs:
            allow_running = True
            notes.append(f"forced while processes use the GPUs: {_describe(procs)}")

    # ---- what will happen
    action = "upgrade" if upgrade_from else ("rebuild" if installed_ver == version else "install")
    why = {
        "install": "not installed",
        "upgrade": f"{upgrade_from} is installed",
        "rebuild": f"installed but not built for kernel {boot}" if not built or built.get("version") != version
        else f"installed with the {built.get('module_type')} module",
    }[action]
    mdesc = f"{mtype} kernel module" if mtype else "the installer's default kernel module"
    plan = (
        f"{action} NVIDIA driver {version} ({why}) for kernel {boot} with {mdesc}"
        + (", registered with DKMS" if dkms else ", without DKMS")
    )
    reboot_reason = None
    if boot != running:
        reboot_reason = f"NVIDIA driver {version} is built for kernel {boot}, which is not running yet"
    elif loaded and loaded != version:
        reboot_reason = f"NVIDIA driver {version} is installed but module {loaded} is still loaded"
    changes = {
        "version": {"old": installed_ver, "new": version},
        "kernel": boot,
        "kernel_module_type": mtype or "default",
        "dkms": bool(dkms),
    }

    if test:
        cached = __salt__["nvidia_driver.cached_path"](url, cache_dir)
        mirror = __salt__["nvidia_driver.mirror_source"](url)
        where = (
            f"use cached {cached} if its sha256 matches, else " if os.path.isfile(cached) else ""
        ) + (f"copy {mirror} (artifact mirror)" if mirror else f"download {url}")
        ret["result"] = None
        ret["changes"] = changes
        lines = [f"Would {where}, check sha256 {sha256}, then {plan}"]
        if reboot_reason:
            lines.append(f"would mark reboot pending: {reboot_reason}")
        ret["comment"] = "; ".join(lines + notes)
        return ret

    # ---- act
    try:
        got = __salt__["nvidia_driver.fetch"](url, sha256, cache_dir)
    except CommandExecutionError as exc:
        ret["comment"] = f"{exc}"
        return ret
    runfile_ver = __salt__["nvidia_driver.version_from_runfile"](got["path"])
    if runfile_ver and runfile_ver != version:
        ret["comment"] = f"{url} is driver {runfile_ver}, not {version}: check k8snvidia:driver:url. Nothing was installed."
        return ret
    try:
        res = __salt__["nvidia_driver.install"](got["path"], boot, mtype, dkms, version, allow_running)
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret
    now_installed = __salt__["nvidia_driver.installed_version"]()
    now_built = __salt__["nvidia_driver.built_for"](boot)
    if now_installed != version or not now_built:
        ret["comment"] = (
            f"the NVIDIA installer exited 0 but driver {version} is not in place "
            f"(installed: {now_installed}, module for {boot}: {now_built}); see /var/log/nvidia-installer.log"
        )
        return ret
    now_loaded = __salt__["nvidia_driver.loaded_version"]()
    if boot == running and now_loaded != version:
        reboot_reason = (
            f"NVIDIA driver {version} is installed but "
            + (f"module {now_loaded} is still loaded" if now_loaded else "its module is not loaded")
        )
    elif boot == running:
        reboot_reason = None
    changes["source"] = got["source"]
    if res.get("warnings"):
        changes["warnings"] = res["warnings"]
    if reboot_reason:
        _call("k8snvidia.set_reboot_pending", reboot_reason)
        changes["reboot_pending"] = reboot_reason
    ret["changes"] = changes
    ret["result"] = True
    ret["comment"] = "; ".join(
        [f"Done: {plan}"] + ([f"reboot pending: {reboot_reason}"] if reboot_reason else []) + notes
    )
    return ret


def removed(name="nvidia", force=False):
    """
    Remove the ``.run`` driver with ``nvidia-uninstall`` (DKMS registrations
    included); refused while processes use the GPUs unless ``force``.

    .. code-block:: yaml

        nvidia-driver-removed:
          nvidia_driver.removed: []
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    current = __salt__["nvidia_driver.installed_version"]()
    if current is None:
        ret["result"] = True
        ret["comment"] = "No NVIDIA driver installed by a .run file"
        return ret
    procs, unknown = _gpu_processes()
    if unknown and not force:
        ret["comment"] = f"Refusing to remove NVIDIA driver {current}: cannot tell whether processes use the GPUs ({unknown})"
        return ret
    if procs and not force:
        ret["comment"] = f"Refusing to remove NVIDIA driver {current}: processes are using the GPUs: {_describe(procs)}"
        return ret
    if __opts__.get("test"):
        ret["result"] = None
        ret["changes"] = {"version": {"old": current, "new": None}}
        ret["comment"] = f"Would remove NVIDIA driver {current} with nvidia-uninstall --silent"
        return ret
    try:
        __salt__["nvidia_driver.uninstall"]()
    except CommandExecutionError as exc:
        ret["comment"] = str(exc)
        return ret
    ret["result"] = True
    ret["changes"] = {"version": {"old": current, "new": None}}
    ret["comment"] = f"Removed NVIDIA driver {current}"
    if __salt__["nvidia_driver.loaded_version"]():
        reason = f"NVIDIA driver {current} was removed but its module is still loaded"
        _call("k8snvidia.set_reboot_pending", reason)
        ret["comment"] += f"; reboot pending: {reason}"
    return ret
