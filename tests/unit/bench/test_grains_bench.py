"""Smoke test of bench/grains_bench.py: one iteration on the fixtures."""

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_bench_fixtures_smoke(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench/grains_bench.py"), "--iterations", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    res = json.loads(out.read_text())
    scen = res["scenarios"]
    assert set(scen) == {"1gpu-pascal-driver", "2gpu-mixed-driver", "1gpu-driver-no-nvml", "1gpu-no-driver-nouveau"}
    # NVML answers: no subprocess, one GPU or two
    for name, count in (("1gpu-pascal-driver", 1), ("2gpu-mixed-driver", 2)):
        assert scen[name]["nvidia_source"] == "nvml"
        assert scen[name]["subprocesses_per_refresh"]["ours_max_over_runs"] == 0
        assert scen[name]["nvidia_grain"]["gpu_count"] == count
    # no NVML: one bounded nvidia-smi --query-gpu
    assert scen["1gpu-driver-no-nvml"]["nvidia_source"] == "nvidia-smi"
    assert scen["1gpu-driver-no-nvml"]["subprocesses_per_refresh"]["ours_programs"] == ["nvidia-smi"]
    assert scen["1gpu-no-driver-nouveau"]["nvidia_source"] == "pci"
    assert scen["1gpu-no-driver-nouveau"]["subprocesses_per_refresh"]["ours"] == 0
    for s in scen.values():
        assert s["ratio_ours_to_salt_builtin"] is not None and s["salt_builtin"]["median_ms"] > 0
