"""
NVIDIA Management Library (NVML, ``libnvidia-ml.so.1``) through ``ctypes``:
the GPU facts the ``nvidia`` grain reports, with no subprocess.

Plain Python, no Salt imports. The grain and the ``nvidia`` module reach it
through ``nvidia_gpu.nvml_readers`` (imported by path once per process, not
through Salt's loader at every refresh: see ``nvidia_gpu.nvml_module``); it
is also ``__utils__["nvml.read"]`` under Salt.

:func:`read` opens the library (``nvmlInit_v2``), reads the driver and CUDA
driver versions and, per GPU, the PCI bus id and device id, name, UUID,
memory, compute capability and MIG mode, then ``nvmlShutdown``. A library
that is missing, lacks a required symbol or fails ``nvmlInit`` is reported
as an error string, never raised: the caller falls back to ``nvidia-smi``.
Optional symbols that old drivers lack (``nvmlSystemGetCudaDriverVersion``,
``nvmlDeviceGetCudaComputeCapability``, ``nvmlDeviceGetMigMode``) give None.

:func:`cuda_driver_version` asks ``libcuda.so.1`` (``cuDriverGetVersion``,
which needs no ``cuInit`` and no GPU) for the CUDA version nvidia-smi prints,
for the fallback path, where ``nvidia-smi --query-gpu`` has no such field.

Sources: NVIDIA's ``nvml.h`` (NVML API Reference, R580): return codes,
``nvmlPciInfo_t`` (``busIdLegacy[16]``, domain, bus, device, pciDeviceId =
device id << 16 | vendor id, pciSubSystemId, ``busId[32]``), ``nvmlMemory_t``
(total, free, used in bytes), buffer sizes (``NVML_DEVICE_NAME_V2_BUFFER_SIZE``
96, ``NVML_DEVICE_UUID_V2_BUFFER_SIZE`` 96, ``NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE``
80), ``NVML_CUDA_DRIVER_VERSION_MAJOR(v) = v / 1000``, ``MINOR = (v % 1000) / 10``,
``NVML_DEVICE_MIG_DISABLE`` 0 / ``ENABLE`` 1; CUDA driver API reference
(``cuDriverGetVersion``: 1000 * major + 10 * minor).
"""

import ctypes
import os

LIBRARY = "libnvidia-ml.so.1"
CUDA_LIBRARY = "libcuda.so.1"

# Where the driver's installers put the library, tried when the plain name
# is not found by the dynamic loader (ld.so.cache not refreshed yet).
LIBRARY_DIRS = (
    "/usr/lib64",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib",
    "/usr/local/nvidia/lib64",
)

SUCCESS = 0
ERROR_NOT_SUPPORTED = 3
ERROR_DRIVER_NOT_LOADED = 9
ERROR_FUNCTION_NOT_FOUND = 13
ERRORS = {
    1: "Uninitialized",
    2: "Invalid Argument",
    3: "Not Supported",
    4: "Insufficient Permissions",
    5: "Already Initialized",
    6: "Not Found",
    7: "Insufficient Size",
    8: "Insufficient External Power",
    9: "Driver Not Loaded",
    10: "Timeout",
    11: "Interrupt Request Issue",
    12: "NVML Shared Library Not Found",
    13: "Function Not Found",
    14: "Corrupted infoROM",
    15: "GPU is lost",
    16: "GPU requires restart",
    17: "The operating system has blocked the request.",
    18: "RM has detected an NVML/RM version mismatch.",
    19: "In use by another client",
    20: "Insufficient Memory",
    21: "No data",
    22: "The requested vgpu operation is not available on target device, because ECC is enabled",
    23: "Ran out of critical resources, other than memory",
    24: "The requested frequency is not supported",
    25: "The provided version is invalid/unsupported",
    26: "The requested functionality has been deprecated",
    27: "The system is not ready for the request",
    28: "The GPU was not found",
    29: "The resource is in an invalid state",
    999: "Unknown Error",
}

NAME_SIZE = 96
UUID_SIZE = 96
VERSION_SIZE = 80
MIG_MODES = {0: "Disabled", 1: "Enabled"}
MIB = 1024 * 1024


class PciInfo(ctypes.Structure):
    _fields_ = [
        ("busIdLegacy", ctypes.c_char * 16),
        ("domain", ctypes.c_uint),
        ("bus", ctypes.c_uint),
        ("device", ctypes.c_uint),
        ("pciDeviceId", ctypes.c_uint),
        ("pciSubSystemId", ctypes.c_uint),
        ("busId", ctypes.c_char * 32),
    ]


class Memory(ctypes.Structure):
    _fields_ = [("total", ctypes.c_ulonglong), ("free", ctypes.c_ulonglong), ("used", ctypes.c_ulonglong)]


class NvmlError(Exception):
    def __init__(self, func, code, lib=None):
        self.func, self.code = func, code
        super().__init__(f"{func}: {error_string(code, lib)} (NVML error {code})")


def error_string(code, lib=None):
    """NVML's own text for a return code (``nvmlErrorString``), else ours."""
    if lib is not None:
        try:
            fun = lib.nvmlErrorString
            fun.restype = ctypes.c_char_p
            fun.argtypes = [ctypes.c_int]
            text = fun(code)
            if text:
                return text.decode("utf-8", "replace")
        except (AttributeError, OSError, ValueError):
            pass
    return ERRORS.get(code, "Unknown Error")


def load(name, dirs=LIBRARY_DIRS):
    """``(ctypes.CDLL, None)`` or ``(None, reason)``: ``name`` as the dynamic
    loader finds it, else in the installers' directories (a name with a
    slash is a path, tried alone)."""
    tried = [name] if "/" in name else [name] + [os.path.join(d, name) for d in dirs]
    first = None
    for cand in tried:
        if cand != name and not os.path.exists(cand):
            continue
        try:
            return ctypes.CDLL(cand), None
        except OSError as exc:
            first = first or str(exc)
    return None, f"{name} could not be loaded: {first or 'not found'}"


def _call(lib, func, *args):
    try:
        fun = getattr(lib, func)
    except AttributeError:
        raise NvmlError(func, ERROR_FUNCTION_NOT_FOUND) from None
    fun.restype = ctypes.c_int
    code = fun(*args)
    if code != SUCCESS:
        raise NvmlError(func, code, lib)


def _optional(lib, errors, label, func, *args):
    """Call an optional query: True on success; False when the GPU or driver
    does not support it (not an error); False with a note in ``errors`` for
    any other failure."""
    try:
        _call(lib, func, *args)
        return True
    except NvmlError as exc:
        if exc.code not in (ERROR_NOT_SUPPORTED, ERROR_FUNCTION_NOT_FOUND):
            errors.append(f"nvml: {label}{exc}")
        return False


def _text(buf):
    raw = buf if isinstance(buf, bytes) else buf.value  # a struct's char[] reads as bytes
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip() or None


def cuda_version_str(value):
    """13000 -> '13.0', 12020 -> '12.2' (NVML/CUDA integer versions)."""
    try:
        value = int(value)
    except (TypeError, ValueError):
        return None
    if value <= 0:
        return None
    return f"{value // 1000}.{(value % 1000) // 10}"


def _device(lib, index, errors):
    handle = ctypes.c_void_p()
    _call(lib, "nvmlDeviceGetHandleByIndex_v2", ctypes.c_uint(index), ctypes.byref(handle))
    label = f"GPU {index}: "
    gpu = {
        "index": index,
        "pci_bus_id": None,
        "pci_device_id": None,
        "name": None,
        "uuid": None,
        "memory_mib": None,
        "compute_capability": None,
        "mig_mode": None,
    }
    pci = PciInfo()
    if _optional(lib, errors, label, "nvmlDeviceGetPciInfo_v3", handle, ctypes.byref(pci)):
        gpu["pci_bus_id"] = _text(pci.busId) or _text(pci.busIdLegacy)
        if pci.pciDeviceId:
            gpu["pci_device_id"] = f"0x{(pci.pciDeviceId >> 16) & 0xFFFF:04x}"
    name = ctypes.create_string_buffer(NAME_SIZE)
    if _optional(lib, errors, label, "nvmlDeviceGetName", handle, name, ctypes.c_uint(NAME_SIZE)):
        gpu["name"] = _text(name)
    uuid = ctypes.create_string_buffer(UUID_SIZE)
    if _optional(lib, errors, label, "nvmlDeviceGetUUID", handle, uuid, ctypes.c_uint(UUID_SIZE)):
        gpu["uuid"] = _text(uuid)
    mem = Memory()
    if _optional(lib, errors, label, "nvmlDeviceGetMemoryInfo", handle, ctypes.byref(mem)):
        gpu["memory_mib"] = int(mem.total // MIB)
    major, minor = ctypes.c_int(), ctypes.c_int()
    if _optional(
        lib, errors, label, "nvmlDeviceGetCudaComputeCapability", handle, ctypes.byref(major), ctypes.byref(minor)
    ):
        gpu["compute_capability"] = f"{major.value}.{minor.value}"
    current, pending = ctypes.c_uint(), ctypes.c_uint()
    if _optional(lib, errors, label, "nvmlDeviceGetMigMode", handle, ctypes.byref(current), ctypes.byref(pending)):
        gpu["mig_mode"] = MIG_MODES.get(current.value)
    return gpu


def read(library=None):
    """
    The driver's view of the GPUs through NVML: ``(data, error)``.

    ``data`` is None when NVML cannot answer (``error`` says why: library
    missing, a required symbol missing, ``nvmlInit`` failed -- e.g. "Driver
    Not Loaded" -- or the device count failed), else ``{"driver_version",
    "cuda_version", "gpus": [{"index", "pci_bus_id", "pci_device_id",
    "name", "uuid", "memory_mib", "compute_capability", "mig_mode"}]}``,
    with ``error`` naming what could not be read (a GPU that is lost, a
    field that failed) or None. Never raises.
    """
    lib, why = load(library or LIBRARY)
    if lib is None:
        return None, why
    try:
        _call(lib, "nvmlInit_v2")
    except NvmlError as exc:
        return None, f"nvml: {exc}"
    except Exception as exc:  # a broken library must not take the caller down
        return None, f"nvml: nvmlInit_v2 failed: {exc.__class__.__name__}: {exc}"
    errors = []
    try:
        count = ctypes.c_uint()
        _call(lib, "nvmlDeviceGetCount_v2", ctypes.byref(count))
        version = ctypes.create_string_buffer(VERSION_SIZE)
        driver = None
        if _optional(lib, errors, "", "nvmlSystemGetDriverVersion", version, ctypes.c_uint(VERSION_SIZE)):
            driver = _text(version)
        cuda = ctypes.c_int()
        cuda_version = None
        if _optional(lib, errors, "", "nvmlSystemGetCudaDriverVersion", ctypes.byref(cuda)):
            cuda_version = cuda_version_str(cuda.value)
        gpus = []
        for index in range(count.value):
            try:
                gpus.append(_device(lib, index, errors))
            except NvmlError as exc:
                errors.append(f"nvml: GPU {index}: {exc}")
        data = {"driver_version": driver, "cuda_version": cuda_version, "gpus": gpus}
    except NvmlError as exc:
        data, errors = None, [f"nvml: {exc}"]
    except Exception as exc:
        data, errors = None, [f"nvml: {exc.__class__.__name__}: {exc}"]
    finally:
        try:
            _call(lib, "nvmlShutdown")
        except Exception:  # noqa: S110 - nothing to do about a failed shutdown
            pass
    return data, ("; ".join(errors) or None)


def cuda_driver_version(library=None):
    """The CUDA driver version ('13.0') from ``cuDriverGetVersion`` in
    ``libcuda.so.1``; None when the library or the call is not there."""
    lib, _why = load(library or CUDA_LIBRARY)
    if lib is None:
        return None
    try:
        fun = lib.cuDriverGetVersion
        fun.restype = ctypes.c_int
        value = ctypes.c_int()
        if fun(ctypes.byref(value)) != 0:
            return None
        return cuda_version_str(value.value)
    except Exception:
        return None
