"""kubeadm join / token: discovery failures with the real messages, token TTL
and expiry, idempotence (second join), the join fault, node name clashes."""

from .conftest import GTX, init_master, join_cmd

JOIN_CONFIG = """apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: {endpoint}
    token: {token}
    caCertHashes: [{hash}]
nodeRegistration:
  name: {name}
  criSocket: unix:///run/containerd/containerd.sock
"""


def _split(cmd):
    endpoint = cmd[0]
    token = cmd[cmd.index("--token") + 1]
    ca = cmd[cmd.index("--discovery-token-ca-cert-hash") + 1]
    return endpoint, token, ca


def test_print_join_command_exact_line(twin):
    master, _ = init_master(twin)
    rc, out, err = master.run("kubeadm", "token", "create", "--ttl", "0h15m0s", "--print-join-command")
    assert rc == 0, err
    line = out
    assert line.endswith(" \n") and line.count("\n") == 1
    parts = line.split()
    assert parts[:3] == ["kubeadm", "join", "192.168.0.113:6443"] and parts[3] == "--token"
    assert parts[5] == "--discovery-token-ca-cert-hash" and parts[6] == twin.cluster()["control_plane"]["ca_hash"]


def test_join_with_flags_and_with_config(twin):
    master, _ = init_master(twin)
    w1 = twin.add("node-110", gpus=[GTX])
    rc, out, err = w1.run("kubeadm", "join", *join_cmd(master))
    assert rc == 0, err
    assert "This node has joined the cluster:" in out
    assert w1.read("/etc/kubernetes/kubelet.conf") and w1.read("/etc/kubernetes/pki/ca.crt")
    assert w1.read("/etc/kubernetes/bootstrap-kubelet.conf") is None
    w2 = twin.add("node-109", gpus=[GTX])
    endpoint, token, ca = _split(join_cmd(master))
    w2.write("/root/join.yaml", JOIN_CONFIG.format(endpoint=endpoint, token=token, hash=ca, name="node-109"))
    rc, out, err = w2.run("kubeadm", "join", "--config", "/root/join.yaml")
    assert rc == 0, err
    nodes = twin.cluster()["nodes"]
    assert set(nodes) == {"cluster-master", "node-110", "node-109"}
    assert nodes["node-110"]["role"] == "worker" and nodes["node-110"]["node_id"] == "node-110"


def test_second_join_fails_preflight(twin):
    master, _ = init_master(twin)
    w = twin.add("node-110", gpus=[GTX])
    cmd = join_cmd(master)
    assert w.run("kubeadm", "join", *cmd)[0] == 0
    rc, _, err = w.run("kubeadm", "join", *cmd)
    assert rc == 1
    assert "\t[ERROR FileAvailable--etc-kubernetes-kubelet.conf]: /etc/kubernetes/kubelet.conf already exists" in err
    assert "[ERROR Port-10250]: Port 10250 is in use" in err
    assert "[ERROR FileAvailable--etc-kubernetes-pki-ca.crt]: /etc/kubernetes/pki/ca.crt already exists" in err
    order = [ln.split("]")[0].split()[-1] for ln in err.splitlines() if ln.startswith("\t[ERROR")]
    assert order == ["FileAvailable--etc-kubernetes-kubelet.conf", "Port-10250",
                     "FileAvailable--etc-kubernetes-pki-ca.crt"]


def test_unknown_and_expired_token(twin):
    master, _ = init_master(twin)
    w = twin.add("node-110", gpus=[GTX])
    endpoint, token, ca = _split(join_cmd(master))
    rc, _, err = w.run("kubeadm", "join", endpoint, "--token", "abcdef.0123456789abcdef",
                       "--discovery-token-ca-cert-hash", ca)
    assert rc == 1
    assert ('error execution phase preflight: couldn\'t validate the identity of the API Server: could not find a JWS '
            'signature in the cluster-info ConfigMap for token ID "abcdef"') in err
    # expire the token: the cluster's clock is wall time, so move the expiry into the past
    import json

    data = twin.cluster()
    for t in data["tokens"]:
        if f"{t['id']}.{t['secret']}" == token:
            t["expires"] = t["created"] - 1
    twin.cluster_file.write_text(json.dumps(data))
    rc, _, err = w.run("kubeadm", "join", endpoint, "--token", token, "--discovery-token-ca-cert-hash", ca)
    assert rc == 1 and f'for token ID "{token.split(".")[0]}"' in err
    # token list no longer shows it
    rc, out, _ = master.run("kubeadm", "token", "list")
    assert token not in out


def test_token_ttl_and_list(twin):
    master, _ = init_master(twin)
    rc, out, _ = master.run("kubeadm", "token", "create", "--ttl", "0")
    tok = out.strip()
    rc, out, _ = master.run("kubeadm", "token", "list")
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["TOKEN", "TTL", "EXPIRES", "USAGES"]
    row = next(ln for ln in lines if ln.startswith(tok))
    assert "<forever>" in row and "<never>" in row
    rc, out, _ = master.run("kubeadm", "token", "create", "--ttl", "2h")
    row = next(ln for ln in master.run("kubeadm", "token", "list")[1].splitlines() if ln.startswith(out.strip()))
    assert " 1h " in row or " 2h " in row
    rc, out, err = master.run("kubeadm", "token", "delete", tok.split(".")[0])
    assert rc == 0 and out == f'bootstrap token "{tok.split(".")[0]}" deleted\n'


def test_token_create_needs_admin_conf(twin):
    init_master(twin)
    w = twin.add("node-110")
    rc, _, err = w.run("kubeadm", "token", "create", "--print-join-command")
    assert rc == 1 and "failed to load admin kubeconfig: open /etc/kubernetes/admin.conf: no such file or directory" in err


def test_wrong_ca_hash(twin):
    master, _ = init_master(twin)
    w = twin.add("node-110")
    endpoint, token, ca = _split(join_cmd(master))
    wrong = "sha256:" + "0" * 64
    rc, _, err = w.run("kubeadm", "join", endpoint, "--token", token, "--discovery-token-ca-cert-hash", wrong)
    assert rc == 1
    assert (f'cluster CA found in cluster-info ConfigMap is invalid: none of the public keys "{ca}" are pinned') in err
    assert "kubelet.conf" not in str(list(w.root.rglob("*")))


def test_no_hash_rc3_and_unsafe_skip(twin):
    master, _ = init_master(twin)
    w = twin.add("node-110")
    endpoint, token, _ = _split(join_cmd(master))
    rc, _, err = w.run("kubeadm", "join", endpoint, "--token", token)
    assert rc == 3
    assert ('discovery.bootstrapToken: Invalid value: "": using token-based discovery without caCertHashes can be '
            "unsafe. Set unsafeSkipCAVerification as true in your kubeadm config file or pass "
            "--discovery-token-unsafe-skip-ca-verification flag to continue") in err
    rc, _, err = w.run("kubeadm", "join", endpoint, "--token", token, "--discovery-token-unsafe-skip-ca-verification")
    assert rc == 0, err


def test_join_before_init_and_wrong_endpoint(twin):
    w = twin.add("node-110")
    rc, _, err = w.run("kubeadm", "join", "192.168.0.113:6443", "--token", "abcdef.0123456789abcdef",
                       "--discovery-token-ca-cert-hash", "sha256:" + "a" * 64)
    assert rc == 1 and "connect: connection refused" in err
    master, _ = init_master(twin)
    _, token, ca = _split(join_cmd(master))
    rc, _, err = w.run("kubeadm", "join", "10.9.9.9:6443", "--token", token, "--discovery-token-ca-cert-hash", ca)
    assert rc == 1 and "dial tcp 10.9.9.9:6443: connect: connection refused" in err


def test_join_preflight_without_runtime_and_ip_forward(twin):
    master, _ = init_master(twin)
    w = twin.add("node-110")

    def broken(st):
        st["services"]["containerd"]["active"] = False
        st["sysctl"]["net.ipv4.ip_forward"] = "0"
    w.edit(broken)
    rc, _, err = w.run("kubeadm", "join", *join_cmd(master))
    assert rc == 1
    order = [ln.split("]")[0].split()[-1] for ln in err.splitlines() if ln.startswith("\t[ERROR")]
    assert order == ["CRI", "FileContent--proc-sys-net-ipv4-ip_forward"]


def test_join_fault_then_rerun_after_reset(twin):
    master, _ = init_master(twin)
    w = twin.add("node-110", gpus=[GTX])
    w.fault("kubeadm_join_fails", 1)
    cmd = join_cmd(master)
    rc, _, err = w.run("kubeadm", "join", *cmd)
    assert rc == 1 and "error execution phase kubelet-start" in err
    assert "node-110" not in twin.cluster()["nodes"]
    # what a failed TLS bootstrap leaves behind blocks a plain re-run, as on a real node
    rc, _, err = w.run("kubeadm", "join", *cmd)
    assert rc == 1 and "FileAvailable--etc-kubernetes-bootstrap-kubelet.conf" in err
    assert w.run("kubeadm", "reset", "-f")[0] == 0
    rc, _, err = w.run("kubeadm", "join", *cmd)
    assert rc == 0, err
    assert "node-110" in twin.cluster()["nodes"]


def test_join_fault_always(twin):
    master, _ = init_master(twin)
    w = twin.add("node-110")
    w.fault("kubeadm_join_fails", {"message": "simulated: TLS bootstrap timed out"})
    rc, _, err = w.run("kubeadm", "join", *join_cmd(master))
    assert rc == 1 and "simulated: TLS bootstrap timed out" in err


def test_reset_worker_and_rejoin_same_name(twin):
    master, _ = init_master(twin)
    w = twin.add("node-110")
    cmd = join_cmd(master)
    assert w.run("kubeadm", "join", *cmd)[0] == 0
    assert w.run("kubeadm", "reset", "-f")[0] == 0
    assert w.state()["services"]["kubelet"]["active"] is False
    rc, _, err = w.run("kubeadm", "join", *cmd)
    assert rc == 0, err


def test_name_clash_with_ready_node(twin):
    master, _ = init_master(twin)
    twin.add("node-110")
    other = twin.add("node-x")
    cmd = join_cmd(master)
    assert twin.nodes["node-110"].run("kubeadm", "join", *cmd)[0] == 0
    # a CNI makes node-110 Ready
    master.write("/root/flannel.yaml", "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: kube-flannel-ds\n"
                 "  namespace: kube-system\nspec:\n  selector: {matchLabels: {app: flannel}}\n  template:\n"
                     "    metadata: {labels: {app: flannel}}\n    spec:\n      hostNetwork: true\n"
                 "      containers:\n      - name: f\n        image: ghcr.io/flannel-io/flannel:v0.26.7\n")
    assert master.run("kubectl", "--kubeconfig=/etc/kubernetes/admin.conf", "apply", "-f", "/root/flannel.yaml")[0] == 0
    rc, _, err = other.run("kubeadm", "join", *cmd, "--node-name", "node-110")
    assert rc == 1 and 'a Node with name "node-110" and status "Ready" already exists in the cluster' in err


def test_kubelet_version(twin):
    w = twin.add("node-110")
    assert w.run("kubelet", "--version") == (0, "Kubernetes v1.34.2\n", "")


def test_join_kubeadm_too_new_for_cluster(twin):
    master, _ = init_master(twin)
    w = twin.add("node-110")
    w.edit(lambda st: [st["packages"][n].update(version="1.36.0") for n in ("kubeadm", "kubectl")])
    rc, _, err = w.run("kubeadm", "join", *join_cmd(master))
    assert rc == 1 and "supports deploying clusters with the control plane version >= 1.35.0. Current version: v1.34.2" in err
