"""Unit tests of _states/bootkernel.py (bootkernel.default,
bootkernel.initramfs_rebuilt) in both modes, against the fake machine of
tests/fakes/boot_machine.py; the module: tests/unit/modules/test_bootkernel.py."""

import os

from tests.fakes.boot_machine import EL7_NEW, EL7_OLD, UB_NEW, UB_OLD  # (fixtures: tests/unit/conftest.py)


# ----------------------------------------------------------------- states
def test_state_default_test_mode_predicts_and_acts_not(el7, reboot_dir):
    m, mod, state, _ = el7
    m.add_kernel(EL7_NEW)
    m.rpm["kernel-lt"] = [EL7_NEW]
    state.__opts__["test"] = True
    ret = state.default("kernel-lt", boot_tool="grub2-mkconfig", grub_config="/boot/grub2/grub.cfg")
    assert ret["result"] is None
    assert ret["changes"]["default"] == {"old": EL7_OLD, "new": EL7_NEW}
    assert "reboot_pending" in ret["changes"]
    assert not [c for c in m.commands if c[0].startswith("grub")]
    assert not reboot_dir.exists()
    assert mod.default("grub2-mkconfig") == EL7_OLD


def test_state_default_real_then_idempotent(el7, reboot_dir):
    m, mod, state, marks = el7
    m.add_kernel(EL7_NEW)
    m.rpm["kernel-lt"] = [EL7_NEW]
    ret = state.default("kernel-lt", boot_tool="grub2-mkconfig", grub_config="/boot/grub2/grub.cfg")
    assert ret["result"] is True, ret
    assert ret["changes"]["default"] == {"old": EL7_OLD, "new": EL7_NEW}
    assert ret["changes"]["reboot_pending"] == f"kernel {EL7_NEW} is the boot default but {EL7_OLD} is running"
    assert marks.reasons() == [ret["changes"]["reboot_pending"]]
    m.commands.clear()
    again = state.default("kernel-lt", boot_tool="grub2-mkconfig", grub_config="/boot/grub2/grub.cfg")
    assert again["result"] is True and again["changes"] == {}
    assert not [c for c in m.commands if c[0].startswith("grub")]
    # test mode on a converged node: nothing to predict
    state.__opts__["test"] = True
    assert state.default("kernel-lt", boot_tool="grub2-mkconfig")["changes"] == {}


def test_state_default_running_kernel_needs_no_reboot(el9, reboot_dir):
    m, mod, state, marks = el9
    m.rpm["kernel"] = ["5.14.0-427.el9.x86_64"]
    ret = state.default("kernel", boot_tool="grubby")
    assert ret["result"] is True and ret["changes"] == {}
    assert marks.reasons() == []
    # a release as name works too
    assert state.default("5.14.0-427.el9.x86_64", boot_tool="grubby")["changes"] == {}


def test_state_default_package_missing(el7):
    _, _, state, _ = el7
    state.__opts__["test"] = True
    assert state.default("kernel-lt", boot_tool="grub2-mkconfig")["result"] is None
    state.__opts__["test"] = False
    ret = state.default("kernel-lt", boot_tool="grub2-mkconfig")
    assert ret["result"] is False and "No kernel of kernel-lt" in ret["comment"]


def test_state_default_reports_set_default_failure(el9):
    m, _, state, _ = el9
    m.add_kernel("6.1.90-1.el9.elrepo.x86_64")
    m.rpm["kernel-lt"] = ["6.1.90-1.el9.elrepo.x86_64"]
    m.fail.add("grubby")
    ret = state.default("kernel-lt", boot_tool="grubby")
    assert ret["result"] is False and "grubby" in ret["comment"]


def test_state_initramfs_rebuilt_test_and_real(el7):
    m, mod, state, _ = el7
    m.add_kernel(EL7_NEW)
    mod.set_default(EL7_NEW, "grub2-mkconfig")
    m.commands.clear()
    state.__opts__["test"] = True
    ret = state.initramfs_rebuilt("initramfs", tool="dracut", boot_tool="grub2-mkconfig")
    assert ret["result"] is None
    assert ret["changes"] == {
        EL7_NEW: f"/boot/initramfs-{EL7_NEW}.img",
        EL7_OLD: f"/boot/initramfs-{EL7_OLD}.img",
    }
    assert not [c for c in m.commands if c[0] == "dracut"]
    state.__opts__["test"] = False
    ret = state.initramfs_rebuilt("initramfs", tool="dracut", boot_tool="grub2-mkconfig")
    assert ret["result"] is True, ret
    assert [c for c in m.commands if c[0] == "dracut"] == [
        ["dracut", "-f", f"/boot/initramfs-{EL7_NEW}.img", EL7_NEW],
        ["dracut", "-f", f"/boot/initramfs-{EL7_OLD}.img", EL7_OLD],
    ]
    assert m.path(f"/boot/initramfs-{EL7_NEW}.img.bak").exists()


def test_state_initramfs_rebuilt_same_kernel_once_and_failure(ubuntu):
    m, _, state, _ = ubuntu
    ret = state.initramfs_rebuilt("initramfs", tool="update-initramfs", boot_tool="update-grub")
    assert ret["result"] is True
    assert [c for c in m.commands if c[0] == "update-initramfs"] == [["update-initramfs", "-u", "-k", UB_OLD]]
    m.fail.add("update-initramfs")
    ret = state.initramfs_rebuilt("initramfs", tool="update-initramfs", boot_tool="update-grub")
    assert ret["result"] is False and "update-initramfs" in ret["comment"]


def test_state_initramfs_older_than_retries_only_stale_images(el7):
    m, mod, state, _ = el7
    m.add_kernel(EL7_NEW)
    mod.set_default(EL7_NEW, "grub2-mkconfig")
    blacklist = "/etc/modprobe.d/blacklist-nouveau.conf"
    m.write(blacklist, "blacklist nouveau\n")
    old_image = m.path(f"/boot/initramfs-{EL7_OLD}.img")
    os.utime(old_image, ns=(1, 1))  # built long before the blacklist
    new_image = m.path(f"/boot/initramfs-{EL7_NEW}.img")
    stamp = m.path(blacklist).stat().st_mtime_ns + 10**9
    os.utime(new_image, ns=(stamp, stamp))  # built after it
    m.commands.clear()
    state.__opts__["test"] = True
    ret = state.initramfs_rebuilt("x", tool="dracut", boot_tool="grub2-mkconfig", older_than=blacklist)
    assert ret["result"] is None and list(ret["changes"]) == [EL7_OLD]
    state.__opts__["test"] = False
    ret = state.initramfs_rebuilt("x", tool="dracut", boot_tool="grub2-mkconfig", older_than=blacklist)
    assert ret["result"] is True and list(ret["changes"]) == [EL7_OLD]
    assert m.commands == [["dracut", "-f", f"/boot/initramfs-{EL7_OLD}.img", EL7_OLD]]
    m.commands.clear()
    ret = state.initramfs_rebuilt("x", tool="dracut", boot_tool="grub2-mkconfig", older_than=blacklist)
    assert ret["result"] is True and ret["changes"] == {} and m.commands == []


def test_state_default_without_grub_is_no_failure(ubuntu, reboot_dir):
    m, mod, state, marks = ubuntu
    m.tools -= {"update-grub", "grub-set-default"}
    m.add_kernel(UB_NEW)
    m.dpkg["linux-image-generic"] = f"linux-image-{UB_NEW}"
    assert mod.missing_tools("update-grub") == ["update-grub", "grub-set-default"]
    state.__opts__["test"] = True
    ret = state.default("linux-image-generic", boot_tool="update-grub")
    assert ret["result"] is None and "update-grub, grub-set-default not found" in ret["comment"]
    assert "default" not in ret["changes"] and m.commands == [c for c in m.commands if c[0] == "dpkg-query"]
    state.__opts__["test"] = False
    ret = state.default("linux-image-generic", boot_tool="update-grub")
    assert ret["result"] is True, ret
    assert "not managed here" in ret["comment"] and ret["changes"] == {"reboot_pending": ret["changes"]["reboot_pending"]}
    assert not [c for c in m.commands if c[0] in ("update-grub", "grub-set-default")]
    again = state.default("linux-image-generic", boot_tool="update-grub")
    assert again["result"] is True and again["changes"] == {}


def test_state_initramfs_skips_kernels_without_modules_in_both_modes(ubuntu):
    m, mod, state, _ = ubuntu
    m.tools -= {"update-grub", "grub-set-default"}
    mod.__grains__["kernelrelease"] = "6.18.44-host"  # the container's running kernel: not installed here
    m.add_kernel(UB_NEW)
    for test in (True, False):
        m.commands.clear()
        state.__opts__["test"] = test
        ret = state.initramfs_rebuilt("x", tool="update-initramfs", boot_tool="update-grub")
        assert ret["result"] is (None if test else True), ret
        assert list(ret["changes"]) == [UB_NEW]  # the newest installed kernel boots next
        assert "skipped 6.18.44-host" in ret["comment"]
    assert m.commands == [["update-initramfs", "-u", "-k", UB_NEW]]
    assert mod.has_modules(UB_NEW) and not mod.has_modules("6.18.44-host")


def test_state_initramfs_test_mode_on_a_node_with_no_kernel_yet(ubuntu):
    """test=True on a fresh node: the kernel layer installs the kernel only in
    the real run, so the rebuild is announced (the real run does it)."""
    m, mod, state, _ = ubuntu
    m.tools -= {"update-grub", "grub-set-default"}
    mod.__grains__["kernelrelease"] = "6.18.44-host"
    for rel in m.kernels():
        m.path(f"/boot/vmlinuz-{rel}").unlink()
    state.__opts__["test"] = True
    ret = state.initramfs_rebuilt("x", tool="update-initramfs", boot_tool="update-grub")
    assert ret["result"] is None and ret["changes"] and "No kernel is installed yet" in ret["comment"]
    state.__opts__["test"] = False
    ret = state.initramfs_rebuilt("x", tool="update-initramfs", boot_tool="update-grub")
    assert ret["result"] is True and ret["changes"] == {} and m.commands == []
