"""The k8snvidia_driver runner: a driver replaced on a joined GPU node is
cordoned, drained and the device plugin moved off first, and given back
afterwards; a node whose driver step failed stays cordoned. The local
client (the control plane's kubectl, the nodes' predictions) is faked."""

import json

import pytest

from tests.conftest import load_source

NODES = {
    "cluster-master": {"role": "control-plane", "gpus": []},
    "node-110": {"role": "worker", "gpus": ["NVIDIA GeForce GTX 1080 Ti"]},
    "node-109": {"role": "worker", "gpus": ["NVIDIA GeForce GTX 1080 Ti"]},
    "node-105": {"role": "worker", "gpus": ["NVIDIA GeForce GTX 1080 Ti"]},
}


def prediction(drain):
    return {"nvidia_driver_|-k8snvidia-driver_|-580.178.04_|-installed": {
        "result": None, "changes": {"action": "upgrade", "drain": True} if drain else {}}}


class Client:
    def __init__(self, plugin_polls=1, fail=None):
        self.kubectl = []
        self.applied = []
        self.plugin_polls = plugin_polls
        self.fail = fail or ()

    def cmd(self, tgt, fun, args=(), tgt_type="glob", kwarg=None, timeout=None):
        if fun == "state.apply":
            assert kwarg == {"test": True}
            self.applied.append(list(tgt))
            return {"node-110": prediction(True), "node-109": prediction(False)}
        assert fun == "cmd.run_all" and tgt == "cluster-master" and kwarg["python_shell"] is False
        cmd = args[0]
        assert cmd[:2] == ["kubectl", "--kubeconfig=/etc/kubernetes/admin.conf"]
        self.kubectl.append(cmd[2:])
        if cmd[2] in self.fail:
            return {tgt: {"retcode": 1, "stdout": "", "stderr": f"error: {cmd[2]} refused"}}
        if cmd[2] == "get":
            self.plugin_polls -= 1
            out = "pod/nvidia-device-plugin-daemonset-x7k2p" if self.plugin_polls >= 0 else ""
            return {tgt: {"retcode": 0, "stdout": out, "stderr": ""}}
        return {tgt: {"retcode": 0, "stdout": "ok", "stderr": ""}}


@pytest.fixture
def runner(tmp_path, monkeypatch):
    mod = load_source("_runners/k8snvidia_driver.py", "test_k8snvidia_driver_runner")
    mod.__opts__ = {"cachedir": str(tmp_path)}
    mod.__salt__ = {
        "cluster.nodes": lambda: NODES,
        # node-105 is not in the cluster yet (a first install: nothing to drain)
        "cluster.membership": lambda ids: {n: n != "node-105" for n in ids},
    }
    monkeypatch.setattr(mod.time, "sleep", lambda _s: None)
    return mod


def use(runner, client, monkeypatch):
    monkeypatch.setattr(runner.salt.client, "get_local_client", lambda mopts=None: client)


def record(runner):
    with open(runner._run_path(), encoding="utf-8") as fh:
        return json.load(fh)


def test_drain_only_joined_nodes_whose_driver_is_replaced(runner, monkeypatch):
    client = Client(plugin_polls=1)
    use(runner, client, monkeypatch)
    ret = runner.drain()
    assert ret == {"result": True, "drained": ["node-110"]}
    assert client.applied == [["node-109", "node-110"]]  # node-105 is not joined: not even asked
    assert client.kubectl[:3] == [
        ["cordon", "node-110"],
        ["label", "--overwrite", "node", "node-110", "nvidia.com/gpu.present=false"],
        ["drain", "node-110", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=600s"],
    ]
    # waited until the device plugin pod had left
    gets = [c for c in client.kubectl if c[0] == "get"]
    assert len(gets) == 2 and "--field-selector=spec.nodeName=node-110" in gets[0]
    assert record(runner)["nodes"]["node-110"]["drained"] is True

    client = Client()
    use(runner, client, monkeypatch)
    ret = runner.uncordon()
    assert ret == {"result": True, "uncordoned": ["node-110"], "cordoned": []}
    assert client.kubectl == [["label", "--overwrite", "node", "node-110", "nvidia.com/gpu.present=true"],
                              ["uncordon", "node-110"]]
    assert "drained" not in record(runner)["nodes"]["node-110"]


def test_a_failed_drain_fails_the_node_and_a_failed_driver_stays_cordoned(runner, monkeypatch):
    client = Client(fail=("drain",))
    use(runner, client, monkeypatch)
    ret = runner.drain()
    assert ret["result"] is False and ret["drained"] == []
    failed = record(runner)["nodes"]["node-110"]["failed"]
    assert failed.startswith("driver: kubectl drain node-110") and "drain refused" in failed
    client = Client()
    use(runner, client, monkeypatch)
    ret = runner.uncordon()
    assert ret == {"result": False, "uncordoned": [], "cordoned": ["node-110"]}
    assert client.kubectl == []


def test_drain_needed_reads_the_driver_plan():
    mod = load_source("_runners/k8snvidia_driver.py", "test_k8snvidia_driver_runner2")
    assert mod.drain_needed(prediction(True)) is True
    assert mod.drain_needed(prediction(False)) is False
    assert mod.drain_needed("Minion did not return") is False
