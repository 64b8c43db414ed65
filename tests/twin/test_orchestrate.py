"""`salt-run state.orchestrate cluster` on the twin: the main job on the
seed's cluster (bin/orchestrate's own code, twin/k8stwin/mainjob.py): every
GPU node joined with its GPU allocatable, at most one reboot per node, no
change on the second run, no join secret anywhere but the twin's etcd
stand-in. The other scenarios are in test_orchestrate_*.py (one per file,
so two run at a time)."""

import json

from tests.twin.orch import files_holding, secrets


def test_main_job_completes_the_seed_cluster(twin, capsys):
    from k8stwin import mainjob

    twin.down()  # one twin at a time on this machine: the main job brings its own
    run = twin.run_dir
    rc = mainjob.main(["--run", str(run), "--keep"])
    out = capsys.readouterr().out
    try:
        assert rc == 0, out[-4000:]
        report = json.loads((run / "report.json").read_text())
        nodes = report["nodes"]
        assert sorted(nodes) == ["cluster-master", "node-105", "node-106", "node-109", "node-110"]
        workers = [n for n in nodes if n != "cluster-master"]
        assert all(nodes[n]["joined"] for n in nodes), nodes
        assert sum(nodes[n]["gpus_allocatable"] for n in workers) == 4, nodes
        assert all(nodes[n]["reboots"] <= 1 for n in nodes), nodes
        assert all(nodes[n]["changes_second_run"] == 0 for n in nodes), nodes
        assert all(nodes[n]["failed"] is None for n in nodes), nodes
        assert len(report["orchestrate_seconds"]) == 2
        assert "validation pod Succeeded" in out and "== inventory" in out
        assert "NVIDIA GeForce GTX 1080 Ti" in out
        # join tokens: only in the twin's etcd stand-in, never in output, logs or caches
        tokens = secrets(run)
        assert tokens
        assert not [s for s in tokens if s in out]
        assert files_holding(run, tokens) == ["cluster/kube-cluster.json"]
        # the inventory as data
        inv = json.loads(twin.twin.command(["salt-run", "cluster.inventory", "--out=json"]).stdout)
        assert inv["node-110"]["models"] == "NVIDIA GeForce GTX 1080 Ti"
        assert inv["node-110"]["driver"] == "580.178.04" and inv["node-110"]["allocatable"] == 1
        assert inv["cluster-master"]["role"] == "control-plane" and inv["cluster-master"]["joined"] is True
        assert all(not row["flags"] for row in inv.values()), inv
    finally:
        twin.twin.down(quiet=True)
