"""The driver_upgrade runner: a driver replaced on a joined GPU node is
cordoned, drained and the device plugin moved off first, and given back
afterwards; a node whose driver step failed stays cordoned. The local
client (the control plane's kubectl, the nodes' predictions) is faked.
Salt's dunders through salt-factories' loader mock (``configure_loader_modules``)."""

import json

import pytest

from tests.conftest import cluster_view, load_source, loader_globals

NODES = {
    "cluster-master": {"role": "control-plane", "gpus": []},
    "node-110": {"role": "worker", "gpus": ["NVIDIA GeForce GTX 1080 Ti"]},
    "node-109": {"role": "worker", "gpus": ["NVIDIA GeForce GTX 1080 Ti"]},
    "node-105": {"role": "worker", "gpus": ["NVIDIA GeForce GTX 1080 Ti"]},
}


def prediction(drain, refuse=False):
    key = "nvidia_driver_|-k8snvidia-driver_|-580.178.04_|-installed"
    if refuse:
        return {key: {"result": False, "changes": {}, "comment": "Refusing to install NVIDIA driver 580.178.04: "
                      "the NVIDIA driver in use cannot be replaced while the GPU is held by python3 (pid 4242)"}}
    return {key: {"result": None, "changes": {"action": "upgrade", "drain": True} if drain else {}}}


class Client:
    def __init__(self, plugin_polls=1, fail=None, preds=None, phases=("Running",)):
        self.kubectl = []
        self.applied = []
        self.plugin_polls = plugin_polls
        self.fail = fail or ()
        self.preds = preds or {"node-110": prediction(True), "node-109": prediction(False)}
        self.phases = phases

    def cmd(self, tgt, fun, args=(), tgt_type="glob", kwarg=None, timeout=None):
        if fun == "state.apply":
            assert kwarg == {"test": True}
            self.applied.append(list(tgt))
            return self.preds
        assert fun == "kube.kubectl" and tgt == "cluster-master" and kwarg is None
        cmd = args[0]
        self.kubectl.append(cmd)
        if cmd[0] in self.fail:
            return {tgt: {"retcode": 1, "stdout": "", "stderr": f"error: {cmd[0]} refused"}}
        if cmd[0] == "get":
            self.plugin_polls -= 1
            out = "\n".join(self.phases) if self.plugin_polls >= 0 else ""
            return {tgt: {"retcode": 0, "stdout": out, "stderr": ""}}
        return {tgt: {"retcode": 0, "stdout": "ok", "stderr": ""}}


driver_upgrade = load_source("_runners/driver_upgrade.py", "test_driver_upgrade_runner")


@pytest.fixture
def configure_loader_modules(tmp_path):
    return {driver_upgrade: loader_globals(__opts__={"cachedir": str(tmp_path)}, __salt__={
        "cluster.view": lambda: cluster_view(NODES),
        # node-105 is not in the cluster yet (a first install: nothing to drain)
        "cluster.membership": lambda ids: {n: n != "node-105" for n in ids},
    })}


@pytest.fixture
def runner(monkeypatch):
    mod = driver_upgrade
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
        ["label", "--overwrite", "node", "node-110", "nvidia.com/gpu.deploy.device-plugin=false"],
        ["drain", "node-110", "--ignore-daemonsets", "--delete-emptydir-data", "--timeout=600s"],
    ]
    # waited until the device plugin pod had left
    gets = [c for c in client.kubectl if c[0] == "get"]
    assert len(gets) == 2 and "--field-selector=spec.nodeName=node-110" in gets[0]
    assert record(runner)["nodes"]["node-110"]["drained"] is True

    # after the driver step: the plugin back, the node still cordoned
    client = Client()
    seq = iter([["Pending"], ["Running"]])
    orig = client.cmd

    def cmd(tgt, fun, args=(), **kw):
        if fun == "kube.kubectl" and args[0][0] == "get":
            client.kubectl.append(args[0])
            return {tgt: {"retcode": 0, "stdout": "\n".join(next(seq)), "stderr": ""}}
        return orig(tgt, fun, args, **kw)

    client.cmd = cmd
    use(runner, client, monkeypatch)
    ret = runner.restore()
    assert ret == {"result": True, "restored": ["node-110"], "kept": []}
    assert client.kubectl[0] == ["label", "node", "node-110", "nvidia.com/gpu.deploy.device-plugin-"]
    assert [c[0] for c in client.kubectl] == ["label", "get", "get"]  # waited for the plugin to run
    assert record(runner)["nodes"]["node-110"]["restored"] is True

    # after the GPU check
    client = Client()
    use(runner, client, monkeypatch)
    ret = runner.uncordon()
    assert ret == {"result": True, "uncordoned": ["node-110"], "cordoned": []}
    assert client.kubectl == [["uncordon", "node-110"]]
    assert "drained" not in record(runner)["nodes"]["node-110"]


def test_a_node_whose_driver_step_would_refuse_is_not_drained(runner, monkeypatch):
    client = Client(preds={"node-110": prediction(True, refuse=True), "node-109": prediction(False)})
    use(runner, client, monkeypatch)
    assert runner.drain() == {"result": True, "drained": []}
    assert client.kubectl == []
    log = record(runner)["log"]
    assert any("node-110: not drained, its driver step would refuse" in line and "python3 (pid 4242)" in line
               for line in log), log


def fresh(runner):
    """A new orchestration run (cluster_run.begin starts a new record)."""
    import os

    os.remove(runner._run_path())


def _with_failure(runner, failed, changed=None):
    run = record(runner)
    entry = run["nodes"]["node-110"]
    entry["failed"] = failed
    if changed is not None:
        entry["steps"] = {"driver": {"changes": len(changed), "failed": [failed], "changed": changed}}
    runner._save(run)


def test_a_failed_drain_gives_the_node_back_a_failed_driver_keeps_it_cordoned(runner, monkeypatch):
    client = Client(fail=("drain",))
    use(runner, client, monkeypatch)
    ret = runner.drain()
    assert ret["result"] is False and ret["drained"] == []
    failed = record(runner)["nodes"]["node-110"]["failed"]
    assert failed.startswith("driver-drain: kubectl drain node-110") and "drain refused" in failed
    # the driver was never touched: the device plugin and the node come back
    client = Client()
    use(runner, client, monkeypatch)
    assert runner.restore() == {"result": True, "restored": ["node-110"], "kept": []}
    assert client.kubectl == [["label", "node", "node-110", "nvidia.com/gpu.deploy.device-plugin-"]]
    client = Client()
    use(runner, client, monkeypatch)
    assert runner.uncordon() == {"result": True, "uncordoned": ["node-110"], "cordoned": []}
    assert client.kubectl == [["uncordon", "node-110"]]

    # a driver step that refused (no nvidia_driver state changed): given back too
    fresh(runner)
    use(runner, Client(), monkeypatch)
    runner.drain()
    _with_failure(runner, "driver: k8snvidia-driver: Refusing to install ...", changed=["pkg:k8snvidia-driver-prerequisites"])
    client = Client()
    use(runner, client, monkeypatch)
    runner.restore()
    assert runner.uncordon()["uncordoned"] == ["node-110"]

    # a driver step that failed after the install began: stays cordoned, no device plugin
    fresh(runner)
    use(runner, Client(), monkeypatch)
    runner.drain()
    _with_failure(runner, "driver: k8snvidia-driver: DKMS does not list ...", changed=["nvidia_driver:k8snvidia-driver"])
    client = Client()
    use(runner, client, monkeypatch)
    assert runner.restore() == {"result": False, "restored": [], "kept": ["node-110"]}
    assert runner.uncordon() == {"result": False, "uncordoned": [], "cordoned": ["node-110"]}
    assert client.kubectl == []
    # and a node whose new driver failed its GPU check
    fresh(runner)
    use(runner, Client(), monkeypatch)
    runner.drain()
    client = Client()
    use(runner, client, monkeypatch)
    runner.restore()
    _with_failure(runner, "gpu-check: validation pod Failed")
    assert runner.uncordon()["cordoned"] == ["node-110"]


def test_drain_needed_reads_the_driver_plan():
    mod = driver_upgrade
    assert mod.drain_needed(prediction(True)) is True
    assert mod.drain_needed(prediction(False)) is False
    assert mod.drain_needed("Minion did not return") is False
    assert mod.refused(prediction(True, refuse=True)).startswith("Refusing to install")
    assert mod.refused(prediction(True)) is None
