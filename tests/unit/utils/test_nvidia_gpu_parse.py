"""Every nvidia-smi -q -x capture (DTD v10..v13, real hosts) parsed by
_utils/nvidia_gpu.parse_smi_xml, with the expected values of each file."""

import pytest

from tests.fakes.nvidia import FIXTURES, gpu

# file: (dtd, driver, cuda, attached, [(bus, device id, name, arch, memory, uuid tail, mig)], processes)
EXPECTED = {
    "a100-sxm4-v12.xml": (
        "v12", "535.54.03", "12.2", 4,
        [("0000:01:00.0", "0x20b2", "NVIDIA A100-SXM4-80GB", "Ampere", 81920, "1e69664bb298", "Enabled")], 0,
    ),
    "dual_2070-v13.xml": (
        "v13", "590.44.01", "13.1", 2,
        [
            ("0000:01:00.0", "0x1f02", "NVIDIA GeForce RTX 2070", "Turing", 8192, "0123456789ab", None),
            ("0000:02:00.0", "0x1f02", "NVIDIA GeForce RTX 2070", "Turing", 8192, "0123456789cd", None),
        ],
        0,
    ),
    "dual_2080-v13.xml": (
        "v13", "590.44.01", "13.1", 2,
        [
            ("0000:01:00.0", "0x1e87", "NVIDIA GeForce RTX 2080", "Turing", 8192, "0123456789ab", None),
            ("0000:02:00.0", "0x1e87", "NVIDIA GeForce RTX 2080", "Turing", 8192, "0123456789ab", None),
        ],
        0,
    ),
    "gt-1030.xml": (
        "v11", "470.74", "11.4", 1,
        [("0000:2d:00.0", "0x1d01", "NVIDIA GeForce GT 1030", "Pascal", 1998, "9063a87b8ac0", None)], 10,
    ),
    # v10, trimmed: no driver/cuda/pci ids; the architecture comes from the name
    "gtx-1070-ti.xml": (
        "v10", None, None, None,
        [("0000:01:00.0", None, "GeForce GTX 1070 Ti", "Pascal", 4096, "019ef2f9c665", None)], 0,
    ),
    # driver 418 did not know the card: "Graphics Device"; the table names it from 0x2184
    "gtx-1660-ti.xml": (
        None, "418.43", "10.1", 1,
        [("0000:43:00.0", "0x2184", "NVIDIA GeForce GTX 1660", "Turing", 5912, "dfde3c992989", None)], 0,
    ),
    "quadro-p400.xml": (
        None, "418.43", "10.1", 1,
        [("0000:43:00.0", "0x1cb3", "Quadro P400", "Pascal", 1998, "da729a536494", None)], 0,
    ),
    "rtx-3080-v12.xml": (
        "v12", "536.40", "12.2", 1,
        [("0000:04:00.0", "0x2216", "NVIDIA GeForce RTX 3080", "Ampere", 10240, "4c76979aabb4", None)], 5,
    ),
    "rtx-3080-v13.xml": (
        "v13", "595.58.03", "13.2", 1,
        [("0000:0c:00.0", "0x2216", "NVIDIA GeForce RTX 3080", "Ampere", 10240, "4c76979aabb4", None)], 0,
    ),
    # device id redacted in the capture: None, architecture from the driver
    "rtx-3090-v12.xml": (
        "v12", "525.147.05", "12.0", 1,
        [("0000:00:10.0", None, "NVIDIA GeForce RTX 3090", "Ampere", 24576, "0123456789ab", None)], 0,
    ),
    "tesla-t4.xml": (
        "v11", "515.105.01", "11.7", 1,
        [("0000:00:1e.0", "0x1eb8", "Tesla T4", "Turing", 15360, "99096249601a", None)], 2,
    ),
    "tesla_p4.xml": (
        "v11", "513.46", "11.6", 1,
        [("0000:00:0b.0", "0x1bb3", "GRID P4-1Q", "Pascal", 1024, "26c65f2dd207", None)], 13,
    ),
    # captured on the device tool's H200 machine (tests/fixtures/device/)
    "h200-v13.xml": (
        "v13", "580.159.04", "13.0", 1,
        [("0000:00:06.0", "0x2335", "NVIDIA H200", "Hopper", 143771, "65efae99eb8d", "Disabled")], 0,
    ),
    "h200-v13-busy.xml": (
        "v13", "580.159.04", "13.0", 1,
        [("0000:00:06.0", "0x2335", "NVIDIA H200", "Hopper", 143771, "65efae99eb8d", "Disabled")], 1,
    ),
}


def test_every_capture_has_expectations():
    assert sorted(p.name for p in FIXTURES.glob("*.xml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_capture_parsed(name):
    dtd, driver, cuda, attached, gpus, nprocs = EXPECTED[name]
    res = gpu.parse_smi_xml((FIXTURES / name).read_text(encoding="utf-8"))
    assert res["dtd"] == dtd
    assert res["driver_version"] == driver
    assert res["cuda_version"] == cuda
    assert res["attached_gpus"] == attached
    got = [
        (g["pci_bus_id"], g["pci_device_id"], g["name"], g["architecture"], g["memory_mib"], g["uuid"][-12:], g["mig_mode"])
        for g in res["gpus"]
    ]
    assert got == gpus
    assert [g["index"] for g in res["gpus"]] == list(range(len(gpus)))
    assert len(res["processes"]) == nprocs
    for proc in res["processes"]:
        assert set(proc) == {"gpu", "pci_bus_id", "uuid", "pid", "type", "name", "used_memory_mib"}
        assert isinstance(proc["pid"], int)


def test_processes_fields_and_na():
    res = gpu.parse_smi_xml((FIXTURES / "gt-1030.xml").read_text())
    first = res["processes"][0]
    assert first == {
        "gpu": 0,
        "pci_bus_id": "0000:2d:00.0",
        "uuid": "GPU-857c6374-f681-cf3a-f99f-9063a87b8ac0",
        "pid": 607,
        "type": "G",
        "name": "/usr/lib/Xorg",
        "used_memory_mib": 547,
    }
    # vGPU guest: empty process name and N/A memory become None
    p4 = gpu.parse_smi_xml((FIXTURES / "tesla_p4.xml").read_text())["processes"][0]
    assert (p4["pid"], p4["type"], p4["name"], p4["used_memory_mib"]) == (1188, "C+G", None, None)


def test_h200_busy_process():
    res = gpu.parse_smi_xml((FIXTURES / "h200-v13-busy.xml").read_text())
    assert res["processes"] == [
        {
            "gpu": 0,
            "pci_bus_id": "0000:00:06.0",
            "uuid": "GPU-fbebc83b-9a1b-2f37-2ccf-65efae99eb8d",
            "pid": 684,
            "type": "C",
            "name": "python3",
            "used_memory_mib": 1542,
        }
    ]


def test_a100_memory_is_the_board_not_a_mig_slice():
    res = gpu.parse_smi_xml((FIXTURES / "a100-sxm4-v12.xml").read_text())
    assert res["gpus"][0]["memory_mib"] == 81920


@pytest.mark.parametrize("text", ["", "not xml", "<other/>", "<nvidia_smi_log><gpu>"])
def test_bad_input_raises_valueerror(text):
    with pytest.raises(ValueError):
        gpu.parse_smi_xml(text)


def test_empty_log():
    res = gpu.parse_smi_xml("<nvidia_smi_log></nvidia_smi_log>")
    assert res["gpus"] == [] and res["processes"] == [] and res["driver_version"] is None


@pytest.mark.parametrize(
    "raw, want",
    [("00000000:01:00.0", "0000:01:00.0"), ("00000000:2D:00.0", "0000:2d:00.0"), ("0000:c1:00.0", "0000:c1:00.0"),
     ("01:00.0", "0000:01:00.0"), ("00000001:00:1E.0", "0001:00:1e.0")],
)
def test_bus_id_normalized(raw, want):
    assert gpu.pci_bus_id(raw) == want


@pytest.mark.parametrize(
    "raw, want",
    [("1B0610DE", "0x1b06"), ("0x1b06", "0x1b06"), ("1b06", "0x1b06"), ("[REDACTED]", None), ("", None), (None, None),
     ("233510DE", "0x2335")],
)
def test_device_id_normalized(raw, want):
    assert gpu.device_id_str(raw) == want
