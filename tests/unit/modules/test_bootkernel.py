"""Unit tests of _modules/bootkernel.py and _states/bootkernel.py against a fake
machine: /boot, /etc/default/grub and grub.cfg in a scratch directory, and
fake boot tools that behave as the real ones do (see
shared/guides/real-tools.md, section 4)."""

import os
import pathlib

import pytest

from tests.conftest import load_source

EL7_OLD = "3.10.0-1062.18.1.el7.x86_64"
EL7_NEW = "5.4.278-1.el7.elrepo.x86_64"
UB_OLD = "5.3.0-40-generic"
UB_NEW = "5.4.0-150-generic"


def _key(release):
    return load_source("_modules/bootkernel.py", "bk_sortkey")._version_key(release)


class FakeMachine:
    """A node's boot files plus the boot tools, run through cmd.run_all."""

    def __init__(self, root, flavour, kernels, running, tools):
        self.root = pathlib.Path(root)
        self.flavour = flavour  # el7 | el9 | ubuntu
        self.running = running
        self.tools = set(tools)
        self.commands = []
        self.rpm = {}
        self.dpkg = {}
        self.bls_default = None
        self.fail = set()
        for rel in kernels:
            self.add_kernel(rel)

    def path(self, p):
        return self.root / p.lstrip("/")

    def write(self, p, text):
        self.path(p).parent.mkdir(parents=True, exist_ok=True)
        self.path(p).write_text(text)

    def add_kernel(self, rel):
        self.write(f"/boot/vmlinuz-{rel}", "kernel")
        self.write(f"/boot/initramfs-{rel}.img", f"old image of {rel}")
        self.write(f"/boot/initrd.img-{rel}", f"old image of {rel}")
        self.path(f"/lib/modules/{rel}").mkdir(parents=True, exist_ok=True)

    def kernels(self):
        names = os.listdir(self.path("/boot"))
        rels = [n[len("vmlinuz-"):] for n in names if n.startswith("vmlinuz-")]
        return sorted(rels, key=_key, reverse=True)

    # grub2-mkconfig / update-grub output, newest kernel first
    def mkconfig(self, out):
        grub_default = "0"
        for line in (self.path("/etc/default/grub").read_text() if self.path("/etc/default/grub").exists() else "").splitlines():
            if line.startswith("GRUB_DEFAULT="):
                grub_default = line.split("=", 1)[1].strip("'\"")
        lines = [
            "### BEGIN /etc/grub.d/00_header ###",
            'if [ "${next_entry}" ] ; then',
            '   set default="${next_entry}"',
            "else",
            '   set default="%s"' % ("${saved_entry}" if grub_default == "saved" else grub_default),
            "fi",
            "function load_video {",
            "  insmod all_video",
            "}",
        ]
        if self.flavour == "el7":
            for rel in self.kernels():
                lines += [
                    f"menuentry 'CentOS Linux ({rel}) 7 (Core)' --class centos --class gnu-linux --unrestricted "
                    f"$menuentry_id_option 'gnulinux-{rel}-advanced-1234' {{",
                    "\tload_video",
                    "\tif [ x$feature_platform_search_hint = xy ]; then",
                    "\t  search --no-floppy --fs-uuid --set=root 1234",
                    "\tfi",
                    f"\tlinux16 /vmlinuz-{rel} root=/dev/mapper/centos-root ro rhgb quiet",
                    f"\tinitrd16 /initramfs-{rel}.img",
                    "}",
                ]
        else:
            rels = self.kernels()
            lines += [
                "menuentry 'Ubuntu' --class ubuntu --class gnu-linux $menuentry_id_option 'gnulinux-simple-1234' {",
                f"\tlinux\t/boot/vmlinuz-{rels[0]} root=UUID=1234 ro quiet splash",
                f"\tinitrd\t/boot/initrd.img-{rels[0]}",
                "}",
                "submenu 'Advanced options for Ubuntu' $menuentry_id_option 'gnulinux-advanced-1234' {",
            ]
            for rel in rels:
                for suffix, extra in (("", ""), (" (recovery mode)", " recovery nomodeset")):
                    lines += [
                        f"\tmenuentry 'Ubuntu, with Linux {rel}{suffix}' --class ubuntu "
                        f"$menuentry_id_option 'gnulinux-{rel}-advanced-1234' {{",
                        f"\t\tlinux\t/boot/vmlinuz-{rel} root=UUID=1234 ro{extra}",
                        "\t}",
                    ]
            lines += ["}"]
        self.write(out, "\n".join(lines) + "\n")

    def run_all(self, cmd, python_shell=False, ignore_retcode=False, **kwargs):
        assert isinstance(cmd, list) and python_shell is False
        self.commands.append(cmd)
        tool, args = cmd[0], cmd[1:]
        if tool not in self.tools or tool in self.fail:
            return {"retcode": 127 if tool not in self.tools else 1, "stdout": "", "stderr": f"{tool}: failed"}
        out = ""
        if tool == "grubby":
            if args == ["--default-kernel"]:
                out = f"/boot/vmlinuz-{self.bls_default}"
            else:
                assert len(args) == 1 and args[0].startswith("--set-default=/boot/vmlinuz-")
                image = args[0].split("=", 1)[1]
                if not self.path(image).exists():
                    return {"retcode": 1, "stdout": "", "stderr": f"The param {image} is incorrect"}
                self.bls_default = image[len("/boot/vmlinuz-"):]
        elif tool == "grub2-mkconfig":
            assert args[0] == "-o" and len(args) == 2
            self.mkconfig(args[1])
        elif tool == "update-grub":
            assert args == []
            self.mkconfig("/boot/grub/grub.cfg")
        elif tool in ("grub2-set-default", "grub-set-default"):
            assert len(args) == 1
            cfg_dir = "/boot/grub2" if tool == "grub2-set-default" else "/boot/grub"
            self.write(f"{cfg_dir}/grubenv", f"# GRUB Environment Block\nsaved_entry={args[0]}\n")
        elif tool == "rpm":
            assert args[:3] == ["-q", "--queryformat", r"%{VERSION}-%{RELEASE}.%{ARCH}\n"]
            if args[3] not in self.rpm:
                return {"retcode": 1, "stdout": f"package {args[3]} is not installed", "stderr": ""}
            out = "\n".join(self.rpm[args[3]])
        elif tool == "dpkg-query":
            assert args[:2] == ["-W", r"--showformat=${Status}|${Depends}\n"]
            if args[2] not in self.dpkg:
                return {"retcode": 1, "stdout": "", "stderr": f"dpkg-query: no packages found matching {args[2]}"}
            out = f"install ok installed|{self.dpkg[args[2]]}"
        elif tool == "dracut":
            assert args[0] == "-f" and len(args) == 3
            self.write(args[1], f"new image of {args[2]}")
        elif tool == "update-initramfs":
            assert args[0] in ("-u", "-c") and args[1] == "-k" and len(args) == 3
            self.write(f"/boot/initrd.img-{args[2]}", f"new image of {args[2]}")
        else:
            raise AssertionError(f"unexpected command {cmd}")
        return {"retcode": 0, "stdout": out, "stderr": ""}


@pytest.fixture
def reboot_dir(tmp_path):
    return tmp_path / "run-k8snvidia"


def _machine(tmp_path, monkeypatch, flavour, reboot_dir):
    root = tmp_path / "root"
    if flavour == "el7":
        m = FakeMachine(root, "el7", [EL7_OLD], EL7_OLD, ["grub2-mkconfig", "grub2-set-default", "rpm", "dracut"])
        m.write("/etc/default/grub", 'GRUB_TIMEOUT=5\nGRUB_DEFAULT=saved\nGRUB_CMDLINE_LINUX="rhgb quiet"\n')
        m.mkconfig("/boot/grub2/grub.cfg")
        m.write("/boot/grub2/grubenv", f"saved_entry=CentOS Linux ({EL7_OLD}) 7 (Core)\n")
        m.rpm["kernel"] = [EL7_OLD]
    elif flavour == "el9":
        m = FakeMachine(root, "el9", ["5.14.0-427.el9.x86_64"], "5.14.0-427.el9.x86_64", ["grubby", "rpm", "dracut"])
        m.write("/boot/loader/entries/abc-5.14.0-427.el9.x86_64.conf", "title Rocky\n")
        m.bls_default = "5.14.0-427.el9.x86_64"
    else:
        m = FakeMachine(root, "ubuntu", [UB_OLD], UB_OLD, ["update-grub", "grub-set-default", "dpkg-query", "update-initramfs"])
        m.write("/etc/default/grub", 'GRUB_DEFAULT=0\nGRUB_TIMEOUT_STYLE=hidden\n')
        m.mkconfig("/boot/grub/grub.cfg")
    mod = load_source("_modules/bootkernel.py", f"bk_mod_{flavour}")
    mod.ROOT = str(root)
    mod.__salt__ = {"cmd.run_all": m.run_all, "config.get": lambda key, default="": default}
    mod.__opts__ = {"test": False}
    mod.__grains__ = {"kernelrelease": m.running}
    monkeypatch.setattr(mod.salt.utils.path, "which", lambda name: f"/usr/bin/{name}" if name in m.tools else None)
    k8s = load_source("_modules/k8snvidia.py", f"k8s_mod_{flavour}")
    k8s.REBOOT_DIR = str(reboot_dir)
    state = load_source("_states/bootkernel.py", f"bk_state_{flavour}")
    state.__salt__ = {f"bootkernel.{fn}": getattr(mod, fn) for fn in (
        "installed", "default", "running", "set_default", "initramfs_image", "initramfs_older_than",
        "rebuild_initramfs", "missing_tools", "has_modules")}
    state.__salt__["k8snvidia.reboot_pending"] = k8s.reboot_pending
    state.__salt__["k8snvidia.set_reboot_pending"] = k8s.set_reboot_pending
    state.__opts__ = {"test": False}
    return m, mod, state, k8s


@pytest.fixture
def el7(tmp_path, monkeypatch, reboot_dir):
    return _machine(tmp_path, monkeypatch, "el7", reboot_dir)


@pytest.fixture
def el9(tmp_path, monkeypatch, reboot_dir):
    return _machine(tmp_path, monkeypatch, "el9", reboot_dir)


@pytest.fixture
def ubuntu(tmp_path, monkeypatch, reboot_dir):
    return _machine(tmp_path, monkeypatch, "ubuntu", reboot_dir)


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


def test_rebuild_initramfs_keeps_backup(el7, ubuntu):
    m, mod, _, _ = el7
    res = mod.rebuild_initramfs(EL7_OLD, "dracut")
    assert res["command"] == ["dracut", "-f", f"/boot/initramfs-{EL7_OLD}.img", EL7_OLD]
    assert m.path(f"/boot/initramfs-{EL7_OLD}.img.bak").read_text() == f"old image of {EL7_OLD}"
    assert m.path(f"/boot/initramfs-{EL7_OLD}.img").read_text() == f"new image of {EL7_OLD}"
    with pytest.raises(mod.CommandExecutionError, match="not installed"):
        mod.rebuild_initramfs("9.9.9", "dracut")
    m, mod, _, _ = ubuntu
    res = mod.rebuild_initramfs(UB_OLD, "update-initramfs")
    assert res["command"] == ["update-initramfs", "-u", "-k", UB_OLD]
    assert res["backup"] == f"/boot/initrd.img-{UB_OLD}.bak"
    assert m.path(res["backup"]).read_text() == f"old image of {UB_OLD}"


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
    m, mod, state, k8s = el7
    m.add_kernel(EL7_NEW)
    m.rpm["kernel-lt"] = [EL7_NEW]
    ret = state.default("kernel-lt", boot_tool="grub2-mkconfig", grub_config="/boot/grub2/grub.cfg")
    assert ret["result"] is True, ret
    assert ret["changes"]["default"] == {"old": EL7_OLD, "new": EL7_NEW}
    assert ret["changes"]["reboot_pending"] == f"kernel {EL7_NEW} is the boot default but {EL7_OLD} is running"
    assert k8s.reboot_pending() == [ret["changes"]["reboot_pending"]]
    m.commands.clear()
    again = state.default("kernel-lt", boot_tool="grub2-mkconfig", grub_config="/boot/grub2/grub.cfg")
    assert again["result"] is True and again["changes"] == {}
    assert not [c for c in m.commands if c[0].startswith("grub")]
    # test mode on a converged node: nothing to predict
    state.__opts__["test"] = True
    assert state.default("kernel-lt", boot_tool="grub2-mkconfig")["changes"] == {}


def test_state_default_running_kernel_needs_no_reboot(el9, reboot_dir):
    m, mod, state, k8s = el9
    m.rpm["kernel"] = ["5.14.0-427.el9.x86_64"]
    ret = state.default("kernel", boot_tool="grubby")
    assert ret["result"] is True and ret["changes"] == {}
    assert k8s.reboot_pending() == []
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


def test_update_initramfs_creates_a_missing_image(ubuntu):
    m, mod, _, _ = ubuntu
    m.path(f"/boot/initrd.img-{UB_OLD}").unlink()
    res = mod.rebuild_initramfs(UB_OLD, "update-initramfs")
    assert res["command"] == ["update-initramfs", "-c", "-k", UB_OLD] and res["backup"] is None


# ---------------------------------------- nodes without GRUB, kernels without modules (a real Debian 12
# under systemd-nspawn: no update-grub, and the running kernel is the host's, with no /lib/modules)
def test_state_default_without_grub_is_no_failure(ubuntu, reboot_dir):
    m, mod, state, k8s = ubuntu
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
