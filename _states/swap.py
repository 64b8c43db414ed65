"""
Swap off now, as the kubelet requires (``swap.off``); keeping it off across
reboots is /etc/fstab's business (``mount.fstab_absent`` in salt/host/swap.sls).

.. code-block:: yaml

    k8snvidia-swap-off:
      swap.off

The active swaps are read from ``/proc/swaps`` (under the minion option
``k8snvidia.procfs_root`` when set, read by ``_utils/host.py``), so a run
with nothing to do starts no process.
"""

import os

__virtualname__ = "swap"


def __virtual__():
    return __virtualname__


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _procfs(name):
    return os.path.join(__utils__["host.procfs"](__opts__), name)


def _proc_lines(name):
    """Lines of a procfs file; None when it cannot be read."""
    try:
        with open(_procfs(name), encoding="utf-8", errors="replace") as fh:
            return fh.read().splitlines()
    except OSError:
        return None


def _active_swaps():
    """Active swap devices and files: ``/proc/swaps`` without its header,
    else ``swapon -s`` (the same table; util-linux 2.23 on el7 has it)."""
    lines = _proc_lines("swaps")
    if lines is None:
        res = __salt__["cmd.run_all"](["swapon", "-s"], python_shell=False, ignore_retcode=True)
        lines = (res.get("stdout") or "").splitlines() if not res.get("retcode") else []
    return [line.split()[0] for line in lines if line.strip() and not line.startswith("Filename")]


def off(name):
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
