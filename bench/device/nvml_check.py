#!/usr/bin/env python3
"""
The ``nvidia`` grain on a real GPU host, field by field against
``nvidia-smi --query-gpu`` (and NVIDIA's own Python binding, pynvml, where
installed), through both of its driver paths: NVML (the default) and the
``nvidia-smi --query-gpu`` fallback (``nvidia.nvml_library`` pointed at a
missing file). Each grain is computed the way Salt's loader does it
(bench/grains_bench.py's refresh), with its subprocesses counted; plus the
cost of each source alone.

Usage (from the repo root, Salt importable)::

    python3 bench/device/nvml_check.py [--json out.json]
    # dry run on a fake node (twin layout, fake NVML, emulated nvidia-smi on PATH):
    python3 bench/device/nvml_check.py --sysfs-root N/sys --procfs-root N/proc --nvml-library LIB

Exit status 0 when every field agrees and the NVML grain started no
subprocess, 1 otherwise.
"""

import argparse
import importlib.util
import json
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _load(relpath, name):
    spec = importlib.util.spec_from_file_location(name, ROOT / relpath)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


bench = _load("bench/grains_bench.py", "k8snvidia_grains_bench")
gpu = _load("_utils/nvidia_gpu.py", "k8snvidia_nvidia_gpu")
nvml = _load("_utils/nvml.py", "k8snvidia_nvml")


def smi(*args):
    try:
        proc = subprocess.run(["nvidia-smi", *args], capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        return None, "", str(exc)
    return proc.returncode, proc.stdout, proc.stderr


def timed(fun, n):
    vals = []
    for _ in range(n):
        t0 = time.perf_counter()
        fun()
        vals.append((time.perf_counter() - t0) * 1000)
    return {"n": n, "median_ms": round(statistics.median(vals), 3), "min_ms": round(min(vals), 3)}


def grain_via_loader(tmp, library=None, roots=(None, None)):
    opts = bench.minion_opts(tmp, roots[0], roots[1], nvml_library=library)
    _spent, procs, grains = bench.refresh_timed(opts)
    return grains.get("nvidia"), procs["ours"]


def pynvml_view():
    try:
        import pynvml
    except ImportError as exc:
        return {"error": f"pynvml not importable: {exc}"}
    out = {}
    try:
        pynvml.nvmlInit()
        out["driver_version"] = pynvml.nvmlSystemGetDriverVersion()
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()
        out["cuda_version"] = f"{cuda // 1000}.{(cuda % 1000) // 10}"
        out["gpus"] = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            pci = pynvml.nvmlDeviceGetPciInfo(h)
            try:
                mig = {0: "Disabled", 1: "Enabled"}.get(pynvml.nvmlDeviceGetMigMode(h)[0])
            except pynvml.NVMLError:
                mig = None
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(h)
            bus = pci.busId.decode() if isinstance(pci.busId, bytes) else pci.busId
            name = pynvml.nvmlDeviceGetName(h)
            uuid = pynvml.nvmlDeviceGetUUID(h)
            out["gpus"].append({
                "name": name.decode() if isinstance(name, bytes) else name,
                "uuid": uuid.decode() if isinstance(uuid, bytes) else uuid,
                "pci_bus_id": gpu.pci_bus_id(bus),
                "pci_device_id": gpu.device_id_str(pci.pciDeviceId >> 16),
                "memory_mib": pynvml.nvmlDeviceGetMemoryInfo(h).total // (1024 * 1024),
                "compute_capability": f"{major}.{minor}",
                "mig_mode": mig,
            })
        pynvml.nvmlShutdown()
    except Exception as exc:  # report, do not stop the check
        out["error"] = f"{exc.__class__.__name__}: {exc}"
    return out


def nvml_breakdown(library=None, n=10):
    """Median ms of nvmlInit_v2+nvmlShutdown, and of each query the reader
    makes (GPU 0, NVML held open), to see where NVML's time goes."""
    import ctypes

    lib, why = nvml.load(library or nvml.LIBRARY)
    if lib is None:
        return {"error": why}

    def init_shutdown():
        lib.nvmlInit_v2()
        lib.nvmlShutdown()

    out = {"nvmlInit_v2+nvmlShutdown": timed(init_shutdown, n)}
    if lib.nvmlInit_v2() != 0:
        return out
    try:
        handle = ctypes.c_void_p()
        count = ctypes.c_uint()
        buf = ctypes.create_string_buffer(96)
        pci, mem = nvml.PciInfo(), nvml.Memory()
        a, b = ctypes.c_int(), ctypes.c_int()
        u, v = ctypes.c_uint(), ctypes.c_uint()
        lib.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(handle))
        calls = {
            "nvmlDeviceGetCount_v2": lambda: lib.nvmlDeviceGetCount_v2(ctypes.byref(count)),
            "nvmlSystemGetDriverVersion": lambda: lib.nvmlSystemGetDriverVersion(buf, 80),
            "nvmlSystemGetCudaDriverVersion": lambda: lib.nvmlSystemGetCudaDriverVersion(ctypes.byref(a)),
            "nvmlDeviceGetHandleByIndex_v2": lambda: lib.nvmlDeviceGetHandleByIndex_v2(0, ctypes.byref(handle)),
            "nvmlDeviceGetPciInfo_v3": lambda: lib.nvmlDeviceGetPciInfo_v3(handle, ctypes.byref(pci)),
            "nvmlDeviceGetName": lambda: lib.nvmlDeviceGetName(handle, buf, 96),
            "nvmlDeviceGetUUID": lambda: lib.nvmlDeviceGetUUID(handle, buf, 96),
            "nvmlDeviceGetMemoryInfo": lambda: lib.nvmlDeviceGetMemoryInfo(handle, ctypes.byref(mem)),
            "nvmlDeviceGetCudaComputeCapability": lambda: lib.nvmlDeviceGetCudaComputeCapability(
                handle, ctypes.byref(a), ctypes.byref(b)),
            "nvmlDeviceGetMigMode": lambda: lib.nvmlDeviceGetMigMode(handle, ctypes.byref(u), ctypes.byref(v)),
        }
        for name, fun in calls.items():
            out[name] = timed(fun, n)
    finally:
        lib.nvmlShutdown()
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json")
    parser.add_argument("--sysfs-root")
    parser.add_argument("--procfs-root")
    parser.add_argument("--nvml-library")
    args = parser.parse_args(argv)
    roots = (args.sysfs_root, args.procfs_root)
    res = {"query_fields": list(gpu.SMI_FIELDS)}
    rc, out, err = smi(*gpu.smi_query_args())
    res["query_gpu"] = {"rc": rc, "stdout": out, "stderr": err}
    rows = [dict(zip(gpu.SMI_FIELDS, (v.strip() for v in line.split(",")))) for line in out.strip().splitlines()]
    rc, summary, _ = smi()
    m = re.search(r"CUDA Version:\s*(\S+)", summary)
    res["smi_header_cuda_version"] = m.group(1) if m else None
    with tempfile.TemporaryDirectory(prefix="k8snvidia-nvml-check-") as tmp:
        g_nvml, procs_nvml = grain_via_loader(pathlib.Path(tmp) / "a", args.nvml_library, roots)
        g_smi, procs_smi = grain_via_loader(pathlib.Path(tmp) / "b", str(pathlib.Path(tmp) / "missing.so"), roots)
    res["grain_nvml"] = g_nvml
    res["grain_nvml_subprocesses"] = procs_nvml
    res["grain_fallback"] = g_smi
    res["grain_fallback_subprocesses"] = procs_smi
    data, error = nvml.read(args.nvml_library)
    res["nvml_read"] = {"data": data, "error": error}
    res["pynvml"] = pynvml_view()
    # field by field: the grain (both paths) against --query-gpu
    checks = []

    def check(what, grain_nvml, grain_fallback, smi_value):
        checks.append({"field": what, "grain_nvml": grain_nvml, "grain_fallback": grain_fallback, "nvidia_smi": smi_value,
                       "equal": grain_nvml == grain_fallback == smi_value})

    check("count", g_nvml["gpu_count"], g_smi["gpu_count"], len(rows))
    for i, row in enumerate(rows):
        a = g_nvml["gpus"][i] if i < len(g_nvml["gpus"]) else {}
        b = g_smi["gpus"][i] if i < len(g_smi["gpus"]) else {}
        check(f"{i}.name", a.get("name"), b.get("name"), row["name"])
        check(f"{i}.pci.bus_id", a.get("pci_bus_id"), b.get("pci_bus_id"), gpu.pci_bus_id(row["pci.bus_id"]))
        check(f"{i}.pci.device_id", a.get("pci_device_id"), b.get("pci_device_id"), gpu.device_id_str(row["pci.device_id"]))
        check(f"{i}.uuid", a.get("uuid"), b.get("uuid"), row["uuid"])
        check(f"{i}.memory.total", a.get("memory_mib"), b.get("memory_mib"), int(row["memory.total"]))
        check(f"{i}.compute_cap", a.get("compute_capability"), b.get("compute_capability"), row["compute_cap"])
        check(f"{i}.mig.mode.current", a.get("mig_mode"), b.get("mig_mode"), gpu._csv_value(row["mig.mode.current"]))
        check(f"{i}.driver_version", g_nvml["driver_version"], g_smi["driver_version"], row["driver_version"])
    check("cuda_version (smi header)", g_nvml["cuda_version"], g_smi["cuda_version"], res["smi_header_cuda_version"])
    res["checks"] = checks
    pyn = res["pynvml"]
    if pyn.get("gpus") is not None:
        mine = [{k: g[k] for k in ("name", "uuid", "pci_bus_id", "pci_device_id", "memory_mib", "compute_capability",
                                   "mig_mode")} for g in g_nvml["gpus"]]
        res["pynvml_equal"] = (mine == pyn["gpus"] and pyn["driver_version"] == g_nvml["driver_version"]
                               and pyn["cuda_version"] == g_nvml["cuda_version"])
    res["timing"] = {
        "nvml.read": timed(lambda: nvml.read(args.nvml_library), 20),
        "nvidia-smi --query-gpu": timed(lambda: smi(*gpu.smi_query_args()), 5),
        "nvidia-smi -q -x": timed(lambda: smi("-q", "-x"), 3),
        "libcuda cuDriverGetVersion": timed(nvml.cuda_driver_version, 20),
    }
    res["nvml_breakdown"] = nvml_breakdown(args.nvml_library)
    ok = (all(c["equal"] for c in checks) and procs_nvml == [] and g_nvml.get("source") == "nvml"
          and g_smi.get("source") == "nvidia-smi" and "error" not in g_nvml and "error" not in g_smi)
    res["ok"] = ok
    text = json.dumps(res, indent=2, default=str)
    if args.json:
        pathlib.Path(args.json).write_text(text + "\n")
    for c in checks:
        print(f"{'ok ' if c['equal'] else 'BAD'} {c['field']:<28} nvml={c['grain_nvml']!r} "
              f"fallback={c['grain_fallback']!r} smi={c['nvidia_smi']!r}")
    print("subprocesses: nvml path", procs_nvml, "fallback path", procs_smi)
    print("pynvml equal:", res.get("pynvml_equal"), pyn.get("error", ""))
    print("timing:", json.dumps(res["timing"]))
    print("nvml breakdown (median ms):", json.dumps({k: v.get("median_ms") if isinstance(v, dict) else v
                                                     for k, v in res["nvml_breakdown"].items()}))
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
