"""One orchestration at a time (a second one is refused, the first's record
kept), and Ctrl-C stops the run between steps with a summary; a re-run
finishes it. The control plane and one worker."""

import json
import os
import signal
import subprocess
import time

from tests.twin.orch import orchestrate, pillar_copy, run_record, seed_subset


def test_one_run_at_a_time_and_ctrl_c_stops_between_steps(twin, tmp_path):
    keep = ("cluster-master", "node-105")
    twin.up(seed_subset(keep), pillar=pillar_copy(tmp_path, keep), fresh=True)
    cmd = twin.twin.salt_cmd("salt-run", "state.orchestrate", "cluster", "--out=json", "--log-level=quiet")
    first = subprocess.Popen(cmd, cwd=twin.twin.run, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=""))
    record_path = twin.run_dir / "master/var/cache/salt/master/k8snvidia/run.json"
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                log = json.loads(record_path.read_text()).get("log") or []
            except (OSError, ValueError):
                log = []
            if any("[prepare] applying" in line for line in log):
                break
            time.sleep(1)
        else:
            raise AssertionError("the first orchestration never reached its prepare step")
        run_id = json.loads(record_path.read_text())["id"]
        # a second orchestration meanwhile: refused at once, the first's record kept
        second = orchestrate(twin)
        assert second.returncode != 0
        assert "another orchestration is running (pid " in second.stdout, second.stdout[-2000:]
        assert json.loads(record_path.read_text())["id"] == run_id
        first.send_signal(signal.SIGINT)  # Ctrl-C
        out, _ = first.communicate(timeout=900)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode != 0
    record = json.loads(record_path.read_text())
    assert record["stopped"].startswith("SIGINT received"), record.get("stopped")
    assert record["not_done"] and "gpu-check" in record["not_done"], record["not_done"]
    assert record["summary"] and any("not done:" in line for line in record["log"])
    runs = sorted(p.name for p in (record_path.parent / "runs").iterdir())
    assert f"{run_id}.json" in runs
    assert not (record_path.parent / "orchestrate.lock").exists()
    # the re-run finishes it
    proc = orchestrate(twin)
    assert proc.returncode == 0, proc.stdout[-3000:]
    summary = run_record(twin)["summary"]
    assert all(v["joined"] and not v["failed"] for v in summary.values()), summary
