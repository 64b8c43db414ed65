"""What the device run on the H200 machine captured (bench/device/gpu_check.sh,
outputs in tests/fixtures/device/): our grain against nvidia-smi's own
answers and Salt's core `gpus` grain, the one-call-per-refresh rule, and
today's parser against the captured XML."""

import json
import re

from tests.fakes.nvidia import DEVICE, FIXTURES, gpu

SALT = json.loads((DEVICE / "h200-salt.json").read_text())
CLI = (DEVICE / "h200-smi-cli.txt").read_text()
BENCH = json.loads((DEVICE / "h200-bench.json").read_text())


def section(args):
    return re.search(r"### \$ nvidia-smi " + re.escape(args) + r"\n(.*?)### rc=0\n", CLI, re.S).group(1)


def grain():
    return SALT["grains.item nvidia gpus num_gpus"]["out"]["local"]


def test_all_salt_calls_succeeded():
    assert {k: v["rc"] for k, v in SALT.items()} == dict.fromkeys(SALT, 0)


def test_grain_matches_query_gpu():
    rows = section("--query-gpu=index,name,pci.bus_id,uuid,memory.total,driver_version --format=csv,noheader,nounits")
    nv = grain()["nvidia"]
    want = [
        {"name": name, "pci_bus_id": gpu.pci_bus_id(bus), "uuid": uuid, "memory_mib": int(mem), "driver": drv}
        for _idx, name, bus, uuid, mem, drv in (line.split(", ") for line in rows.strip().splitlines())
    ]
    got = [
        {"name": g["name"], "pci_bus_id": g["pci_bus_id"], "uuid": g["uuid"], "memory_mib": g["memory_mib"],
         "driver": nv["driver_version"]}
        for g in nv["gpus"]
    ]
    assert got == want
    assert nv["gpu_count"] == len(section("-L").strip().splitlines()) == 1


def test_grain_shape_on_the_h200():
    nv = grain()["nvidia"]
    assert nv == {
        "gpu_count": 1,
        "gpus": [{"pci_bus_id": "0000:00:06.0", "pci_device_id": "0x2335", "name": "NVIDIA H200",
                  "architecture": "Hopper", "uuid": "GPU-fbebc83b-9a1b-2f37-2ccf-65efae99eb8d",
                  "memory_mib": 143771, "kernel_driver": "nvidia"}],
        "driver_version": "580.159.04",
        "cuda_version": "13.0",
        "kernel_module": "open",
        "nouveau_loaded": False,
    }


def test_salt_core_gpus_grain_sees_nothing():
    """Salt's own grain needs lspci, which the machine lacks (host.txt)."""
    assert grain()["gpus"] == [] and grain()["num_gpus"] == 0
    assert "lspci: not installed" in (DEVICE / "h200-host.txt").read_text()


def test_module_results():
    out = {k: v["out"]["local"] for k, v in SALT.items()}
    assert out["nvidia.driver"] == {"loaded": True, "version": "580.159.04", "cuda_version": "13.0",
                                    "kernel_module": "open", "nouveau_loaded": False}
    rec = out["nvidia.recommended"]
    assert (rec["max_branch"], rec["min_branch"], rec["module_type"]) == (None, 525, "open")
    assert out["nvidia.processes"] == []
    assert out["nvidia.driver_problems 590.44.01"] == []  # Hopper is fine with 590+
    assert out["match.grain nvidia:gpus:name:*H200*"] is True
    assert out["grains.get nvidia:gpus:0:architecture"] == "Hopper"


def test_busy_capture_and_csv_agree():
    csv = re.search(r"--query-compute-apps=pid,process_name,used_memory,gpu_uuid,gpu_bus_id --format=csv\n(.*?)### rc",
                    (DEVICE / "h200-gpu_check.log").read_text(), re.S).group(1)
    pid, name, mem, uuid, bus = csv.strip().splitlines()[1].split(", ")
    procs = gpu.parse_smi_xml((FIXTURES / "h200-v13-busy.xml").read_text())["processes"]
    assert [(p["pid"], p["name"], p["used_memory_mib"], p["uuid"], p["pci_bus_id"]) for p in procs] == [
        (int(pid), name, int(mem.split()[0]), uuid, gpu.pci_bus_id(bus))]


def test_parser_agrees_with_the_captured_grain():
    res = gpu.parse_smi_xml((FIXTURES / "h200-v13.xml").read_text())
    g = grain()["nvidia"]["gpus"][0]
    assert {k: res["gpus"][0][k] for k in ("pci_bus_id", "pci_device_id", "name", "architecture", "uuid",
                                           "memory_mib")} == {k: g[k] for k in ("pci_bus_id", "pci_device_id", "name",
                                                                                "architecture", "uuid", "memory_mib")}


def test_one_nvidia_smi_per_refresh_on_the_h200():
    host = BENCH["host"]["scenarios"]["host"]
    assert host["subprocesses_per_refresh"]["ours"] == 1
    assert host["subprocesses_per_refresh"]["ours_programs"] == ["nvidia-smi"]
    assert host["subprocesses_per_refresh"]["ours_max_over_runs"] == 1
    assert host["nvidia_grain"] == grain()["nvidia"]


def test_second_run_reproduces_on_another_h200():
    """The script run again (tests/fixtures/device/run2/): another machine,
    another GPU UUID, the same shape; the grain still equals --query-gpu."""
    run2 = DEVICE / "run2"
    salt2 = json.loads((run2 / "h200-salt.json").read_text())
    nv = salt2["grains.item nvidia gpus num_gpus"]["out"]["local"]["nvidia"]
    cli = (run2 / "h200-smi-cli.txt").read_text()
    rows = re.search(r"--format=csv,noheader,nounits\n(.*?)### rc=0", cli, re.S).group(1).strip().splitlines()
    assert [(g["name"], g["pci_bus_id"], g["uuid"], str(g["memory_mib"])) for g in nv["gpus"]] == [
        (r.split(", ")[1], gpu.pci_bus_id(r.split(", ")[2]), r.split(", ")[3], r.split(", ")[4]) for r in rows]
    assert nv["gpus"][0]["uuid"] != grain()["nvidia"]["gpus"][0]["uuid"]
    assert {k: v for k, v in nv.items() if k != "gpus"} == {k: v for k, v in grain()["nvidia"].items() if k != "gpus"}
    bench2 = json.loads((run2 / "h200-bench.json").read_text())
    assert bench2["host"]["scenarios"]["host"]["subprocesses_per_refresh"]["ours"] == 1
