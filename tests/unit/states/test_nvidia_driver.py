"""nvidia_driver.installed / removed in real and test mode, with Salt's
dunders injected, against the twin's emulated .run installer run as a real
subprocess in a scratch node (see tests/fakes/nvidia_installer.Node). The modules of
other components (nvidia, bootkernel, k8snvidia) are mocked. Salt's dunders
through salt-factories' loader mock (``configure_loader_modules``): each test
starts with empty ``__salt__``/``__context__``, ``__opts__ = {"test": False}``
and the running kernel's grain, which Minion and FactsMinion fill in place."""

import copy
import json
import os
import subprocess

import pytest
import yaml

from tests.conftest import ROOT, load_source, loader_globals
from tests.fakes.nvidia_installer import OTHER, RUNNING, TURING, Node, artifacts, hw

VERSION = "580.95.05"
OLD = "570.195.03"
RUN_FNS = (
    "installed_version", "loaded_version", "built_for", "kernel_source", "fetch", "install", "uninstall",
    "cached_path", "mirror_source", "version_from_runfile", "version_tuple", "command_line",
    "explain_failure", "sha256sum", "info", "parse_dkms_status", "upstream_version",
)

driver_mod = load_source("_modules/nvidia_driver.py", "test_nvd_mod")
driver_state = load_source("_states/nvidia_driver.py", "test_nvd_state")
nvidia_mod = load_source("_modules/nvidia.py", "test_nvidia_holders")
nvgpu = load_source("_utils/nvidia_gpu.py", "test_nvd_facts_gpu")


@pytest.fixture
def configure_loader_modules():
    """The driver's execution and state modules share ``__opts__`` and
    ``__salt__`` (as on a minion); each has its own ``__context__``."""
    opts, salt = {"test": False}, {}
    return {
        driver_mod: loader_globals(__opts__=opts, __salt__=salt, __grains__={"kernelrelease": RUNNING},
                                   __context__={}),
        driver_state: loader_globals(__opts__=opts, __salt__=salt, __grains__={"kernelrelease": RUNNING},
                                     __context__={}),
        nvidia_mod: loader_globals(__opts__={}),
    }


class Minion:
    """One node plus the loaded modules that the state calls."""

    def __init__(self, tmp_path, gpus=("NVIDIA GeForce GTX 1080 Ti",), modules=(), packages=None,
                 recommended=None, mirror=True):
        self.node = Node(tmp_path, gpus=gpus, modules=modules, packages=packages)
        self.boot = RUNNING
        self.reboot_reasons = []
        self.recommended = recommended or {"max_branch": 580, "min_branch": None, "module_type": "proprietary"}
        self.cache = tmp_path / "cache"
        self.mod, self.state_mod = driver_mod, driver_state
        # the loader mock's dunders of this test (configure_loader_modules), filled in place
        self.opts, salt = driver_state.__opts__, driver_state.__salt__
        assert salt == {} and self.opts == {"test": False}, "one Minion per test"
        self.opts.update({
            "k8snvidia.root": str(self.node.root),
            "k8snvidia.procfs_root": str(self.node.dir / "proc"),
        })
        if mirror:
            self.opts["k8snvidia.artifact_mirror"] = "file://" + str(self.node.art)
        salt.update({f"nvidia_driver.{n}": getattr(self.mod, n) for n in RUN_FNS})
        salt.update({
            "cmd.run_all": self.run_all,
            "bootkernel.default": lambda: self.boot,
            "bootkernel.missing_tools": lambda _tool=None: [],
            "bootkernel.installed": lambda: [RUNNING] + ([self.boot] if self.boot and self.boot != RUNNING else []),
            "bootkernel.running": lambda: RUNNING,
            "nvidia.recommended": lambda: dict(self.recommended),
            "nvidia.processes": lambda: list(self.node.state().get("gpu_processes") or []),
            "nvidia.holders": self.holders,
            "nvidia_driver.dkms_status": self.dkms_status,
            "nvidia_driver.dkms_install": self.dkms_install,
            "reboot_pending.reasons": lambda: list(self.reboot_reasons),
            "reboot_pending.mark": self.reboot_reasons.append,
        })
        self.salt = salt
        self.sync()

    def sync(self):
        hw.sync(str(self.node.dir))

    def holders(self):
        """nvidia.holders as the twin node shows it: GPU processes hold /dev/nvidia*."""
        st = self.node.state()
        if not any(m.startswith("nvidia") for m in st.get("modules") or []):
            return {"processes": [], "modules": {}, "busy": False}
        procs = [{"pid": p["pid"], "command": p.get("name"), "devices": ["/dev/nvidia0", "/dev/nvidiactl"]}
                 for p in st.get("gpu_processes") or []] + list(st.get("device_holders") or [])
        return {"processes": procs, "modules": {}, "busy": bool(procs)}

    def dkms_status(self):
        if "dkms" not in (self.node.state().get("packages") or {}):
            return None
        res = self.node.tool("dkms", "status")
        assert res.returncode == 0, res.stderr
        return self.mod.parse_dkms_status(res.stdout)

    def dkms_install(self, module, version, kernel):
        res = self.node.tool("dkms", "install", "-m", module, "-v", version, "-k", kernel)
        if res.returncode != 0:
            raise RuntimeError(res.stderr or res.stdout)
        return {}

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
        # the installer's runs (the state's own `dkms status` checks are left out)
        return [a for a in (json.loads(x)["argv"] for x in path.read_text().splitlines()) if a[0] != "dkms"]


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
    assert f"Refusing to install NVIDIA driver {VERSION}: the NVIDIA driver in use cannot be replaced while the " \
        "GPU is held by python (pid 4242, /dev/nvidia0, /dev/nvidiactl), outside Kubernetes (a drain does not " \
        "move it) and not among k8snvidia:driver:stop_services" in ret["comment"]
    assert "k8snvidia:driver:stop_services), then apply nvidia.driver again" in ret["comment"]
    assert "k8snvidia:driver:force" in ret["comment"]
    assert len(minion.commands()) == n and minion.mod.installed_version() == OLD


def test_upgrade_refused_when_gpu_processes_cannot_be_listed(minion):
    assert minion.installed(OLD)["result"] is True

    def broken():
        raise RuntimeError("nvidia-smi -q -x failed (rc 15): timed out")

    minion.salt["nvidia.holders"] = broken
    n = len(minion.commands())
    ret = minion.installed()
    assert ret["result"] is False
    assert "Cannot plan the NVIDIA driver: nvidia.holders failed: nvidia-smi -q -x failed (rc 15): timed out" in (
        ret["comment"])
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
    mod = driver_mod
    err = (
        "\nERROR: Unable to find the kernel source tree for the currently running\n"
        "       kernel.  Please make sure you have installed the kernel source files\n\n"
        "ERROR: Installation has failed.  Please see the file\n       '/var/log/nvidia-installer.log'\n"
    )
    msg = mod.explain_failure("", err, kernel="5.4.278")
    assert msg.startswith("Unable to find the kernel source tree for the currently running kernel.")
    assert "kernel headers/devel package for 5.4.278" in msg


# ------------------------------------------------------------ facts are never guessed
def test_unreadable_boot_kernel_stops_the_state(minion):
    def broken():
        raise RuntimeError("grub2-editenv: error: cannot open /boot/grub2/grubenv")

    minion.salt["bootkernel.default"] = broken
    ret = minion.installed()
    assert ret["result"] is False
    assert "bootkernel.default failed: grub2-editenv: error: cannot open /boot/grub2/grubenv" in ret["comment"]
    assert "Nothing was changed" in ret["comment"] and minion.commands() == []


def test_failed_reboot_mark_is_reported(minion):
    minion.node.headers(OTHER)
    minion.boot = OTHER

    def broken(_reason):
        raise OSError("read-only file system")

    minion.salt["reboot_pending.mark"] = broken
    ret = minion.installed()
    assert ret["result"] is False
    assert "could not mark the reboot pending" in ret["comment"] and "read-only file system" in ret["comment"]


# ------------------------------------------------------------ DKMS is verified
def test_dkms_registration_failure_is_not_reported_as_success(tmp_path):
    """The installer warns and exits 0 when the DKMS build fails (twin fault
    dkms_build_fails); the state checks `dkms status` and fails."""
    minion = Minion(tmp_path)
    node_json = minion.node.dir / "node.json"
    data = json.loads(node_json.read_text())
    data["faults"] = {"dkms_build_fails": True}
    node_json.write_text(json.dumps(data))
    ret = minion.installed()
    assert ret["result"] is False, ret["comment"]
    assert f"DKMS does not list nvidia/{VERSION} as installed for kernel {RUNNING}" in ret["comment"]
    assert "only warns when DKMS registration fails" in ret["comment"]
    # the installer itself said only a warning and exited 0
    assert minion.mod.installed_version() == VERSION
    # fixed (the fault gone): the next run rebuilds with DKMS and verifies it
    data["faults"] = {}
    node_json.write_text(json.dumps(data))
    ret = minion.installed()
    assert ret["result"] is True, ret["comment"]
    assert "not registered with DKMS" in ret["comment"]
    assert ret["changes"]["dkms"] == {RUNNING: VERSION}


def test_dkms_missing_is_a_failure(tmp_path):
    minion = Minion(tmp_path, packages={"gcc": {}, "make": {}})
    ret = minion.installed()
    assert ret["result"] is False and "dkms is not installed" in ret["comment"]


def test_running_kernel_also_gets_the_dkms_module(minion):
    minion.node.headers(OTHER)
    minion.boot = OTHER
    ret = minion.installed()
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"]["dkms"] == {OTHER: VERSION, RUNNING: VERSION}


# ------------------------------------------------------------ what holds the GPU
def test_gpu_services_are_stopped_for_the_upgrade_and_started_again(minion):
    assert minion.installed(OLD)["result"] is True
    minion.node.update(device_holders=[{"pid": 77, "command": "nvidia-persistenced", "devices": ["/dev/nvidiactl"]}])
    calls = []
    up = {"nvidia-persistenced": True, "nvidia-dcgm": False}
    minion.salt["service.available"] = lambda name: name in up
    minion.salt["service.status"] = lambda name: up[name]

    def stop(name):
        calls.append(("stop", name))
        minion.node.update(device_holders=[])
        return True

    minion.salt["service.stop"] = stop
    minion.salt["service.start"] = lambda name: calls.append(("start", name)) or True
    ret = minion.installed(stop_services=["nvidia-persistenced", "nvidia-dcgm", "dcgm"], test=True)
    assert ret["result"] is None and ret["changes"]["stop_services"] == ["nvidia-persistenced"]
    assert ret["changes"]["drain"] is True and calls == []
    ret = minion.installed(stop_services=["nvidia-persistenced", "nvidia-dcgm", "dcgm"])
    assert ret["result"] is True, ret["comment"]
    assert calls == [("stop", "nvidia-persistenced"), ("start", "nvidia-persistenced")]
    assert minion.mod.loaded_version() == VERSION


def test_device_plugin_holding_the_gpu_is_named(minion):
    assert minion.installed(OLD)["result"] is True
    minion.node.update(device_holders=[{"pid": 900, "command": "nvidia-device-plugin", "devices": ["/dev/nvidia0"]}])
    ret = minion.installed()
    assert ret["result"] is False
    assert "nvidia-device-plugin (pid 900, /dev/nvidia0)" in ret["comment"]
    assert minion.mod.installed_version() == OLD


# ------------------------------------------------------------ the plan (pure)
def _facts(**kw):
    facts = {
        "boot": RUNNING, "running": RUNNING, "recommended": {"max_branch": 580, "module_type": "proprietary",
                                                           "architectures": ["Pascal"], "conflicts": []},
        "nouveau_loaded": False, "nvidia_loaded": False, "loaded": None, "installed": None, "built": None,
        "headers_boot": "/usr/src/kernels/x", "headers_running": "/usr/src/kernels/x", "holders": {},
        "services": {}, "packages": {}, "precompiled_available": {}, "dkms": [],
    }
    facts.update(kw)
    return facts


PKG_WANT = {
    "method": "package", "branch": 535, "kernel_module_type": "auto", "dkms": True, "dkms_module": "nvidia-current",
    "packages": {"proprietary": ["nvidia-driver"], "open": ["nvidia-driver"]},
    "dkms_packages": {"proprietary": ["nvidia-kernel-dkms"], "open": ["nvidia-open-kernel-dkms"]},
    "precompiled": {}, "module_stream": None, "stop_services": [],
}


def debian_want(**kw):
    """The package method as the Debian 12 map gives it."""
    fam = yaml.safe_load((ROOT / "salt/parameters/os_family.yaml").read_text())["Debian"]["driver"]["package"]
    fin = yaml.safe_load((ROOT / "salt/parameters/osfinger.yaml").read_text())["Debian-12"]["driver"]["package"]
    want = dict(PKG_WANT, **{k: v for k, v in dict(fam, **fin).items() if k in PKG_WANT or k == "components"})
    want.update(kw)
    return want


def test_plan_debian_open_module_is_nvidia_current_open():
    """Debian registers the open module as nvidia-current-open (the
    nvidia-open-kernel-dkms dkms.conf PACKAGE_NAME), the proprietary one as
    nvidia-current: the DKMS check follows the module type."""
    mod = driver_state
    turing = {"max_branch": None, "module_type": "open", "architectures": ["Turing"], "conflicts": []}
    plan = mod.decide(_facts(recommended=turing), debian_want())
    assert plan["packages"] == ["libcuda1", "nvidia-smi", "nvidia-persistenced", "nvidia-open-kernel-dkms"]
    assert plan["dkms_module"] == "nvidia-current-open"
    built = [{"module": "nvidia-current-open", "version": "535.261.03", "kernel": RUNNING, "arch": "x86_64",
              "status": "installed"}]
    have = dict.fromkeys(plan["packages"], "535.261.03-1")
    assert mod.decide(_facts(recommended=turing, packages=have, dkms=built), debian_want())["action"] == "none"
    built[0]["module"] = "nvidia-current"
    assert mod.decide(_facts(recommended=turing, packages=have, dkms=built), debian_want())["action"] == "rebuild"
    have["nvidia-kernel-dkms"] = "535.261.03-1"
    assert mod.decide(_facts(packages=have, dkms=built), debian_want())["action"] == "none"  # Pascal: proprietary


def test_plan_refuses_when_the_sources_lack_debians_archive_areas():
    """A fresh Debian enables main and non-free-firmware: the driver's
    packages (non-free, contrib) cannot install, refused before anything
    changes with the file to edit; nothing is checked for a suite no
    source names, nor once the packages are installed."""
    mod = driver_state
    stock = {"components": {"main", "non-free-firmware"}, "files": ["/etc/apt/sources.list.d/debian.sources"]}
    plan = mod.decide(_facts(components=stock, codename="bookworm"), debian_want())
    assert len(plan["refusals"]) == 1, plan["refusals"]
    assert "add contrib non-free to that entry's components" in plan["refusals"][0]
    assert "enable main, non-free-firmware (/etc/apt/sources.list.d/debian.sources)" in plan["refusals"][0]
    full = dict(stock, components={"main", "contrib", "non-free", "non-free-firmware"})
    assert mod.decide(_facts(components=full, codename="bookworm"), debian_want())["refusals"] == []
    assert mod.decide(_facts(components=None, codename="bookworm"), debian_want())["refusals"] == []
    have = dict.fromkeys(["libcuda1", "nvidia-smi", "nvidia-persistenced", "nvidia-kernel-dkms"], "1")
    dkms = [{"module": "nvidia-current", "version": "535.261.03", "kernel": RUNNING, "status": "installed"}]
    assert mod.decide(_facts(components=stock, packages=have, dkms=dkms), debian_want())["action"] == "none"


def test_plan_without_a_visible_gpu_marks_no_reboot_for_the_module():
    """A node whose GPU is not visible (none on the PCI bus, no driver):
    a reboot would not load the module, so none is marked for it, and the
    comment says the plan is for the pillar's GPUs. A kernel that is not
    running yet still needs its reboot."""
    mod = driver_state
    want = debian_want(gpus=["NVIDIA GeForce GTX 1080 Ti"])
    plan = mod.decide(_facts(gpus_visible=False), want)
    assert plan["action"] == "install" and plan["reboot"] is None
    assert any("no reboot is marked" in n for n in plan["notes"])
    assert any("planned for the pillar's GPUs (NVIDIA GeForce GTX 1080 Ti)" in n for n in plan["notes"])
    plan = mod.decide(_facts(gpus_visible=False, boot=OTHER), want)
    assert plan["reboot"] and "not running yet" in plan["reboot"]
    # a visible GPU, nothing loaded: the module is loaded after the install (no reboot) ...
    visible = mod.decide(_facts(gpus_visible=True), want)
    assert visible["reboot"] is None and visible["load"] is True
    # ... unless nouveau still holds it: then the next boot loads it
    held = mod.decide(_facts(gpus_visible=True, nouveau_loaded=True), want)
    assert held["reboot"].endswith("loaded at the next boot")


class FactsMinion:
    """The state's facts step with every module it calls mocked: a node
    without GRUB (a container), no GPU on its PCI bus."""

    def __init__(self, tmp_path, kernels=(), repos=None):
        self.mod, self.nvgpu = driver_state, nvgpu
        (tmp_path / "proc").mkdir()
        (tmp_path / "proc/modules").write_text("ext4 1081344 1 - Live 0x0\n")
        self.kernels = list(kernels)
        self.reboots = []
        assert not self.mod.__salt__, "one FactsMinion per test"
        self.mod.__salt__.update({  # the loader mock's, of this test
            "bootkernel.missing_tools": lambda _tool=None: ["update-grub", "grub-set-default"],
            "bootkernel.installed": lambda: list(self.kernels),
            "bootkernel.default": lambda **_kw: None,
            "bootkernel.running": lambda: RUNNING,
            "nvidia.recommended": lambda: self.nvgpu.recommend([]) | {"gpus": []},
            "nvidia_driver.loaded_version": lambda: None,
            "nvidia_driver.installed_version": lambda: None,
            "nvidia_driver.built_for": lambda _k: None,
            "nvidia_driver.kernel_source": lambda k: f"/lib/modules/{k}/build" if k in self.kernels else None,
            "nvidia_driver.dkms_status": lambda: None,
            "pkg.version": lambda _name: "",
            "pkg.latest_version": lambda _name, refresh=False: "1",
            "pkg.list_repos": lambda: repos or {},
            "reboot_pending.reasons": lambda: list(self.reboots),
            "reboot_pending.mark": self.reboots.append,
        })
        self.mod.__utils__.update({"nvidia_gpu.architecture_of_name": self.nvgpu.architecture_of_name,
                                   "nvidia_gpu.recommend": self.nvgpu.recommend})
        self.mod.__grains__.update({"kernelrelease": RUNNING, "oscodename": "bookworm"})
        self.mod.__opts__.update({"test": True, "k8snvidia.procfs_root": str(tmp_path / "proc")})

    def installed(self, test=True, **kw):
        self.mod.__opts__["test"] = test
        want = debian_want()
        args = {k: want[k] for k in ("branch", "packages", "dkms_packages", "dkms_module", "components")}
        args.update(kw)
        return self.mod.installed("branch 535", method="package", **args)


def test_no_grub_and_no_kernel_yet_predicts_for_the_kernel_installed_first(tmp_path):
    """test=True on a fresh node without GRUB, before the kernel layer has
    installed a kernel: a prediction, not a failure; the real run takes the
    newest installed kernel (the kernel layer's rule without GRUB)."""
    node = FactsMinion(tmp_path)
    ret = node.installed(gpus=["NVIDIA GeForce GTX 1080 Ti"])
    assert ret["result"] is None, ret["comment"]
    assert ret["changes"]["kernel"] == "(the newest kernel installed by the time this runs)"
    assert ret["changes"]["kernel_module_type"] == "proprietary"
    node.mod.__salt__["pkg.version"] = lambda _name: ""
    ret = node.installed(test=False)
    assert ret["result"] is False and "no boot-default kernel" in ret["comment"]
    node.kernels = ["6.1.0-40-amd64", "6.1.0-41-amd64"]
    ret = node.installed(test=True)
    assert ret["result"] is None and ret["changes"]["kernel"] == "6.1.0-41-amd64"
    assert ret["changes"]["dkms_kernels"] == ["6.1.0-41-amd64"]


def test_pillar_gpus_choose_the_module_type_when_none_is_visible(tmp_path):
    """No GPU on the PCI bus: the pillar's GPUs decide (a Turing GPU: the
    open module, nvidia-open-kernel-dkms); the comment says so."""
    node = FactsMinion(tmp_path, kernels=["6.1.0-41-amd64"])
    ret = node.installed(gpus=["NVIDIA GeForce RTX 2080"])
    assert ret["result"] is None, ret["comment"]
    assert ret["changes"]["kernel_module_type"] == "open"
    assert "nvidia-open-kernel-dkms" in ret["changes"]["packages"]
    assert "planned for the pillar's GPUs (NVIDIA GeForce RTX 2080)" in ret["comment"]


def test_components_are_read_from_the_nodes_sources(tmp_path):
    """pkg.list_repos as Salt reports a deb822 debian.sources: the suite's
    components, disabled entries and other suites left out."""
    repos = {"http://deb.debian.org/debian": [
        {"file": "/etc/apt/sources.list.d/debian.sources", "dist": "bookworm", "type": "deb",
         "comps": ["main", "non-free-firmware"], "disabled": False},
        {"file": "/etc/apt/sources.list", "dist": "bookworm", "type": "deb", "comps": ["contrib", "non-free"],
         "disabled": True},
        {"file": "/etc/apt/sources.list.d/debian.sources", "dist": "bookworm-updates", "type": "deb",
         "comps": ["non-free"], "disabled": False}]}
    node = FactsMinion(tmp_path, kernels=["6.1.0-41-amd64"], repos=repos)
    ret = node.installed(test=False, gpus=["NVIDIA GeForce GTX 1080 Ti"])
    assert ret["result"] is False and "add contrib non-free to that entry's components" in ret["comment"]
    assert "Nothing was installed" in ret["comment"]
    repos["http://deb.debian.org/debian"][1]["disabled"] = False
    assert node.installed(test=True)["result"] is None


def test_plan_package_method_refuses_a_branch_the_gpus_cannot_use():
    mod = driver_state
    rec = {"min_branch": 570, "max_branch": None, "module_type": "open", "architectures": ["Blackwell"],
           "conflicts": []}
    plan = mod.decide(_facts(recommended=rec), dict(PKG_WANT))
    assert plan["refusals"] and "R535" in plan["refusals"][0] and "570 or newer" in plan["refusals"][0]
    assert "driver:method: runfile" in plan["refusals"][0]


def test_plan_package_method_installs_and_verifies_dkms():
    mod = driver_state
    plan = mod.decide(_facts(), dict(PKG_WANT))
    assert plan["refusals"] == [] and plan["action"] == "install"
    assert plan["packages"] == ["nvidia-driver", "nvidia-kernel-dkms"] and plan["dkms_kernels"] == [RUNNING]
    # built for the running kernel, no GPU module loaded: loaded after the install, no reboot
    assert plan["reboot"] is None and plan["load"] is True
    with_nouveau = mod.decide(dict(_facts(), nouveau_loaded=True), dict(PKG_WANT))
    assert with_nouveau["reboot"] and not with_nouveau.get("load")  # nouveau holds the GPU until a reboot
    done = _facts(packages={"nvidia-kernel-dkms": "535.247.01-1~deb12u1", "nvidia-driver": "535.247.01-1~deb12u1"},
                  dkms=[{"module": "nvidia-current", "version": "535.247.01", "kernel": RUNNING, "arch": "x86_64",
                         "status": "installed"}], loaded="535.247.01", nvidia_loaded=True)
    assert mod.decide(done, dict(PKG_WANT))["action"] == "none"
    # registered but not built for the boot kernel: a rebuild, even with the packages in place
    done["dkms"][0]["kernel"] = OTHER
    assert mod.decide(done, dict(PKG_WANT))["action"] == "rebuild"


def test_plan_package_method_prefers_precompiled_modules():
    mod = driver_state
    want = dict(PKG_WANT, branch=580, dkms_module="nvidia",
                packages={"proprietary": ["nvidia-headless-no-dkms-{branch}", "nvidia-utils-{branch}"]},
                dkms_packages={"proprietary": ["nvidia-dkms-{branch}"]},
                precompiled={"proprietary": ["linux-modules-nvidia-{branch}-{kernel}"]})
    pre = f"linux-modules-nvidia-580-{RUNNING}"
    plan = mod.decide(_facts(precompiled_available={pre: True}), want)
    assert plan["packages"] == ["nvidia-headless-no-dkms-580", "nvidia-utils-580", pre]
    assert plan["precompiled"] is True and plan["dkms_kernels"] == []
    plan = mod.decide(_facts(precompiled_available={pre: False}), want)
    assert plan["packages"] == ["nvidia-headless-no-dkms-580", "nvidia-utils-580", "nvidia-dkms-580"]
    assert plan["dkms_kernels"] == [RUNNING]
    assert "no precompiled module package" in plan["notes"][0]


def test_plan_runfile_upgrade_on_a_held_gpu_asks_for_a_drain():
    mod = driver_state
    want = {"method": "runfile", "version": VERSION, "url": f"https://x/NVIDIA-Linux-x86_64-{VERSION}.run",
            "sha256": "0" * 64, "cache_dir": "/c", "kernel_module_type": "auto", "dkms": True, "force": False,
            "stop_services": ["nvidia-persistenced"]}
    facts = _facts(installed=OLD, loaded=OLD, nvidia_loaded=True, url_version=VERSION,
                   built={"version": OLD, "module_type": "proprietary", "dkms": True},
                   services={"nvidia-persistenced": True},
                   holders={"processes": [{"pid": 5, "command": "nvidia-persistenced", "devices": ["/dev/nvidiactl"]}],
                            "busy": True})
    plan = mod.decide(facts, want)
    assert plan["refusals"] == [] and plan["action"] == "upgrade" and plan["drain"] is True
    assert plan["stop_services"] == ["nvidia-persistenced"] and plan["holders"] == []
    assert plan["reboot"] is None  # the module is swapped in place once nothing holds it


def test_holders_scan_proc_fd_links_and_module_use_counts(tmp_path, monkeypatch):
    """nvidia.holders: every process with /dev/nvidia* open (one pass over
    /proc/*/fd readlinks) and the use count of the loaded modules."""
    mod = nvidia_mod
    proc, sys_ = tmp_path / "proc", tmp_path / "sys"
    (proc).mkdir()
    (proc / "modules").write_text(
        "nvidia_uvm 1437696 0 - Live 0x0000000000000000 (POE)\n"
        "nvidia_drm 77824 0 - Live 0x0000000000000000 (POE)\n"
        "nvidia_modeset 1306624 1 nvidia_drm, Live 0x0000000000000000 (POE)\n"
        "nvidia 56692736 4 nvidia_uvm,nvidia_modeset, Live 0x0000000000000000 (POE)\n"
        "ext4 1081344 1 - Live 0x0000000000000000\n")
    for pid, comm, targets in ((900, "nvidia-device-plugin", ["/dev/nvidiactl", "/dev/nvidia0"]),
                               (77, "nvidia-persistenced", ["/dev/nvidiactl"]),
                               (12, "sshd", ["/dev/null", "socket:[1234]"])):
        fd = proc / str(pid) / "fd"
        fd.mkdir(parents=True)
        (proc / str(pid) / "comm").write_text(comm + "\n")
        for i, target in enumerate(targets):
            os.symlink(target, fd / str(i))
    (sys_ / "module/nvidia/holders/nvidia_modeset").mkdir(parents=True)
    mod.__opts__.update({"k8snvidia.procfs_root": str(proc), "k8snvidia.sysfs_root": str(sys_)})
    monkeypatch.setattr(mod, "processes", lambda: [{"pid": 4242, "name": "python"}])
    got = mod.holders()
    assert [(p["pid"], p["command"], p["devices"]) for p in got["processes"]] == [
        (77, "nvidia-persistenced", ["/dev/nvidiactl"]),
        (900, "nvidia-device-plugin", ["/dev/nvidia0", "/dev/nvidiactl"]),
        (4242, "python", ["(nvidia-smi: GPU process)"]),
    ]
    assert got["modules"]["nvidia"] == {"refcount": 4, "used_by": ["nvidia_modeset", "nvidia_uvm"]}
    assert got["busy"] is True
    # nothing open, only the NVIDIA modules stacked on each other: not busy
    for pid in (900, 77):
        for link in (proc / str(pid) / "fd").iterdir():
            link.unlink()
    (proc / "modules").write_text("nvidia_modeset 1306624 0 - Live 0x0\nnvidia 56692736 1 nvidia_modeset, Live 0x0\n")
    monkeypatch.setattr(mod, "processes", lambda: [])
    assert mod.holders()["busy"] is False
    (proc / "modules").write_text("ext4 1081344 1 - Live 0x0\n")
    assert mod.holders() == {"processes": [], "modules": {}, "busy": False}


def test_removed_package_method_removes_the_installed_packages():
    mod = driver_state
    have = {"nvidia-utils-580": "580.95.05-0ubuntu0.22.04.2", f"linux-modules-nvidia-580-{RUNNING}": "1"}
    removed = []
    mod.__salt__.update({
        "nvidia_driver.installed_version": lambda: None,
        "pkg.version": lambda name: have.get(name, ""),
        "pkg.remove": lambda pkgs: removed.extend(pkgs) or {p: {"old": have[p], "new": ""} for p in pkgs},
    })
    mod.__opts__["test"] = True
    kw = {"method": "package", "branch": 580, "packages": {"proprietary": ["nvidia-utils-{branch}"]},
          "dkms_packages": {"proprietary": ["nvidia-dkms-{branch}"]},
          "precompiled": {"proprietary": ["linux-modules-nvidia-{branch}-{kernel}"]}}
    ret = mod.removed(**kw)
    assert ret["result"] is None and ret["changes"]["removed"] == [f"linux-modules-nvidia-580-{RUNNING}",
                                                                   "nvidia-utils-580"]
    assert removed == []
    mod.__opts__["test"] = False
    ret = mod.removed(**kw)
    assert ret["result"] is True and sorted(removed) == sorted(have)


def test_driver_method_keys_are_validated():
    """driver:method and the package method's branch are checked before
    anything changes; the package method needs no url/sha256."""
    util = load_source("_utils/k8snvidia.py", "test_nvd_validate")
    params = {n: yaml.safe_load((ROOT / f"salt/parameters/{n}.yaml").read_text())
              for n in ("defaults", "os_family", "osfinger")}
    cluster = yaml.safe_load((ROOT / "pillar/cluster.sls").read_text())["k8snvidia"]
    profile = yaml.safe_load((ROOT / "pillar/profiles/modern.sls").read_text())["k8snvidia"]
    shipped = util.merge(profile, cluster)
    jammy = {"id": "node-105", "os_family": "Debian", "osfinger": "Ubuntu-22.04", "os": "Ubuntu",
             "osmajorrelease": 22, "oscodename": "jammy"}

    def problems(pillar, grains=jammy):
        return util.validate(util.build(params, pillar, grains["id"], grains), pillar)

    assert problems(shipped) == []
    cfg = util.build(params, shipped, "node-105", jammy)
    assert cfg["driver"]["method"] == "package" and cfg["driver"]["package"]["branch"] == 580
    bad = copy.deepcopy(shipped)
    bad.setdefault("driver", {})["method"] = "rpm"
    assert any("k8snvidia:driver:method: 'rpm' is invalid; expected one of runfile, package" in p
               for p in problems(bad))
    bad = copy.deepcopy(shipped)
    bad["driver"].update(sha256=None, package={"branch": "latest"})
    got = problems(bad)
    assert any("driver:package:branch" in p for p in got) and not any("driver:sha256" in p for p in got)


def test_precompiled_candidate_read_by_name_from_salts_answer():
    """Salt 3008's aptpkg.latest_version answers {name: ''} (a dict, so
    truthy), not '', for one package no repository has: the twin showed a
    node choosing a precompiled module package that does not exist for its
    kernel (linux-modules-nvidia-580-open-5.15.0-119-generic) instead of the
    DKMS packages. The answer is read by name."""
    mod = driver_state
    answers = {"absent": {"absent": ""}, "present": "580.95.05-0ubuntu1", "dict-present": {"dict-present": "1.0"}}
    mod.__salt__["pkg.latest_version"] = lambda name, refresh=True: answers[name]
    assert mod._candidate("absent") == ""
    assert mod._candidate("present") == "580.95.05-0ubuntu1"
    assert mod._candidate("dict-present") == "1.0"


def _held_upgrade(holders, services=None, test=False, force=False):
    mod = driver_state
    want = {"method": "runfile", "version": VERSION, "url": f"https://x/NVIDIA-Linux-x86_64-{VERSION}.run",
            "sha256": "0" * 64, "cache_dir": "/c", "kernel_module_type": "auto", "dkms": True, "force": force,
            "stop_services": list(services or {}), "test": test}
    facts = _facts(installed=OLD, loaded=OLD, nvidia_loaded=True, url_version=VERSION,
                   built={"version": OLD, "module_type": "proprietary", "dkms": True}, services=services or {},
                   holders={"processes": holders, "busy": bool(holders)})
    return mod.decide(facts, want)


def test_plan_pods_holding_the_gpu_ask_for_a_drain_others_are_refused():
    """A pod's process (cgroup under kubepods) leaves with a drain: the
    prediction plans the drain instead of refusing; a real run on an
    undrained node refuses with what to do. A process outside Kubernetes
    that is no GPU service is refused in both, by pid and command."""
    plugin = {"pid": 31000, "command": "nvidia-device-plugin", "devices": ["/dev/nvidia0", "/dev/nvidiactl"],
              "pod": True}
    # persistenced's comm is cut to 15 characters; its cgroup names its unit
    persist = {"pid": 811, "command": "nvidia-persiste", "devices": ["/dev/nvidiactl"]}
    hostengine = {"pid": 823, "command": "nv-hostengine", "unit": "nvidia-dcgm", "devices": ["/dev/nvidiactl"]}
    services = {"nvidia-persistenced": True, "nvidia-dcgm": True}
    plan = _held_upgrade([plugin, persist, hostengine], services, test=True)
    assert plan["refusals"] == [] and plan["drain"] is True
    assert plan["stop_services"] == ["nvidia-persistenced", "nvidia-dcgm"] and plan["holders"] == [plugin]
    assert "the GPU pods must leave first" in plan["notes"][0]
    plan = _held_upgrade([plugin, persist], services)
    assert "while Kubernetes pods hold the GPU: nvidia-device-plugin (pid 31000, in a pod, /dev/nvidia0" in (
        plan["refusals"][0])
    assert "salt-run driver_upgrade.drain <node>" in plan["refusals"][0]
    assert _held_upgrade([persist], services)["refusals"] == []
    job = {"pid": 4242, "command": "python3", "devices": ["/dev/nvidia-uvm", "/dev/nvidia0"]}
    for test in (True, False):
        plan = _held_upgrade([plugin, job], services, test=test)
        assert plan["refusals"] and "held by python3 (pid 4242, /dev/nvidia-uvm, /dev/nvidia0), outside " \
            "Kubernetes" in plan["refusals"][0]
    assert _held_upgrade([plugin, job], services, force=True)["allow_running"] is True


def test_holders_name_the_unit_and_the_pod_from_the_cgroup(tmp_path, monkeypatch):
    mod = nvidia_mod
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "modules").write_text("nvidia 56692736 3 - Live 0x0 (POE)\n")
    rows = (
        (811, "nvidia-persiste", b"/usr/bin/nvidia-persistenced\0--user\0nvidia-persistenced\0",
         "1:name=systemd:/system.slice/nvidia-persistenced.service\n11:devices:/system.slice/nvidia-persistenced.service\n"),
        (31000, "nvidia-device-p", b"nvidia-device-plugin\0", "0::/kubepods.slice/kubepods-besteffort.slice/"
         "kubepods-besteffort-pod1.slice/cri-containerd-ab.scope\n"),
        (4242, "python3", b"", "0::/user.slice/user-0.slice/session-1.scope\n"),
    )
    for pid, comm, cmdline, cgroup in rows:
        d = proc / str(pid)
        (d / "fd").mkdir(parents=True)
        (d / "comm").write_text(comm + "\n")
        (d / "cmdline").write_bytes(cmdline)
        (d / "cgroup").write_text(cgroup)
        os.symlink("/dev/nvidiactl", d / "fd" / "3")
    mod.__opts__.update({"k8snvidia.procfs_root": str(proc), "k8snvidia.sysfs_root": str(tmp_path / "sys")})
    monkeypatch.setattr(mod, "processes", lambda: [])
    got = {p["pid"]: p for p in mod.holders()["processes"]}
    assert got[811] == {"pid": 811, "command": "nvidia-persistenced", "unit": "nvidia-persistenced",
                        "devices": ["/dev/nvidiactl"]}
    assert got[31000]["command"] == "nvidia-device-plugin" and got[31000]["pod"] is True
    assert got[4242] == {"pid": 4242, "command": "python3", "devices": ["/dev/nvidiactl"]}


def test_a_kernel_without_module_support_has_nothing_loaded(tmp_path):
    """A kernel built without loadable modules (this machine's: the real
    tier's node runs on it) has no /proc/modules: nothing is loaded, the
    plan goes on. Without procfs at all the state stops."""
    node = FactsMinion(tmp_path, kernels=["6.1.0-41-amd64"])
    (tmp_path / "proc/modules").unlink()
    (tmp_path / "proc/self").mkdir()
    assert node.installed(gpus=["NVIDIA GeForce GTX 1080 Ti"])["result"] is None
    (tmp_path / "proc/self").rmdir()
    ret = node.installed()
    assert ret["result"] is False and "cannot read the loaded kernel modules" in ret["comment"]


def test_twin_catalog_has_what_the_debian_12_map_installs():
    """The twin's bookworm archive agrees with the map and with what the
    real-node tier installed on a real Debian 12 (tests/real): every package
    the package method plans, of the map's branch, the DKMS packages
    registering the map's module name for their module type."""
    catalog = yaml.safe_load((ROOT / "twin/catalog/debian-family.yaml").read_text())
    pkgs = next(r for r in catalog["repositories"] if r["name"] == "debian-bookworm")["packages"]
    want = debian_want()
    for mtype in ("proprietary", "open"):
        for name in want["packages"][mtype] + want["dkms_packages"][mtype]:
            assert name in pkgs, name
        for name in want["dkms_packages"][mtype]:
            spec = pkgs[name]["payload"]["nvidia_driver"]
            assert spec["module"] == want["dkms_module"][mtype], (name, spec)
            assert spec.get("module_type", "proprietary") == mtype
            assert all(v.startswith(f"{want['branch']}.") for v in pkgs[name]["versions"])
