"""
K8sNvidia's small node states: "reboot pending" bookkeeping, swap off now,
and a loaded-module check that marks a reboot instead of unloading.

.. code-block:: yaml

    k8snvidia-kernel-reboot-pending:
      k8snvidia.reboot_pending:
        - name: a new kernel is installed
        - onchanges:
          - pkg: k8snvidia-kernel-packages

    k8snvidia-nouveau-loaded-reboot-pending:
      k8snvidia.reboot_pending_if_loaded:
        - name: nouveau

The loaded modules and active swaps are read from ``/proc/modules`` and
``/proc/swaps`` (under the minion option ``nvidia.procfs_root`` when set), so
a run with nothing to do starts no process.
"""

import os

__virtualname__ = "k8snvidia"


def __virtual__():
    if "k8snvidia.set_reboot_pending" in __salt__:
        return __virtualname__
    return (False, "k8snvidia: the k8snvidia execution module is not available")


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _procfs(name):
    root = __opts__.get("nvidia.procfs_root") or "/proc"
    return os.path.join(root, name)


def _proc_lines(name):
    """Lines of a procfs file; None when it cannot be read."""
    try:
        with open(_procfs(name), encoding="utf-8", errors="replace") as fh:
            return fh.read().splitlines()
    except OSError:
        return None


def _loaded_modules():
    """Names of the loaded kernel modules (``/proc/modules``, else ``lsmod``)."""
    lines = _proc_lines("modules")
    if lines is None:
        return list(__salt__["kmod.mod_list"]())
    return [line.split()[0] for line in lines if line.strip()]


def _active_swaps():
    """Active swap devices and files: ``/proc/swaps`` without its header,
    else ``swapon -s`` (the same table; util-linux 2.23 on el7 has it)."""
    lines = _proc_lines("swaps")
    if lines is None:
        res = __salt__["cmd.run_all"](["swapon", "-s"], python_shell=False, ignore_retcode=True)
        lines = (res.get("stdout") or "").splitlines() if not res.get("retcode") else []
    return [line.split()[0] for line in lines if line.strip() and not line.startswith("Filename")]


def _mark(ret, reason):
    """Record ``reason`` as pending (idempotent), predicting under test."""
    if reason in __salt__["k8snvidia.reboot_pending"]():
        ret["comment"] = f"Reboot already pending: {reason}"
        return ret
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = {"reboot_pending": reason}
        ret["comment"] = f"A reboot would be marked pending: {reason}"
        return ret
    __salt__["k8snvidia.set_reboot_pending"](reason)
    ret["changes"] = {"reboot_pending": reason}
    ret["comment"] = f"Reboot marked pending: {reason}"
    return ret


def reboot_pending(name, reason=None):
    """
    Mark this node "reboot pending" (never reboots). Meant for ``onchanges``
    or ``watch``; recording a reason twice changes nothing.

    name
        The reason, unless ``reason`` is given.
    """
    return _mark(_ret(name), reason or name)


def reboot_pending_if_loaded(name, reason=None):
    """
    Mark a reboot pending when the kernel module ``name`` is loaded now
    (e.g. nouveau after it has been blacklisted). Reads ``/proc/modules``.
    """
    ret = _ret(name)
    if name not in _loaded_modules():
        ret["comment"] = f"Kernel module {name} is not loaded"
        return ret
    return _mark(ret, reason or f"kernel module {name} is loaded and must not be")


def swap_off(name):
    """
    Turn every active swap off now (``swapoff -a``) when ``/proc/swaps`` lists
    any. Keeping it off across reboots is /etc/fstab's business.
    """
    ret = _ret(name)
    active = _active_swaps()
    if not active:
        ret["comment"] = "No swap is active"
        return ret
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = {"swapoff": active}
        ret["comment"] = f"Swap would be turned off: {', '.join(active)}"
        return ret
    res = __salt__["cmd.run_all"](["swapoff", "-a"], python_shell=False, ignore_retcode=True)
    left = _active_swaps()
    if res.get("retcode") or left:
        ret["result"] = False
        ret["comment"] = "swapoff -a failed (rc {}): {} {}".format(
            res.get("retcode"), (res.get("stderr") or "").strip(), f"still active: {', '.join(left)}" if left else ""
        ).strip()
        return ret
    ret["changes"] = {"swapoff": active}
    ret["comment"] = f"Swap turned off: {', '.join(active)}"
    return ret


def mod_watch(name, sfun=None, **kwargs):
    """``watch`` support for :py:func:`reboot_pending`."""
    if sfun == "reboot_pending":
        return reboot_pending(name, **kwargs)
    return {"name": name, "result": False, "changes": {}, "comment": f"watch is not supported by k8snvidia.{sfun}"}
