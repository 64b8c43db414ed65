"""bench/validate_bench.py runs (small sizes, one iteration; not timed)."""

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_validate_bench_runs(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench/validate_bench.py"), "--sizes", "3,20", "--iterations", "1",
         "--json", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    res = json.loads(out.read_text())
    assert set(res["sizes"]) == {"3", "20"}
    assert res["ratio_cluster"] > 0 and res["ratio_render"] > 0
    assert "20 nodes" in proc.stdout and "ratio 20/3" in proc.stdout
