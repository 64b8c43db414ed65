"""Shared test helpers: the repo's paths and a loader for its custom code."""

import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
VENV_BIN = pathlib.Path(sys.executable).parent
SHARED = ROOT.parent / "shared"


def load_source(relpath, name=None):
    """Import one of the repo's custom Salt files as a plain module (for unit
    tests that inject Salt's dunders themselves)."""
    path = ROOT / relpath
    name = name or "k8snvidia_test_" + path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def map_params():
    """The map's three parameter files (salt/parameters), as the runners read them."""
    import yaml

    return {n: yaml.safe_load((ROOT / f"salt/parameters/{n}.yaml").read_text())
            for n in ("defaults", "os_family", "osfinger")}


def cluster_view(nodes, grains=None, **pillar):
    """cluster.view's answer for a pillar with ``nodes`` (and ``pillar``'s
    other keys), through the product's own _utils/k8snvidia.cluster_view."""
    util = load_source("_utils/k8snvidia.py", "k8snvidia_test_view_utils")
    return util.cluster_view(map_params(), dict(pillar, nodes=nodes), grains)


def salt_cmd(tool, *args, cwd=ROOT, env=None, timeout=300):
    """Run a Salt CLI from the repo root (the Saltfile picks etc/salt)."""
    exe = VENV_BIN / tool
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, env=full_env, timeout=timeout)


@pytest.fixture
def repo_copy(tmp_path):
    """A scratch copy of the repo's Salt inputs, to change pillar safely."""
    dst = tmp_path / "repo"
    for name in ("salt", "pillar", "etc", "_modules", "_states", "_grains", "_runners", "_utils", "Saltfile"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, symlinks=True)
        elif src.exists():
            shutil.copy(src, dst / name)
    for sub in ("var/cache/salt/master/proc", "var/log/salt", "var/run/salt/master", "etc/salt/pki/master"):
        (dst / ".run/salt" / sub).mkdir(parents=True, exist_ok=True)
    return dst


def pytest_sessionfinish(session, exitstatus):
    """Salt's deferred log handler (set up when a test loads Salt in-process)
    keeps its records and would write them at exit to pytest's capture
    stream, closed by then ("Logging error ... I/O operation on closed
    file"): drop them with the handler."""
    import logging

    try:
        from salt._logging.handlers import DeferredStreamHandler
    except ImportError:
        return
    for handler in logging.root.handlers[:]:
        if isinstance(handler, DeferredStreamHandler):
            handler._DeferredStreamHandler__messages.clear()
            logging.root.removeHandler(handler)


# Files that take minutes, first: the test command runs two workers taking
# whole files (bin/test), and the long files started first finish with the
# rest instead of after it. Measured with --durations on 2 cores.
SLOW_FIRST = (  # xdist hands each worker two files at first: the four longest pair up
    "tests/twin/test_orchestrate.py",
    "tests/twin/test_orchestrate_faults.py",
    "tests/twin/test_orchestrate_join.py",
    "tests/twin/test_driver_upgrade.py",
    "tests/real/",
    "tests/twin/test_seed_layers.py",
    "tests/twin/test_disk_full.py",
    "tests/twin/test_orchestrate_lock.py",
    "tests/twin/test_no_dkms.py",
    "tests/twin/test_orchestrate_test_mode.py",
    "tests/twin/test_scale.py",
    "tests/twin/",
    "tests/judges/",
    "tests/twin_kube/",
)


def pytest_collection_modifyitems(session, config, items):
    def rank(item):
        rel = os.path.relpath(str(item.fspath), ROOT)
        return next((i for i, prefix in enumerate(SLOW_FIRST) if rel.startswith(prefix)), len(SLOW_FIRST))

    items.sort(key=rank)  # stable: the order inside a file is kept
