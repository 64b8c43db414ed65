"""kubeadm configuration for cgroup v1 hosts (issue 9 item 7): the kubelet's
failCgroupV1 (KubeletConfiguration, kubelet.config.k8s.io/v1beta1, since
1.31) and nodeRegistration.ignorePreflightErrors (kubeadm v1beta4), taken
from the node's derived map when the state run built it. Salt's dunders
through salt-factories' loader mock (``configure_loader_modules``)."""

import pytest
import yaml

from tests.conftest import load_source, loader_globals

mod = load_source("_modules/kubeadm.py")


@pytest.fixture
def configure_loader_modules():
    return {mod: loader_globals()}


CRI = "unix:///run/containerd/containerd.sock"


def _init(version="1.36.4", **kw):
    return list(yaml.safe_load_all(mod.init_config("cp", "10.0.0.1", version, "10.244.0.0/16", "10.96.0.0/12", CRI, **kw)))


def _join(version="1.36.4", **kw):
    return yaml.safe_load(mod.join_config("node-1", CRI, version, "10.0.0.1:6443", "abcdef.0123456789abcdef",
                                          "sha256:" + "0" * 64, **kw))


def test_all_cgroup_v2_cluster_writes_nothing_extra():
    init, _, kubelet = _init()
    assert "ignorePreflightErrors" not in init["nodeRegistration"]
    assert "failCgroupV1" not in kubelet
    assert "ignorePreflightErrors" not in _join()["nodeRegistration"]


def test_explicit_arguments():
    init, cluster, kubelet = _init(ignore_preflight_errors=["SystemVerification"], fail_cgroup_v1=False)
    assert init["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    assert init["nodeRegistration"]["ignorePreflightErrors"] == ["SystemVerification"]
    assert kubelet == {"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
                       "cgroupDriver": "systemd", "failCgroupV1": False}
    join = _join(ignore_preflight_errors=["SystemVerification"])
    assert join["nodeRegistration"] == {"name": "node-1", "criSocket": CRI, "ignorePreflightErrors": ["SystemVerification"]}


def test_taken_from_the_state_runs_map():
    mod.__context__.update({"k8snvidia.config": {"derived": {"preflight_ignore": ["SystemVerification"],
                                                        "fail_cgroup_v1": False}}})
    init, _, kubelet = _init()
    assert init["nodeRegistration"]["ignorePreflightErrors"] == ["SystemVerification"]
    assert kubelet["failCgroupV1"] is False
    assert _join()["nodeRegistration"]["ignorePreflightErrors"] == ["SystemVerification"]
    # explicit arguments win
    init, _, kubelet = _init(ignore_preflight_errors=[], fail_cgroup_v1=None)
    assert "ignorePreflightErrors" not in init["nodeRegistration"]


def test_no_fail_cgroup_v1_for_kubelets_that_lack_the_field():
    _, _, kubelet = _init(version="1.18.20", fail_cgroup_v1=False)
    assert "failCgroupV1" not in kubelet
