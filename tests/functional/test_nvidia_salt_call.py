"""The nvidia grain and module through real `salt-call --local`, with fake
sysfs/procfs roots as minion options, the stand-in NVML library
(twin/k8stwin/fakenvml.c) as `nvidia.nvml_library` and a fake nvidia-smi on
PATH."""

import json

import pytest

from tests.fakes.nvidia import FIXTURES, gpu, hw, make_node, smi_bin, smi_runs, with_path
from tests.fakes.nvml import capture_gpus, library, write_state
from tests.functional.render import salt_call

PASCAL = "NVIDIA GeForce GTX 1080 Ti"


def roots(node):
    return {"k8snvidia.sysfs_root": str(node / "sys"), "k8snvidia.procfs_root": str(node / "proc")}


def test_grains_item_reports_the_capture_gpus(tmp_path, monkeypatch):
    """The stand-in NVML answering with a real two-GPU capture's data, the
    fake PCI tree holding the same cards at the same bus ids; nvidia-smi on
    PATH fails, and is not run."""
    driver, cuda, gpus = capture_gpus(FIXTURES / "dual_2070-v13.xml")
    node = make_node(tmp_path / "n", ["0x1f02", "0x1f02"], modules=["nvidia", "nvidia_uvm"], driver_version="590.44.01")
    bindir = smi_bin(tmp_path, node, script=f"#!/bin/sh\necho run >> {tmp_path}/smi-runs\nexit 2\n")
    monkeypatch.setenv("PATH", with_path(bindir))
    monkeypatch.setenv("K8SNVIDIA_FAKE_NVML", str(write_state(tmp_path / "state", gpus, driver, cuda)))
    extra = dict(roots(node), **{"nvidia.nvml_library": library()})
    rc, out, err = salt_call("rocky9", "grains.item", "nvidia", "gpus", extra=extra)
    assert rc == 0, err
    nv = out["nvidia"]
    assert nv.get("error") is None and nv["source"] == "nvml", nv
    assert nv["gpu_count"] == 2
    assert nv["gpus"] == [
        {"pci_bus_id": "0000:01:00.0", "pci_device_id": "0x1f02", "name": "NVIDIA GeForce RTX 2070",
         "architecture": "Turing", "uuid": "GPU-12345678-aaaa-bbbb-cccc-0123456789ab", "memory_mib": 8192,
         "kernel_driver": "nvidia", "compute_capability": "7.5", "mig_mode": None},
        {"pci_bus_id": "0000:02:00.0", "pci_device_id": "0x1f02", "name": "NVIDIA GeForce RTX 2070",
         "architecture": "Turing", "uuid": "GPU-12345678-aaaa-bbbb-cccc-0123456789cd", "memory_mib": 8192,
         "kernel_driver": "nvidia", "compute_capability": "7.5", "mig_mode": None},
    ]
    assert (nv["driver_version"], nv["cuda_version"], nv["kernel_module"], nv["nouveau_loaded"], nv["source"]) == (
        "590.44.01", "13.1", "proprietary", False, "nvml")
    assert "error" not in nv
    assert not (tmp_path / "smi-runs").exists()  # no subprocess


def test_targeting_and_module_with_emulated_smi(tmp_path, monkeypatch):
    procs = [{"pid": 4242, "name": "python3", "gpu": 0, "used_memory_mib": 900}]
    node = make_node(tmp_path / "n", [PASCAL, "Tesla T4"], ["nvidia"], "580.95.05", processes=procs)
    monkeypatch.setenv("PATH", with_path(smi_bin(tmp_path, node)))
    rc, out, err = salt_call("centos7", "grains.item", "nvidia", extra=roots(node))
    assert rc == 0, err
    layout = hw.layout([PASCAL, "Tesla T4"], "node-110")
    assert [(g["name"], g["uuid"], g["architecture"]) for g in out["nvidia"]["gpus"]] == [
        (PASCAL, layout[0]["uuid"], "Pascal"), ("Tesla T4", layout[1]["uuid"], "Turing")]
    # one grains load inside salt-call, no NVML on this machine -> one nvidia-smi --query-gpu
    assert smi_runs(node) == [["nvidia-smi", *gpu.smi_query_args()]]
    for expr, want in (("nvidia:gpus:name:*1080*", True), ("nvidia:gpus:name:*H200*", False),
                       ("nvidia:gpu_count:2", True), ("nvidia:kernel_module:proprietary", True)):
        rc, out, err = salt_call("centos7", "match.grain", expr, extra=roots(node))
        assert (rc, out) == (0, want), (expr, err)
    rc, out, err = salt_call("centos7", "nvidia.processes", extra=roots(node))
    assert rc == 0, err
    assert [(p["pid"], p["pci_bus_id"]) for p in out] == [(4242, "0000:01:00.0")]


@pytest.mark.parametrize("fun, key, want", [("nvidia.recommended", "max_branch", 580),
                                           ("nvidia.driver", "loaded", False)])
def test_module_before_any_driver(tmp_path, monkeypatch, fun, key, want):
    node = make_node(tmp_path / "n", [PASCAL], ["nouveau"])
    monkeypatch.setenv("PATH", with_path(smi_bin(tmp_path, node)))
    rc, out, err = salt_call("ubuntu2204", fun, extra=roots(node))
    assert rc == 0, err
    assert out[key] == want, json.dumps(out)
    assert smi_runs(node) == []
