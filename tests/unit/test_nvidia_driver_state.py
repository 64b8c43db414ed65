"""nvidia_driver.installed / removed in real and test mode, with Salt's
dunders injected, against the twin's emulated .run installer run as a real
subprocess in a scratch node (see test_twin_installer.Node). The modules of
other components (nvidia, bootkernel, k8snvidia) are mocked."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, load_source

sys.path.insert(0, str(ROOT / "twin"))

from k8stwin import artifacts, hw  # noqa: E402

from tests.unit.test_twin_installer import OTHER, RUNNING, TURING, Node  # noqa: E402

VERSION = "580.95.05"
OLD = "570.195.03"
RUN_FNS = (
    "installed_version", "loaded_version", "built_for", "kernel_source", "fetch", "install", "uninstall",
    "cached_path", "mirror_source", "version_from_runfile", "version_tuple", "command_line",
    "explain_failure", "sha256sum", "info",
)


class Minion:
    """One node plus the loaded modules that the state calls."""

    def __init__(self, tmp_path, gpus=("NVIDIA GeForce GTX 1080 Ti",), modules=(), packages=None,
                 recommended=None, mirror=True):
        self.node = Node(tmp_path, gpus=gpus, modules=modules, packages=packages)
        self.boot = RUNNING
        self.reboot_reasons = []
        self.recommended = recommended or {"max_branch": 580, "min_branch": None, "module_type": "proprietary"}
        self.cache = tmp_path / "cache"
        self.opts = {
            "test": False,
            "nvidia_driver.root": str(self.node.root),
            "nvidia.procfs_root": str(self.node.dir / "proc"),
        }
        if mirror:
            self.opts["k8snvidia.artifact_mirror"] = "file://" + str(self.node.art)
        self.mod = load_source("_modules/nvidia_driver.py", "test_nvd_mod")
        self.state_mod = load_source("_states/nvidia_driver.py", "test_nvd_state")
        salt = {f"nvidia_driver.{n}": getattr(self.mod, n) for n in RUN_FNS}
        salt.update({
            "cmd.run_all": self.run_all,
            "bootkernel.default": lambda: self.boot,
            "bootkernel.running": lambda: RUNNING,
            "nvidia.recommended": lambda: dict(self.recommended),
            "nvidia.processes": lambda: list(self.node.state().get("gpu_processes") or []),
            "k8snvidia.set_reboot_pending": self.reboot_reasons.append,
        })
        self.salt = salt
        for m in (self.mod, self.state_mod):
            m.__opts__ = self.opts
            m.__salt__ = salt
            m.__grains__ = {"kernelrelease": RUNNING}
            m.__context__ = {}
        self.sync()

    def sync(self):
        hw.sync(str(self.node.dir))

    def run_all(self, cmd, python_shell=False, cwd=None, timeout=None, **_kw):
        assert python_shell is False
        res = subprocess.run(cmd, cwd=cwd, env=self.node.env, capture_output=True, text=True, timeout=timeout,
                             check=False)
        return {"retcode": res.returncode, "stdout": res.stdout.strip(), "stderr": res.stderr.strip(), "pid": 0}

    def artifact(self, version=VERSION):
        path, sha = artifacts.make_runfile(str(self.node.art), version)
        return path, sha

    def url(self, version=VERSION):
        return f"https://us.download.nvidia.com/XFree86/Linux-x86_64/{version}/NVIDIA-Linux-x86_64-{version}.run"

    def installed(self, version=VERSION, test=False, **kwargs):
        path = self.node.art / artifacts.runfile_name(version)
        if "sha256" not in kwargs:
            kwargs["sha256"] = artifacts.sha256(path) if path.exists() else self.artifact(version)[1]
        self.opts["test"] = test
        kwargs.setdefault("url", self.url(version))
        kwargs.setdefault("cache_dir", str(self.cache))
        return self.state_mod.installed(version, **kwargs)

    def commands(self):
        path = self.node.dir / "commands.jsonl"
        if not path.exists():
            return []
        return [json.loads(x)["argv"] for x in path.read_text().splitlines()]


@pytest.fixture
def minion(tmp_path):
    return Minion(tmp_path)


def test_fresh_install_then_noop(minion):
    ret = minion.installed()
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"]["version"] == {"old": None, "new": VERSION}
    assert ret["changes"]["kernel"] == RUNNING
    run = minion.commands()[-1]
    assert run == ["NVIDIA-Linux-x86_64-580.95.05.run", "--silent", "--dkms", f"--kernel-name={RUNNING}",
                   "--kernel-module-type=proprietary"]
    assert minion.mod.installed_version() == VERSION
    assert minion.mod.loaded_version() == VERSION
    assert minion.mod.built_for(RUNNING)["module_type"] == "proprietary"
    assert minion.reboot_reasons == []
    assert (minion.cache / "NVIDIA-Linux-x86_64-580.95.05.run").is_file()
    n = len(minion.commands())
    ret = minion.installed()
    assert ret["result"] is True and ret["changes"] == {}
    assert "is installed and built for kernel" in ret["comment"]
    assert len(minion.commands()) == n  # nothing ran


def test_install_for_the_boot_kernel_sets_reboot_pending(minion):
    minion.node.headers(OTHER)
    minion.boot = OTHER
    ret = minion.installed()
    assert ret["result"] is True, ret["comment"]
    assert f"--kernel-name={OTHER}" in minion.commands()[-1]
    assert minion.mod.built_for(OTHER)["version"] == VERSION
    assert minion.mod.loaded_version() is None
    assert minion.reboot_reasons == [f"NVIDIA driver {VERSION} is built for kernel {OTHER}, which is not running yet"]
    assert ret["changes"]["reboot_pending"] == minion.reboot_reasons[0]


def test_installed_but_not_built_for_the_new_kernel_is_rebuilt(minion):
    """The seed's reinstall after a kernel switch, done by the state."""
    assert minion.installed(dkms=False)["result"] is True
    minion.node.headers(OTHER)
    minion.boot = OTHER
    ret = minion.installed()
    assert ret["result"] is True, ret["comment"]
    assert "rebuild NVIDIA driver" in ret["comment"]
    assert minion.mod.built_for(OTHER)["version"] == VERSION


def test_upgrade_refused_while_gpu_processes_run(minion):
    assert minion.installed(OLD)["result"] is True
    minion.node.update(gpu_processes=[{"pid": 4242, "name": "python", "gpu": 0, "used_memory_mib": 100}])
    n = len(minion.commands())
    ret = minion.installed()
    assert ret["result"] is False
    assert f"Refusing to replace NVIDIA driver {OLD} with {VERSION}" in ret["comment"]
    assert "python (pid 4242)" in ret["comment"] and "k8snvidia:driver:force" in ret["comment"]
    assert len(minion.commands()) == n and minion.mod.installed_version() == OLD


def test_upgrade_refused_when_gpu_processes_cannot_be_listed(minion):
    assert minion.installed(OLD)["result"] is True

    def broken():
        raise RuntimeError("nvidia-smi timed out")

    minion.salt["nvidia.processes"] = broken
    n = len(minion.commands())
    ret = minion.installed()
    assert ret["result"] is False
    assert "cannot tell whether processes use the GPUs (nvidia.processes failed: nvidia-smi timed out)" in ret["comment"]
    assert len(minion.commands()) == n and minion.mod.installed_version() == OLD


def test_forced_upgrade_keeps_the_old_module_until_reboot(minion):
    assert minion.installed(OLD)["result"] is True
    minion.node.update(gpu_processes=[{"pid": 4242, "name": "python", "gpu": 0, "used_memory_mib": 100}])
    ret = minion.installed(force=True)
    assert ret["result"] is True, ret["comment"]
    assert "--allow-installation-with-running-driver" in minion.commands()[-1]
    assert minion.mod.installed_version() == VERSION
    assert minion.mod.loaded_version() == OLD
    assert minion.reboot_reasons == [f"NVIDIA driver {VERSION} is installed but module {OLD} is still loaded"]


def test_upgrade_without_processes(minion):
    assert minion.installed(OLD)["result"] is True
    ret = minion.installed()
    assert ret["result"] is True and ret["changes"]["version"] == {"old": OLD, "new": VERSION}
    assert minion.mod.loaded_version() == VERSION and minion.reboot_reasons == []


def test_nouveau_loaded_is_refused_before_anything(tmp_path):
    minion = Minion(tmp_path, modules=("nouveau",))
    for test in (False, True):
        ret = minion.installed(test=test)
        assert ret["result"] is False
        assert "nouveau kernel module is loaded" in ret["comment"]
        assert "apply the `nouveau` SLS (blacklist + initramfs rebuild), reboot" in ret["comment"]
    assert minion.commands() == [] and not minion.cache.exists()
    conf = minion.node.file("/etc/modprobe.d/blacklist-nouveau.conf")
    conf.parent.mkdir(parents=True)
    conf.write_text("blacklist nouveau\noptions nouveau modeset=0\n")
    ret = minion.installed()
    assert "blacklisted in /etc/modprobe.d/blacklist-nouveau.conf but the node has not rebooted" in ret["comment"]


def test_sha256_mismatch_installs_nothing(minion):
    path, sha = minion.artifact()
    artifacts.corrupt(path)
    ret = minion.installed(sha256=sha)
    assert ret["result"] is False
    assert "sha256 mismatch for NVIDIA-Linux-x86_64-580.95.05.run" in ret["comment"]
    assert "nothing was installed" in ret["comment"]
    assert list(minion.cache.iterdir()) == []
    assert minion.commands() == [] and minion.mod.installed_version() is None


def test_test_mode_predicts_without_downloading(minion):
    minion.node.headers(OTHER)
    minion.boot = OTHER
    ret = minion.installed(test=True)
    assert ret["result"] is None
    assert "Would copy" in ret["comment"] and "(artifact mirror)" in ret["comment"]
    assert f"install NVIDIA driver {VERSION} (not installed) for kernel {OTHER} with proprietary kernel module" in (
        ret["comment"])
    assert "would mark reboot pending" in ret["comment"]
    assert ret["changes"]["version"] == {"old": None, "new": VERSION}
    assert not minion.cache.exists() and minion.commands() == [] and minion.reboot_reasons == []
    minion.opts["test"] = False
    assert minion.installed()["result"] is True
    ret = minion.installed(test=True)
    assert ret["result"] is True and ret["changes"] == {}


def test_test_mode_notes_missing_headers(tmp_path):
    minion = Minion(tmp_path)
    minion.boot = OTHER  # no headers for it
    ret = minion.installed(test=True)
    assert ret["result"] is None and f"the kernel headers for {OTHER}" in ret["comment"]
    ret = minion.installed()
    assert ret["result"] is False and f"the kernel headers for {OTHER} (the kernel that boots next) are missing" in (
        ret["comment"])
    assert minion.commands() == []


def test_installer_error_is_explained(tmp_path):
    minion = Minion(tmp_path, packages={"make": {}, "dkms": {}})
    ret = minion.installed()
    assert ret["result"] is False
    assert "failed (rc 1): Unable to find the development tool `cc` in your path" in ret["comment"]
    assert "k8snvidia:driver:prerequisites" in ret["comment"]


def test_module_type_auto_open_and_branch_limits(tmp_path):
    minion = Minion(tmp_path, gpus=(TURING,), recommended={"max_branch": None, "module_type": "open"})
    assert minion.installed()["result"] is True
    assert minion.commands()[-1][-1] == "--kernel-module-type=open"
    assert minion.mod.built_for(RUNNING)["module_type"] == "open"
    # an explicit type that differs from the built module means a rebuild
    ret = minion.installed(kernel_module_type="proprietary", test=True)
    assert ret["result"] is None and "installed with the open module" in ret["comment"]
    minion.recommended = {"max_branch": 580, "module_type": "proprietary"}
    ret = minion.installed("590.44.01")
    assert ret["result"] is False and "R580" in ret["comment"]
    ret = minion.installed(OLD, kernel_module_type="open")
    assert ret["result"] is False and "Turing and newer only" in ret["comment"]


def test_url_of_another_version_is_refused(minion):
    ret = minion.installed(url=minion.url("570.195.03"))
    assert ret["result"] is False and "is driver 570.195.03, not 580.95.05" in ret["comment"]
    assert minion.commands() == [] and not minion.cache.exists()


def test_old_driver_gets_no_module_type_flag(minion):
    assert minion.installed("535.183.01")["result"] is True
    assert not any(a.startswith("--kernel-module-type") for a in minion.commands()[-1])


def test_file_url_without_mirror(tmp_path):
    minion = Minion(tmp_path, mirror=False)
    path, sha = minion.artifact()
    ret = minion.installed(url="file://" + path, sha256=sha)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"]["source"] == path


def test_removed(minion):
    assert minion.installed(dkms=True)["result"] is True
    minion.opts["test"] = True
    ret = minion.state_mod.removed()
    assert ret["result"] is None and minion.mod.installed_version() == VERSION
    minion.opts["test"] = False
    ret = minion.state_mod.removed()
    assert ret["result"] is True, ret["comment"]
    assert minion.mod.installed_version() is None
    assert minion.mod.built_for(RUNNING) is None
    assert minion.state_mod.removed()["comment"] == "No NVIDIA driver installed by a .run file"


def test_fetch_rejects_bad_sha_and_unknown_scheme(minion, tmp_path):
    from salt.exceptions import CommandExecutionError

    with pytest.raises(CommandExecutionError, match="64-hex-digit"):
        minion.mod.fetch(minion.url(), "abc", str(tmp_path / "c"))
    with pytest.raises(CommandExecutionError, match="only https://"):
        minion.mod.fetch("ftp://x/NVIDIA-Linux-x86_64-1.run", "0" * 64, str(tmp_path / "c"))
    assert not os.path.exists(tmp_path / "c" / "NVIDIA-Linux-x86_64-1.run.part")


def test_explain_failure_hints():
    mod = load_source("_modules/nvidia_driver.py", "test_nvd_mod2")
    err = (
        "\nERROR: Unable to find the kernel source tree for the currently running\n"
        "       kernel.  Please make sure you have installed the kernel source files\n\n"
        "ERROR: Installation has failed.  Please see the file\n       '/var/log/nvidia-installer.log'\n"
    )
    msg = mod.explain_failure("", err, kernel="5.4.278")
    assert msg.startswith("Unable to find the kernel source tree for the currently running kernel.")
    assert "kernel headers/devel package for 5.4.278" in msg
