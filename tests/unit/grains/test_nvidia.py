"""The nvidia grain (_grains/nvidia.py) and execution module (_modules/nvidia.py)
on fake sysfs/procfs trees (twin/k8stwin/hw.py) with the emulated or a
scripted nvidia-smi on PATH: the paths without NVML ( ``nvidia.nvml_library`` names a missing file; the NVML path is
tests/unit/utils/test_nvml.py)."""

import logging
import pathlib
import subprocess

import pytest
from salt.exceptions import CommandExecutionError

from tests.conftest import load_source, loader_globals
from tests.fakes.nvidia import FIXTURES, gpu, hw, make_node, smi_bin, smi_runs, utils_dict, with_path

grains_mod = load_source("_grains/nvidia.py", "k8snvidia_test_grains_nvidia")
exec_mod = load_source("_modules/nvidia.py", "k8snvidia_test_modules_nvidia")

PASCAL = "NVIDIA GeForce GTX 1080 Ti"
QUERY = ["nvidia-smi", *gpu.smi_query_args()]
NO_NVML = "/nonexistent/libnvidia-ml.so.1"  # these tests are about the paths without NVML, on any host
H200_VERSION = (FIXTURES.parent / "device" / "h200-host.txt").read_text().split("\n")[1] + "\n"


def run_all(cmd, python_shell=False, timeout=None, **_kw):
    """cmd.run_all as the execution module calls it (a list, no shell)."""
    assert python_shell is False
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"retcode": 1, "stdout": "", "stderr": "timed out"}
    return {"retcode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}


@pytest.fixture
def configure_loader_modules():
    """Salt's dunders through salt-factories' loader mock; tests fill __opts__."""
    return {grains_mod: loader_globals(__utils__=utils_dict()),
            exec_mod: loader_globals(__utils__=utils_dict(), __salt__={"cmd.run_all": run_all},
                                     __grains__={"id": "node-110"})}


@pytest.fixture(autouse=True)
def no_libcuda(monkeypatch):
    """The fallback's CUDA version comes from libcuda.so.1: none here, also
    on a host that has one (the lent H200)."""
    monkeypatch.setattr(gpu.nvml_module(), "CUDA_LIBRARY", "/nonexistent/libcuda.so.1")


def grain(node, monkeypatch, bindir=None, **opts):
    """The grain's value for a node dir, with bindir first on PATH."""
    if bindir is not None:
        monkeypatch.setenv("PATH", with_path(bindir))
    else:
        monkeypatch.setenv("PATH", "/nonexistent")
    conf = {"k8snvidia.sysfs_root": str(node / "sys"), "k8snvidia.procfs_root": str(node / "proc"),
            "nvidia.nvml_library": NO_NVML}
    conf.update(opts)
    grains_mod.__opts__.clear()
    grains_mod.__opts__.update(conf)
    out = grains_mod.nvidia()
    assert list(out) == ["nvidia"]
    return out["nvidia"]


def test_no_driver(tmp_path, monkeypatch):
    node = make_node(tmp_path / "n", [PASCAL])
    bindir = smi_bin(tmp_path, node)
    got = grain(node, monkeypatch, bindir)
    assert got == {
        "gpu_count": 1,
        "gpus": [
            {
                "pci_bus_id": "0000:01:00.0",
                "pci_device_id": "0x1b06",
                "name": PASCAL,
                "architecture": "Pascal",
                "uuid": None,
                "memory_mib": None,
                "kernel_driver": None,
                "compute_capability": None,
                "mig_mode": None,
            }
        ],
        "driver_version": None,
        "cuda_version": None,
        "kernel_module": None,
        "nouveau_loaded": False,
        "source": "pci",
    }
    assert smi_runs(node) == []  # nvidia-smi is on PATH but the driver is not loaded


def test_nouveau_loaded(tmp_path, monkeypatch):
    node = make_node(tmp_path / "n", [PASCAL], modules=["nouveau"])
    bindir = smi_bin(tmp_path, node)
    got = grain(node, monkeypatch, bindir)
    assert got["nouveau_loaded"] is True
    assert got["kernel_module"] is None and got["driver_version"] is None
    assert got["gpus"][0]["kernel_driver"] == "nouveau"
    assert got["gpus"][0]["architecture"] == "Pascal"
    assert smi_runs(node) == []


def test_two_generations_with_driver_one_smi_call(tmp_path, monkeypatch):
    node = make_node(tmp_path / "n", [PASCAL, "Tesla T4"], modules=["nvidia", "nvidia_uvm"], driver_version="580.95.05")
    bindir = smi_bin(tmp_path, node)
    got = grain(node, monkeypatch, bindir)
    layout = hw.layout([PASCAL, "Tesla T4"], "node-110")
    assert got["gpu_count"] == 2
    assert [(g["pci_bus_id"], g["name"], g["architecture"], g["uuid"], g["memory_mib"], g["compute_capability"])
            for g in got["gpus"]] == [
        ("0000:01:00.0", PASCAL, "Pascal", layout[0]["uuid"], 11264, "6.1"),
        ("0000:02:00.0", "Tesla T4", "Turing", layout[1]["uuid"], 15360, "7.5"),
    ]
    # --query-gpu has no CUDA version, and no libcuda answers here
    assert (got["driver_version"], got["cuda_version"], got["kernel_module"]) == ("580.95.05", None, "proprietary")
    assert "error" not in got and got["source"] == "nvidia-smi"
    assert smi_runs(node) == [QUERY]  # exactly one subprocess per refresh


def test_open_module(tmp_path, monkeypatch):
    node = make_node(tmp_path / "n", ["NVIDIA H200"], modules=["nvidia"], driver_version="580.159.04", open_module=True)
    got = grain(node, monkeypatch, smi_bin(tmp_path, node))
    assert got["kernel_module"] == "open"
    assert got["gpus"][0]["name"] == "NVIDIA H200" and got["gpus"][0]["memory_mib"] == 143771


def test_real_h200_procfs_lines(tmp_path, monkeypatch):
    """/proc as the H200 machine showed it: refcount '-' and (O) taint, the open module's version line."""
    node = make_node(tmp_path / "n", ["NVIDIA H200"])
    (node / "proc" / "modules").write_text(
        "nvidia_uvm 1830912 - - Live 0xffffffffc080c000 (O)\nnvidia 14299136 - - Live 0xffffffffc0400000 (O)\n"
    )
    (node / "proc" / "driver" / "nvidia").mkdir(parents=True)
    (node / "proc" / "driver" / "nvidia" / "version").write_text(H200_VERSION)
    # the H200's values (h200-smi-cli.txt) in the grain's --query-gpu field order
    line = ("0, 00000000:00:06.0, 0x233510DE, NVIDIA H200, GPU-fbebc83b-9a1b-2f37-2ccf-65efae99eb8d, 143771, "
            "580.159.04, 9.0, Disabled")
    script = f"#!/bin/sh\necho '{line}'\n"
    bindir = smi_bin(tmp_path, node, script=script)
    got = grain(node, monkeypatch, bindir)
    assert (got["driver_version"], got["kernel_module"], got["cuda_version"]) == ("580.159.04", "open", None)
    assert (got["gpus"][0]["compute_capability"], got["gpus"][0]["mig_mode"]) == ("9.0", "Disabled")
    # the capture's bus id (0000:00:06.0) is not the fake tree's (0000:01:00.0): paired by device id, once
    assert got["gpu_count"] == 1
    assert [g["pci_bus_id"] for g in got["gpus"]] == ["0000:01:00.0"]
    assert got["gpus"][0]["uuid"] == "GPU-fbebc83b-9a1b-2f37-2ccf-65efae99eb8d"


def test_gpus_ordered_by_bus_id(tmp_path, monkeypatch):
    root = tmp_path / "sys"
    hw.write_sysfs(root, [{"name": "Tesla T4", "pci_bus_id": "0000:81:00.0"}, {"name": PASCAL, "pci_bus_id": "0000:0a:00.0"}])
    node = tmp_path
    (node / "proc").mkdir()
    got = grain(node, monkeypatch)
    assert [g["pci_bus_id"] for g in got["gpus"]] == ["0000:0a:00.0", "0000:81:00.0"]
    assert [g["architecture"] for g in got["gpus"]] == ["Pascal", "Turing"]


def test_skips_other_devices_and_classes(tmp_path):
    hw.write_sysfs(tmp_path, [PASCAL])  # also writes the GPU's audio function and a host bridge
    found = gpu.read_pci(str(tmp_path))
    assert [d["pci_bus_id"] for d in found] == ["0000:01:00.0"]


def test_sandbox_without_pci_tree(tmp_path, monkeypatch):
    """No /sys/bus/pci (gVisor-like) but a loaded driver: GPUs come from nvidia-smi."""
    node = make_node(tmp_path / "n", ["NVIDIA H200"], modules=["nvidia"], driver_version="580.159.04")
    import shutil

    shutil.rmtree(node / "sys")
    got = grain(node, monkeypatch, smi_bin(tmp_path, node))
    assert got["gpu_count"] == 1 and got["gpus"][0]["name"] == "NVIDIA H200" and got["gpus"][0]["kernel_driver"] is None


@pytest.mark.parametrize(
    "script, needle",
    [
        (None, "nvidia-smi not found on PATH"),
        ("#!/bin/sh\necho \"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\"\nexit 9\n",
         "nvidia-smi --query-gpu failed (rc 9): NVIDIA-SMI has failed"),
        ("#!/bin/sh\necho garbage\n", "printed 1 fields, not 9"),
        ("#!/bin/sh\nexec sleep 30\n", "timed out after 0.5s"),
    ],
)
def test_smi_failures_are_reported_not_raised(tmp_path, monkeypatch, script, needle):
    node = make_node(tmp_path / "n", [PASCAL], modules=["nvidia"], driver_version="580.95.05")
    bindir = smi_bin(tmp_path, node, script=script) if script else None
    got = grain(node, monkeypatch, bindir, **{"nvidia.smi_timeout": 0.5})
    assert needle in got["error"]
    # PCI facts survive; driver facts from procfs too
    assert got["gpus"][0]["architecture"] == "Pascal" and got["gpus"][0]["uuid"] is None
    assert got["driver_version"] == "580.95.05" and got["kernel_module"] == "proprietary"
    assert got["source"] == "pci"


def test_missing_roots(tmp_path, monkeypatch):
    got = grain(tmp_path / "nothing", monkeypatch)
    assert got["gpu_count"] == 0 and got["gpus"] == [] and "error" not in got


def test_unreadable_device_is_skipped(tmp_path, monkeypatch):
    node = make_node(tmp_path / "n", [PASCAL, "Tesla T4"])
    (node / "sys/bus/pci/devices/0000:01:00.0/class").unlink()
    got = grain(node, monkeypatch)
    assert [g["name"] for g in got["gpus"]] == ["Tesla T4"]


def test_grain_never_raises(caplog):
    def boom(*_a, **_k):
        raise RuntimeError("disk on fire")

    grains_mod.__utils__["nvidia_gpu.inventory"] = boom
    with caplog.at_level(logging.ERROR):
        got = grains_mod.nvidia()["nvidia"]
    assert got["error"] == "nvidia grain failed: RuntimeError: disk on fire"
    assert got["gpu_count"] == 0
    assert [r.getMessage() for r in caplog.records] == ["nvidia grain failed"] and caplog.records[0].exc_info
    grains_mod.__utils__.clear()
    assert "sync_all" in grains_mod.nvidia()["nvidia"]["error"]


def test_procfs_readers():
    assert gpu.VERSION_RE.search(hw.version_text("580.95.05")).group(1) == "580.95.05"
    assert gpu.VERSION_RE.search(hw.version_text("580.95.05", open_module=True)).group(1) == "580.95.05"
    assert hw.module_line("nvidia", ["nvidia_uvm"]) == "nvidia 56717312 1 nvidia_uvm, Live 0x0000000000000000 (POE)"
    assert hw.module_line("nvidia", [], open_module=True) == "nvidia 56717312 0 - Live 0x0000000000000000 (OE)"


# ------------------------------------------------------------------ the execution module
@pytest.fixture
def module(monkeypatch):
    def use(node, bindir=None):
        monkeypatch.setenv("PATH", with_path(bindir) if bindir else "/nonexistent")
        if bindir is None:  # salt.utils.path.which also looks in /usr/bin and friends
            monkeypatch.setattr(exec_mod.salt.utils.path, "which", lambda *_a, **_k: None)
        exec_mod.__opts__.clear()
        exec_mod.__opts__.update({"k8snvidia.sysfs_root": str(node / "sys"), "k8snvidia.procfs_root": str(node / "proc"),
                                  "nvidia.nvml_library": NO_NVML})
        return exec_mod

    return use


def test_module_virtual():
    assert exec_mod.__virtual__() == "nvidia"
    exec_mod.__utils__.clear()
    assert exec_mod.__virtual__()[0] is False


def test_module_busy_node(tmp_path, module):
    procs = [{"pid": 4242, "name": "python3", "gpu": 1, "used_memory_mib": 1542}]
    node = make_node(tmp_path / "n", [PASCAL, "Tesla T4"], ["nvidia"], "580.95.05", processes=procs)
    mod = module(node, smi_bin(tmp_path, node))
    assert [(p["pid"], p["name"], p["gpu"], p["pci_bus_id"], p["used_memory_mib"]) for p in mod.processes()] == [
        (4242, "python3", 1, "0000:02:00.0", 1542)
    ]
    drv = mod.driver()  # no NVML in these utils: --query-gpu, no CUDA version (tests/unit/utils/test_nvml.py has NVML's)
    assert drv == {"loaded": True, "version": "580.95.05", "cuda_version": None, "kernel_module": "proprietary",
                   "nouveau_loaded": False}
    assert [g["name"] for g in mod.gpus()] == [PASCAL, "Tesla T4"]
    rec = mod.recommended()
    assert (rec["max_branch"], rec["module_type"], rec["cuda_max"]) == (580, "proprietary", 12)
    assert [g["architecture"] for g in rec["gpus"]] == ["Pascal", "Turing"]
    assert mod.driver_problems("590.44.01") == [
        "k8snvidia:driver:version: '590.44.01' is invalid; expected a driver of branch 580 or older: node node-110 "
        "has NVIDIA GeForce GTX 1080 Ti (Pascal), which 590+ drivers do not support"
    ]


def test_module_no_driver(tmp_path, module):
    node = make_node(tmp_path / "n", [PASCAL], ["nouveau"])
    mod = module(node, smi_bin(tmp_path, node))
    assert mod.processes() == []
    assert mod.driver()["loaded"] is False and mod.driver()["nouveau_loaded"] is True
    assert mod.recommended()["module_type"] == "proprietary"  # known from PCI before any driver
    assert smi_runs(node) == []


def test_module_processes_refuses_to_guess(tmp_path, module):
    node = make_node(tmp_path / "n", [PASCAL], ["nvidia"], "580.95.05")
    bindir = smi_bin(tmp_path, node, script="#!/bin/sh\necho 'Unable to determine the device handle'\nexit 15\n")
    mod = module(node, bindir)
    with pytest.raises(CommandExecutionError, match="rc 15"):
        mod.processes()
    assert "rc 15" in mod.driver()["error"]
    mod = module(node, None)
    with pytest.raises(CommandExecutionError, match="not found"):
        mod.processes()


def test_module_parse_helper(module, tmp_path):
    mod = module(tmp_path)
    assert mod.parse_smi_xml((FIXTURES / "tesla-t4.xml").read_text())["gpus"][0]["name"] == "Tesla T4"
    with pytest.raises(CommandExecutionError):
        mod.parse_smi_xml("nope")


def test_fixture_tree_is_clean(tmp_path):
    """write_sysfs replaces an earlier tree (a node that lost a GPU)."""
    hw.write_sysfs(tmp_path, [PASCAL, "Tesla T4"])
    hw.write_sysfs(tmp_path, [PASCAL])
    assert len(gpu.read_pci(str(tmp_path))) == 1
    assert pathlib.Path(tmp_path, "bus/pci/devices/0000:01:00.1/driver").is_symlink()


@pytest.mark.parametrize("open_module, want", [(False, "proprietary"), (True, "open")])
def test_module_type_from_taint_without_version_file(tmp_path, monkeypatch, open_module, want):
    node = make_node(tmp_path / "n", [PASCAL], ["nvidia"], "580.95.05", open_module=open_module)
    (node / "proc/driver/nvidia/version").unlink()
    got = grain(node, monkeypatch, smi_bin(tmp_path, node))
    assert got["kernel_module"] == want and got["driver_version"] == "580.95.05"  # version from nvidia-smi
    assert gpu.module_taint(str(node / "proc"), "nouveau") is None
