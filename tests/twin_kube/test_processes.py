"""The tools as processes through the dispatcher (twin/k8stwin/dispatch.py):
records in commands.jsonl, and parallel joins serialised by the cluster lock."""

import json
import os
import subprocess
import sys

from .conftest import GTX, ROOT, init_master, join_cmd


def _env(node, twin):
    env = dict(os.environ)
    env.update({"K8STWIN_NODE_DIR": str(node.dir), "K8STWIN_ROOT": str(node.root),
                "K8STWIN_CLUSTER_STATE": str(twin.cluster_file), "PYTHONPATH": str(ROOT / "twin")})
    return env


def test_parallel_joins_as_processes(twin):
    master, _ = init_master(twin)
    workers = [twin.add(f"node-{i}", gpus=[GTX]) for i in range(4)]
    cmd = join_cmd(master)
    procs = [subprocess.Popen([sys.executable, "-m", "k8stwin.dispatch", "kubeadm", "join", *cmd],
                              env=_env(w, twin), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for w in workers]
    results = [p.communicate(timeout=120) + (p.returncode,) for p in procs]
    assert all(rc == 0 for _, _, rc in results), results
    assert set(twin.cluster()["nodes"]) == {"cluster-master"} | {w.id for w in workers}
    rec = [json.loads(ln) for ln in (workers[0].dir / "commands.jsonl").read_text().splitlines()]
    assert rec[-1]["argv"][:2] == ["kubeadm", "join"] and rec[-1]["rc"] == 0


def test_cluster_state_default_path(twin, monkeypatch):
    """Without K8STWIN_CLUSTER_STATE the nodes of one run share <run>/kube-cluster.json."""
    n = twin.add("node-1", register=False)
    env = _env(n, twin)
    del env["K8STWIN_CLUSTER_STATE"]
    res = subprocess.run([sys.executable, "-m", "k8stwin.dispatch", "kubeadm", "init"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert (twin.base / "kube-cluster.json").exists()
