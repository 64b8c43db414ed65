#!/usr/bin/env python3
"""
What the ``nvidia`` grain costs beside Salt's own grains, in one run.

Each iteration is one grains refresh done the way ``salt.loader.grains``
does it (the loader's modules are reloaded, ``core.*`` first, then the other
grain functions, ``grains`` passed to those that take it), with each grain
function timed and every ``subprocess.Popen`` counted. Reported per refresh:
the mean and median time of Salt's built-in grains (all of ``salt/grains``),
of ``core.*`` alone and of ours, the ratios ours/built-in and ours/core, and
the subprocesses each side started (with their program names).

Modes:

* ``fixtures`` (default): fake hosts built with ``twin/k8stwin/hw.py``, the
  twin's stand-in NVML library (``twin/k8stwin/fakenvml.c``, built with the
  host's C compiler; without one those scenarios use the fallback) and the
  emulated ``nvidia-smi`` on PATH -- one GPU, two GPUs of different
  generations, one GPU with a driver but no NVML (the ``nvidia-smi
  --query-gpu`` fallback), no driver. No real GPU is touched.
* ``host``: this machine's /sys, /proc, NVML and nvidia-smi.

Usage::

    python bench/grains_bench.py [--mode fixtures|host] [--iterations 20] [--json out.json]
        [--nvml-library PATH]   # host mode: this library (a missing path measures the nvidia-smi fallback)
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]

LAUNCHER = """#!{python}
import os, sys
os.environ.setdefault("K8STWIN_NODE_DIR", {node_dir!r})
sys.path.insert(0, {twin!r})
from k8stwin import state
from k8stwin.tools import nvidia_smi
state.run_tool(nvidia_smi.main)
"""

# name: (GPUs, loaded modules, driver version, NVML library there)
SCENARIOS = {
    "1gpu-pascal-driver": (["NVIDIA GeForce GTX 1080 Ti"], ["nvidia", "nvidia_uvm"], "580.95.05", True),
    "2gpu-mixed-driver": (["NVIDIA GeForce GTX 1080 Ti", "Tesla T4"], ["nvidia", "nvidia_uvm"], "580.95.05", True),
    "1gpu-driver-no-nvml": (["NVIDIA GeForce GTX 1080 Ti"], ["nvidia", "nvidia_uvm"], "580.95.05", False),
    "1gpu-no-driver-nouveau": (["NVIDIA GeForce GTX 1080 Ti"], ["nouveau"], None, True),
}


class PopenCounter:
    """Counts subprocess.Popen calls (Salt's cmd.run and subprocess.run both
    end there) while installed."""

    def __init__(self):
        self.calls = []
        self._orig = None

    def __enter__(self):
        self._orig = subprocess.Popen
        counter = self
        orig = self._orig

        class Counted(orig):
            def __init__(self, args, *a, **kw):
                argv = args if isinstance(args, (list, tuple)) else str(args).split()
                counter.calls.append(os.path.basename(str(argv[0])) if argv else "?")
                super().__init__(args, *a, **kw)

        subprocess.Popen = Counted
        return self

    def __exit__(self, *exc):
        subprocess.Popen = self._orig


def minion_opts(tmp, sysfs=None, procfs=None, nvml_library=None):
    import salt.config

    opts = salt.config.minion_config(None)
    opts.update(
        {
            "root_dir": str(tmp),
            "cachedir": str(pathlib.Path(tmp) / "cache"),
            "file_client": "local",
            "grains_dirs": [str(ROOT / "_grains")],
            "utils_dirs": [str(ROOT / "_utils")],
            "module_dirs": [str(ROOT / "_modules")],
            "grains_cache": False,
            "id": "bench",
        }
    )
    if sysfs:
        opts["k8snvidia.sysfs_root"] = str(sysfs)
    if procfs:
        opts["k8snvidia.procfs_root"] = str(procfs)
    if nvml_library:
        opts["nvidia.nvml_library"] = str(nvml_library)
    return opts


def refresh_timed(opts):
    """One refresh: {group: seconds}, {group: [programs]}, the grains."""
    import inspect

    import salt.loader

    funcs = salt.loader.grain_funcs(opts, context={})
    funcs.clear()
    spent = {"salt": 0.0, "core": 0.0, "ours": 0.0}
    procs = {"salt": [], "ours": []}
    grains = {}
    keys = sorted(funcs.keys(), key=lambda k: (not k.startswith("core."), k))
    for key in keys:
        if key == "_errors":
            continue
        ours = key.startswith("nvidia.")
        fun = funcs[key]
        kwargs = {}
        if not key.startswith("core."):
            params = inspect.signature(fun).parameters
            if "grains" in params:
                kwargs["grains"] = grains
            if "proxy" in params:
                kwargs["proxy"] = None
        with PopenCounter() as counter:
            t0 = time.perf_counter()
            try:
                ret = fun(**kwargs)
            except Exception:  # a broken grain is Salt's to log; keep timing
                ret = None
            dt = time.perf_counter() - t0
        group = "ours" if ours else "salt"
        spent[group] += dt
        procs[group] += counter.calls
        if key.startswith("core."):
            spent["core"] += dt
        if isinstance(ret, dict):
            grains.update(ret)
    return spent, procs, grains


def measure(opts, iterations, env_path=None, env=None):
    old_path = os.environ.get("PATH", "")
    old_env = {k: os.environ.get(k) for k in (env or {})}
    if env_path:
        os.environ["PATH"] = env_path + os.pathsep + old_path
    os.environ.update(env or {})
    try:
        runs = []
        grains = {}
        for _ in range(iterations):
            spent, procs, grains = refresh_timed(opts)
            runs.append((spent, procs))
    finally:
        os.environ["PATH"] = old_path
        for key, val in old_env.items():
            if val is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = val

    def stat(group):
        vals = [r[0][group] * 1000 for r in runs]
        return {"mean_ms": round(statistics.mean(vals), 3), "median_ms": round(statistics.median(vals), 3)}

    salt_s, core_s, ours_s = stat("salt"), stat("core"), stat("ours")
    last_procs = runs[-1][1]
    return {
        "iterations": iterations,
        "salt_builtin": salt_s,
        "salt_core": core_s,
        "ours": ours_s,
        "ratio_ours_to_salt_builtin": round(ours_s["median_ms"] / salt_s["median_ms"], 4) if salt_s["median_ms"] else None,
        "ratio_ours_to_salt_core": round(ours_s["median_ms"] / core_s["median_ms"], 4) if core_s["median_ms"] else None,
        "subprocesses_per_refresh": {
            "salt_builtin": len(last_procs["salt"]),
            "salt_builtin_programs": sorted(set(last_procs["salt"])),
            "ours": len(last_procs["ours"]),
            "ours_programs": last_procs["ours"],
            "ours_max_over_runs": max(len(r[1]["ours"]) for r in runs),
        },
        "nvidia_source": (grains.get("nvidia") or {}).get("source"),
        "nvidia_grain": grains.get("nvidia"),
        "salt_gpus_grain": {"num_gpus": grains.get("num_gpus"), "gpus": grains.get("gpus")},
    }


def fixture_runs(iterations):
    sys.path.insert(0, str(ROOT / "twin"))
    from k8stwin import fakenvml, hw

    out = {}
    with tempfile.TemporaryDirectory(prefix="k8snvidia-bench-") as tmp:
        try:
            library = fakenvml.build(pathlib.Path(tmp) / "nvml")
        except (OSError, subprocess.SubprocessError) as exc:
            print(f"no stand-in NVML library ({exc}): every scenario uses the fallback", file=sys.stderr)
            library = None
        for name, (gpus, modules, version, with_nvml) in SCENARIOS.items():
            node = pathlib.Path(tmp) / name
            node.mkdir()
            (node / "node.json").write_text(json.dumps({"id": name, "gpus": gpus, "faults": {}}))
            data = {"modules": modules}
            if version:
                data["nvidia_driver"] = {"version": version, "kernel_module_type": "proprietary"}
            (node / "state.json").write_text(json.dumps(data))
            hw.sync(node)
            bindir = node / "bin"
            bindir.mkdir()
            exe = bindir / "nvidia-smi"
            exe.write_text(LAUNCHER.format(python=sys.executable, node_dir=str(node), twin=str(ROOT / "twin")))
            exe.chmod(0o755)
            lib = library if with_nvml and library else pathlib.Path(tmp) / "no-libnvidia-ml.so.1"
            opts = minion_opts(node / "salt", node / "sys", node / "proc", nvml_library=lib)
            env = {"K8SNVIDIA_FAKE_NVML": str(node / "nvml" / "state")}
            out[name] = measure(opts, iterations, env_path=str(bindir), env=env)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("fixtures", "host"), default="fixtures")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--json", help="write the results here too")
    parser.add_argument("--nvml-library", help="host mode: the minion option nvidia.nvml_library")
    args = parser.parse_args(argv)
    import salt.version

    result = {"salt": salt.version.__version__, "python": sys.version.split()[0], "mode": args.mode}
    if args.mode == "fixtures":
        result["scenarios"] = fixture_runs(args.iterations)
    else:
        with tempfile.TemporaryDirectory(prefix="k8snvidia-bench-") as tmp:
            opts = minion_opts(tmp, nvml_library=args.nvml_library)
            result["nvml_library"] = args.nvml_library
            result["scenarios"] = {"host": measure(opts, args.iterations)}
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.json:
        pathlib.Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
