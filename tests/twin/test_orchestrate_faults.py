"""Faults of issue 14 in one run of the seed's cluster: a minion down at
the start, a node back late from its reboot, a node of another cluster."""

from tests.twin.orch import SEED, orchestrate, pillar_copy, run_record, seed_subset


def test_faults_name_the_nodes_the_others_finish_and_a_rerun_converges(twin, tmp_path):
    """A minion down at the start, a node that comes back from its reboot
    only after the others went on, a node joined to another cluster: each is
    named with its reason, the others finish, the exit code is non-zero; once
    the faults are cleared a re-run finishes them and changes nothing on the
    healthy nodes."""
    cluster = seed_subset([n["id"] for n in SEED["nodes"]],
                          faults={"node-109": {"minion_down_at_start": True},
                                  "node-110": {"returns_late_from_reboot": 90},
                                  "node-106": {"joined_to_another_cluster": True}})
    pillar = pillar_copy(tmp_path, reboot_grace=15, node_timeout=30)
    twin.up(cluster, pillar=pillar, fresh=True)
    proc = orchestrate(twin)
    assert proc.returncode != 0
    record = run_record(twin)
    summary = record["summary"]
    failed = {n: v["failed"] for n, v in summary.items() if v["failed"]}
    assert sorted(failed) == ["node-106", "node-109", "node-110"], failed
    assert failed["node-109"].startswith("begin: not reachable at the start"), failed
    assert failed["node-110"].startswith("reboot: not back 15s after the other rebooted nodes"), failed
    assert failed["node-106"].startswith("join:") and "another cluster" in failed["node-106"], failed
    assert "`kubeadm reset -f` on node-106" in failed["node-106"]
    for node in ("cluster-master", "node-105"):
        assert summary[node]["joined"] and not summary[node]["failed"], (node, summary[node])
    assert not summary["node-106"]["joined"]  # trusts another CA: not a member here
    # the finish step names them (the orchestration's own output)
    for node in failed:
        assert f"{node} failed at" in proc.stdout
    # clear the faults: start the minion, reset the moved node, wait for the late one
    twin.twin.start_minion("node-109")
    twin.twin.wait_ready(timeout=120, nodes=["node-109"])
    assert twin.node_exec("node-106", "kubeadm reset -f").returncode == 0
    twin.wait_rebooted("node-110", 0, timeout=300)
    proc = orchestrate(twin)
    assert proc.returncode == 0, proc.stdout[-3000:]
    record = run_record(twin)
    summary = record["summary"]
    assert all(v["joined"] and not v["failed"] for v in summary.values()), summary
    assert summary["node-105"]["changes"] == 0, summary
    # the control plane changes only the labels of the nodes that joined now
    steps = record["nodes"]["cluster-master"]["steps"]
    assert steps["prepare"]["changes"] == 0 and steps["control-plane"]["changes"] == 0, steps
