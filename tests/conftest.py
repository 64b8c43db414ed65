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
    if relpath.split("/", 1)[0] in ("_modules", "_states", "_runners", "_grains"):
        mod.__utils__ = dict(repo_utils())  # as the loader gives them; a test may replace it
    return mod


def loader_globals(**dunders):
    """The Salt dunders of a custom module for salt-factories' loader mock:
    a test file that defines a ``configure_loader_modules`` fixture returning
    ``{module: loader_globals(__salt__={...}, __opts__={...})}`` gets them
    patched in for each test and taken out after it (the dunders not named
    are empty dicts, this module's own: the mock alone would hand one empty
    dict to every module of the mapping; ``__utils__`` is the repo's _utils
    as the loader names them unless given). Pass the same dict to two
    modules for them to share it, as a minion's modules share ``__salt__``."""
    fresh = {name: {} for name in ("__opts__", "__salt__", "__grains__", "__pillar__", "__context__")}
    return {**fresh, "__utils__": dict(repo_utils()), **dunders}


_UTILS = {}


def repo_utils():
    """Every public function of the repo's _utils, named as Salt's loader
    names them in ``__utils__`` (``file_stem.function``)."""
    if not _UTILS:
        for path in sorted((ROOT / "_utils").glob("*.py")):
            mod = load_source(f"_utils/{path.name}", f"k8snvidia_test_utils_{path.stem}")
            for name, fn in vars(mod).items():
                if callable(fn) and not name.startswith("_") and getattr(fn, "__module__", None) == mod.__name__:
                    _UTILS[f"{path.stem}.{name}"] = fn
    return _UTILS


def with_kube(mod):
    """Give a loaded ``kubeadm`` module (its ``__salt__`` already set) the
    ``kube`` execution module it calls, sharing its ``__salt__`` (so the
    test's fake ``cmd.run_all`` answers kubectl too) and ``__context__``."""
    kube = load_source("_modules/kube.py", mod.__name__ + "_kube")
    kube.__salt__ = mod.__salt__
    kube.__context__ = getattr(mod, "__context__", {})
    kube.__opts__ = getattr(mod, "__opts__", {})
    kube.__grains__ = getattr(mod, "__grains__", {})
    kube.__pillar__ = getattr(mod, "__pillar__", {})
    mod.__salt__["kube.kubectl"] = kube.kubectl
    return kube


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


# Files that take minutes, first: the test command runs three workers taking
# whole files in this order (bin/test passes --no-loadscope-reorder: xdist
# would otherwise sort the files by their number of tests, the one-test
# scenarios last), so the long files started first finish with the rest
# instead of after it. Measured with --durations on 2 cores.
SLOW_FIRST = (  # xdist hands each worker one file, then a second
    "tests/real/test_debian_12.py",
    "tests/twin/test_orchestrate.py",
    "tests/twin/test_orchestrate_faults.py",
    "tests/twin/test_orchestrate_join.py",
    "tests/twin/test_driver_upgrade.py",
    "tests/twin/test_seed_layers.py",
    "tests/twin/test_disk_full.py",
    "tests/twin/test_orchestrate_lock.py",
    # after Debian 12's (one booted node at a time: tests/real/conftest.py)
    "tests/real/test_debian_13.py",
    "tests/twin/test_no_dkms.py",
    "tests/twin/test_orchestrate_test_mode.py",
    "tests/twin/test_scale.py",
    "tests/integration/test_master_minions.py",
    "tests/twin/",
    "tests/judges/",
    "tests/twin_judges/",
    "tests/twin_kube/",
)


# Markers given by folder (docs/testing.md: the layers): every test in it has it.
FOLDER_MARKERS = {
    "tests/judges/": "judge",
    "tests/twin_judges/": "judge",
}


def pytest_configure(config):
    config.addinivalue_line("markers", "judge: checked by a real component (containerd, dockerd, kubernetes-validate, "
                            "and the real tools the twin's are compared with)")


def pytest_collection_modifyitems(session, config, items):
    def rel(item):
        return os.path.relpath(str(item.fspath), ROOT)

    def rank(item):
        return next((i for i, prefix in enumerate(SLOW_FIRST) if rel(item).startswith(prefix)), len(SLOW_FIRST))

    for item in items:
        for folder, marker in FOLDER_MARKERS.items():
            if rel(item).startswith(folder):
                item.add_marker(marker)
    items.sort(key=rank)  # stable: the order inside a file is kept
