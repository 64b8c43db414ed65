"""kubernetes.master with ``cluster:cni: calico`` (the CNI path flannel's
tests leave out): the manifest comes from its URL with its sha256 checked by
Salt's own file.managed (a wrong sum leaves no file), the same apply state as
flannel's applies it, and the nodes' firewall opens calico's ports."""

import hashlib
import json

from tests.functional import render

MANIFEST = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: calico-system\n"
REQUISITES = {"require", "watch", "require_in", "watch_in", "onchanges"}


def _pillar(url, sha):
    return {"k8snvidia": {"cluster": {"cni": "calico"}, "cni": {"calico": {"manifest_url": url, "sha256": sha}}}}


def _high(sls, pillar, minion_id):
    rc, high, err = render.salt_call("rocky9", "state.show_sls", sls, "pillar=" + json.dumps(pillar),
                                     minion_id=minion_id)
    assert rc == 0 and isinstance(high, dict), f"{high}\n{err}"
    return high


def _args(state, fun):
    return {k: v for a in state[fun] if isinstance(a, dict) for k, v in a.items()}


def test_calico_manifest_comes_from_its_url_sha256_checked_and_is_applied(tmp_path):
    src = tmp_path / "calico.yaml"
    src.write_text(MANIFEST)
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    pillar = _pillar(src.as_uri(), sha)
    high = _high("kubernetes.master", pillar, "cluster-master")
    state = high["k8snvidia-kubernetes-cni-manifest"]
    args = _args(state, "file")
    assert args["source"] == src.as_uri() and args["source_hash"] == "sha256=" + sha
    assert "template" not in args  # applied as published, not rendered
    apply = high["k8snvidia-kubernetes-cni-apply"]
    assert "manifest_applied" in apply["kube"] and _args(apply, "kube")["name"] == args["name"]
    # Salt's file.managed fetches it and checks the sum: the right one writes
    # the manifest, a wrong one fails and writes nothing
    for digest, ok in ((sha, True), ("0" * 64, False)):
        out = tmp_path / f"cni-{ok}.yaml"
        body = [a for a in state["file"] if not (isinstance(a, dict) and set(a) & (REQUISITES | {"name", "source_hash"}))]
        body += [{"name": str(out)}, {"source_hash": "sha256=" + digest}]
        keep = {"cni": {**{k: v for k, v in state.items() if k.startswith("__")}, "file": body}}
        rc, ret, err = render.salt_call("rocky9", "state.high", json.dumps(keep), "pillar=" + json.dumps(pillar))
        assert isinstance(ret, dict), f"{ret}\n{err}"
        (res,) = ret.values()
        assert res["result"] is ok, res
        assert out.exists() is ok and (not ok or out.read_text() == MANIFEST)


def test_calico_ports_are_opened_on_the_nodes(tmp_path):
    src = tmp_path / "calico.yaml"
    src.write_text(MANIFEST)
    high = _high("host", _pillar(src.as_uri(), hashlib.sha256(src.read_bytes()).hexdigest()), "node-110")
    text = json.dumps(high)
    assert all(port in text for port in ("179/tcp", "4789/udp", "5473/tcp")), "calico's ports not opened"
    assert "8472/udp" not in text  # flannel's vxlan port is not opened for calico
