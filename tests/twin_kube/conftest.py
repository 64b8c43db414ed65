"""A small twin cluster without namespaces: one temp root and node dir per
node, one cluster state file, tools run in-process with the env switched."""

import contextlib
import io
import json
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "twin"))

from k8stwin import kube  # noqa: E402
from k8stwin.tools import (  # noqa: E402
    containerd,
    crictl,
    docker,
    kubeadm,
    kubectl,
    kubelet,
    nvidia_ctk,
)

TOOLS = {"kubeadm": kubeadm, "kubectl": kubectl, "kubelet": kubelet, "nvidia-ctk": nvidia_ctk,
         "containerd": containerd, "docker": docker, "crictl": crictl}

GTX = "NVIDIA GeForce GTX 1080 Ti"

CONTAINERD_CONFIG = """version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.10"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
          runtime_type = "io.containerd.runc.v2"
          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
            SystemdCgroup = true
"""


def good_state(version="1.34.2", gpu_driver=True):
    st = {
        "packages": {n: {"version": version, "release": "150500.1.1", "arch": "x86_64", "repo": "kubernetes"}
                     for n in ("kubeadm", "kubelet", "kubectl")},
        "services": {"containerd": {"enabled": True, "active": True}, "kubelet": {"enabled": True, "active": False}},
        "modules": ["br_netfilter", "overlay"],
        "sysctl": {"net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1"},
        "swap": {"active": False},
        "firewall": {"running": False, "enabled": False, "ports": []},
    }
    st["packages"]["containerd.io"] = {"version": "1.7.27", "release": "3.1.el7", "arch": "x86_64", "repo": "docker"}
    st["packages"]["nvidia-container-toolkit"] = {"version": "1.17.8", "release": "1", "arch": "x86_64", "repo": "n"}
    st["packages"]["cri-tools"] = {"version": "1.34.0", "release": "1", "arch": "x86_64", "repo": "kubernetes"}
    st["packages"]["docker-ce"] = {"version": "26.1.4", "release": "1.el7", "arch": "x86_64", "repo": "docker"}
    if gpu_driver:
        st["modules"].append("nvidia")
        st["nvidia_driver"] = {"version": "580.95.05", "kernel_module_type": "proprietary", "dkms": True}
    return st


class Node:
    def __init__(self, twin, node_id, gpus, ip, os_key):
        self.twin = twin
        self.id = node_id
        self.dir = twin.base / "nodes" / node_id
        self.root = twin.base / "roots" / node_id
        self.dir.mkdir(parents=True)
        self.root.mkdir(parents=True)
        (self.dir / "node.json").write_text(json.dumps({
            "id": node_id, "os": "CentOS Linux-7", "os_key": os_key, "kernel": "5.4.0", "gpus": gpus, "ip": ip,
            "faults": {}}))
        self.set_state(good_state(gpu_driver=bool(gpus)))
        self.write("/etc/containerd/config.toml", CONTAINERD_CONFIG)

    # machine state
    def state(self):
        p = self.dir / "state.json"
        return json.loads(p.read_text()) if p.exists() else {}

    def set_state(self, st):
        (self.dir / "state.json").write_text(json.dumps(st))

    def edit(self, fn):
        st = self.state()
        fn(st)
        self.set_state(st)

    def fault(self, name, value):
        nj = json.loads((self.dir / "node.json").read_text())
        nj["faults"][name] = value
        (self.dir / "node.json").write_text(json.dumps(nj))

    # files
    def path(self, rel):
        return self.root / rel.lstrip("/")

    def write(self, rel, text):
        p = self.path(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)

    def read(self, rel):
        p = self.path(rel)
        return p.read_text() if p.exists() else None

    def run(self, tool, *args, stdin=""):
        return self.twin.run(self, tool, *args, stdin=stdin)


class Twin:
    def __init__(self, base, monkeypatch):
        self.base = base
        self.mp = monkeypatch
        self.cluster_file = base / "cluster" / "cluster.json"
        self.cluster_file.parent.mkdir(parents=True)
        self.nodes = {}

    def add(self, node_id, gpus=(), ip=None, os_key="rocky9", register=True):
        ip = ip or f"192.168.0.{100 + len(self.nodes)}"
        node = Node(self, node_id, list(gpus), ip, os_key)
        self.nodes[node_id] = node
        if register:
            self.mp.setenv(kube.ENV, str(self.cluster_file))
            kube.register_node(node_id, str(node.dir), str(node.root))
        return node

    def run(self, node, tool, *args, stdin=""):
        self.mp.setenv("K8STWIN_NODE_DIR", str(node.dir))
        self.mp.setenv("K8STWIN_ROOT", str(node.root))
        self.mp.setenv(kube.ENV, str(self.cluster_file))
        self.mp.setenv("HOME", "/root")
        self.mp.delenv("KUBECONFIG", raising=False)
        o, e = io.StringIO(), io.StringIO()
        old_stdin = sys.stdin
        sys.stdin = io.StringIO(stdin)
        try:
            with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
                try:
                    rc = TOOLS[tool].main([tool, *args])
                except SystemExit as exc:
                    rc = exc.code
        finally:
            sys.stdin = old_stdin
        return rc, o.getvalue(), e.getvalue()

    def cluster(self):
        return json.loads(self.cluster_file.read_text())


@pytest.fixture
def twin(tmp_path, monkeypatch):
    return Twin(tmp_path, monkeypatch)


def configure_nvidia(node, default=True):
    """nvidia-ctk runtime configure --runtime=containerd [--set-as-default]."""
    args = ["runtime", "configure", "--runtime=containerd"]
    if default:
        args.append("--set-as-default")
    rc, _, e = node.run("nvidia-ctk", *args)
    assert rc == 0, e


INIT_CONFIG = """apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- ttl: 0h15m0s
  usages: [signing, authentication]
  groups: [system:bootstrappers:kubeadm:default-node-token]
localAPIEndpoint:
  advertiseAddress: {ip}
  bindPort: 6443
nodeRegistration:
  name: {name}
  criSocket: unix:///run/containerd/containerd.sock
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.34.2
controlPlaneEndpoint: {ip}:6443
imageRepository: registry.k8s.io
networking:
  podSubnet: 10.244.0.0/16
  serviceSubnet: 10.96.0.0/12
  dnsDomain: cluster.local
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
"""


def init_master(twin, name="cluster-master"):
    master = twin.nodes.get(name) or twin.add(name, ip="192.168.0.113")
    master.write("/root/init.yaml", INIT_CONFIG.format(ip="192.168.0.113", name=name))
    rc, out, err = master.run("kubeadm", "init", "--config", "/root/init.yaml")
    assert rc == 0, err
    return master, out


def join_cmd(master):
    rc, out, err = master.run("kubeadm", "token", "create", "--ttl", "15m", "--print-join-command")
    assert rc == 0, err
    return out.split()[2:]  # endpoint --token T --discovery-token-ca-cert-hash H
