"""The kubeadm states: initialized and joined predict in test mode, act
otherwise, and change nothing once done (the worker's check of the cluster
it is in: tests/unit/modules/test_kubeadm.py)."""

import pytest

from tests.conftest import load_source


@pytest.mark.parametrize("test_mode", [True, False])
def test_states_predict_and_act(test_mode):
    st = load_source("_states/kubeadm.py")
    acted = []
    st.__opts__ = {"test": test_mode}
    st.__salt__ = {
        "kubeadm.status": lambda: {"state": "absent", "detail": ""},
        "kubeadm.cluster_check": lambda cp: {"state": "absent", "detail": ""},
        "kubeadm.init_config": lambda *a, **k: "cfg",
        "kubeadm.init": lambda cfg: acted.append("init") or {"result": True, "comment": "ok"},
        "kubeadm.join": lambda *a: acted.append("join") or {"result": True, "comment": "ok"},
    }
    r1 = st.initialized("cluster-master", "192.168.0.113", "1.34.2", "10.244.0.0/16", "10.96.0.0/12", "sock")
    r2 = st.joined("node-110", "cluster-master", "sock", "1.34.2")
    if test_mode:
        assert r1["result"] is None and r2["result"] is None and acted == []
    else:
        assert r1["result"] and r2["result"] and acted == ["init", "join"]
    assert r1["changes"] and r2["changes"]
    st.__salt__["kubeadm.status"] = lambda: {"state": "ready", "detail": ""}
    st.__salt__["kubeadm.cluster_check"] = lambda cp: {"state": "member", "detail": ""}
    assert st.initialized("cluster-master", "a", "1.34.2", "p", "s", "c")["changes"] == {}
    assert st.joined("node-110", "cluster-master", "sock", "1.34.2")["changes"] == {}
