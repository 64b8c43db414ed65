"""Fake GPU hosts for the nvidia grain/module tests: node directories in the
twin's layout, their sysfs/procfs views (k8stwin.hw) and a launcher for the
emulated nvidia-smi (k8stwin.tools.nvidia_smi) that counts its runs."""

import json
import os
import pathlib
import sys

from tests.conftest import ROOT, load_source, repo_utils

sys.path.insert(0, str(ROOT / "twin"))

from k8stwin import hw  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "nvidia-smi"
DEVICE = ROOT / "tests" / "fixtures" / "device"

gpu = load_source("_utils/nvidia_gpu.py", "k8snvidia_test_nvidia_gpu")

LAUNCHER = """#!{python}
import os, sys
os.environ.setdefault("K8STWIN_NODE_DIR", {node_dir!r})
sys.path.insert(0, {twin!r})
from k8stwin import state
from k8stwin.tools import nvidia_smi
state.run_tool(nvidia_smi.main)
"""


def make_node(base, gpus, modules=(), driver_version=None, open_module=False, processes=(), node_id="node-110"):
    """A twin-style node directory with sys/ and proc/ synced; returns its path."""
    node = pathlib.Path(base)
    node.mkdir(parents=True, exist_ok=True)
    (node / "node.json").write_text(json.dumps({"id": node_id, "gpus": list(gpus), "faults": {}}))
    data = {"modules": list(modules), "gpu_processes": list(processes)}
    if driver_version:
        data["nvidia_driver"] = {
            "version": driver_version,
            "kernel_module_type": "open" if open_module else "proprietary",
            "dkms": True,
            "built_for": [],
        }
    (node / "state.json").write_text(json.dumps(data))
    hw.sync(node)
    return node


def smi_bin(base, node_dir, script=None):
    """A bin directory holding `nvidia-smi` (the emulated one for node_dir,
    or a shell `script`)."""
    bindir = pathlib.Path(base) / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    exe = bindir / "nvidia-smi"
    if script is None:
        script = LAUNCHER.format(python=sys.executable, node_dir=str(node_dir), twin=str(ROOT / "twin"))
    exe.write_text(script)
    exe.chmod(0o755)
    return bindir


def smi_runs(node_dir):
    """argv of each nvidia-smi run recorded for the node."""
    path = pathlib.Path(node_dir) / "commands.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["argv"] for line in path.read_text().splitlines() if line.strip()]


def utils_dict():
    """What __utils__ holds for the nvidia_gpu and host modules under Salt's loader."""
    out = {f"nvidia_gpu.{name}": getattr(gpu, name) for name in dir(gpu) if callable(getattr(gpu, name))}
    out.update({k: v for k, v in repo_utils().items() if k.startswith("host.")})
    return out


def with_path(bindir):
    return str(bindir) + os.pathsep + os.environ.get("PATH", "")
