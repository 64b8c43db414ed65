"""A stand-in NVML for the tests: the twin's fakenvml.c built with gcc into a
per-session cache (k8stwin.fakenvml.build), answer files written from the
real nvidia-smi captures, and the __utils__ dict with both utils modules."""

import pathlib
import tempfile

from tests.conftest import load_source
from tests.fakes.nvidia import FIXTURES, gpu, hw, utils_dict  # noqa: F401  (hw: sys.path for k8stwin)

nvml = load_source("_utils/nvml.py", "k8snvidia_test_nvml")

from k8stwin import fakenvml  # noqa: E402

# the project's copies of /work/shared/fixtures/nvidia-smi (plus the H200's)
CAPTURES = sorted(FIXTURES.glob("*.xml"))
_CACHE = pathlib.Path(tempfile.gettempdir()) / "k8snvidia-fakenvml-tests"

# Compute capability of the captured models (NVIDIA's "CUDA GPUs" list);
# nvidia-smi -q -x has no such field.
CAPTURE_CC = {
    "0x20b2": "8.0", "0x1f02": "7.5", "0x1e82": "7.5", "0x1d01": "6.1", "0x1b82": "6.1", "0x2182": "7.5",
    "0x2335": "9.0", "0x1cb3": "6.1", "0x2206": "8.6", "0x2216": "8.6", "0x2204": "8.6", "0x1eb8": "7.5",
    "0x1bb3": "6.1", "0x1e87": "7.5", "0x2184": "7.5",
}


def library(omit=()):
    """The fake libnvidia-ml.so.1 (built once per source and flags)."""
    return str(fakenvml.build(_CACHE, omit=omit))


def utils_with_nvml():
    mods = dict(utils_dict())
    mods.update({f"nvml.{name}": getattr(nvml, name) for name in ("read", "cuda_driver_version", "load")})
    return mods


def capture_gpus(path):
    """(driver_version, cuda_version, [gpu dicts for state_text]) from a
    real ``nvidia-smi -q -x`` capture."""
    res = gpu.parse_smi_xml(pathlib.Path(path).read_text())
    gpus = []
    for g in res["gpus"]:
        gpus.append(
            {
                "pci_bus_id": g["pci_bus_id"],
                "pci_device_id": g["pci_device_id"],
                "uuid": g["uuid"],
                "memory_mib": g["memory_mib"],
                "name": g["name"],
                "compute_capability": CAPTURE_CC.get(g["pci_device_id"]),
                "mig_mode": g["mig_mode"],
            }
        )
    return res["driver_version"], res["cuda_version"], gpus


def write_state(path, gpus, driver_version, cuda_version, **kw):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(fakenvml.state_text(gpus, driver_version, cuda_version, **kw))
    return path
