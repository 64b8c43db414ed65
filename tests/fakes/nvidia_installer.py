"""A scratch node for the emulated NVIDIA .run installer and dkms: the twin's
(twin/k8stwin/artifacts.py makes the .run file, twin/bin/_dispatch runs its
tools), run as real subprocesses with K8STWIN_NODE_DIR and K8STWIN_ROOT.
The product's unit and functional tests borrow it from here, never from
twin/ directly (docs/testing.md)."""

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "twin"))

from k8stwin import artifacts, hw  # noqa: E402,F401  (re-exported for the product's tests)

RUNNING = "5.4.278-1.el7.elrepo.x86_64"
OTHER = "5.4.300-1.el7.elrepo.x86_64"
PASCAL = "NVIDIA GeForce GTX 1080 Ti"
TURING = "Tesla T4"
BASE_PKGS = {"gcc": {"version": "4.8.5"}, "make": {"version": "3.82"}, "dkms": {"version": "3.0.11"}}


class Node:
    def __init__(self, tmp_path, gpus=(PASCAL,), modules=(), packages=None, headers=(RUNNING,)):
        self.dir = tmp_path / "node"
        self.root = tmp_path / "root"
        self.art = tmp_path / "artifacts"
        self.dir.mkdir()
        self.root.mkdir()
        (self.dir / "node.json").write_text(
            json.dumps({"id": "node-110", "os": "CentOS Linux-7", "os_key": "centos7", "kernel": RUNNING,
                        "gpus": list(gpus), "faults": {}})
        )
        self.write_state({"kernel": {"running": RUNNING}, "modules": list(modules),
                          "packages": dict(BASE_PKGS if packages is None else packages)})
        for k in headers:
            self.headers(k)
        self.env = dict(os.environ, K8STWIN_NODE_DIR=str(self.dir), K8STWIN_ROOT=str(self.root),
                        PYTHONPATH=str(ROOT / "twin"), K8STWIN_PYTHON=sys.executable)

    def headers(self, kernel):
        src = self.root / "usr/src/kernels" / kernel
        src.mkdir(parents=True, exist_ok=True)
        build = self.root / "lib/modules" / kernel / "build"
        build.parent.mkdir(parents=True, exist_ok=True)
        if not os.path.lexists(build):
            os.symlink(f"/usr/src/kernels/{kernel}", build)

    def state(self):
        return json.loads((self.dir / "state.json").read_text())

    def write_state(self, data):
        (self.dir / "state.json").write_text(json.dumps(data))

    def update(self, **kw):
        st = self.state()
        st.update(kw)
        self.write_state(st)

    def runfile(self, version):
        path, _sha = artifacts.make_runfile(str(self.art), version)
        return path

    def run(self, version, *args, cwd=None):
        return subprocess.run(["sh", self.runfile(version), *args], env=self.env, capture_output=True, text=True,
                              cwd=cwd or str(self.art), timeout=60, check=False)

    def tool(self, name, *args):
        bindir = self.dir / "bin"
        bindir.mkdir(exist_ok=True)
        link = bindir / name
        if not link.exists():
            os.symlink(ROOT / "twin/bin/_dispatch", link)
        return subprocess.run([str(link), *args], env=self.env, capture_output=True, text=True, timeout=60,
                              check=False)

    def file(self, rel):
        return self.root / rel.lstrip("/")
