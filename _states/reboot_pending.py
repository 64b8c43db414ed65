"""
"Reboot pending" states: mark this node as needing a reboot (never reboot
it), for a change that needs one or a kernel module that is loaded and must
not be. The reasons are kept by the ``reboot_pending`` execution module; the
orchestration's reboot step reboots the nodes that have one.

.. code-block:: yaml

    k8snvidia-kernel-reboot-pending:
      reboot_pending.marked:
        - name: a new kernel is installed
        - onchanges:
          - pkg: k8snvidia-kernel-packages

    k8snvidia-nouveau-loaded-reboot-pending:
      reboot_pending.if_module_loaded:
        - name: nouveau

The loaded modules are read from ``/proc/modules`` (under the minion option
``k8snvidia.procfs_root`` when set, read by ``_utils/host.py``), so a run
with nothing to do starts no process.
"""

__virtualname__ = "reboot_pending"


def __virtual__():
    if "reboot_pending.mark" in __salt__:
        return __virtualname__
    return (False, "reboot_pending: the reboot_pending execution module is not available")


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _loaded_modules():
    """Names of the loaded kernel modules (``host.kernel_modules``, else
    ``lsmod`` through ``kmod.mod_list``)."""
    try:
        return list(__utils__["host.kernel_modules"](__utils__["host.procfs"](__opts__)))
    except OSError:
        return list(__salt__["kmod.mod_list"]())


def _mark(ret, reason):
    """Record ``reason`` as pending (idempotent), predicting under test
    (``host.mark_reboot``)."""
    got = __utils__["host.mark_reboot"](__salt__, reason, __opts__["test"])
    ret.update(result=got["result"], changes=got["changes"], comment=got["comment"])
    return ret


def marked(name, reason=None):
    """
    Mark this node "reboot pending" (never reboots). Meant for ``onchanges``
    or ``watch``; recording a reason twice changes nothing.

    name
        The reason, unless ``reason`` is given.
    """
    return _mark(_ret(name), reason or name)


def if_module_loaded(name, reason=None):
    """
    Mark a reboot pending when the kernel module ``name`` is loaded now
    (e.g. nouveau after it has been blacklisted). Reads ``/proc/modules``.
    """
    ret = _ret(name)
    if name not in _loaded_modules():
        ret["comment"] = f"Kernel module {name} is not loaded"
        return ret
    return _mark(ret, reason or f"kernel module {name} is loaded and must not be")


def mod_watch(name, sfun=None, **kwargs):
    """``watch`` support for :py:func:`marked`."""
    if sfun == "marked":
        return marked(name, **kwargs)
    return {"name": name, "result": False, "changes": {}, "comment": f"watch is not supported by reboot_pending.{sfun}"}
