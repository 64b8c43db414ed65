"""
Fake hardware views for the ``nvidia`` grains: a sysfs PCI tree and the
procfs files the grain reads, for tests and for the cluster twin.

* :func:`write_sysfs` -- ``<root>/bus/pci/devices/0000:0X:00.0/{vendor,device,class,driver}``
  for each GPU (plus its HDMI audio function and a host bridge, which the
  grain must skip), ``driver`` a symlink into ``<root>/bus/pci/drivers/``.
* :func:`write_procfs` -- ``<root>/modules`` with lines as the kernel writes
  them and ``<root>/driver/nvidia/version`` as the proprietary or the open
  kernel module writes it.
* :func:`sync` -- both, for a twin node, from its ``node.json`` (gpus) and
  ``state.json`` (modules, nvidia_driver), into ``$K8STWIN_NODE_DIR/{sys,proc}``.
* :func:`layout` -- the node's GPUs with bus ids, uuids, memory, compute
  capability and MIG mode, shared with the emulated ``nvidia-smi`` and the
  node's stand-in NVML library (``k8stwin.fakenvml``, placed by :func:`sync`).
"""

import hashlib
import importlib.util
import os
import pathlib
import shutil
import uuid as uuidlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _load_gpu_table():
    spec = importlib.util.spec_from_file_location("k8stwin_nvidia_gpu", ROOT / "_utils" / "nvidia_gpu.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


nvidia_gpu = _load_gpu_table()

# Board memory (MiB) as nvidia-smi reports fb total; used when no capture of
# the model exists. Sources: the captures in tests/fixtures/nvidia-smi and
# NVIDIA's product pages (1080 Ti: 11 GB GDDR5X).
MEMORY_MIB = {
    0x1B06: 11264,
    0x1B80: 8192,
    0x1B81: 8192,
    0x1B82: 8192,
    0x1D01: 1998,
    0x1CB3: 1998,
    0x1BB3: 7611,
    0x1EB8: 15360,
    0x1F02: 8192,
    0x1E87: 8192,
    0x2184: 5912,
    0x2204: 24576,
    0x2206: 10240,
    0x2216: 10240,
    0x20B2: 81920,
    0x2330: 81559,
    0x2335: 143771,
    0x2684: 24564,
}

# Sizes and taint flags as /proc/modules shows them (a real 580 host).
# The open module carries no P (proprietary) taint.
MODULE_LINES = {
    "nvidia": ("56717312", "(POE)"),
    "nvidia_uvm": ("1437696", "(POE)"),
    "nvidia_modeset": ("1241088", "(POE)"),
    "nvidia_drm": ("73728", "(POE)"),
    "nouveau": ("2318336", ""),
    "br_netfilter": ("32768", ""),
    "overlay": ("151552", ""),
}
# CUDA compute capability by architecture, with the chips that differ from
# their generation's usual value (device-id ranges as in nvidia_gpu.RANGES).
# Source: NVIDIA's "CUDA GPUs" list (developer.nvidia.com/cuda-gpus) and the
# CUDA C++ Programming Guide's table of compute capabilities.
COMPUTE_CAPABILITY = {
    "Kepler": "3.5", "Maxwell": "5.2", "Pascal": "6.1", "Volta": "7.0", "Turing": "7.5",
    "Ampere": "8.6", "Ada": "8.9", "Hopper": "9.0", "Blackwell": "12.0",
}
COMPUTE_CAPABILITY_RANGES = (
    (0x1340, 0x13BF, "5.0"),  # GM107/GM108 (GTX 750, K620, K1200, K2200)
    (0x15F0, 0x15FF, "6.0"),  # GP100 (P100, Quadro GP100)
    (0x2080, 0x20FF, "8.0"),  # GA100 (A100, A30, A800)
    (0x2900, 0x29FF, "10.0"),  # GB100 (B200, GB200)
)
# GPUs with MIG (nvmlDeviceGetMigMode answers): GA100, every GH100, GB100.
MIG_RANGES = ((0x2080, 0x20FF), (0x2300, 0x237F), (0x2900, 0x29FF))


def compute_capability(dev, arch):
    """'9.0' for a device id (int) and architecture; None when unknown."""
    for low, high, value in COMPUTE_CAPABILITY_RANGES:
        if dev is not None and low <= dev <= high:
            return value
    return COMPUTE_CAPABILITY.get(arch)


def mig_capable(dev):
    return dev is not None and any(low <= dev <= high for low, high in MIG_RANGES)


HOLDERS = {"nvidia": ("nvidia_uvm", "nvidia_modeset"), "nvidia_modeset": ("nvidia_drm",)}


def _id_for_name(name):
    """The PCI device id (int) of a GPU given by model name or id."""
    dev = nvidia_gpu.device_id(name) if str(name).strip().lower().startswith("0x") else None
    if dev is not None:
        return dev
    want = " ".join(str(name).lower().split())
    for dev, (known, _arch) in nvidia_gpu.GPUS.items():
        if " ".join(known.lower().split()) == want:
            return dev
    for dev, (known, _arch) in nvidia_gpu.GPUS.items():
        if want in known.lower():
            return dev
    return None


def gpu_uuid(node_id, index):
    """A stable, realistic UUID for a node's GPU."""
    digest = hashlib.sha1(f"{node_id}/{index}".encode()).digest()[:16]
    return "GPU-" + str(uuidlib.UUID(bytes=digest))


def layout(gpus, node_id="node"):
    """GPU dicts (pci_bus_id, pci_device_id, name, architecture, uuid,
    memory_mib, compute_capability, mig_mode) for ``gpus``: model names
    ('NVIDIA GeForce GTX 1080 Ti'), ids ('0x1b06') or dicts with any of
    those keys (``mig_mode: Enabled`` on a MIG-capable GPU; they default to
    Disabled, other GPUs have none)."""
    out = []
    for index, gpu in enumerate(gpus or []):
        spec = dict(gpu) if isinstance(gpu, dict) else {"name": gpu}
        dev = nvidia_gpu.device_id(spec.get("pci_device_id")) if spec.get("pci_device_id") else None
        if dev is None and spec.get("name"):
            dev = _id_for_name(spec["name"])
        name, arch = nvidia_gpu.identify(dev, spec.get("name"))
        arch = spec.get("architecture") or arch
        mig = (spec.get("mig_mode") or "Disabled") if mig_capable(dev) else None
        out.append(
            {
                "index": index,
                "pci_bus_id": spec.get("pci_bus_id") or f"0000:{index + 1:02x}:00.0",
                "pci_device_id": nvidia_gpu.device_id_str(dev),
                "name": name,
                "architecture": arch,
                "uuid": spec.get("uuid") or gpu_uuid(node_id, index),
                "memory_mib": spec.get("memory_mib") or MEMORY_MIB.get(dev),
                "compute_capability": spec.get("compute_capability") or compute_capability(dev, arch),
                "mig_mode": mig,
            }
        )
    return out


def _write(path, text):
    """Write a view file atomically (readers run meanwhile: the node's
    kubelet stand-in rewrites /proc/modules while Salt reads it)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _device(root, bus, vendor, device, klass, driver=None):
    base = pathlib.Path(root) / "bus" / "pci" / "devices" / bus
    base.mkdir(parents=True, exist_ok=True)
    _write(base / "vendor", f"{vendor}\n")
    _write(base / "device", f"{device}\n")
    _write(base / "class", f"{klass}\n")
    link = base / "driver"
    if link.is_symlink() or link.exists():
        link.unlink()
    if driver:
        target = pathlib.Path(root) / "bus" / "pci" / "drivers" / driver
        target.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(target, base), link)


def write_sysfs(root, gpus, driver=None, node_id="node"):
    """
    A fake sysfs PCI tree under ``root`` holding ``gpus`` (see :func:`layout`),
    each bound to ``driver`` (None, 'nvidia' or 'nouveau'), with an HDMI
    audio function beside each GPU and an Intel host bridge. Returns the
    layout.
    """
    root = pathlib.Path(root)
    shutil.rmtree(root / "bus" / "pci", ignore_errors=True)
    (root / "bus" / "pci" / "devices").mkdir(parents=True, exist_ok=True)
    _device(root, "0000:00:00.0", "0x8086", "0x3e0f", "0x060000")
    gpus = layout(gpus, node_id)
    for gpu in gpus:
        _device(root, gpu["pci_bus_id"], "0x10de", gpu["pci_device_id"] or "0xffff", "0x030000", driver)
        audio = gpu["pci_bus_id"][:-1] + "1"
        _device(root, audio, "0x10de", "0x10ef", "0x040300", "snd_hda_intel")
    return gpus


def module_line(name, holders=(), open_module=False, extra=0):
    """One /proc/modules line as the kernel prints it; ``extra``: uses
    beyond the stacked modules (each open device of the module counts)."""
    size, taint = MODULE_LINES.get(name, ("16384", ""))
    if open_module and taint:
        taint = taint.replace("P", "")
    deps = ",".join(holders) + "," if holders else "-"
    line = f"{name} {size} {len(holders) + int(extra)} {deps} Live 0x0000000000000000"
    return f"{line} {taint}" if taint else line


def version_text(driver_version, open_module=False):
    """``/proc/driver/nvidia/version`` as the loaded module writes it."""
    if open_module:
        first = (
            f"NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  {driver_version}  Release Build  "
            "(dvs-builder@U22-I3-AE18-23-3)  Tue Sep 23 09:26:04 UTC 2025"
        )
    else:
        first = f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {driver_version}  Tue Sep 23 09:41:40 UTC 2025"
    return first + "\nGCC version:  gcc version 11.5.0 20240719 (Red Hat 11.5.0-5) (GCC) \n"


def write_modules(root, modules, open_module=False, extra_refs=None):
    """``<root>/modules`` listing ``modules`` (load order; the kernel lists
    the newest first); ``extra_refs``: ``{module: open devices}``."""
    root = pathlib.Path(root)
    root.mkdir(parents=True, exist_ok=True)
    mods = list(modules or [])
    refs = extra_refs or {}
    lines = [
        module_line(m, [h for h in HOLDERS.get(m, ()) if h in mods], open_module and m.startswith("nvidia"),
                    refs.get(m, 0))
        for m in reversed(mods)
    ]
    _write(root / "modules", "".join(line + "\n" for line in lines))


def write_procfs(root, modules, driver_version=None, open_module=False, extra_refs=None):
    """
    ``<root>/modules`` (:func:`write_modules`) and, when ``driver_version``
    is given and ``nvidia`` is loaded, ``<root>/driver/nvidia/version``.
    """
    root = pathlib.Path(root)
    mods = list(modules or [])
    write_modules(root, mods, open_module, extra_refs)
    shutil.rmtree(root / "driver" / "nvidia", ignore_errors=True)
    if driver_version and "nvidia" in mods:
        _write(root / "driver" / "nvidia" / "version", version_text(driver_version, open_module))


def sync(node_dir=None):
    """Write ``<node dir>/sys`` and ``<node dir>/proc`` from the node's
    description and state (see docs/twin-internals.md), and the node's NVML
    view (:func:`k8stwin.fakenvml.sync`)."""
    from k8stwin import state  # the twin's package; imported late for tests

    base = pathlib.Path(node_dir or state.node_dir())
    import json

    node = json.loads((base / "node.json").read_text(encoding="utf-8"))
    try:
        data = json.loads((base / "state.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        data = {}
    modules = data.get("modules") or []
    driver = "nvidia" if "nvidia" in modules else ("nouveau" if "nouveau" in modules else None)
    gpus = write_sysfs(base / "sys", node.get("gpus") or [], driver, node.get("id", "node"))
    drv = data.get("nvidia_driver") or {}
    from k8stwin import gpuholders

    held = gpuholders.holders(node, data)  # what has /dev/nvidia* open (pid entries, module use counts)
    write_procfs(
        base / "proc",
        modules,
        drv.get("loaded_version") or drv.get("version"),  # loaded_version: an old module kept loaded by an upgrade
        open_module=drv.get("kernel_module_type") == "open",
        extra_refs=gpuholders.extra_refs(held),
    )
    gpuholders.write_procfs(base / "proc", held)
    from k8stwin import fakenvml
    from k8stwin.tools import nvidia_smi

    version = drv.get("loaded_version") or drv.get("version")
    fakenvml.sync(base, node, data, gpus, nvidia_smi.cuda_for(version) if version else None)
