"""The twin's emulated nvidia-smi (twin/k8stwin/tools/nvidia_smi.py) against
what the real one printed on the H200 machine (tests/fixtures/device/)."""

import re
import subprocess

import pytest

from tests.fakes.nvidia import DEVICE, gpu, hw, make_node, smi_bin

REAL = (DEVICE / "h200-smi-cli.txt").read_text()


def real_output(args):
    """The real nvidia-smi's output and rc for `args` from the capture."""
    m = re.search(r"### \$ nvidia-smi " + re.escape(args) + r"\n(.*?)### rc=(\d+)\n", REAL, re.S)
    return m.group(1), int(m.group(2))


@pytest.fixture
def h200(tmp_path):
    spec = {"name": "NVIDIA H200", "pci_bus_id": "0000:00:06.0", "uuid": "GPU-fbebc83b-9a1b-2f37-2ccf-65efae99eb8d"}
    node = make_node(tmp_path / "n", [spec], ["nvidia", "nvidia_uvm"], "580.159.04", open_module=True)
    exe = smi_bin(tmp_path, node) / "nvidia-smi"

    def run(*args):
        proc = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=60)
        return proc.stdout + proc.stderr, proc.returncode

    return run


@pytest.mark.parametrize(
    "args",
    [
        "-L",
        "--query-gpu=index,name,pci.bus_id,uuid,memory.total,driver_version --format=csv",
        "--query-gpu=index,name,pci.bus_id,uuid,memory.total,driver_version --format=csv,noheader,nounits",
        "--query-compute-apps=pid,process_name,used_memory,gpu_uuid,gpu_bus_id --format=csv",
        "--query-gpu=name",
        "--query-gpu=foo --format=csv",
        "--bogus",
        "-x",
        "-i 7 -L",
    ],
)
def test_same_output_as_the_real_one(h200, args):
    assert h200(*args.split()) == real_output(args)


def test_query_xml_is_the_capture_with_state(h200):
    out, rc = h200("-q", "-x")
    assert rc == 0
    assert out.startswith('<?xml version="1.0" ?>\n<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v13.dtd">\n')
    res = gpu.parse_smi_xml(out)
    assert (res["driver_version"], res["cuda_version"], res["attached_gpus"]) == ("580.159.04", "13.0", 1)
    g = res["gpus"][0]
    assert (g["pci_bus_id"], g["pci_device_id"], g["name"], g["architecture"], g["uuid"], g["memory_mib"]) == (
        "0000:00:06.0", "0x2335", "NVIDIA H200", "Hopper", "GPU-fbebc83b-9a1b-2f37-2ccf-65efae99eb8d", 143771)
    assert res["processes"] == []


def test_no_driver_message(tmp_path):
    node = make_node(tmp_path / "n", ["NVIDIA GeForce GTX 1080 Ti"], ["nouveau"])
    proc = subprocess.run([str(smi_bin(tmp_path, node) / "nvidia-smi"), "-q", "-x"], capture_output=True, text=True)
    assert proc.returncode == 9
    assert proc.stdout == (
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
        "Make sure that the latest NVIDIA driver is installed and running.\n"
    )


def test_processes_and_pascal_template(tmp_path):
    procs = [{"pid": 11, "name": "train.py", "gpu": 1, "used_memory_mib": 2048}]
    node = make_node(tmp_path / "n", ["NVIDIA GeForce GTX 1080 Ti", "NVIDIA GeForce GTX 1080 Ti"], ["nvidia"],
                     "580.95.05", processes=procs)
    exe = str(smi_bin(tmp_path, node) / "nvidia-smi")
    res = gpu.parse_smi_xml(subprocess.run([exe, "-q", "-x"], capture_output=True, text=True).stdout)
    assert [g["name"] for g in res["gpus"]] == ["NVIDIA GeForce GTX 1080 Ti"] * 2
    assert len({g["uuid"] for g in res["gpus"]}) == 2
    assert res["processes"] == [{"gpu": 1, "pci_bus_id": "0000:02:00.0", "uuid": res["gpus"][1]["uuid"], "pid": 11,
                                 "type": "C", "name": "train.py", "used_memory_mib": 2048}]
    csv = subprocess.run([exe, "--query-compute-apps=pid,used_memory", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout
    assert csv == "11, 2048 MiB\n"
    layout = hw.layout(["NVIDIA GeForce GTX 1080 Ti"] * 2, "node-110")
    assert [g["uuid"] for g in res["gpus"]] == [g["uuid"] for g in layout]


def test_summary_table_layout(h200):
    out, rc = h200()
    real, real_rc = real_output("(summary)")
    assert rc == real_rc == 0
    mine, theirs = out.splitlines(), real.splitlines()
    assert len(mine) == len(theirs)
    for a, b in zip(mine[1:], theirs[1:]):
        assert len(a) == len(b), (a, b)
    fixed = [i for i, line in enumerate(theirs) if i and "37C" not in line]  # sensor line differs
    assert [mine[i] for i in fixed] == [theirs[i] for i in fixed]
