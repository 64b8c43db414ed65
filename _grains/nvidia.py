"""
The ``nvidia`` grain: the host's NVIDIA GPUs and driver, before and after a
driver exists.

.. code-block:: yaml

    nvidia:
      gpu_count: 1                  # NVIDIA display devices in sysfs
      gpus:                         # ordered by PCI bus id
        - pci_bus_id: 0000:01:00.0
          pci_device_id: '0x1b06'
          name: NVIDIA GeForce GTX 1080 Ti   # driver's name; before it, the PCI id's or null
          architecture: Pascal      # from the PCI device id, even with no driver
          uuid: GPU-...             # driver loaded only, else null
          memory_mib: 11264         # driver loaded only, else null
          kernel_driver: nvidia     # the driver bound in sysfs (nvidia, nouveau, vfio-pci) or null
          compute_capability: '6.1' # driver loaded only (NVML; nvidia-smi R510+), else null
          mig_mode: null            # Enabled | Disabled on MIG-capable GPUs (driver loaded), else null
      driver_version: 580.95.05     # or null
      cuda_version: '13.0'          # or null
      kernel_module: proprietary    # open | proprietary | null (not loaded)
      nouveau_loaded: false
      source: nvml                  # who gave the driver's facts: nvml | nvidia-smi | pci (no driver)
      error: ...                    # only when something could not be read

Sources: the PCI tree under the minion option ``k8snvidia.sysfs_root``
(default ``/sys``), ``modules`` and ``driver/nvidia/version`` under
``k8snvidia.procfs_root`` (default ``/proc``; both read by ``_utils/host.py``,
the older ``nvidia.*_root`` names still understood) and, only when the
driver is loaded, the driver: NVML (``libnvidia-ml.so.1`` through ctypes, or the path
in the minion option ``nvidia.nvml_library``; no subprocess), or when NVML
cannot answer one ``nvidia-smi --query-gpu`` (found on PATH; the CUDA
version then from ``libcuda.so.1``), bounded by ``nvidia.smi_timeout``
seconds (``nvidia_gpu.smi_timeout``: default 10, ``nvidia_gpu.SMI_TIMEOUT``).
A missing or broken NVML is a fallback, not an error.
The grain never raises.

Target with it: ``salt -G 'nvidia:gpus:name:*1080*' test.ping``,
``salt -G 'nvidia:gpu_count:2' ...``, ``salt -G 'nvidia:kernel_module:open' ...``.
"""

import logging

log = logging.getLogger(__name__)


def _empty(error):
    return {
        "gpu_count": 0,
        "gpus": [],
        "driver_version": None,
        "cuda_version": None,
        "kernel_module": None,
        "nouveau_loaded": False,
        "source": None,
        "error": error,
    }


def nvidia():
    """The ``nvidia`` grain (see the module docstring)."""
    try:
        opts = __opts__  # noqa: F821  (the loader injects it)
        utils = __utils__  # noqa: F821
        if "nvidia_gpu.inventory" not in utils:
            return {"nvidia": _empty("the nvidia_gpu utils module is not available (run saltutil.sync_all)")}
        sysfs, procfs = utils["nvidia_gpu.host_roots"](opts)
        timeout = utils["nvidia_gpu.smi_timeout"](opts)
        run_smi = utils["nvidia_gpu.run_smi_subprocess"]
        read_nvml = read_cuda = None
        if utils["nvidia_gpu.driver_loaded"](procfs):  # NVML only where a driver could answer
            read_nvml, read_cuda = utils["nvidia_gpu.nvml_readers"](opts.get("nvidia.nvml_library") or None)
        data = utils["nvidia_gpu.inventory"](
            sysfs, procfs, lambda args: run_smi(args, timeout=timeout), read_nvml=read_nvml, read_cuda=read_cuda
        )
        return {"nvidia": data}
    except Exception as exc:  # a grain must never take the minion down
        log.exception("nvidia grain failed")
        return {"nvidia": _empty(f"nvidia grain failed: {exc.__class__.__name__}: {exc}")}
