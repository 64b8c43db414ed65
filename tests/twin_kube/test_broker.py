"""The broker of the shared cluster state (twin/k8stwin/broker.py): with
$K8STWIN_CLUSTER_BROKER set, as in the twin's nodes, kubeadm and kubectl
change the cluster only through it, and it refuses what a node may not do.
(That nodes see the state read-only: tests/twin/test_disk_full.py.)"""

import json
import os

import pytest
from k8stwin import broker, kube

from .conftest import init_master, join_cmd


@pytest.fixture
def brokered(twin, tmp_path, monkeypatch):
    """The in-process twin with a broker in front of its cluster file; the
    speaking node is the one whose K8STWIN_NODE_DIR the tool runs with."""
    sock = str(tmp_path / "broker.sock")
    log = tmp_path / "broker.jsonl"
    srv = broker.Broker(sock, str(twin.cluster_file), lambda pid: os.path.basename(os.environ["K8STWIN_NODE_DIR"]),
                        lambda node: str(twin.nodes[node].dir), str(log)).start()
    twin.add("cluster-master", ip="192.168.0.113")  # registered directly, as the twin core does at up
    monkeypatch.setenv(broker.ENV, sock)
    try:
        yield twin, log
    finally:
        srv.stop()


def _log(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_kubeadm_and_kubectl_change_the_cluster_through_the_broker(brokered, monkeypatch):
    twin, log = brokered
    master, _ = init_master(twin)
    worker = twin.add("node-1", register=False)
    rc, _, err = worker.run("kubeadm", "join", *join_cmd(master))
    assert rc == 0, err
    assert set(twin.cluster()["nodes"]) == {"cluster-master", "node-1"}
    assert twin.cluster()["node_dirs"]["node-1"]["dir"] == str(worker.dir)
    rc, _, err = master.run("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "label", "node", "node-1", "a=b")
    assert rc == 0, err
    assert twin.cluster()["nodes"]["node-1"]["labels"]["a"] == "b"
    entries = _log(log)
    assert {e["node"] for e in entries} == {"cluster-master", "node-1"}
    assert any(e["node"] == "node-1" and "nodes" in e["changed"] for e in entries), entries
    assert not any("refused" in e for e in entries), entries
    # the log names keys, never values (the state holds the join tokens)
    assert all(set(e) <= {"t", "node", "changed"} for e in entries)


def test_the_broker_refuses_what_a_node_may_not_do(brokered, monkeypatch):
    twin, log = brokered
    state = twin.cluster()
    assert broker.check(state, [], "n") == "the cluster state must be a JSON object, not list"
    assert broker.check(state, {k: v for k, v in state.items() if k != "nodes"}, "n") == "the change drops the key 'nodes'"
    assert "must be a dict" in broker.check(state, dict(state, objects=[]), "n")
    other = dict(state, node_dirs={"cluster-master": {"dir": "/elsewhere", "root": None}})
    assert broker.check(state, other, "node-1") == "node node-1 may not change the registration of node cluster-master"
    assert "may only register itself at its own directory /n1" in broker.check(
        state, dict(state, node_dirs=dict(state["node_dirs"], **{"node-1": {"dir": "/x"}})), "node-1", "/n1")
    assert broker.check(state, dict(state, warnings=["w"]), "node-1", "/n1") is None
    # through the socket: refused, nothing written, the tool exits non-zero
    monkeypatch.setenv("K8STWIN_NODE_DIR", str(twin.nodes["cluster-master"].dir))
    before = twin.cluster_file.read_text()
    with pytest.raises(SystemExit) as exc, kube.locked() as cluster:
        cluster["objects"] = "garbage"
    assert exc.value.code == 70 and twin.cluster_file.read_text() == before
    # an exception in the block: nothing is committed
    with pytest.raises(RuntimeError), kube.locked() as cluster:
        cluster["warnings"].append("half")
        raise RuntimeError("tool failed")
    assert twin.cluster_file.read_text() == before
    assert [e.get("refused") for e in _log(log)] == ["'objects' must be a dict, not str"]
