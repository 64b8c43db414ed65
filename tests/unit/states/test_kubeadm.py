"""The kubeadm states: initialized and joined predict in test mode, act
otherwise, and change nothing once done (the worker's check of the cluster
it is in: tests/unit/modules/test_kubeadm.py). Salt's dunders through
salt-factories' loader mock (``configure_loader_modules``)."""

import pytest

from tests.conftest import load_source, loader_globals

kubeadm_state = load_source("_states/kubeadm.py")
ACTED = []


@pytest.fixture
def configure_loader_modules(request):
    ACTED.clear()
    return {kubeadm_state: loader_globals(__opts__={"test": request.node.callspec.params["test_mode"]}, __salt__={
        "kubeadm.status": lambda: {"state": "absent", "detail": ""},
        "kubeadm.cluster_check": lambda cp: {"state": "absent", "detail": ""},
        "kubeadm.init_config": lambda *a, **k: "cfg",
        "kubeadm.init": lambda cfg: ACTED.append("init") or {"result": True, "comment": "ok"},
        "kubeadm.join": lambda *a: ACTED.append("join") or {"result": True, "comment": "ok"},
    })}


@pytest.mark.parametrize("test_mode", [True, False])
def test_states_predict_and_act(test_mode):
    st = kubeadm_state
    r1 = st.initialized("cluster-master", "192.168.0.113", "1.34.2", "10.244.0.0/16", "10.96.0.0/12", "sock")
    r2 = st.joined("node-110", "cluster-master", "sock", "1.34.2")
    if test_mode:
        assert r1["result"] is None and r2["result"] is None and ACTED == []
    else:
        assert r1["result"] and r2["result"] and ACTED == ["init", "join"]
    assert r1["changes"] and r2["changes"]
    st.__salt__["kubeadm.status"] = lambda: {"state": "ready", "detail": ""}
    st.__salt__["kubeadm.cluster_check"] = lambda cp: {"state": "member", "detail": ""}
    assert st.initialized("cluster-master", "a", "1.34.2", "p", "s", "c")["changes"] == {}
    assert st.joined("node-110", "cluster-master", "sock", "1.34.2")["changes"] == {}
