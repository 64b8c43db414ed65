"""The kube execution module (kubectl on the control plane): GPU Feature
Discovery labels (the states: tests/unit/states/test_kube.py). Salt's
dunders through salt-factories' loader mock (``configure_loader_modules``)."""

import pytest

from tests.conftest import load_source, loader_globals

kube = load_source("_modules/kube.py", "kube_labels")


@pytest.fixture
def configure_loader_modules():
    return {kube: loader_globals()}


# ---------------------------------------------------------------- GPU labels
def _labels_mod(with_table=True):
    if not with_table:
        kube.__utils__.clear()  # this test's (the loader mock's): no GPU table
    return kube


GTX = {"driver_version": "580.95.05", "cuda_version": "13.0",
       "gpus": [{"name": "NVIDIA GeForce GTX 1080 Ti", "pci_device_id": "0x1b06", "architecture": "Pascal",
                 "memory_mib": 11264}]}


def test_gpu_labels_are_gfds_for_a_pascal_card_without_nvml_compute_capability():
    labels = _labels_mod().gpu_labels(GTX)
    assert labels == {
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.count": "1",
        "nvidia.com/gpu.product": "NVIDIA-GeForce-GTX-1080-Ti",
        "nvidia.com/gpu.memory": "11264",
        "nvidia.com/gpu.family": "pascal",
        "nvidia.com/gpu.compute.major": "6",
        "nvidia.com/gpu.compute.minor": "1",
        "nvidia.com/cuda.driver-version.full": "580.95.05",
        "nvidia.com/cuda.driver-version.major": "580",
        "nvidia.com/cuda.driver-version.minor": "95",
        "nvidia.com/cuda.driver-version.revision": "05",
        "nvidia.com/cuda.runtime-version.major": "13",
        "nvidia.com/cuda.runtime-version.minor": "0",
        "nvidia.com/cuda.runtime-version.full": "13.0",
    }


@pytest.mark.parametrize(
    ("gpu", "family", "cc"),
    [
        ({"name": "NVIDIA GeForce RTX 4090", "pci_device_id": "0x2684", "architecture": "Ada"}, "ada-lovelace", "8.9"),
        ({"name": "NVIDIA H200", "architecture": "Hopper", "compute_capability": "9.0"}, "hopper", "9.0"),
        ({"name": "NVIDIA A100-SXM4-80GB", "pci_device_id": "0x20b2", "architecture": "Ampere"}, "ampere", "8.0"),
        ({"name": "NVIDIA GeForce RTX 3090", "pci_device_id": "0x2204", "architecture": "Ampere"}, "ampere", "8.6"),
        ({"name": "Tesla T4", "pci_device_id": "0x1eb8", "architecture": "Turing"}, "turing", "7.5"),
        ({"name": "Tesla V100-SXM2-16GB", "pci_device_id": "0x1db1", "architecture": "Volta"}, "volta", "7.0"),
        ({"name": "NVIDIA GeForce RTX 5090", "pci_device_id": "0x2b85", "architecture": "Blackwell"}, "blackwell",
         "12.0"),
        ({"name": "NVIDIA B200", "pci_device_id": "0x2901", "architecture": "Blackwell"}, "blackwell", "10.0"),
        ({"name": "NVIDIA GeForce GTX 750 Ti", "pci_device_id": "0x1380", "architecture": "Maxwell"}, "maxwell", "5.0"),
        ({"name": "Tesla K80", "pci_device_id": "0x102d", "architecture": "Kepler"}, "kepler", "3.7"),
    ],
)
def test_gpu_family_and_compute_capability_follow_gfd(gpu, family, cc):
    labels = _labels_mod().gpu_labels({"gpus": [gpu]})
    assert labels["nvidia.com/gpu.family"] == family
    assert f"{labels['nvidia.com/gpu.compute.major']}.{labels['nvidia.com/gpu.compute.minor']}" == cc


def test_nvml_compute_capability_wins_and_unknown_gives_no_family():
    mod = _labels_mod()
    gpu = dict(GTX["gpus"][0], compute_capability="6.1")
    assert mod.gpu_labels({"gpus": [gpu]})["nvidia.com/gpu.compute.minor"] == "1"
    unknown = {"gpus": [{"name": "Graphics Device", "pci_device_id": "0x0a20", "architecture": None}]}
    labels = mod.gpu_labels(unknown)  # GFD: compute major 0 -> no family labels
    assert "nvidia.com/gpu.family" not in labels and labels["nvidia.com/gpu.present"] == "true"
    # no table loaded (utils not synced): NVML's value alone
    assert "nvidia.com/gpu.family" not in _labels_mod(with_table=False).gpu_labels(GTX)


def test_gpu_product_is_sanitised_like_gfd_and_shared_when_time_sliced():
    mod = _labels_mod()
    odd = {"gpus": [{"name": "NVIDIA  RTX A6000 (rev/2)", "architecture": "Ampere"}]}
    assert mod.gpu_labels(odd)["nvidia.com/gpu.product"] == "NVIDIA-RTX-A6000-rev2"
    shared = mod.gpu_labels(GTX, replicas=4)
    assert shared["nvidia.com/gpu.product"] == "NVIDIA-GeForce-GTX-1080-Ti-SHARED"
    assert shared["nvidia.com/gpu.replicas"] == "4" and shared["nvidia.com/gpu.sharing-strategy"] == "time-slicing"
