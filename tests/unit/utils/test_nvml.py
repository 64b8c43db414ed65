"""The NVML reader (_utils/nvml.py) and the nvidia grain's NVML path, against
a stand-in libnvidia-ml.so.1 built with gcc from twin/k8stwin/fakenvml.c that
answers with the data of the real nvidia-smi captures; and the fallbacks
(nvidia-smi --query-gpu, the PCI tree) when the library is missing, lacks a
symbol, or fails nvmlInit."""

import json
import pathlib

import pytest

from tests.conftest import load_source, loader_globals
from tests.fakes.nvidia import FIXTURES, gpu, hw, make_node, smi_bin, smi_runs, with_path
from tests.fakes.nvml import CAPTURES, capture_gpus, fakenvml, library, nvml, utils_with_nvml, write_state

grains_mod = load_source("_grains/nvidia.py", "k8snvidia_test_grains_nvidia_nvml")
exec_mod = load_source("_modules/nvidia.py", "k8snvidia_test_modules_nvidia_nvml")

SMI_ARGS = ["nvidia-smi", *gpu.smi_query_args()]


@pytest.fixture
def configure_loader_modules():
    """Salt's dunders through salt-factories' loader mock: the grain's opts
    refuse a truth test and its utils record what is asked (the cost rules
    at the end of this file), as the minion's large dicts would cost."""
    return {grains_mod: loader_globals(__opts__=NoTruth(), __utils__=Recording(utils_with_nvml())),
            exec_mod: loader_globals(__utils__=utils_with_nvml())}


def grain(node, monkeypatch, bindir=None, lib=None, state=None, **opts):
    """The grain's value for a node dir with the fake NVML ``lib`` answering
    from ``state`` (default: the node's own nvml/state, as on the twin)."""
    monkeypatch.setenv("PATH", with_path(bindir) if bindir else "/nonexistent")
    monkeypatch.setenv("K8SNVIDIA_FAKE_NVML", str(state or (node / "nvml" / "state")))
    conf = {
        "k8snvidia.sysfs_root": str(node / "sys"),
        "k8snvidia.procfs_root": str(node / "proc"),
        "nvidia.nvml_library": lib or library(),
    }
    conf.update(opts)
    grains_mod.__opts__.clear()
    grains_mod.__opts__.update(conf)
    out = grains_mod.nvidia()
    assert list(out) == ["nvidia"]
    return out["nvidia"]


def three_gpu_node(tmp_path):
    """H200 (MIG capable, disabled), A100 with MIG enabled, T4 (no MIG)."""
    gpus = [{"name": "NVIDIA H200"}, {"name": "NVIDIA A100-SXM4-80GB", "mig_mode": "Enabled"}, {"name": "Tesla T4"}]
    return make_node(tmp_path / "n", gpus, modules=["nvidia", "nvidia_uvm"], driver_version="580.95.05",
                     open_module=True)


# ------------------------------------------------------------------ the reader
@pytest.mark.parametrize("capture", CAPTURES, ids=lambda p: pathlib.Path(p).name)
def test_reader_answers_what_the_capture_says(tmp_path, monkeypatch, capture):
    driver, cuda, gpus = capture_gpus(capture)
    monkeypatch.setenv("K8SNVIDIA_FAKE_NVML", str(write_state(tmp_path / "state", gpus, driver, cuda)))
    data, error = nvml.read(library())
    assert error is None
    assert (data["driver_version"], data["cuda_version"]) == (driver or None, cuda)
    xml = gpu.parse_smi_xml(pathlib.Path(capture).read_text())["gpus"]
    assert len(data["gpus"]) == len(xml)
    for got, want in zip(data["gpus"], xml):
        assert gpu.pci_bus_id(got["pci_bus_id"]) == want["pci_bus_id"]
        assert got["pci_bus_id"] == f"{int(want['pci_bus_id'].split(':')[0], 16):08X}:{want['pci_bus_id'][5:].upper()}"
        assert (got["name"], got["uuid"], got["memory_mib"], got["mig_mode"]) == (
            want["name"], want["uuid"], want["memory_mib"], want["mig_mode"])
        if want["pci_device_id"]:
            assert got["pci_device_id"] == want["pci_device_id"]


def test_cuda_version_forms():
    assert [nvml.cuda_version_str(v) for v in (13000, 12020, 11040, 10010, 0, None, "x")] == [
        "13.0", "12.2", "11.4", "10.1", None, None, None]
    assert [fakenvml.cuda_int(v) for v in ("13.0", "12.2", "N/A", None)] == [13000, 12020, 0, 0]


def test_reader_without_library_or_driver(tmp_path, monkeypatch):
    data, error = nvml.read(str(tmp_path / "libnvidia-ml.so.1"))
    assert data is None and "could not be loaded" in error
    monkeypatch.setenv("K8SNVIDIA_FAKE_NVML", str(tmp_path / "no-such-state"))  # module not loaded
    data, error = nvml.read(library())
    assert data is None and error == "nvml: nvmlInit_v2: Driver Not Loaded (NVML error 9)"


def test_load_finds_the_library_in_the_installers_dirs(tmp_path):
    libdir = tmp_path / "usr" / "lib64"
    libdir.mkdir(parents=True)
    name = "libk8snvidia-test-ml.so.1"  # not the real name: a host with NVML would find that one
    (libdir / name).symlink_to(library())
    lib, why = nvml.load(name, dirs=(str(tmp_path / "nothing"), str(libdir)))
    assert lib is not None and why is None
    lib, why = nvml.load(name, dirs=(str(tmp_path / "nothing"),))
    assert lib is None and f"{name} could not be loaded" in why


def test_init_and_shutdown_are_balanced(tmp_path, monkeypatch):
    """Every read ends with nvmlShutdown: the library is uninitialised after it."""
    import ctypes

    driver, cuda, gpus = capture_gpus(FIXTURES / "h200-v13.xml")
    monkeypatch.setenv("K8SNVIDIA_FAKE_NVML", str(write_state(tmp_path / "state", gpus, driver, cuda)))
    for _ in range(3):
        assert nvml.read(library())[1] is None
    count = ctypes.c_uint()
    assert ctypes.CDLL(library()).nvmlDeviceGetCount_v2(ctypes.byref(count)) == 1  # NVML_ERROR_UNINITIALIZED


# ------------------------------------------------------------------ the grain, NVML path
def test_grain_through_nvml_no_subprocess(tmp_path, monkeypatch):
    node = three_gpu_node(tmp_path)
    bindir = smi_bin(tmp_path, node)  # nvidia-smi is there, and must not be needed
    got = grain(node, monkeypatch, bindir)
    layout = hw.layout([{"name": "NVIDIA H200"}, {"name": "NVIDIA A100-SXM4-80GB"}, {"name": "Tesla T4"}], "node-110")
    assert got["source"] == "nvml" and "error" not in got
    assert (got["gpu_count"], got["driver_version"], got["cuda_version"], got["kernel_module"]) == (
        3, "580.95.05", "13.0", "open")
    assert [(g["pci_bus_id"], g["name"], g["architecture"], g["uuid"], g["memory_mib"], g["compute_capability"],
             g["mig_mode"], g["kernel_driver"]) for g in got["gpus"]] == [
        ("0000:01:00.0", "NVIDIA H200", "Hopper", layout[0]["uuid"], 143771, "9.0", "Disabled", "nvidia"),
        ("0000:02:00.0", "NVIDIA A100-SXM4-80GB", "Ampere", layout[1]["uuid"], 81920, "8.0", "Enabled", "nvidia"),
        ("0000:03:00.0", "Tesla T4", "Turing", layout[2]["uuid"], 15360, "7.5", None, "nvidia"),
    ]
    assert smi_runs(node) == []


def test_grain_nvml_and_query_gpu_agree(tmp_path, monkeypatch):
    """The same node through NVML and through the emulated nvidia-smi
    --query-gpu: one schema, the same values (CUDA from libcuda there)."""
    node = three_gpu_node(tmp_path)
    bindir = smi_bin(tmp_path, node)
    via_nvml = grain(node, monkeypatch, bindir)
    monkeypatch.setattr(gpu.nvml_module(), "CUDA_LIBRARY", library())  # libcuda.so.1 stand-in: the same build
    via_smi = grain(node, monkeypatch, bindir, lib=str(tmp_path / "missing.so"))
    assert via_smi["source"] == "nvidia-smi" and "error" not in via_smi
    assert {k: v for k, v in via_smi.items() if k != "source"} == {k: v for k, v in via_nvml.items() if k != "source"}
    assert smi_runs(node) == [SMI_ARGS]


def test_grain_on_the_h200_capture_equals_query_gpu(tmp_path, monkeypatch):
    """NVML answering with the H200's capture; the grain equals the
    --query-gpu line the real nvidia-smi printed there, field by field."""
    driver, cuda, gpus = capture_gpus(FIXTURES / "h200-v13.xml")
    node = make_node(tmp_path / "n", [{"name": "NVIDIA H200", "pci_bus_id": "0000:00:06.0"}], ["nvidia"], driver,
                     open_module=True)
    state = write_state(tmp_path / "state", gpus, driver, cuda)
    got = grain(node, monkeypatch, state=state)
    cli = (FIXTURES.parent / "device" / "h200-smi-cli.txt").read_text()
    line = cli.split("--format=csv,noheader,nounits\n", 1)[1].splitlines()[0]
    index, name, bus, uuid, mem, drv = line.split(", ")
    g = got["gpus"][0]
    assert (g["name"], g["pci_bus_id"], g["uuid"], g["memory_mib"], got["driver_version"]) == (
        name, gpu.pci_bus_id(bus), uuid, int(mem), drv)
    assert (g["compute_capability"], g["mig_mode"], got["cuda_version"], got["source"]) == (
        "9.0", "Disabled", "13.0", "nvml")


def test_gpu_lost_is_reported_others_kept(tmp_path, monkeypatch):
    node = three_gpu_node(tmp_path)
    layout = hw.layout([{"name": "NVIDIA H200"}, {"name": "NVIDIA A100-SXM4-80GB", "mig_mode": "Enabled"},
                        {"name": "Tesla T4"}], "node-110")
    state = write_state(tmp_path / "state", layout, "580.95.05", "13.0",
                        fails=[("nvmlDeviceGetHandleByIndex_v2", 1, 15), ("nvmlDeviceGetUUID", 2, 4)])
    got = grain(node, monkeypatch, smi_bin(tmp_path, node), state=state)
    assert got["source"] == "nvml"
    assert got["error"] == ("nvml: GPU 1: nvmlDeviceGetHandleByIndex_v2: GPU is lost (NVML error 15); "
                            "nvml: GPU 2: nvmlDeviceGetUUID: Insufficient Permissions (NVML error 4)")
    # the lost GPU keeps its PCI facts; the third has everything but its UUID
    assert [(g["name"], g["uuid"], g["memory_mib"]) for g in got["gpus"]] == [
        ("NVIDIA H200", layout[0]["uuid"], 143771), ("NVIDIA A100-SXM4-80GB", None, None), ("Tesla T4", None, 15360)]
    assert smi_runs(node) == []


def test_old_driver_without_optional_symbols(tmp_path, monkeypatch):
    """A library without nvmlSystemGetCudaDriverVersion,
    nvmlDeviceGetCudaComputeCapability and nvmlDeviceGetMigMode: NVML still
    answers, those facts are null, no error."""
    node = three_gpu_node(tmp_path)
    lib = library(omit=("nvmlSystemGetCudaDriverVersion", "nvmlDeviceGetCudaComputeCapability", "nvmlDeviceGetMigMode"))
    got = grain(node, monkeypatch, smi_bin(tmp_path, node), lib=lib)
    assert got["source"] == "nvml" and "error" not in got and got["cuda_version"] is None
    assert [(g["compute_capability"], g["mig_mode"]) for g in got["gpus"]] == [(None, None)] * 3
    assert got["gpus"][0]["uuid"] and got["gpus"][0]["memory_mib"] == 143771


@pytest.mark.parametrize(
    "omit, init_rc, count_rc",
    [
        (("nvmlDeviceGetCount_v2",), 0, 0),  # a required symbol missing
        (("nvmlInit_v2",), 0, 0),
        ((), 9, 0),  # nvmlInit: Driver Not Loaded
        ((), 18, 0),  # nvmlInit: Driver/library version mismatch
        ((), 0, 999),  # the device count fails
    ],
    ids=["no-count-symbol", "no-init-symbol", "init-driver-not-loaded", "init-version-mismatch", "count-fails"],
)
def test_broken_library_falls_back_to_one_query_gpu(tmp_path, monkeypatch, omit, init_rc, count_rc):
    node = three_gpu_node(tmp_path)
    layout = hw.layout([{"name": "NVIDIA H200"}, {"name": "NVIDIA A100-SXM4-80GB", "mig_mode": "Enabled"},
                        {"name": "Tesla T4"}], "node-110")
    fails = [("nvmlDeviceGetCount_v2", -1, count_rc)] if count_rc else []
    state = write_state(tmp_path / "state", layout, "580.95.05", "13.0", init_rc=init_rc, fails=fails)
    got = grain(node, monkeypatch, smi_bin(tmp_path, node), lib=library(omit=omit), state=state)
    assert got["source"] == "nvidia-smi" and "error" not in got  # a fallback, not an error
    assert [(g["uuid"], g["compute_capability"], g["mig_mode"]) for g in got["gpus"]] == [
        (layout[0]["uuid"], "9.0", "Disabled"), (layout[1]["uuid"], "8.0", "Enabled"), (layout[2]["uuid"], "7.5", None)]
    assert smi_runs(node) == [SMI_ARGS]


def test_no_library_and_no_nvidia_smi(tmp_path, monkeypatch):
    node = three_gpu_node(tmp_path)
    got = grain(node, monkeypatch, None, lib=str(tmp_path / "missing.so"))
    assert got["source"] == "pci" and got["error"] == "nvidia-smi not found on PATH"
    assert [(g["architecture"], g["uuid"], g["compute_capability"]) for g in got["gpus"]] == [
        ("Hopper", None, None), ("Ampere", None, None), ("Turing", None, None)]
    assert (got["driver_version"], got["kernel_module"]) == ("580.95.05", "open")  # from procfs


def test_no_driver_loaded_nvml_not_asked(tmp_path, monkeypatch):
    node = make_node(tmp_path / "n", ["NVIDIA H200"], modules=["nouveau"])
    state = write_state(tmp_path / "state", hw.layout(["NVIDIA H200"]), "580.95.05", "13.0")  # would answer
    got = grain(node, monkeypatch, smi_bin(tmp_path, node), state=state)
    assert got["source"] == "pci" and "error" not in got and got["nouveau_loaded"] is True
    assert got["gpus"][0]["uuid"] is None and got["gpus"][0]["compute_capability"] is None
    assert smi_runs(node) == []


def test_reader_that_raises_is_a_fallback(tmp_path, monkeypatch):
    node = three_gpu_node(tmp_path)
    utils = utils_with_nvml()

    def boom():
        raise RuntimeError("segfault averted")

    utils["nvidia_gpu.nvml_readers"] = lambda _library=None: (boom, None)
    monkeypatch.setenv("PATH", with_path(smi_bin(tmp_path, node)))
    grains_mod.__opts__.update({"k8snvidia.sysfs_root": str(node / "sys"), "k8snvidia.procfs_root": str(node / "proc")})
    grains_mod.__utils__.update(utils)
    got = grains_mod.nvidia()["nvidia"]
    assert got["source"] == "nvidia-smi" and got["gpu_count"] == 3


def test_a_long_running_minion_sees_the_driver_come_and_go(tmp_path, monkeypatch):
    """The library stays loaded in the minion; every refresh's nvmlInit reads
    the node again (driver unloaded: Driver Not Loaded, then the PCI view)."""
    node = three_gpu_node(tmp_path)
    assert grain(node, monkeypatch)["source"] == "nvml"
    data = json.loads((node / "state.json").read_text())
    data["modules"] = []
    (node / "state.json").write_text(json.dumps(data))
    hw.sync(node)
    assert not (node / "nvml" / "state").exists()
    data, error = nvml.read(library())
    assert data is None and "Driver Not Loaded" in error
    assert grain(node, monkeypatch)["source"] == "pci"


# ------------------------------------------------------------------ the fallback's own rules
def test_query_gpu_parser_real_line():
    line = "0, 00000000:00:06.0, 0x233510DE, NVIDIA H200, GPU-fbebc83b-9a1b-2f37-2ccf-65efae99eb8d, 143771, 580.159.04, 9.0, Disabled\n"
    res = gpu.parse_smi_csv(line)
    assert res["driver_version"] == "580.159.04" and res["cuda_version"] is None
    assert res["gpus"] == [{"index": 0, "pci_bus_id": "0000:00:06.0", "pci_device_id": "0x2335", "name": "NVIDIA H200",
                            "architecture": "Hopper", "uuid": "GPU-fbebc83b-9a1b-2f37-2ccf-65efae99eb8d",
                            "memory_mib": 143771, "compute_capability": "9.0", "mig_mode": "Disabled"}]
    assert gpu.parse_smi_csv(line.replace("Disabled", "[N/A]"))["gpus"][0]["mig_mode"] is None
    with pytest.raises(ValueError, match="printed 2 fields, not 9"):
        gpu.parse_smi_csv("a, b\n")


def test_driver_without_compute_cap_field_queries_twice(tmp_path, monkeypatch):
    """R470's nvidia-smi refuses compute_cap (rc 2): one more query with the
    base fields, compute_capability null."""
    node = make_node(tmp_path / "n", ["NVIDIA GeForce GT 1030"], ["nvidia"], "470.74")
    got = grain(node, monkeypatch, smi_bin(tmp_path, node), lib=str(tmp_path / "missing.so"))
    assert got["source"] == "nvidia-smi" and "error" not in got
    assert (got["gpus"][0]["compute_capability"], got["gpus"][0]["mig_mode"]) == (None, None)
    assert got["gpus"][0]["uuid"] == hw.layout(["NVIDIA GeForce GT 1030"], "node-110")[0]["uuid"]
    assert smi_runs(node) == [SMI_ARGS, ["nvidia-smi", *gpu.smi_query_args(gpu.SMI_BASE_FIELDS)]]


def test_smi_timeout_option():
    assert gpu.smi_timeout({}) == gpu.SMI_TIMEOUT == 10
    assert gpu.smi_timeout({"nvidia.smi_timeout": "2.5"}) == 2.5
    assert gpu.smi_timeout({"nvidia.smi_timeout": "soon"}) == 10
    assert gpu.smi_timeout({"nvidia.smi_timeout": 0}) == 10
    assert not hasattr(grains_mod, "DEFAULT_TIMEOUT") and not hasattr(exec_mod, "DEFAULT_TIMEOUT")  # one default


# ------------------------------------------------------------------ the module shares the path
def test_module_driver_through_nvml(tmp_path, monkeypatch):
    node = three_gpu_node(tmp_path)
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("K8SNVIDIA_FAKE_NVML", str(node / "nvml" / "state"))
    exec_mod.__opts__.update({"k8snvidia.sysfs_root": str(node / "sys"), "k8snvidia.procfs_root": str(node / "proc"),
                              "nvidia.nvml_library": library()})
    assert exec_mod.driver() == {"loaded": True, "version": "580.95.05", "cuda_version": "13.0",
                                 "kernel_module": "open", "nouveau_loaded": False}
    assert [g["compute_capability"] for g in exec_mod.gpus()] == ["9.0", "8.0", "7.5"]


# ------------------------------------------------------------------ the twin's nodes
def test_twin_node_gets_the_library_while_a_driver_is_installed(tmp_path, monkeypatch):
    root = tmp_path / "root"
    monkeypatch.setenv("K8STWIN_ROOT", str(root))
    node = make_node(tmp_path / "n", ["NVIDIA GeForce GTX 1080 Ti"])
    data = json.loads((node / "node.json").read_text())
    data["family"] = "RedHat"
    (node / "node.json").write_text(json.dumps(data))
    hw.sync(node)
    link = root / "usr" / "lib64" / "libnvidia-ml.so.1"
    assert not link.exists() and not (node / "nvml" / "state").exists()  # no driver installed
    state = json.loads((node / "state.json").read_text())
    state["nvidia_driver"] = {"version": "580.95.05", "kernel_module_type": "proprietary"}
    (node / "state.json").write_text(json.dumps(state))
    hw.sync(node)
    assert link.is_symlink() and not (node / "nvml" / "state").exists()  # installed, module not loaded yet
    got = grain(node, monkeypatch, lib=str(link))
    assert got["source"] == "pci" and got["gpus"][0]["uuid"] is None
    state["modules"] = ["nvidia"]
    (node / "state.json").write_text(json.dumps(state))
    hw.sync(node)
    got = grain(node, monkeypatch, lib=str(link))
    assert got["source"] == "nvml" and got["cuda_version"] == "13.0" and "error" not in got
    assert got["gpus"][0]["compute_capability"] == "6.1" and got["gpus"][0]["mig_mode"] is None
    # an upgrade that left the old module loaded: NVML refuses, like the real one
    state["nvidia_driver"]["loaded_version"] = "570.86.15"
    (node / "state.json").write_text(json.dumps(state))
    hw.sync(node)
    assert "nvmlInit_v2: RM has detected an NVML/RM version mismatch" in nvml.read(str(link))[1]
    del state["nvidia_driver"]
    state["modules"] = []
    (node / "state.json").write_text(json.dumps(state))
    hw.sync(node)
    assert not link.is_symlink()  # uninstalled


def test_twin_sync_never_touches_the_hosts_usr(tmp_path, monkeypatch):
    monkeypatch.delenv("K8STWIN_ROOT", raising=False)
    node = make_node(tmp_path / "n", ["Tesla T4"], ["nvidia"], "580.95.05")
    assert (node / "nvml" / "state").exists()
    assert not list((node / "nvml").glob("*.so"))  # nothing built or placed outside a node


def test_emulated_smi_answers_the_new_fields(tmp_path):
    import subprocess

    node = three_gpu_node(tmp_path)
    exe = str(smi_bin(tmp_path, node) / "nvidia-smi")
    out = subprocess.run([exe, "--query-gpu=name,compute_cap,mig.mode.current", "--format=csv"],
                         capture_output=True, text=True).stdout
    assert out == ("name, compute_cap, mig.mode.current\nNVIDIA H200, 9.0, Disabled\n"
                   "NVIDIA A100-SXM4-80GB, 8.0, Enabled\nTesla T4, 7.5, [N/A]\n")
    xml = gpu.parse_smi_xml(subprocess.run([exe, "-q", "-x"], capture_output=True, text=True).stdout)
    assert [g["mig_mode"] for g in xml["gpus"]] == ["Disabled", "Enabled", None]


# ------------------------------------------------------------------ cost rules (found on the lent H200)
class NoTruth(dict):
    """Salt's opts dict: its truth value counts ~1000 keys through every layer."""

    def __len__(self):
        raise AssertionError("len(opts) / bool(opts) evaluated")


class Recording(dict):
    def __init__(self, *a):
        super().__init__(*a)
        self.asked = []

    def __contains__(self, key):
        self.asked.append(key)
        return super().__contains__(key)

    def __getitem__(self, key):
        self.asked.append(key)
        return super().__getitem__(key)


def test_smi_timeout_never_takes_the_truth_value_of_opts():
    assert gpu.smi_timeout(NoTruth({"nvidia.smi_timeout": 3})) == 3
    assert gpu.smi_timeout(None) == 10


def test_nvml_only_asked_with_a_driver(tmp_path, monkeypatch):
    """Without a driver the grain does not even import the NVML reader."""
    node = make_node(tmp_path / "n", ["NVIDIA H200"], modules=["nouveau"])
    utils = grains_mod.__utils__  # a Recording (configure_loader_modules), opts a NoTruth
    monkeypatch.setenv("PATH", "/nonexistent")
    grains_mod.__opts__.update({"k8snvidia.sysfs_root": str(node / "sys"), "k8snvidia.procfs_root": str(node / "proc")})
    assert grains_mod.nvidia()["nvidia"]["source"] == "pci"
    assert "nvidia_gpu.nvml_readers" not in utils.asked and not [k for k in utils.asked if k.startswith("nvml.")]
    node = three_gpu_node(tmp_path / "drv")
    monkeypatch.setenv("K8SNVIDIA_FAKE_NVML", str(node / "nvml" / "state"))
    grains_mod.__opts__.update({"k8snvidia.sysfs_root": str(node / "sys"), "k8snvidia.procfs_root": str(node / "proc"),
                                "nvidia.nvml_library": library()})
    assert grains_mod.nvidia()["nvidia"]["source"] == "nvml"


def test_nvml_reader_imported_once_per_process_and_again_after_a_sync(tmp_path, monkeypatch):
    """Not through Salt's loader (a utils module load per refresh costs ~5 ms):
    one import per process, a new one when the synced file changes."""
    import os
    import shutil

    utils_dir = tmp_path / "extmods" / "utils"
    utils_dir.mkdir(parents=True)
    for name in ("nvidia_gpu.py", "nvml.py"):
        shutil.copy(gpu.__file__.replace("nvidia_gpu.py", name), utils_dir / name)
    monkeypatch.delitem(__import__("sys").modules, "k8snvidia_nvml", raising=False)
    synced = load_source(str(utils_dir / "nvidia_gpu.py"), "k8snvidia_test_synced_gpu")
    first = synced.nvml_module()
    assert first is synced.nvml_module() and first.__file__ == str(utils_dir / "nvml.py")
    path = utils_dir / "nvml.py"
    path.write_text(path.read_text() + "\nSYNCED_AGAIN = True\n")
    os.utime(path, ns=(1, 1))
    again = synced.nvml_module()
    assert again is not first and again.SYNCED_AGAIN is True
    path.write_text("raise ImportError('half-synced')\n")
    assert synced.nvml_module() is None and synced.nvml_readers() == (None, None)
    monkeypatch.delitem(__import__("sys").modules, "k8snvidia_nvml", raising=False)
