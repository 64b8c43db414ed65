"""The kube states (kubectl on the control plane): manifests applied once
per content. Salt's dunders through salt-factories' loader mock
(``configure_loader_modules``)."""

import pytest

from tests.conftest import load_source, loader_globals

kube_state = load_source("_states/kube.py")


@pytest.fixture
def configure_loader_modules():
    return {kube_state: loader_globals(__salt__={}, __opts__={"test": False})}


def test_manifest_applied_only_when_changed_and_retried_after_a_failure(tmp_path):
    from salt.exceptions import CommandExecutionError

    manifest = tmp_path / "cni.yaml"
    manifest.write_text("kind: DaemonSet\n")
    applied = []
    fail = {"now": True}

    def apply(text):
        if fail["now"]:
            raise CommandExecutionError("kubectl apply failed: connection refused")
        applied.append(text)
        return "daemonset.apps/kube-flannel-ds created"

    kube_state.__salt__["kube.apply"] = apply
    kube_state.__opts__["test"] = True
    ret = kube_state.manifest_applied(str(manifest))
    assert ret["result"] is None and ret["changes"] and applied == []
    kube_state.__opts__["test"] = False
    ret = kube_state.manifest_applied(str(manifest))
    assert ret["result"] is False and "applies" in ret["comment"] and not (tmp_path / "cni.yaml.applied").exists()
    fail["now"] = False
    ret = kube_state.manifest_applied(str(manifest))  # the re-run finishes it
    assert ret["result"] is True and ret["changes"] and applied == ["kind: DaemonSet\n"]
    ret = kube_state.manifest_applied(str(manifest))
    assert ret["result"] is True and ret["changes"] == {} and len(applied) == 1
    manifest.write_text("kind: DaemonSet\nmetadata: {name: x}\n")
    assert kube_state.manifest_applied(str(manifest))["changes"] and len(applied) == 2


def test_the_loader_mock_takes_the_dunders_out_after_a_test():
    """(the previous test's fake kubectl is gone: each test starts clean)"""
    assert kube_state.__salt__ == {} and kube_state.__opts__ == {"test": False}
