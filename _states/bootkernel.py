"""
Boot-default kernel and initramfs states (Salt 3008 has no ``kernelpkg``).

.. code-block:: yaml

    k8snvidia-kernel-boot-default:
      bootkernel.default:
        - name: kernel-lt
        - boot_tool: grubby

    k8snvidia-nouveau-initramfs-rebuilt:
      bootkernel.initramfs_rebuilt:
        - tool: dracut
        - onchanges:
          - file: k8snvidia-nouveau-blacklist

A kernel change never reboots the node: it records "reboot pending" through
``reboot_pending.mark`` (``host.mark_reboot``, as every state that
marks one) for the orchestration to act on.
"""

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "bootkernel"


def __virtual__():
    if "bootkernel.default" in __salt__:
        return __virtualname__
    return (False, "bootkernel: the bootkernel execution module is not available")


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _target(name):
    """The release ``name`` stands for: itself when /boot/vmlinuz-<name>
    exists, else the newest installed release of the package ``name``."""
    if name in __salt__["bootkernel.installed"]():
        return name
    releases = __salt__["bootkernel.installed"](package=name)
    return releases[-1] if releases else None


def _reboot_reason(target, running):
    return f"kernel {target} is the boot default but {running} is running"


def default(name, boot_tool=None, grub_config=None, reboot_pending=True):
    """
    Make the newest installed release of the kernel package ``name`` (or the
    release ``name`` itself) the kernel that boots next. When it is not the
    running kernel, a reboot is marked pending (never done here).

    name
        A kernel package (``kernel-lt``, ``linux-generic-hwe-18.04``) or a
        kernel release (``5.4.278-1.el7.elrepo.x86_64``).
    boot_tool
        ``grubby``, ``grub2-mkconfig`` or ``update-grub`` (the map's
        ``kernel:boot_tool``); detected when not given.
    grub_config
        grub.cfg for the grub2-mkconfig and update-grub tools.
    reboot_pending
        Record "reboot pending" when the boot default is not running.
    """
    ret = _ret(name)
    test = __opts__["test"]
    target = _target(name)
    if target is None:
        if test:
            ret["result"] = None
            ret["comment"] = f"No kernel of {name} is installed yet; its newest release would become the boot default"
            return ret
        ret["result"] = False
        ret["comment"] = f"No kernel of {name} is installed"
        return ret
    missing = __salt__["bootkernel.missing_tools"](boot_tool)
    comments = []
    if missing:
        # No GRUB here (a container; a systemd-boot machine, whose kernel
        # packages write their own entries): nothing to set, nothing to fail.
        comments.append(
            f"Kernel {target} is installed; the boot default is not managed here"
            f" ({', '.join(missing)} not found: this node does not boot with {boot_tool or 'GRUB'})"
        )
    else:
        try:
            current = __salt__["bootkernel.default"](boot_tool=boot_tool, grub_config=grub_config)
        except (CommandExecutionError, SaltInvocationError) as exc:
            ret["result"] = False
            ret["comment"] = str(exc)
            return ret
        if current == target:
            comments.append(f"Kernel {target} is already the boot default")
        elif test:
            ret["result"] = None
            ret["changes"]["default"] = {"old": current, "new": target}
            comments.append(f"Kernel {target} would become the boot default (now {current})")
        else:
            try:
                res = __salt__["bootkernel.set_default"](target, boot_tool=boot_tool, grub_config=grub_config)
            except (CommandExecutionError, SaltInvocationError) as exc:
                ret["result"] = False
                ret["comment"] = f"Could not make kernel {target} the boot default: {exc}"
                return ret
            ret["changes"]["default"] = {"old": res.get("old"), "new": res.get("new")}
            comments.append(f"Kernel {target} is now the boot default (was {current})")
    if reboot_pending:
        running = __salt__["bootkernel.running"]()
        if running != target:
            got = __utils__["host.mark_reboot"](__salt__, _reboot_reason(target, running), test)
            ret["changes"].update(got["changes"])
            if got["result"] is not True:
                ret["result"] = got["result"]
            comments.append(got["comment"])
    ret["comment"] = "; ".join(comments)
    return ret


def initramfs_rebuilt(
    name, tool, kernels=("default", "running"), boot_tool=None, grub_config=None, backup=True, older_than=None
):
    """
    Rebuild the initramfs of some kernels, keeping the previous image as
    ``IMG.bak``. Without ``older_than`` it acts every time it runs: use it
    with ``onchanges``. With ``older_than: FILE`` only the images older than
    FILE are rebuilt (a rebuild that failed in an earlier run is retried; a
    run with nothing to do rebuilds nothing).

    tool
        ``dracut`` or ``update-initramfs`` (the map's ``nouveau:initramfs_tool``).
    kernels
        Releases, or ``default`` (the kernel that boots next) and ``running``.
        Kernels that are not installed (no ``/lib/modules/K``) are skipped.
    """
    ret = _ret(name)
    releases = []
    for kernel in kernels or []:
        if kernel == "default":
            if __salt__["bootkernel.missing_tools"](boot_tool):
                # no GRUB to ask: the newest installed kernel boots next
                kernel = (__salt__["bootkernel.installed"]() or [None])[-1]
            else:
                try:
                    kernel = __salt__["bootkernel.default"](boot_tool=boot_tool, grub_config=grub_config)
                except (CommandExecutionError, SaltInvocationError) as exc:
                    ret["result"] = False
                    ret["comment"] = f"Cannot tell the boot default kernel: {exc}"
                    return ret
        elif kernel == "running":
            kernel = __salt__["bootkernel.running"]()
        if kernel and kernel not in releases:
            releases.append(kernel)
    # an initramfs needs the kernel's modules: the running kernel of a
    # container (or of a node booted from elsewhere) may have none here
    skipped = [k for k in releases if not __salt__["bootkernel.has_modules"](k)]
    releases = [k for k in releases if k not in skipped]
    skip_note = (
        f" (skipped {', '.join(skipped)}: no /lib/modules/<release>, not installed here)" if skipped else ""
    )
    if older_than:
        releases = [k for k in releases if __salt__["bootkernel.initramfs_older_than"](k, tool, older_than)]
        if not releases:
            ret["comment"] = f"Every initramfs is newer than {older_than}{skip_note}"
            return ret
    if not releases:
        if __opts__["test"] and not older_than:
            # a kernel an earlier state of this run installs would be rebuilt
            ret["result"] = None
            ret["changes"] = {"initramfs": "of the kernels installed by the time this runs"}
            ret["comment"] = f"No kernel is installed yet; the initramfs of those installed before this runs would be rebuilt with {tool}{skip_note}"
            return ret
        ret["comment"] = f"No kernel to rebuild the initramfs for{skip_note}"
        return ret
    if __opts__["test"]:
        ret["result"] = None
        ret["changes"] = {k: __salt__["bootkernel.initramfs_image"](k, tool) for k in releases}
        ret["comment"] = f"The initramfs of {', '.join(releases)} would be rebuilt with {tool}{skip_note}"
        return ret
    done, failed = [], []
    for release in releases:
        try:
            res = __salt__["bootkernel.rebuild_initramfs"](release, tool, backup=backup)
        except (CommandExecutionError, SaltInvocationError) as exc:
            failed.append(f"{release}: {exc}")
            continue
        ret["changes"][release] = {"image": res["image"], "backup": res["backup"]}
        done.append(release)
    comments = []
    if done:
        comments.append(f"Rebuilt the initramfs of {', '.join(done)} with {tool}")
    if failed:
        ret["result"] = False
        comments.append("Failed: " + "; ".join(failed))
    ret["comment"] = "; ".join(comments) + skip_note
    return ret


def mod_watch(name, sfun=None, **kwargs):
    """``watch`` support: the initramfs is rebuilt, the boot default checked."""
    if sfun == "initramfs_rebuilt":
        return initramfs_rebuilt(name, **kwargs)
    if sfun == "default":
        return default(name, **kwargs)
    return {"name": name, "result": False, "changes": {}, "comment": f"watch is not supported by bootkernel.{sfun}"}
