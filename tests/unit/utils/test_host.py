"""Unit tests of _utils/host.py: the host roots and their deprecated option
names, the /proc/modules reader, the artifact-mirror lookup and the
reboot-pending mark every state shares. The execution modules that call it
get Salt's dunders through salt-factories' loader mock
(``configure_loader_modules``)."""

import logging

import pytest

from tests.conftest import load_source, loader_globals
from tests.fakes.reboot_marks import Marks

host = load_source("_utils/host.py", "k8snvidia_test_host")
k8snvidia_mod = load_source("_modules/k8snvidia.py", "k8snvidia_test_host_k8snvidia")
nvidia_driver_mod = load_source("_modules/nvidia_driver.py", "k8snvidia_test_host_nvidia_driver")


@pytest.fixture
def configure_loader_modules():
    return {k8snvidia_mod: loader_globals(), nvidia_driver_mod: loader_globals()}

PROC_MODULES = (
    "nvidia_uvm 1437696 2 - Live 0xffffffffc1a00000 (POE)\n"
    "nvidia 56823808 3 nvidia_uvm,nvidia_modeset, Live 0xffffffffc0a00000 (POE)\n"
    "nouveau 1949696 0 - Live 0x0000000000000000\n"
    "\n"
    "overlay 91659 1 - Live 0x0000000000000000 (E)\n"
)


# ------------------------------------------------------------ roots
def test_roots_default():
    assert host.procfs({}) == "/proc" and host.sysfs({}) == "/sys"
    assert host.procfs(None) == "/proc" and host.sysfs(None) == "/sys"
    assert host.procfs({"k8snvidia.procfs_root": ""}) == "/proc"


def test_roots_from_the_k8snvidia_options():
    opts = {"k8snvidia.procfs_root": "/n/proc", "k8snvidia.sysfs_root": "/n/sys"}
    assert host.procfs(opts) == "/n/proc" and host.sysfs(opts) == "/n/sys"


def test_old_option_names_are_read_when_the_new_ones_are_unset(caplog, monkeypatch):
    monkeypatch.setattr(host, "_warned", set())
    old = {"nvidia.procfs_root": "/old/proc", "nvidia.sysfs_root": "/old/sys"}
    with caplog.at_level(logging.WARNING):
        assert host.procfs(old) == "/old/proc" and host.sysfs(old) == "/old/sys"
        assert host.procfs(old) == "/old/proc"
    warned = [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]
    assert len(warned) == 2  # once per old name and process
    assert "set k8snvidia.procfs_root instead" in warned[0]
    both = dict(old, **{"k8snvidia.procfs_root": "/new/proc"})
    assert host.procfs(both) == "/new/proc"  # the new name wins


def test_roots_never_take_the_truth_value_of_opts():
    class NoTruth(dict):
        def __bool__(self):
            raise AssertionError("truth value of opts taken")

        __len__ = __bool__

    assert host.procfs(NoTruth({"k8snvidia.procfs_root": "/p"})) == "/p"


# ------------------------------------------------------------ /proc/modules
def test_kernel_modules_rows(tmp_path):
    (tmp_path / "modules").write_text(PROC_MODULES)
    rows = host.kernel_modules(str(tmp_path))
    assert list(rows) == ["nvidia_uvm", "nvidia", "nouveau", "overlay"]
    assert rows["nvidia"] == {"size": "56823808", "refcount": 3, "used_by": ["nvidia_uvm", "nvidia_modeset"],
                              "state": "Live", "taint": "POE"}
    assert rows["nouveau"]["taint"] == "" and rows["nouveau"]["used_by"] == []
    assert rows["overlay"]["taint"] == "E"


def test_kernel_modules_without_module_support_is_empty(tmp_path):
    (tmp_path / "self").mkdir()  # procfs is there, /proc/modules is not: CONFIG_MODULES=n
    assert host.kernel_modules(str(tmp_path)) == {}


def test_kernel_modules_unreadable_raises(tmp_path):
    with pytest.raises(OSError):
        host.kernel_modules(str(tmp_path / "nothing"))


def test_nvidia_gpu_readers_use_the_one_reader(tmp_path):
    gpu = load_source("_utils/nvidia_gpu.py", "k8snvidia_test_host_gpu")
    (tmp_path / "modules").write_text(PROC_MODULES)
    assert gpu.read_modules(str(tmp_path)) == ["nvidia_uvm", "nvidia", "nouveau", "overlay"]
    assert gpu.module_taint(str(tmp_path)) == "POE" and gpu.module_taint(str(tmp_path), "nouveau") == ""
    assert gpu.module_taint(str(tmp_path), "i915") is None
    assert gpu.read_modules(str(tmp_path / "none")) is None
    assert gpu.host_roots({"k8snvidia.sysfs_root": "/s", "k8snvidia.procfs_root": "/p"}) == ("/s", "/p")


# ------------------------------------------------------------ artifact mirror
URL = "https://us.download.nvidia.com/XFree86/Linux-x86_64/580.95.05/NVIDIA-Linux-x86_64-580.95.05.run"


@pytest.mark.parametrize("form", ["{d}", "file://{d}", "file://localhost{d}", "file://{q}"])
def test_mirror_source_file_url_forms(tmp_path, form):
    mirror = tmp_path / "mir ror"
    mirror.mkdir()
    (mirror / "NVIDIA-Linux-x86_64-580.95.05.run").write_text("x")
    value = form.format(d=mirror, q=str(mirror).replace(" ", "%20"))
    assert host.mirror_source(value, URL) == str(mirror / "NVIDIA-Linux-x86_64-580.95.05.run")
    assert host.mirror_source(value, "https://example.com/other.run") is None


def test_mirror_source_unset_or_no_name(tmp_path):
    assert host.mirror_source(None, URL) is None and host.mirror_source("", URL) is None
    (tmp_path / "gpg").write_text("k")
    assert host.mirror_source(str(tmp_path), "https://download.docker.com/linux/ubuntu/gpg/") == str(tmp_path / "gpg")
    assert host.mirror_source(str(tmp_path), "https://example.com/") is None


def test_mirror_on_another_host_is_an_error():
    with pytest.raises(ValueError, match="k8snvidia.artifact_mirror"):
        host.mirror_source("file://server/share", URL)


def test_artifact_source_reads_config_get_else_opts(tmp_path):
    (tmp_path / "gpg").write_text("k")
    url = "https://download.docker.com/linux/centos/gpg"
    assert host.artifact_source(url, {"k8snvidia.artifact_mirror": f"file://{tmp_path}"}) == str(tmp_path / "gpg")
    asked = []

    def config_get(key):
        asked.append(key)
        return str(tmp_path)

    assert host.artifact_source(url, {}, config_get) == str(tmp_path / "gpg") and asked == ["k8snvidia.artifact_mirror"]
    assert host.local_path("file:///a%20b/c.run") == "/a b/c.run" and host.local_path("/x") == "/x"


def test_the_modules_and_the_sls_share_the_lookup(tmp_path):
    """k8snvidia.mirror_source (the SLS files) and nvidia_driver.mirror_source
    (its fetch) answer the same: they are host.artifact_source."""
    (tmp_path / "cri-dockerd-0.3.16-3.el7.x86_64.rpm").write_text("p")
    url = "https://github.com/Mirantis/cri-dockerd/releases/download/v0.3.16/cri-dockerd-0.3.16-3.el7.x86_64.rpm"
    salt = {"config.get": lambda key, default="": {"k8snvidia.artifact_mirror": f"file://{tmp_path}"}.get(key, default)}
    found = []
    for mod in (k8snvidia_mod, nvidia_driver_mod):
        mod.__salt__.update(salt)
        found.append(mod.mirror_source(url))
    assert found == [str(tmp_path / "cri-dockerd-0.3.16-3.el7.x86_64.rpm")] * 2


# ------------------------------------------------------------ reboot pending


def test_mark_reboot_predicts_marks_then_says_pending():
    marks = Marks()
    got = host.mark_reboot(marks.salt(), "kernel 6.1 is the boot default", True)
    assert got["status"] == "predicted" and got["result"] is None
    assert got["changes"] == {"reboot_pending": "kernel 6.1 is the boot default"} and marks.reasons == []
    got = host.mark_reboot(marks.salt(), "kernel 6.1 is the boot default", False)
    assert got["status"] == "marked" and got["result"] is True and got["changes"]
    assert marks.reasons == ["kernel 6.1 is the boot default"]
    for test in (True, False):
        got = host.mark_reboot(marks.salt(), "kernel 6.1 is the boot default", test)
        assert got["status"] == "pending" and got["result"] is True and got["changes"] == {}
        assert got["comment"] == "Reboot already pending: kernel 6.1 is the boot default"
    assert marks.reasons == ["kernel 6.1 is the boot default"]


def test_mark_reboot_reports_failures():
    got = host.mark_reboot(Marks(fail="read-only file system").salt(), "r", False)
    assert got["status"] == "failed" and got["result"] is False and got["changes"] == {}
    assert "could not mark the reboot pending (r): read-only file system" in got["comment"]
    got = host.mark_reboot({}, "r", True)
    assert got["result"] is False and "reboot_pending.reasons" in got["comment"] and "sync_all" in got["comment"]

    def broken():
        raise RuntimeError("cannot read /run/k8snvidia/reboot-required")

    got = host.mark_reboot({"reboot_pending.reasons": broken, "reboot_pending.mark": print}, "r", True)
    assert got["result"] is False and "cannot read /run/k8snvidia" in got["comment"]


def test_file_root_and_its_old_name():
    assert host.root({}) == "/"
    assert host.root({"k8snvidia.root": "/scratch"}) == "/scratch"
    assert host.root({"nvidia_driver.root": "/old"}) == "/old"


@pytest.mark.parametrize("line, want", [
    ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.95.05  Tue Sep 23 09:29:47 UTC 2025", "580.95.05"),
    ("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  590.44.01  Release Build  (dvs-builder@U22)", "590.44.01"),
    ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  470.256.02  Thu May  2 14:37:44 UTC 2024", "470.256.02"),
])
def test_the_loaded_driver_version_is_read_once(tmp_path, line, want):
    """nvidia_driver.loaded_version and the grain's inventory read
    /proc/driver/nvidia/version with the same reader."""
    (tmp_path / "driver/nvidia").mkdir(parents=True)
    (tmp_path / "driver/nvidia/version").write_text(line + "\nGCC version:  gcc version 12.2.0\n")
    mod = nvidia_driver_mod
    mod.__opts__["k8snvidia.procfs_root"] = str(tmp_path)
    gpu = load_source("_utils/nvidia_gpu.py", "k8snvidia_test_host_loaded_gpu")
    assert mod.loaded_version() == gpu.read_driver_version(str(tmp_path))[0] == want
    mod.__opts__["k8snvidia.procfs_root"] = str(tmp_path / "none")
    assert mod.loaded_version() is None
