"""The kubeadm execution module: config documents, encrypted join data
through the mine, expiry, and no token in any return (the states:
tests/unit/states/test_kubeadm.py). Salt's dunders through salt-factories'
loader mock (``configure_loader_modules``): the control plane and the worker
are two loads of the module, each with its own."""

import time
import types

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from salt.exceptions import CommandExecutionError

from tests.conftest import load_source, loader_globals

TOKEN = "abcdef.0123456789abcdef"
HASH = "sha256:" + "ab" * 32
JOIN_LINE = f"kubeadm join 192.168.0.113:6443 --token {TOKEN} --discovery-token-ca-cert-hash {HASH} \n"


def _keys(path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.mkdir(parents=True)
    (path / "minion.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (path / "minion.pub").write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


mod = load_source("_modules/kubeadm.py")
NODES = ("cluster-master", "node-110")
node_mods = {nid: load_source("_modules/kubeadm.py", f"kubeadm_{nid.replace('-', '_')}") for nid in NODES}
kubeadm_state = load_source("_states/kubeadm.py", "kubeadm_state_cluster_check")


@pytest.fixture
def fleet(tmp_path):
    """The control plane's and the worker's dunders, sharing one fake mine
    (their keys are made by ``cluster``)."""
    mine = {}
    calls = []

    def dunders(node_id):
        def run_all(args, **kwargs):
            calls.append((node_id, args, kwargs))
            assert kwargs.get("output_loglevel") == "quiet"
            if args[1:3] == ["token", "create"]:
                return {"retcode": 0, "stdout": JOIN_LINE, "stderr": ""}
            return {"retcode": 0, "stdout": "", "stderr": ""}

        def mine_get(tgt, fun, tgt_type="glob"):
            ids = tgt.split(",")
            return {i: mine[(i, fun)] for i in ids if (i, fun) in mine}

        return {
            "__opts__": {"pki_dir": str(tmp_path / node_id)},
            "__grains__": {"id": node_id},
            "__pillar__": {
                "k8snvidia": {
                    "cluster": {"join_token_ttl": "15m"},
                    "nodes": {"cluster-master": {"role": "control-plane"}, "node-110": {"role": "worker"}},
                }
            },
            "__salt__": {"cmd.run_all": run_all, "mine.get": mine_get},
        }

    return mine, calls, {nid: dunders(nid) for nid in NODES}


@pytest.fixture
def configure_loader_modules(fleet):
    return {
        mod: loader_globals(),
        **{node_mods[nid]: loader_globals(**d) for nid, d in fleet[2].items()},
        kubeadm_state: loader_globals(__opts__={"test": False}),
    }


@pytest.fixture
def cluster(fleet, setup_loader_mock, tmp_path, monkeypatch):
    """A control plane and a worker module instance, each with its own key,
    sharing one fake mine."""
    mine, calls, _ = fleet
    for node_id, node in node_mods.items():
        _keys(tmp_path / node_id)
        monkeypatch.setattr(node.salt.utils.path, "which", lambda name: f"/usr/bin/{name}")
        monkeypatch.setattr(node, "initialized", lambda: True)
    cp, worker = node_mods["cluster-master"], node_mods["node-110"]
    mine[("node-110", cp.MINE_PUBKEY)] = worker.pubkey()
    return cp, worker, mine, calls


def test_api_version_by_kubernetes_minor():
    assert mod.api_version("1.34.2") == "kubeadm.k8s.io/v1beta4"
    assert mod.api_version("1.30.1") == "kubeadm.k8s.io/v1beta3"
    assert mod.api_version("1.18.20") == "kubeadm.k8s.io/v1beta2"


def test_init_config_documents():
    docs = list(
        yaml.safe_load_all(
            mod.init_config("cluster-master", "192.168.0.113", "1.34.2", "10.244.0.0/16", "10.96.0.0/12",
                            "unix:///run/containerd/containerd.sock", token_ttl="15m")
        )
    )
    kinds = [d["kind"] for d in docs]
    assert kinds == ["InitConfiguration", "ClusterConfiguration", "KubeletConfiguration"]
    assert docs[0]["bootstrapTokens"][0]["ttl"] == "0h15m0s"
    assert docs[1]["kubernetesVersion"] == "v1.34.2"
    assert docs[1]["controlPlaneEndpoint"] == "192.168.0.113:6443"
    assert docs[2]["cgroupDriver"] == "systemd"


def test_join_data_is_encrypted_per_worker_and_decrypts_only_there(cluster):
    cp, worker, mine, _ = cluster
    data = cp.join_data()
    assert TOKEN not in repr(data) and HASH not in repr(data)
    assert list(data["for"]) == ["node-110"] and data["missing"] == []
    mine[("cluster-master", cp.MINE_JOIN)] = data
    secret = worker._join_secret("cluster-master")
    assert secret["token"] == TOKEN and secret["ca_cert_hash"] == HASH
    assert secret["endpoint"] == "192.168.0.113:6443"
    with pytest.raises(CommandExecutionError, match="does not open with this minion's key"):
        cp._decrypt(data["for"]["node-110"], "node-110")  # the control plane's key cannot read it
    with pytest.raises(CommandExecutionError, match="does not open"):
        worker._decrypt(data["for"]["node-110"], "node-105")  # bound to its recipient


def test_join_data_with_a_dns_endpoint_fits(cluster):
    """A real control-plane endpoint is a DNS name: the join data is then
    longer than the 190 bytes RSA-OAEP takes with a 2048-bit key."""
    cp, worker, mine, _ = cluster
    endpoint = "k8s-control-plane.gpu-lab.datacenter.example-university.internal:6443"
    line = JOIN_LINE.replace("192.168.0.113:6443", endpoint)
    run_all = cp.__salt__["cmd.run_all"]
    cp.__salt__["cmd.run_all"] = lambda args, **kw: (
        {"retcode": 0, "stdout": line, "stderr": ""} if args[1:3] == ["token", "create"] else run_all(args, **kw)
    )
    data = cp.join_data()
    assert "error" not in data and list(data["for"]) == ["node-110"]
    mine[("cluster-master", cp.MINE_JOIN)] = data
    secret = worker._join_secret("cluster-master")
    assert secret["endpoint"] == endpoint and secret["token"] == TOKEN
    assert TOKEN not in repr(data) and endpoint not in repr(data)


def test_envelope_carries_a_large_payload(cluster):
    cp, worker, _, _ = cluster
    payload = {"blob": "x" * 65536, "endpoint": "a" * 253 + ":6443"}
    sealed = cp._encrypt(worker.pubkey(), payload, "node-110")
    assert sealed["alg"] == "RSA-OAEP-256+A256GCM" and "xxxx" not in repr(sealed)
    assert worker._decrypt(sealed, "node-110") == payload
    with pytest.raises(CommandExecutionError, match="not in the RSA-OAEP-256"):
        worker._decrypt("bm90IGEgZW52ZWxvcGU=", "node-110")  # the old, RSA-only format


def test_no_public_function_returns_the_token(cluster):
    """Every public function's return lands in Salt's job cache: none may hand
    out the join token (join data is only ever returned encrypted)."""
    import inspect

    cp, worker, mine, _ = cluster
    mine[("cluster-master", cp.MINE_JOIN)] = cp.join_data()
    public = {n: f for n, f in vars(worker).items()
              if inspect.isfunction(f) and not n.startswith("_") and f.__module__ == worker.__name__}
    assert "join_secret" not in public and "join" in public and "join_data" in public
    for mod in (cp, worker):
        for name in public:
            fn = getattr(mod, name)
            params = inspect.signature(fn).parameters
            args = ["cluster-master"] * len([p for p in params.values() if p.default is p.empty])
            try:
                ret = fn(*args)
            except Exception as exc:  # noqa: BLE001 - a failure returns nothing
                ret = str(exc)
            assert TOKEN not in repr(ret) and TOKEN.split(".")[1] not in repr(ret), (mod.__name__, name)


def test_join_writes_config_then_removes_it_and_returns_no_secret(cluster, tmp_path, monkeypatch):
    cp, worker, mine, calls = cluster
    mine[("cluster-master", cp.MINE_JOIN)] = cp.join_data()
    monkeypatch.setattr(worker, "JOIN_CONFIG", str(tmp_path / "kube/join.yaml"))
    seen = {}
    orig = worker.__salt__["cmd.run_all"]

    def run_all(args, **kwargs):
        seen["config"] = (tmp_path / "kube/join.yaml").read_text()
        seen["mode"] = oct((tmp_path / "kube/join.yaml").stat().st_mode & 0o777)
        return orig(args, **kwargs)

    worker.__salt__["cmd.run_all"] = run_all
    res = worker.join("cluster-master", "node-110", "unix:///run/containerd/containerd.sock", "1.34.2")
    assert res["result"] is True
    assert TOKEN in seen["config"] and seen["mode"] == "0o600"
    assert not (tmp_path / "kube/join.yaml").exists()
    assert TOKEN not in repr(res)
    assert calls[-1][1][1:] == ["join", "--config", str(tmp_path / "kube/join.yaml")]


def test_expired_or_missing_join_data_says_what_to_do(cluster, monkeypatch):
    cp, worker, mine, _ = cluster
    res = worker.join("cluster-master", "node-110", "unix:///run/containerd/containerd.sock", "1.34.2")
    assert res["result"] is False and "mine.send k8snvidia_join" in res["comment"]
    mine[("cluster-master", cp.MINE_JOIN)] = cp.join_data()
    later = time.time() + 3600
    monkeypatch.setattr(worker, "time", types.SimpleNamespace(time=lambda: later))
    res = worker.join("cluster-master", "node-110", "unix:///run/containerd/containerd.sock", "1.34.2")
    assert res["result"] is False and "expired" in res["comment"]


def test_failed_kubeadm_output_is_redacted():
    text = f"[ERROR Port-6443]: Port 6443 is in use\nerror execution phase preflight: token {TOKEN} bad"
    out = mod._errors(text)
    assert "Port 6443 is in use" in out and TOKEN not in out


def test_bad_ttl_is_named():
    with pytest.raises(Exception, match="join_token_ttl: 'soon' is invalid"):
        mod._duration("soon")


# ------------------------------------------------- joined, to which cluster
def _ca_pem():
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def test_joined_is_checked_against_this_clusters_ca(cluster, tmp_path, monkeypatch):
    import hashlib

    from cryptography import x509

    cp, worker, mine, _ = cluster
    kube = tmp_path / "worker-kube"
    (kube / "pki").mkdir(parents=True)
    monkeypatch.setattr(worker, "KUBELET_CONF", str(kube / "kubelet.conf"))
    monkeypatch.setattr(worker, "CA_CERT", str(kube / "pki/ca.crt"))
    assert worker.cluster_check("cluster-master")["state"] == "absent"
    ours, theirs = _ca_pem(), _ca_pem()
    spki = x509.load_pem_x509_certificate(ours).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    our_hash = "sha256:" + hashlib.sha256(spki).hexdigest()
    line = JOIN_LINE.replace(HASH, our_hash)
    run_all = cp.__salt__["cmd.run_all"]
    cp.__salt__["cmd.run_all"] = lambda args, **kw: (
        {"retcode": 0, "stdout": line, "stderr": ""} if args[1:3] == ["token", "create"] else run_all(args, **kw))
    (kube / "kubelet.conf").write_text("apiVersion: v1\nkind: Config\n")
    (kube / "pki/ca.crt").write_bytes(theirs)
    assert worker.cluster_check("cluster-master")["state"] == "unknown"  # no join data yet
    mine[("cluster-master", cp.MINE_JOIN)] = cp.join_data()
    check = worker.cluster_check("cluster-master")
    assert check["state"] == "other" and "joined to another cluster" in check["detail"]
    assert TOKEN not in repr(check)
    st = kubeadm_state
    st.__salt__.update({"kubeadm.cluster_check": worker.cluster_check,
                        "kubeadm.join": lambda *a: pytest.fail("must not join a node of another cluster")})
    ret = st.joined("node-110", "cluster-master", "sock", "1.34.2")
    assert ret["result"] is False and "`kubeadm reset -f` on node-110" in ret["comment"] and not ret["changes"]
    (kube / "pki/ca.crt").write_bytes(ours)
    assert worker.cluster_check("cluster-master")["state"] == "member"
    assert worker.ca_hash() == our_hash
    ret = st.joined("node-110", "cluster-master", "sock", "1.34.2")
    assert ret["result"] is True and ret["changes"] == {}


def test_cluster_check_reaches_the_mine_from_a_loader_without_it(cluster, tmp_path, monkeypatch):
    """Salt 3008's split loaders: after kubeadm.* served wire calls, a state
    run's kubeadm module saw KeyError 'mine.get' (main job, second run). The
    check then loads the mine module itself, and never fails a joined node."""
    cp, worker, mine, _ = cluster
    kube = tmp_path / "kube-split"
    (kube / "pki").mkdir(parents=True)
    monkeypatch.setattr(worker, "KUBELET_CONF", str(kube / "kubelet.conf"))
    monkeypatch.setattr(worker, "CA_CERT", str(kube / "pki/ca.crt"))
    (kube / "kubelet.conf").write_text("apiVersion: v1\nkind: Config\n")
    (kube / "pki/ca.crt").write_bytes(_ca_pem())
    mine[("cluster-master", cp.MINE_JOIN)] = cp.join_data()
    real_get = worker.__salt__["mine.get"]
    del worker.__salt__["mine.get"]
    monkeypatch.setattr(worker.salt.loader, "minion_mods", lambda opts: {"mine.get": real_get}, raising=False)
    assert worker.cluster_check("cluster-master")["state"] == "other"  # its CA is not the join data's
    monkeypatch.setattr(worker.salt.loader, "minion_mods", lambda opts: {}, raising=False)
    check = worker.cluster_check("cluster-master")
    assert check["state"] == "unknown" and "KeyError" in check["detail"]
