"""Fixtures: a provisioned twin node in a temp root, and a runner for its tools."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TWIN = ROOT / "twin"
TOOLS = [
    "yum", "dnf", "rpm", "yum-config-manager", "apt-get", "apt-cache", "dpkg", "dpkg-query", "apt-mark",
    "systemctl", "swapoff", "swapon", "sysctl", "modprobe", "lsmod", "rmmod", "depmod", "dracut",
    "update-initramfs", "grub2-mkconfig", "grub2-set-default", "grub2-editenv", "grubby", "update-grub",
    "grub-mkconfig", "firewall-cmd", "ufw", "setenforce", "getenforce",
]
KERNELS = {
    "centos7": "3.10.0-1062.18.1.el7.x86_64",
    "rocky8": "4.18.0-553.el8_10.x86_64",
    "rocky9": "5.14.0-427.13.1.el9_4.x86_64",
    "ubuntu1804": "5.3.0-40-generic",
    "ubuntu2204": "5.15.0-119-generic",
    "ubuntu2404": "6.8.0-45-generic",
    "debian12": "6.1.0-25-amd64",
}
OS_RELEASE = {
    "centos7": 'NAME="CentOS Linux"\nVERSION="7 (Core)"\nID="centos"\nVERSION_ID="7"\n',
    "rocky8": 'NAME="Rocky Linux"\nVERSION="8.10 (Green Obsidian)"\nID="rocky"\nVERSION_ID="8.10"\n',
    "rocky9": 'NAME="Rocky Linux"\nVERSION="9.4 (Blue Onyx)"\nID="rocky"\nVERSION_ID="9.4"\n',
    "ubuntu1804": 'NAME="Ubuntu"\nVERSION="18.04.6 LTS (Bionic Beaver)"\nID=ubuntu\nVERSION_ID="18.04"\n',
    "ubuntu2204": 'NAME="Ubuntu"\nVERSION="22.04.4 LTS (Jammy Jellyfish)"\nID=ubuntu\nVERSION_ID="22.04"\n',
    "ubuntu2404": 'NAME="Ubuntu"\nVERSION="24.04 LTS (Noble Numbat)"\nID=ubuntu\nVERSION_ID="24.04"\n',
    "debian12": 'NAME="Debian GNU/Linux"\nVERSION="12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
}


class Node:
    def __init__(self, base, os_key, gpus=None, faults=None):
        self.root = base / "root"
        self.dir = base / "node"
        self.bin = base / "bin"
        self.os_key = os_key
        for d in (self.root, self.dir, self.bin):
            d.mkdir(parents=True, exist_ok=True)
        (self.root / "etc").mkdir(exist_ok=True)
        (self.root / "etc/os-release").write_text(OS_RELEASE[os_key])
        info = {"id": f"node-{os_key}", "os": os_key, "os_key": os_key, "kernel": KERNELS[os_key],
                "gpus": gpus if gpus is not None else ["NVIDIA GeForce GTX 1080 Ti"], "faults": faults or {}}
        (self.dir / "node.json").write_text(json.dumps(info))
        redhat = not os_key.startswith(("ubuntu", "debian"))
        apt = {"apt-get", "apt-cache", "dpkg", "dpkg-query", "apt-mark", "update-initramfs", "update-grub", "grub-mkconfig", "ufw"}
        rh = {"yum", "dnf", "rpm", "yum-config-manager", "dracut", "grub2-mkconfig", "grub2-set-default", "grub2-editenv", "grubby", "firewall-cmd", "setenforce", "getenforce"}
        for tool in TOOLS:
            if (redhat and tool in apt) or (not redhat and tool in rh) or (os_key == "centos7" and tool == "dnf"):
                continue
            mod = tool.replace("-", "_")
            p = self.bin / tool
            p.write_text(f"#!{sys.executable}\nimport sys\nsys.path.append({str(TWIN)!r})\n"
                         f"from k8stwin import state\nfrom k8stwin.tools import {mod}\nstate.run_tool({mod}.main)\n")
            p.chmod(0o755)
        self.env = dict(os.environ, K8STWIN_ROOT=str(self.root), K8STWIN_NODE_DIR=str(self.dir),
                        PATH=f"{self.bin}:{os.environ.get('PATH', '')}", PYTHONPATH=str(TWIN))
        self.py("from k8stwin import osbase; osbase.provision()")

    def py(self, code):
        r = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def run(self, *argv, stdin=None):
        return subprocess.run([str(self.bin / argv[0]), *argv[1:]], env=self.env, capture_output=True, text=True, input=stdin, timeout=60)

    def state(self):
        p = self.dir / "state.json"
        return json.loads(p.read_text()) if p.exists() else {}

    def file(self, path):
        return self.root / path.lstrip("/")

    def write(self, path, text):
        p = self.file(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)

    def set_fault(self, name, value):
        info = json.loads((self.dir / "node.json").read_text())
        info["faults"][name] = value
        (self.dir / "node.json").write_text(json.dumps(info))


@pytest.fixture
def make_node(tmp_path):
    def make(os_key, **kw):
        return Node(tmp_path / os_key, os_key, **kw)

    return make
