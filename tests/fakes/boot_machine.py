"""A fake machine for the boot-kernel tests (tests/unit/modules/test_bootkernel.py,
tests/unit/states/test_bootkernel.py): /boot, /etc/default/grub and grub.cfg
in a scratch directory, and fake boot tools that behave as the real ones do
(see shared/guides/real-tools.md, section 4). The fixtures ``el7``, ``el9``,
``ubuntu`` give (machine, module, state, reboot_pending module); test files
import them. Each flavour's modules are loaded once; a fixture patches its
machine's dunders in with salt-factories' loader mock (the class that
``configure_loader_modules`` drives) and the mock takes them out after the
test."""

import os
import pathlib

import pytest
from saltfactories.utils.loader import LoaderModuleMock

from tests.conftest import load_source, loader_globals

EL7_OLD = "3.10.0-1062.18.1.el7.x86_64"
EL7_NEW = "5.4.278-1.el7.elrepo.x86_64"
UB_OLD = "5.3.0-40-generic"
UB_NEW = "5.4.0-150-generic"


FLAVOURS = ("el7", "el9", "ubuntu")
MODULES = {flavour: (load_source("_modules/bootkernel.py", f"bk_mod_{flavour}"),
                     load_source("_states/bootkernel.py", f"bk_state_{flavour}"),
                     load_source("_modules/reboot_pending.py", f"reboot_pending_mod_{flavour}"))
           for flavour in FLAVOURS}


def _key(release):
    return MODULES["el7"][0]._version_key(release)


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
    mod, state, marks = MODULES[flavour]
    monkeypatch.setattr(mod, "ROOT", str(root))
    monkeypatch.setattr(mod.salt.utils.path, "which", lambda name: f"/usr/bin/{name}" if name in m.tools else None)
    monkeypatch.setattr(marks, "REBOOT_DIR", str(reboot_dir))
    state_salt = {f"bootkernel.{fn}": getattr(mod, fn) for fn in (
        "installed", "default", "running", "set_default", "initramfs_image", "initramfs_older_than",
        "rebuild_initramfs", "missing_tools", "has_modules")}
    state_salt["reboot_pending.reasons"] = marks.reasons
    state_salt["reboot_pending.mark"] = marks.mark
    with LoaderModuleMock({
        mod: loader_globals(__salt__={"cmd.run_all": m.run_all, "config.get": lambda key, default="": default},
                            __opts__={"test": False}, __grains__={"kernelrelease": m.running}),
        state: loader_globals(__salt__=state_salt, __opts__={"test": False}),
        marks: loader_globals(),
    }):
        yield m, mod, state, marks


@pytest.fixture
def el7(tmp_path, monkeypatch, reboot_dir):
    yield from _machine(tmp_path, monkeypatch, "el7", reboot_dir)


@pytest.fixture
def el9(tmp_path, monkeypatch, reboot_dir):
    yield from _machine(tmp_path, monkeypatch, "el9", reboot_dir)


@pytest.fixture
def ubuntu(tmp_path, monkeypatch, reboot_dir):
    yield from _machine(tmp_path, monkeypatch, "ubuntu", reboot_dir)
