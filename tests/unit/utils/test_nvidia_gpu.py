"""The GPU table and driver rules (_utils/nvidia_gpu.py) and the pillar
check built on them (driver_problems, used by cluster.validate)."""

import re

import pytest

from tests.conftest import salt_cmd
from tests.fakes.nvidia import FIXTURES, gpu

PASCAL_MSG = (
    "k8snvidia:driver:version: '590.44.01' is invalid; expected a driver of branch 580 or older: "
    "node node-110 has NVIDIA GeForce GTX 1080 Ti (Pascal), which 590+ drivers do not support"
)


def test_every_fixture_gpu_is_in_the_table():
    for path in FIXTURES.glob("*.xml"):
        for dev in re.findall(r"<pci_device_id>([0-9A-F]{4})10DE</pci_device_id>", path.read_text()):
            assert int(dev, 16) in gpu.GPUS, (path.name, dev)


@pytest.mark.parametrize(
    "dev, name, arch",
    [
        (0x1B06, "NVIDIA GeForce GTX 1080 Ti", "Pascal"),
        (0x17C8, "NVIDIA GeForce GTX 980 Ti", "Maxwell"),
        (0x13F2, "Tesla M60", "Maxwell"),
        (0x1B38, "Tesla P40", "Pascal"),
        (0x1DB4, "Tesla V100-PCIE-16GB", "Volta"),
        (0x1EB8, "Tesla T4", "Turing"),
        (0x2204, "NVIDIA GeForce RTX 3090", "Ampere"),
        (0x20B2, "NVIDIA A100-SXM4-80GB", "Ampere"),
        (0x2684, "NVIDIA GeForce RTX 4090", "Ada"),
        (0x27B8, "NVIDIA L4", "Ada"),
        (0x2330, "NVIDIA H100 80GB HBM3", "Hopper"),
        (0x2335, "NVIDIA H200", "Hopper"),
        (0x2B85, "NVIDIA GeForce RTX 5090", "Blackwell"),
        (0x2901, "NVIDIA B200", "Blackwell"),
    ],
)
def test_table_entries(dev, name, arch):
    assert gpu.GPUS[dev] == (name, arch)
    assert gpu.identify(f"0x{dev:04x}") == (name, arch)


@pytest.mark.parametrize(
    "dev, arch",
    [(0x1B99, "Pascal"), (0x1C20, "Pascal"), (0x1DBF, "Volta"), (0x1F95, "Turing"), (0x21D1, "Turing"),
     (0x2520, "Ampere"), (0x2820, "Ada"), (0x2339, "Hopper"), (0x2E00, "Blackwell"), (0x1023, "Kepler"),
     (0x1617, "Maxwell"), (0x15F1, "Pascal"), (0x0010, None), (0x3FFF, None)],
)
def test_range_fallback(dev, arch):
    assert dev not in gpu.GPUS
    assert gpu.architecture_of_id(dev) == arch
    assert gpu.identify(dev) == (None, arch)


@pytest.mark.parametrize(
    "name, arch",
    [("1080 Ti", "Pascal"), ("GTX 1080 Ti", "Pascal"), ("NVIDIA GeForce GTX 1080 Ti", "Pascal"),
     ("GeForce GTX 1070 Ti", "Pascal"), ("GRID P4-1Q", "Pascal"), ("Quadro P400", "Pascal"),
     ("NVIDIA TITAN X (Pascal)", "Pascal"), ("GeForce GTX TITAN X", "Maxwell"), ("GTX 980", "Maxwell"),
     ("Tesla V100-SXM2-32GB", "Volta"), ("RTX 2080", "Turing"), ("Tesla T4", "Turing"),
     ("NVIDIA A100-SXM4-40GB", "Ampere"), ("RTX 3090", "Ampere"), ("NVIDIA RTX A6000", "Ampere"),
     ("RTX 4090", "Ada"), ("NVIDIA L40S", "Ada"), ("NVIDIA H100 PCIe", "Hopper"), ("H200", "Hopper"),
     ("NVIDIA GeForce RTX 5090", "Blackwell"), ("NVIDIA B200", "Blackwell"), ("0x1b06", "Pascal"),
     ("Tesla K80", "Kepler"), ("Graphics Device", None), ("", None), (None, None), ("some card", None)],
)
def test_name_fallback(name, arch):
    assert gpu.architecture_of_name(name) == arch


def test_smi_architecture_spelling():
    assert gpu.normalize_architecture("Ada Lovelace") == "Ada"
    assert gpu.normalize_architecture("Hopper") == "Hopper"
    assert gpu.normalize_architecture("N/A") is None
    # unknown id, the driver's word wins over nothing
    assert gpu.identify("0x3fff", "NVIDIA Future", "Rubin") == ("NVIDIA Future", "Rubin")


@pytest.mark.parametrize(
    "archs, max_branch, min_branch, module, cuda",
    [
        (["Pascal"], 580, None, "proprietary", 12),
        (["Maxwell"], 580, None, "proprietary", 12),
        (["Volta"], 580, None, "proprietary", 12),
        (["Kepler"], 470, None, "proprietary", 11),
        (["Turing"], None, 410, "open", None),
        (["Hopper"], None, 525, "open", None),
        (["Blackwell"], None, 570, "open", None),
        (["Pascal", "Turing"], 580, 410, "proprietary", 12),
        ([], None, None, None, None),
        (["Rubin"], None, None, None, None),
    ],
)
def test_recommend(archs, max_branch, min_branch, module, cuda):
    rec = gpu.recommend(archs)
    assert (rec["max_branch"], rec["min_branch"], rec["module_type"], rec["cuda_max"]) == (
        max_branch, min_branch, module, cuda)
    assert rec["conflicts"] == []


def test_recommend_conflict():
    rec = gpu.recommend(["Pascal", "Blackwell"])
    assert rec["module_type"] == "proprietary"
    assert rec["conflicts"] == ["Pascal GPUs need the proprietary kernel module and Blackwell GPUs the open one"]
    rec = gpu.recommend(["Kepler", "Blackwell"])
    assert "no driver branch is both 570+ and 470 or older" in rec["conflicts"]


@pytest.mark.parametrize("version, branch", [("580.95.05", 580), ("440.100", 440), ("590.44.01", 590),
                                             (None, None), ("abc", None)])
def test_branch_of(version, branch):
    assert gpu.branch_of(version) == branch


def test_driver_problems_pascal_590():
    assert gpu.driver_problems("node-110", ["NVIDIA GeForce GTX 1080 Ti"], "590.44.01", "auto") == [PASCAL_MSG]


@pytest.mark.parametrize("name", ["NVIDIA GeForce GTX 1080 Ti", "1080 Ti", "0x1b06"])
def test_driver_problems_any_spelling(name):
    found = gpu.driver_problems("node-110", [name], "595.58.03", None)
    assert len(found) == 1 and "node node-110 has" in found[0] and "(Pascal)" in found[0]


@pytest.mark.parametrize(
    "gpus, version, mtype",
    [
        (["NVIDIA GeForce GTX 1080 Ti"], "580.95.05", "auto"),
        (["NVIDIA GeForce GTX 1080 Ti"], "440.100", "proprietary"),
        (["NVIDIA H200"], "590.44.01", "open"),
        (["NVIDIA H200"], "580.159.04", "proprietary"),
        (["Tesla T4", "NVIDIA GeForce RTX 2070"], "595.58.03", "auto"),
        ([], "590.44.01", "open"),
        (["Graphics Device"], "590.44.01", "open"),
        (["NVIDIA GeForce GTX 1080 Ti"], None, "auto"),
    ],
)
def test_driver_problems_none(gpus, version, mtype):
    assert gpu.driver_problems("n1", gpus, version, mtype) == []


def test_driver_problems_open_on_pascal():
    assert gpu.driver_problems("node-109", ["NVIDIA GeForce GTX 1080 Ti"], "580.95.05", "open") == [
        "k8snvidia:driver:kernel_module_type: 'open' is invalid; expected proprietary or auto: node node-109 has "
        "NVIDIA GeForce GTX 1080 Ti (Pascal), which the open kernel modules do not support (Turing and newer only)"
    ]


def test_driver_problems_blackwell():
    found = gpu.driver_problems("b1", ["NVIDIA GeForce RTX 5090"], "565.57.01", "proprietary")
    assert found == [
        "k8snvidia:driver:version: '565.57.01' is invalid; expected a driver of branch 570 or newer: node b1 has "
        "NVIDIA GeForce RTX 5090 (Blackwell), which drivers before 570 do not support",
        "k8snvidia:driver:kernel_module_type: 'proprietary' is invalid; expected open or auto: node b1 has "
        "NVIDIA GeForce RTX 5090 (Blackwell), which only the open kernel modules support",
    ]


def test_driver_problems_open_before_515():
    found = gpu.driver_problems("t1", ["Tesla T4"], "470.82.01", "open")
    assert found == [
        "k8snvidia:driver:kernel_module_type: 'open' is invalid; expected proprietary or auto: driver 470.82.01 "
        "for node t1 has no open kernel modules (they exist from 515 on)"
    ]


def test_driver_problems_mixed_node():
    found = gpu.driver_problems("m1", ["NVIDIA GeForce GTX 1080 Ti", "NVIDIA GeForce RTX 5090"], "580.95.05", "auto")
    assert found == [
        "k8snvidia:nodes:m1:gpus: ['NVIDIA GeForce GTX 1080 Ti', 'NVIDIA GeForce RTX 5090'] is invalid; expected "
        "GPUs one driver can serve: on node m1, Pascal GPUs need the proprietary kernel module and Blackwell GPUs "
        "the open one"
    ]


def test_validator_uses_driver_problems():
    """_utils/k8snvidia.validate with this check, as the map and the runner call it."""
    from tests.unit.utils.test_k8snvidia import CENTOS7, PARAMS, shipped, util

    pillar = shipped()
    pillar["driver"]["version"] = "590.44.01"
    cfg = util.build(PARAMS, pillar, "node-110", CENTOS7)
    found = util.validate(cfg, pillar, gpu.driver_problems)
    assert PASCAL_MSG in found


def test_runner_validate_rejects_590_on_1080ti(repo_copy):
    profile = repo_copy / "pillar" / "profiles" / "modern.sls"
    text = profile.read_text()
    pinned = re.search(r"^    version: (5\d\d\.\d+\.\d+)$", text, re.M)  # driver:version, whatever the pin
    assert pinned, "modern.sls pins no driver:version"
    profile.write_text(text.replace(pinned.group(0), "    version: 590.44.01"))
    res = salt_cmd("salt-run", "--out=json", "cluster.validate", cwd=repo_copy)
    assert res.returncode != 0
    assert PASCAL_MSG in res.stdout, res.stdout + res.stderr
    for node in ("node-105", "node-106", "node-109"):
        assert f"node {node} has NVIDIA GeForce GTX 1080 Ti (Pascal)" in res.stdout
