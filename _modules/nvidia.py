"""
The host's NVIDIA GPUs and driver: inventory, driver facts, GPU processes and
the driver branch and kernel module type its GPUs need.

Reads the same sources as the ``nvidia`` grain (sysfs PCI tree, procfs,
NVML or ``nvidia-smi --query-gpu``; ``processes`` reads ``nvidia-smi -q -x``),
fresh on every call; roots come from the minion options
``k8snvidia.sysfs_root`` (default ``/sys``) and ``k8snvidia.procfs_root``
(default ``/proc``), read by ``_utils/host.py``. The GPU table and the
driver rules live in ``_utils/nvidia_gpu.py``.
"""

import logging
import os

import salt.utils.path
from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "nvidia"


def __virtual__():
    if "nvidia_gpu.inventory" not in __utils__:
        return (False, "nvidia: the nvidia_gpu utils module is not loaded (run saltutil.sync_all)")
    return __virtualname__


def _roots():
    return __utils__["host.sysfs"](__opts__), __utils__["host.procfs"](__opts__)


def _run_smi(args):
    """nvidia-smi through cmd.run_all: (rc, stdout, stderr); rc None when it
    is not on PATH."""
    exe = salt.utils.path.which("nvidia-smi")
    if not exe:
        return None, "", "nvidia-smi not found on PATH"
    timeout = __utils__["nvidia_gpu.smi_timeout"](__opts__)
    res = __salt__["cmd.run_all"](
        [exe, *args],
        python_shell=False,
        ignore_retcode=True,
        output_loglevel="trace",
        timeout=timeout,
    )
    return res.get("retcode"), res.get("stdout", ""), res.get("stderr", "")


def _loaded():
    procfs = _roots()[1]
    version, mtype = __utils__["nvidia_gpu.read_driver_version"](procfs)
    modules = __utils__["nvidia_gpu.read_modules"](procfs) or []
    return version, mtype, modules


def inventory():
    """
    Everything the ``nvidia`` grain reports, read now (the grain is read at
    minion start and on ``saltutil.refresh_grains``).

    CLI Example:

    .. code-block:: bash

        salt '*' nvidia.inventory
    """
    sysfs, procfs = _roots()
    read_nvml, read_cuda = __utils__["nvidia_gpu.nvml_readers"](__opts__.get("nvidia.nvml_library") or None)
    return __utils__["nvidia_gpu.inventory"](sysfs, procfs, _run_smi, read_nvml=read_nvml, read_cuda=read_cuda)


def gpus():
    """
    The host's NVIDIA GPUs, ordered by PCI bus id: ``pci_bus_id``,
    ``pci_device_id``, ``name``, ``architecture``, ``uuid`` and
    ``memory_mib`` (the last two need the driver), ``kernel_driver``.

    CLI Example:

    .. code-block:: bash

        salt '*' nvidia.gpus
    """
    return inventory()["gpus"]


def driver():
    """
    The NVIDIA driver as the running kernel has it: ``loaded`` (bool),
    ``version``, ``cuda_version`` (from NVML or libcuda), ``kernel_module``
    (``open``, ``proprietary`` or None), ``nouveau_loaded``, and ``error``
    when nvidia-smi could not be read.

    CLI Example:

    .. code-block:: bash

        salt '*' nvidia.driver
    """
    data = inventory()
    ret = {
        "loaded": data["kernel_module"] is not None,
        "version": data["driver_version"],
        "cuda_version": data["cuda_version"],
        "kernel_module": data["kernel_module"],
        "nouveau_loaded": data["nouveau_loaded"],
    }
    if data.get("error"):
        ret["error"] = data["error"]
    return ret


def processes():
    """
    The processes using the GPUs (``nvidia-smi -q -x``): ``gpu`` (index),
    ``pci_bus_id``, ``uuid``, ``pid``, ``type`` (C compute, G graphics, C+G),
    ``name``, ``used_memory_mib``. Empty when the driver is not loaded (no
    process can use a GPU then); raises when the driver is loaded but
    nvidia-smi cannot tell, so a caller never mistakes that for an idle node.

    CLI Example:

    .. code-block:: bash

        salt '*' nvidia.processes
    """
    version, _mtype, modules = _loaded()
    if version is None and "nvidia" not in modules:
        return []
    rc, out, err = _run_smi(["-q", "-x"])
    if rc != 0:
        reason = (err or out or "").strip() or "no output"
        raise CommandExecutionError(f"nvidia-smi -q -x failed (rc {rc}): {reason}")
    try:
        return __utils__["nvidia_gpu.parse_smi_xml"](out)["processes"]
    except ValueError as exc:
        raise CommandExecutionError(str(exc)) from exc


def recommended():
    """
    The driver this node's GPUs need: ``max_branch`` (580 for Maxwell, Pascal
    and Volta; None when current drivers do), ``min_branch``,
    ``module_type`` (``open`` for Turing and newer, ``proprietary`` when any
    GPU is older; None without GPUs), ``cuda_max`` (12 for Pascal: CUDA 13
    dropped it), ``architectures``, ``conflicts`` and the ``gpus`` considered.
    Works before any driver is installed (PCI ids give the architecture).

    CLI Example:

    .. code-block:: bash

        salt '*' nvidia.recommended
    """
    sysfs, _procfs = _roots()
    found = []
    for dev in __utils__["nvidia_gpu.read_pci"](sysfs):
        name, arch = __utils__["nvidia_gpu.identify"](dev["pci_device_id"])
        found.append(
            {"pci_bus_id": dev["pci_bus_id"], "pci_device_id": dev["pci_device_id"], "name": name, "architecture": arch}
        )
    if not found:
        # no PCI tree (a sandbox): ask the driver
        found = [
            {k: g[k] for k in ("pci_bus_id", "pci_device_id", "name", "architecture")}
            for g in inventory()["gpus"]
        ]
    ret = __utils__["nvidia_gpu.recommend"]([g["architecture"] for g in found])
    ret["gpus"] = found
    return ret


def parse_smi_xml(text):
    """
    Parse ``nvidia-smi -q -x`` output (any DTD from v10 to v13): driver and
    CUDA versions, the GPUs and their processes. Fields that the output lacks
    or reports as N/A are None.

    CLI Example:

    .. code-block:: bash

        salt-call nvidia.parse_smi_xml "$(nvidia-smi -q -x)"
    """
    try:
        return __utils__["nvidia_gpu.parse_smi_xml"](text)
    except ValueError as exc:
        raise CommandExecutionError(str(exc)) from exc


def driver_problems(driver_version, kernel_module_type="auto"):
    """
    What is wrong with installing ``driver_version`` with
    ``kernel_module_type`` on this node, given its GPUs (empty: nothing).

    CLI Example:

    .. code-block:: bash

        salt '*' nvidia.driver_problems 590.44.01
    """
    names = [g["name"] or g["pci_device_id"] for g in recommended()["gpus"]]
    return __utils__["nvidia_gpu.driver_problems"](__grains__.get("id"), names, driver_version, kernel_module_type)


NVIDIA_MODULES = ("nvidia", "nvidia_uvm", "nvidia_modeset", "nvidia_drm", "nvidia_peermem")


def _module_use(procfs):
    """``{module: {"refcount": int, "used_by": [...]}}`` for the loaded NVIDIA
    modules, from one read of ``/proc/modules`` (``host.kernel_modules``);
    empty when it cannot be read."""
    try:
        rows = __utils__["host.kernel_modules"](procfs)
    except OSError:
        return {}
    return {name: {"refcount": row["refcount"], "used_by": row["used_by"]}
            for name, row in rows.items() if name in NVIDIA_MODULES}


def _sysfs_holders(sysfs, name="nvidia"):
    try:
        return sorted(os.listdir(os.path.join(sysfs, "module", name, "holders")))
    except OSError:
        return []


def _read(path, binary=False):
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    return data if binary else data.decode("utf-8", "replace")


def _process_origin(procfs, pid):
    """(systemd unit or None, in a Kubernetes pod) of a process, from
    ``/proc/<pid>/cgroup``: ``/system.slice/X.service`` is unit X (cgroup v2's
    ``0::`` line or v1's ``name=systemd`` one), a path under ``kubepods`` is
    a container of a pod (the kubelet's cgroup, systemd or cgroupfs driver)."""
    text = _read(os.path.join(procfs, pid, "cgroup")) or ""
    pod = "kubepods" in text
    unit = None
    for line in text.splitlines():
        hier, _, path = line.partition(":")[2].partition(":")
        if hier not in ("", "name=systemd"):
            continue
        parts = [p for p in path.split("/") if p]
        if "system.slice" in parts[:1] and len(parts) > 1 and parts[1].endswith(".service"):
            unit = parts[1][: -len(".service")]
    return unit, pod


def _device_openers(procfs):
    """Processes with ``/dev/nvidia*`` open: one pass over ``/proc/*/fd``
    (readlink only; nothing is opened). The command is the program of
    ``cmdline`` (``comm`` is cut to 15 characters: ``nvidia-persiste``), else
    ``comm``; ``unit`` is its systemd service, ``pod`` true when it runs in a
    Kubernetes pod (both from its cgroup). A process that vanishes or cannot
    be read is skipped."""
    found = {}
    try:
        pids = [p for p in os.listdir(procfs) if p.isdigit()]
    except OSError:
        return []
    for pid in pids:
        fd_dir = os.path.join(procfs, pid, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        devices = set()
        for fd in fds:
            try:
                target = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if target.startswith("/dev/nvidia"):
                devices.add(target)
        if not devices:
            continue
        argv0 = (_read(os.path.join(procfs, pid, "cmdline"), binary=True) or b"").split(b"\0")[0]
        command = os.path.basename(argv0.decode("utf-8", "replace")) if argv0 else None
        if not command:
            command = (_read(os.path.join(procfs, pid, "comm")) or "?").strip() or "?"
        entry = {"pid": int(pid), "command": command, "devices": sorted(devices)}
        unit, pod = _process_origin(procfs, pid)
        if unit:
            entry["unit"] = unit
        if pod:
            entry["pod"] = True
        found[int(pid)] = entry
    return [found[p] for p in sorted(found)]


def holders():
    """
    Everything that keeps the NVIDIA kernel modules from being unloaded (and
    so makes the ``.run`` installer abort an upgrade): ``processes``, the
    processes with a ``/dev/nvidia*`` device open (pid, command, devices,
    and from the cgroup ``unit``, the systemd service, or ``pod: true`` for a
    container of a Kubernetes pod; the device plugin, nvidia-persistenced,
    DCGM's nv-hostengine, CUDA jobs),
    plus those nvidia-smi lists as using the GPUs; ``modules``, the loaded
    NVIDIA modules with their use count and the modules using them
    (``/proc/modules``, ``/sys/module/nvidia/holders``); and ``busy``, true
    when anything holds them. Empty when no NVIDIA module is loaded.

    CLI Example:

    .. code-block:: bash

        salt '*' nvidia.holders
    """
    sysfs, procfs = _roots()
    modules = _module_use(procfs)
    ret = {"processes": [], "modules": modules, "busy": False}
    if not modules:
        return ret
    extra = _sysfs_holders(sysfs)
    if extra and "nvidia" in modules:
        modules["nvidia"]["used_by"] = sorted(set(modules["nvidia"]["used_by"]) | set(extra))
    procs = {p["pid"]: p for p in _device_openers(procfs)}
    for proc in processes():
        pid = proc.get("pid")
        if pid is not None and pid not in procs:
            procs[pid] = {"pid": pid, "command": proc.get("name") or "?", "devices": ["(nvidia-smi: GPU process)"]}
    ret["processes"] = [procs[p] for p in sorted(procs)]
    # a module whose count exceeds the NVIDIA modules stacked on it is held by something outside them
    stacked = {m: len([u for u in v["used_by"] if u in NVIDIA_MODULES]) for m, v in modules.items()}
    ret["busy"] = bool(ret["processes"]) or any(v["refcount"] > stacked[m] for m, v in modules.items())
    return ret
