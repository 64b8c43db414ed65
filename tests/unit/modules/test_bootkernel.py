"""Unit tests of _modules/bootkernel.py against a fake machine
(tests/fakes/boot_machine.py); the states: tests/unit/states/test_bootkernel.py."""

import os

import pytest

from tests.fakes.boot_machine import EL7_NEW, EL7_OLD, UB_NEW, UB_OLD  # (fixtures: tests/unit/conftest.py)


# ------------------------------------------------------------ module: reads
def test_installed_lists_boot_releases_by_version(el7):
    m, mod, _, _ = el7
    m.add_kernel(EL7_NEW)
    m.add_kernel("4.4.217-1.el7.elrepo.x86_64")
    m.write("/boot/vmlinuz-0-rescue-abcdef", "rescue")
    assert mod.installed() == [EL7_OLD, "4.4.217-1.el7.elrepo.x86_64", EL7_NEW]


def test_installed_by_rpm_package(el7):
    m, mod, _, _ = el7
    m.add_kernel(EL7_NEW)
    m.rpm["kernel-lt"] = [EL7_NEW, "4.4.217-1.el7.elrepo.x86_64"]
    assert mod.installed("kernel-lt") == ["4.4.217-1.el7.elrepo.x86_64", EL7_NEW]
    assert mod.installed("kernel-ml") == []
    assert ["rpm", "-q", "--queryformat", r"%{VERSION}-%{RELEASE}.%{ARCH}\n", "kernel-ml"] in m.commands


def test_installed_by_dpkg_metapackage(ubuntu):
    m, mod, _, _ = ubuntu
    m.add_kernel(UB_NEW)
    m.dpkg["linux-generic-hwe-18.04"] = (
        "linux-image-generic-hwe-18.04 (= 5.4.0.150.167~18.04.1), linux-headers-generic-hwe-18.04"
    )
    m.dpkg["linux-image-generic-hwe-18.04"] = (
        f"linux-image-{UB_NEW}, linux-modules-extra-{UB_NEW}, linux-firmware"
    )
    assert mod.installed("linux-generic-hwe-18.04") == [UB_NEW]
    assert mod.installed(f"linux-image-{UB_OLD}") == [UB_OLD]
    # not installed: none
    assert mod.installed("linux-generic") == []
    # installed, but dpkg-query cannot tell its dependencies: every kernel on disk, newest last
    m.dpkg["linux-generic"] = ""
    assert mod.installed("linux-generic") == [UB_OLD, UB_NEW]


def test_running_is_the_kernelrelease_grain(el7):
    m, mod, _, _ = el7
    assert mod.running() == EL7_OLD
    del mod.__grains__["kernelrelease"]
    assert mod.running() == os.uname().release
    assert m.commands == []


def test_default_el7_saved_entry_and_grub_default(el7):
    m, mod, _, _ = el7
    assert mod.default("grub2-mkconfig", "/boot/grub2/grub.cfg") == EL7_OLD
    m.add_kernel(EL7_NEW)
    m.mkconfig("/boot/grub2/grub.cfg")  # new kernel is entry 0; saved_entry still the old one
    assert mod.default("grub2-mkconfig") == EL7_OLD
    m.write("/boot/grub2/grubenv", f"saved_entry=gnulinux-{EL7_NEW}-advanced-1234\n")
    assert mod.default("grub2-mkconfig") == EL7_NEW
    m.write("/boot/grub2/grubenv", "# empty\n")
    assert mod.default("grub2-mkconfig") == EL7_NEW  # no saved_entry: entry 0
    m.write("/etc/default/grub", "GRUB_DEFAULT=1\n")
    assert mod.default("grub2-mkconfig") == EL7_NEW  # grub.cfg not regenerated yet: it still says saved
    m.mkconfig("/boot/grub2/grub.cfg")
    assert mod.default("grub2-mkconfig") == EL7_OLD  # the seed's route, by index
    m.path("/boot/grub2/grub.cfg").write_text(
        m.path("/boot/grub2/grub.cfg").read_text().replace('set default="1"', "")
    )
    assert mod.default("grub2-mkconfig") == EL7_OLD  # no default in grub.cfg: GRUB_DEFAULT


def test_menu_parses_submenus(ubuntu):
    m, mod, _, _ = ubuntu
    entries = mod.menu("/boot/grub/grub.cfg")
    assert [e["title"] for e in entries] == ["Ubuntu", "Advanced options for Ubuntu"]
    assert entries[0]["release"] == UB_OLD
    assert [c["release"] for c in entries[1]["children"]] == [UB_OLD, UB_OLD]


def test_default_debian_first_entry_and_submenu_path(ubuntu):
    m, mod, _, _ = ubuntu
    assert mod.default("update-grub") == UB_OLD
    m.add_kernel(UB_NEW)
    m.mkconfig("/boot/grub/grub.cfg")
    assert mod.default("update-grub") == UB_NEW
    m.write("/etc/default/grub", f"GRUB_DEFAULT=\"Advanced options for Ubuntu>Ubuntu, with Linux {UB_OLD}\"\n")
    m.mkconfig("/boot/grub/grub.cfg")
    assert mod.default("update-grub") == UB_OLD
    m.write("/etc/default/grub", f"GRUB_DEFAULT='gnulinux-advanced-1234>gnulinux-{UB_NEW}-advanced-1234'\n")
    m.mkconfig("/boot/grub/grub.cfg")
    assert mod.default("update-grub") == UB_NEW


def test_default_grubby_and_detection(el9):
    m, mod, _, _ = el9
    assert mod.default() == "5.14.0-427.el9.x86_64"  # BLS entries + grubby: detected
    assert m.commands[-1] == ["grubby", "--default-kernel"]


# ----------------------------------------------------------- module: writes
def test_set_default_el7_regenerates_and_sets_saved_entry(el7):
    m, mod, _, _ = el7
    m.add_kernel(EL7_NEW)
    res = mod.set_default(EL7_NEW, "grub2-mkconfig", "/boot/grub2/grub.cfg")
    assert res["old"] == EL7_OLD and res["new"] == EL7_NEW
    assert res["commands"] == [
        ["grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"],
        ["grub2-set-default", f"CentOS Linux ({EL7_NEW}) 7 (Core)"],
    ]
    assert mod.default("grub2-mkconfig") == EL7_NEW
    m.commands.clear()
    assert mod.set_default(EL7_NEW, "grub2-mkconfig")["commands"] == []
    assert m.commands == []


def test_set_default_el7_from_numeric_grub_default(el7):
    m, mod, _, _ = el7
    m.write("/etc/default/grub", "GRUB_DEFAULT=0\nGRUB_TIMEOUT=5\n")
    m.add_kernel(EL7_NEW)
    m.add_kernel("5.10.0-1.el7.x86_64")
    m.mkconfig("/boot/grub2/grub.cfg")
    assert mod.default("grub2-mkconfig") == "5.10.0-1.el7.x86_64"  # entry 0: the newest
    res = mod.set_default(EL7_NEW, "grub2-mkconfig")
    assert res["commands"] == [
        ["grub2-mkconfig", "-o", "/boot/grub2/grub.cfg"],
        ["grub2-set-default", f"CentOS Linux ({EL7_NEW}) 7 (Core)"],
    ]
    assert "GRUB_DEFAULT=saved" in m.path("/etc/default/grub").read_text()
    assert "GRUB_TIMEOUT=5" in m.path("/etc/default/grub").read_text()
    assert mod.default("grub2-mkconfig") == EL7_NEW


def test_set_default_debian_newest_needs_only_update_grub(ubuntu):
    m, mod, _, _ = ubuntu
    m.add_kernel(UB_NEW)
    res = mod.set_default(UB_NEW, "update-grub", "/boot/grub/grub.cfg")
    assert res["commands"] == [["update-grub"]]
    assert mod.default("update-grub") == UB_NEW


def test_set_default_debian_older_kernel_uses_submenu_path(ubuntu):
    m, mod, _, _ = ubuntu
    m.add_kernel(UB_NEW)
    m.mkconfig("/boot/grub/grub.cfg")
    res = mod.set_default(UB_OLD, "update-grub")
    assert res["commands"] == [
        ["update-grub"],
        ["grub-set-default", f"Advanced options for Ubuntu>Ubuntu, with Linux {UB_OLD}"],
    ]
    assert mod.default("update-grub") == UB_OLD


def test_set_default_grubby(el9):
    m, mod, _, _ = el9
    m.add_kernel("6.1.90-1.el9.elrepo.x86_64")
    res = mod.set_default("6.1.90-1.el9.elrepo.x86_64", "grubby")
    assert res["commands"] == [["grubby", "--set-default=/boot/vmlinuz-6.1.90-1.el9.elrepo.x86_64"]]
    assert mod.default("grubby") == "6.1.90-1.el9.elrepo.x86_64"


def test_set_default_refuses_missing_kernel_and_reports_tool_failure(el9):
    m, mod, _, _ = el9
    with pytest.raises(mod.CommandExecutionError, match="is not installed"):
        mod.set_default("9.9.9", "grubby")
    m.add_kernel("6.1.90-1.el9.elrepo.x86_64")
    m.fail.add("grubby")
    with pytest.raises(mod.CommandExecutionError, match="grubby"):
        mod.set_default("6.1.90-1.el9.elrepo.x86_64", "grubby")
    with pytest.raises(mod.SaltInvocationError):
        mod.default("lilo")


def test_rebuild_initramfs_keeps_backup_dracut(el7):
    m, mod, _, _ = el7
    res = mod.rebuild_initramfs(EL7_OLD, "dracut")
    assert res["command"] == ["dracut", "-f", f"/boot/initramfs-{EL7_OLD}.img", EL7_OLD]
    assert m.path(f"/boot/initramfs-{EL7_OLD}.img.bak").read_text() == f"old image of {EL7_OLD}"
    assert m.path(f"/boot/initramfs-{EL7_OLD}.img").read_text() == f"new image of {EL7_OLD}"
    with pytest.raises(mod.CommandExecutionError, match="not installed"):
        mod.rebuild_initramfs("9.9.9", "dracut")


# one machine a test: the fixtures share the module (and its loader mock)
# and the scratch root
def test_rebuild_initramfs_keeps_backup_update_initramfs(ubuntu):
    m, mod, _, _ = ubuntu
    res = mod.rebuild_initramfs(UB_OLD, "update-initramfs")
    assert res["command"] == ["update-initramfs", "-u", "-k", UB_OLD]
    assert res["backup"] == f"/boot/initrd.img-{UB_OLD}.bak"
    assert m.path(res["backup"]).read_text() == f"old image of {UB_OLD}"


def test_update_initramfs_creates_a_missing_image(ubuntu):
    m, mod, _, _ = ubuntu
    m.path(f"/boot/initrd.img-{UB_OLD}").unlink()
    res = mod.rebuild_initramfs(UB_OLD, "update-initramfs")
    assert res["command"] == ["update-initramfs", "-c", "-k", UB_OLD] and res["backup"] is None


# ---------------------------------------- nodes without GRUB, kernels without modules (a real Debian 12
# under systemd-nspawn: no update-grub, and the running kernel is the host's, with no /lib/modules)
