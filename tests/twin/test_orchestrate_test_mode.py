"""test=True changes nothing; a control plane failing kubeadm's preflight
stops the real run before any worker joins, with the reason."""

import json
import os

from tests.twin.orch import orchestrate, pillar_copy, run_record, seed_subset


def test_test_mode_changes_nothing_and_a_failing_control_plane_stops_the_run(twin, tmp_path):
    keep = ("cluster-master", "node-110", "node-105")  # both OS families of the seed
    cluster = seed_subset(keep)
    for node in cluster["nodes"]:
        if node["id"] == "cluster-master":
            node["cpus"] = 1  # kubeadm's NumCPU preflight check fails
    twin.up(cluster, pillar=pillar_copy(tmp_path, keep), fresh=True)
    before = {n: twin.node_state(n) for n in ("cluster-master", "node-110", "node-105")}
    proc = orchestrate(twin, "test=True")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    predicted = json.loads(proc.stdout)
    text = json.dumps(predicted)
    assert "k8snvidia-orchestrate-predict-prepare" in text
    for node, old in before.items():
        new = twin.node_state(node)
        assert new.get("packages") == old.get("packages"), node
        assert new.get("reboots", 0) == old.get("reboots", 0) == 0, node
        assert not os.path.exists(twin.node_dir(node) / "proc/driver/nvidia/version")
    # the real run: the control plane fails preflight, no node joins
    proc = orchestrate(twin)
    assert proc.returncode != 0
    record = run_record(twin)
    failed = record["nodes"]["cluster-master"]["failed"]
    assert failed.startswith("control-plane:") and "NumCPU" in failed, failed
    assert "the number of available CPUs 1 is less than the required 2" in failed
    joined = twin.salt("*", "kubeadm.joined")
    assert not any(joined[n] for n in joined if n != "cluster-master"), joined
    assert not any("[join]" in line for line in record["log"]), record["log"]
