"""The kube states (kubectl on the control plane): manifests applied once
per content."""

from tests.conftest import load_source


def test_manifest_applied_only_when_changed_and_retried_after_a_failure(tmp_path):
    from salt.exceptions import CommandExecutionError

    st = load_source("_states/kube.py")
    manifest = tmp_path / "cni.yaml"
    manifest.write_text("kind: DaemonSet\n")
    applied = []
    fail = {"now": True}

    def apply(text):
        if fail["now"]:
            raise CommandExecutionError("kubectl apply failed: connection refused")
        applied.append(text)
        return "daemonset.apps/kube-flannel-ds created"

    st.__salt__ = {"kube.apply": apply}
    st.__opts__ = {"test": True}
    ret = st.manifest_applied(str(manifest))
    assert ret["result"] is None and ret["changes"] and applied == []
    st.__opts__ = {"test": False}
    ret = st.manifest_applied(str(manifest))
    assert ret["result"] is False and "applies" in ret["comment"] and not (tmp_path / "cni.yaml.applied").exists()
    fail["now"] = False
    ret = st.manifest_applied(str(manifest))  # the re-run finishes it
    assert ret["result"] is True and ret["changes"] and applied == ["kind: DaemonSet\n"]
    ret = st.manifest_applied(str(manifest))
    assert ret["result"] is True and ret["changes"] == {} and len(applied) == 1
    manifest.write_text("kind: DaemonSet\nmetadata: {name: x}\n")
    assert st.manifest_applied(str(manifest))["changes"] and len(applied) == 2
