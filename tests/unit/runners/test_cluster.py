"""The cluster runner (_runners/cluster.py): the inventory and the
membership of each node, asked of fake minions. Salt's dunders through
salt-factories' loader mock (``configure_loader_modules``)."""

import pytest

from tests.conftest import cluster_view, load_source, loader_globals
from tests.fakes.salt_client import NODES, FakeClient

# ----------------------------------------------- inventory and membership
CA = "sha256:" + "c" * 64
cluster = load_source("_runners/cluster.py", "cluster_runner_test")


@pytest.fixture
def configure_loader_modules():
    return {cluster: loader_globals(__opts__={"output": "json"})}


def _cluster_runner(monkeypatch, answers):
    import salt.client

    mod = cluster
    mod.__context__.clear()  # a new salt-run call
    monkeypatch.setattr(mod, "_pillar", lambda mid, grains: {"k8snvidia": {"nodes": NODES}})
    monkeypatch.setattr(mod, "view", lambda pillar_dir=None: cluster_view(NODES))
    client = FakeClient(answers)
    monkeypatch.setattr(salt.client, "get_local_client", lambda mopts=None: client)
    return mod, client


def _fleet(down=(), other=()):
    def answers(nid, fun, arg):
        if nid in down:
            return None
        return {
            "test.ping": True,
            "saltutil.refresh_grains": True,
            "grains.item": {"kernelrelease": "5.4.0", "nvidia": {"gpus": [{"name": "GTX"}], "gpu_count": 1,
                                                                 "driver_version": "580.95.05"}},
            "kubeadm.ca_hash": "sha256:" + "d" * 64 if nid in other else CA,
            "kubeadm.initialized": True,
            "kube.registered": ["cluster-master", "node-105", "node-110"],
            "kube.allocatable": {"node-105": 1, "node-110": 1},
        }.get(fun)
    return answers


def test_inventory_marks_a_down_node_and_asks_it_nothing_more(monkeypatch):
    mod, client = _cluster_runner(monkeypatch, _fleet(down=("node-110",)))
    inv = mod.inventory()
    assert inv["node-110"]["flags"] == "down: no answer within 5s" and inv["node-110"]["joined"] is False
    assert inv["node-105"]["joined"] is True and inv["node-105"]["allocatable"] == 1
    assert inv["cluster-master"]["joined"] is True
    pings = [c for c in client.calls if c["fun"] == "test.ping"]
    assert len(pings) == 1 and pings[0]["timeout"] == 5
    assert all("node-110" not in c["ids"] for c in client.calls if c["fun"] != "test.ping")
    assert all(c["timeout"] <= 10 for c in client.calls)


def test_membership_is_this_clusters_ca_and_node_object(monkeypatch):
    mod, _ = _cluster_runner(monkeypatch, _fleet(other=("node-110",)))
    out = mod.membership(["cluster-master", "node-105", "node-110"], cluster_view(NODES))
    assert out == {"cluster-master": True, "node-105": True, "node-110": False}
    mod, _ = _cluster_runner(monkeypatch, lambda nid, fun, arg: (
        ["cluster-master"] if fun == "kube.registered" else _fleet()(nid, fun, arg)))
    assert mod.membership(None, cluster_view(NODES))["node-105"] is False  # trusts the CA, but no node object


# ----------------------------------------------- the view's pillar, once per process
def test_the_pillar_is_compiled_once_per_process_until_a_pillar_file_changes(tmp_path, monkeypatch):
    """An orchestration asks cluster.view once per step, each time through a
    fresh runner loader: the compiled pillar outlives the module's reload and
    is compiled again only when a pillar file changes."""
    import salt.pillar

    (tmp_path / "top.sls").write_text("base:\n  '*':\n    - cluster\n")
    (tmp_path / "cluster.sls").write_text("k8snvidia: {}\n")
    compiled = []

    class FakePillar:
        def compile_pillar(self):
            compiled.append(1)
            return {"k8snvidia": {"nodes": {"n": {"n": len(compiled)}}}}

    monkeypatch.setattr(salt.pillar, "get_pillar", lambda *a, **k: FakePillar())
    opts = {"pillar_roots": {"base": [str(tmp_path)]}}
    first = load_source("_runners/cluster.py", "cluster_runner_cache_a")
    first.__opts__ = opts
    got = first._pillar("cluster", {"id": "cluster"})
    got["k8snvidia"]["nodes"].clear()  # a caller's change does not reach the cache
    again = load_source("_runners/cluster.py", "cluster_runner_cache_b")  # the next step's loader
    again.__opts__ = opts
    assert again._pillar("cluster", {"id": "cluster"}) == {"k8snvidia": {"nodes": {"n": {"n": 1}}}}
    assert len(compiled) == 1
    (tmp_path / "cluster.sls").write_text("k8snvidia: {nodes: {}}\n")
    assert again._pillar("cluster", {"id": "cluster"})["k8snvidia"]["nodes"]["n"] == {"n": 2}
    assert again._pillar("other", {"id": "other"})["k8snvidia"]["nodes"]["n"] == {"n": 3}
