"""
A stand-in ``libnvidia-ml.so.1`` for the twin's nodes and the tests, built
from ``fakenvml.c`` (next to this file) with the host's C compiler and
cached by the hash of source and flags.

* :func:`build` -- compile (or reuse) the library, optionally without some
  symbols (an old driver);
* :func:`state_text` -- the file the library answers from (format in
  ``fakenvml.c``) for GPUs in :func:`k8stwin.hw.layout`'s shape;
* :func:`sync` -- for a twin node (called by :func:`k8stwin.hw.sync`): the
  answers in ``$K8STWIN_NODE_DIR/nvml/state`` while the ``nvidia`` module is
  loaded (none while it is not: ``nvmlInit`` then fails with "Driver Not
  Loaded", as the real library does), and the library itself at the path
  the driver's installer uses on the node's OS family while a driver is
  installed (``/usr/lib64`` on RedHat, ``/usr/lib/x86_64-linux-gnu`` on
  Debian), so the ``nvidia`` grain on a node reads NVML like on a real host.
"""

import os
import pathlib
import subprocess

from . import cc

SOURCE = pathlib.Path(__file__).resolve().with_name("fakenvml.c")
LIBNAME = "libnvidia-ml.so.1"
LIBDIRS = {"RedHat": "usr/lib64", "Debian": "usr/lib/x86_64-linux-gnu"}
MIB = 1024 * 1024
# nvmlInit_v2's answer while an upgrade left the old module loaded
# (NVML_ERROR_LIB_RM_VERSION_MISMATCH: "Driver/library version mismatch")
RC_VERSION_MISMATCH = 18


def build(cache_dir, omit=()):
    """Path of the library built into ``cache_dir`` (reused when the same
    source and flags were built before); ``omit``: NVML function names to
    leave out. Raises OSError/CalledProcessError when it cannot be built."""
    flags = ["-shared", "-fPIC", "-O1", "-Wall"] + [f"-DOMIT_{name}" for name in sorted(omit)]
    return cc.build(SOURCE, cache_dir, "libnvidia-ml-fake", flags, suffix=".so", what="the fake NVML library")


def cuda_int(version):
    """'13.0' -> 13000, '12.2' -> 12020 (NVML's integer form); 0 when unknown."""
    try:
        major, minor = str(version).split(".")[:2]
        return int(major) * 1000 + int(minor) * 10
    except (TypeError, ValueError):
        return 0


def state_text(gpus, driver_version, cuda_version, init_rc=0, fails=()):
    """
    The answers file: ``gpus`` as :func:`k8stwin.hw.layout` gives them
    (``pci_bus_id``, ``pci_device_id``, ``uuid``, ``memory_mib``, ``name``,
    ``compute_capability`` 'M.m' or None, ``mig_mode`` 'Enabled'/'Disabled'
    or None), ``fails``: ``(function, gpu index or -1, rc)``.
    """
    lines = [f"init {int(init_rc)}", f"driver {driver_version or ''}", f"cuda {cuda_int(cuda_version)}"]
    lines += [f"fail {func} {int(index)} {int(rc)}" for func, index, rc in fails]
    for gpu in gpus:
        dev = int(str(gpu.get("pci_device_id") or "0xffff"), 16)
        cc = str(gpu.get("compute_capability") or "0.0").split(".")
        mig = {"Enabled": 1, "Disabled": 0}.get(gpu.get("mig_mode"), -1)
        memory = int(gpu.get("memory_mib") or 0) * MIB
        lines.append(
            f"gpu {gpu['pci_bus_id']} 0x{dev:04x}10de {gpu.get('uuid') or 'GPU-unknown'} {memory} "
            f"{int(cc[0])} {int(cc[1]) if len(cc) > 1 else 0} {mig} {gpu.get('name') or 'NVIDIA Graphics Device'}"
        )
    return "".join(line + "\n" for line in lines)


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def sync(base, node, data, gpus, cuda_version):
    """
    Bring a twin node's NVML view in line with its state (see the module
    docstring): ``base`` the node directory, ``node``/``data`` its
    ``node.json``/``state.json``, ``gpus`` its :func:`k8stwin.hw.layout`.
    The library is placed only where ``$K8STWIN_ROOT`` is set (inside a
    node, or a test's scratch root), never into the host's own ``/usr``.
    Returns the library path placed, or None.
    """
    base = pathlib.Path(base)
    drv = data.get("nvidia_driver") or {}
    version = drv.get("version")
    loaded = "nvidia" in (data.get("modules") or [])
    state = base / "nvml" / "state"
    if loaded and version:
        old = drv.get("loaded_version")
        rc = RC_VERSION_MISMATCH if old and old != version else 0
        _write(state, state_text(gpus, old or version, cuda_version, init_rc=rc))
    elif state.exists():
        state.unlink()
    root = os.environ.get("K8STWIN_ROOT")
    if not root:
        return None
    libdir = LIBDIRS.get(node.get("family") or "", LIBDIRS["Debian"])
    link = pathlib.Path(root, libdir, LIBNAME)
    if not version:
        if link.is_symlink() and str(os.readlink(link)).startswith(str(base / "nvml")):
            link.unlink()
        return None
    try:
        lib = build(base / "nvml")
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"k8stwin.fakenvml: no NVML library for this node: {exc}")
        return None
    if link.is_symlink() and os.readlink(link) == str(lib):
        return link
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(str(lib), link)
    return link
