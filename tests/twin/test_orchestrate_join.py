"""A node whose join fails while the others succeed is left out and named;
the re-run finishes it without manual cleanup; a node added to the pillar
later joins alone, nothing else changes (the control plane only labels
it). The control plane and two workers of the seed, one of each OS."""

import pathlib

from tests.twin.orch import orchestrate, pillar_copy, run_record, seed_subset


def test_failed_join_is_left_out_then_fixed_and_a_new_node_joins_alone(twin, tmp_path):
    keep = ("cluster-master", "node-105", "node-106")
    cluster = seed_subset(keep, faults={"node-106": {"kubeadm_join_fails": 1}},  # fails the first join only
                          extra=[{"id": "node-107", "os": "ubuntu2204", "gpus": ["NVIDIA GeForce RTX 3090"]}])
    pillar = pillar_copy(tmp_path, keep)
    twin.up(cluster, pillar=pillar, fresh=True)

    # 1: node-106's join fails, the others go on
    orchestrate(twin)
    record = run_record(twin)
    summary = record["summary"]
    assert summary["node-106"]["failed"].startswith("join:"), summary
    assert not summary["node-106"]["joined"]
    for node in ("cluster-master", "node-105"):
        assert summary[node]["failed"] is None and summary[node]["joined"], (node, summary[node])
    assert "node-107" not in summary  # not in the pillar yet

    # 2: the re-run finishes node-106 without manual cleanup
    proc = orchestrate(twin)
    assert proc.returncode == 0, proc.stdout[-3000:]
    summary = run_record(twin)["summary"]
    assert summary["node-106"]["joined"] and summary["node-106"]["failed"] is None, summary
    assert summary["node-106"]["gpus_allocatable"] == 1
    for node in ("node-105",):
        assert summary[node]["changes"] == 0, (node, summary[node])

    # 3: node-107 added to the pillar: it alone changes, reboots and joins
    pillar_copy(tmp_path, keep, {"node-107": {"ip": "192.168.0.107", "role": "worker", "os": "Ubuntu-22.04",
                                              "gpus": ["NVIDIA GeForce RTX 3090"]}})
    proc = orchestrate(twin)
    assert proc.returncode == 0, proc.stdout[-3000:]
    record = run_record(twin)
    summary = record["summary"]
    assert summary["node-107"]["joined"] and summary["node-107"]["failed"] is None, summary["node-107"]
    assert summary["node-107"]["gpus_allocatable"] == 1
    assert summary["node-107"]["reboots"] <= 1
    for node in ("node-105", "node-106"):
        assert summary[node]["changes"] == 0 and summary[node]["reboots"] == 0, (node, summary[node])
    # the control plane changes only the new node's labels
    steps = record["nodes"]["cluster-master"]["steps"]
    assert steps["prepare"]["changes"] == 0 and steps["control-plane"]["changes"] == 0, steps
    assert summary["cluster-master"]["reboots"] == 0
    assert pathlib.Path(pillar).exists()
