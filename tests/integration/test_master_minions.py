"""A real salt-master from this repo's configuration and two real
salt-minions on loopback, as the README's commands use them: the custom
modules reach the minions through the master's file server
(``saltutil.sync_all``), the ``nvidia`` grain answers ``grains.get`` and
grain targeting, and the cluster runners (``cluster.view``,
``cluster.inventory``) read what the minions report and who answers.

The minions run on this machine as root with their own config, cache and
sockets under the test's directory; their GPU view is a scratch sysfs/procfs
(``k8snvidia.sysfs_root``/``procfs_root``, a GTX 1080 Ti with driver
580.95.05 loaded on ``node-110``, nothing on ``cluster-master``) and an
``nvidia-smi`` on the minion's PATH that answers from it. Only read-only
functions run on them: nothing of this machine is changed. The pillar's
other nodes (node-109, node-106, node-105) have no minion: they are down."""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import yaml

from tests.conftest import ROOT, VENV_BIN
from tests.fakes.nvidia import make_node, smi_bin

PASCAL = "NVIDIA GeForce GTX 1080 Ti"
DRIVER = "580.95.05"
MINIONS = ("cluster-master", "node-110")


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _start(args, cwd, log, env=None):
    with open(log, "ab") as out:
        return subprocess.Popen(args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                env=dict(os.environ, **(env or {})), start_new_session=True)


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


class Cluster:
    def __init__(self, repo):
        self.repo = repo

    def run(self, tool, *args, timeout=180):
        proc = subprocess.run([str(VENV_BIN / tool), "-c", "etc/salt", "--out=json", "--log-level=quiet", *args],
                              cwd=self.repo, capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, f"{tool} {args}: rc {proc.returncode}\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        return proc.stdout

    def salt(self, *args):
        """``salt`` answers one JSON document per minion (--static: one in all)."""
        return json.loads(self.run("salt", "--static", "-t", "60", *args))

    def runner(self, *args):
        return json.loads(self.run("salt-run", *args))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    base = tmp_path_factory.mktemp("master-minions")
    repo = base / "repo"
    for name in ("salt", "pillar", "etc", "_modules", "_states", "_grains", "_runners", "_utils", "Saltfile"):
        src = ROOT / name
        (shutil.copytree(src, repo / name, symlinks=True) if src.is_dir() else shutil.copy(src, repo / name))
    # Salt puts every path of a daemon under its root_dir, and unix socket
    # paths must stay under 108 bytes (the master's IPC publisher does not
    # start otherwise): the master's and the minions' roots are short ones
    short = tempfile.mkdtemp(prefix="k8sn-", dir="/tmp")
    master_root = pathlib.Path(short, "master")
    ret_port, pub_port = _free_ports(2)
    # the copy's absolute paths, as bin/venv writes them for a clone
    subprocess.run([str(VENV_BIN / "python"), str(ROOT / "bin/master-paths"), str(repo)], check=True)
    (repo / ".run/salt/master.d/test.conf").write_text(yaml.safe_dump({
        "root_dir": str(master_root), "ret_port": ret_port, "publish_port": pub_port, "user": "root",
        "log_level_logfile": "info",
    }))
    procs = []
    try:
        procs.append(_start([str(VENV_BIN / "salt-master"), "-c", "etc/salt"], repo, base / "master.out"))
        for mid in MINIONS:
            conf = base / mid / "conf"
            conf.mkdir(parents=True)
            gpus = [PASCAL] if mid == "node-110" else []
            node = make_node(base / mid / "node", gpus, modules=["nvidia"] if gpus else [],
                             driver_version=DRIVER if gpus else None, node_id=mid)
            bindir = smi_bin(base / mid, node)
            (conf / "minion").write_text(yaml.safe_dump({
                "id": mid, "master": "127.0.0.1", "master_port": ret_port, "publish_port": pub_port,
                "ipv6": False, "user": "root", "root_dir": os.path.join(short, mid), "log_level_logfile": "info",
                "multiprocessing": False, "acceptance_wait_time": 1,
                "random_reauth_delay": 0, "auth_tries": 30,
                "k8snvidia.sysfs_root": str(node / "sys"), "k8snvidia.procfs_root": str(node / "proc"),
            }))
            env = {"PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
            procs.append(_start([str(VENV_BIN / "salt-minion"), "-c", str(conf)], "/", base / mid / "minion.out", env))
        c = Cluster(repo)
        _accept(repo, master_root, base)
        yield c
    finally:
        for proc in reversed(procs):
            _stop(proc)
        # the logs beside the rest, for a failure's report
        for log, dst in [(master_root / "var/log/salt/master", base / "master.log")] + [
                (pathlib.Path(short, mid, "var/log/salt/minion"), base / mid / "minion.log") for mid in MINIONS]:
            if log.exists():
                shutil.copy(log, dst)
        shutil.rmtree(short, ignore_errors=True)


def _logs(master_root, base):
    """The last lines of the master's and the minions' output, for a failure."""
    out = []
    for path in [master_root / "var/log/salt/master", base / "master.out"] + [base / m / "minion.out" for m in MINIONS]:
        if path.exists():
            out.append(f"== {path}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-15:]))
    return "\n".join(out)


def _accept(repo, master_root, base):
    """Accept both minions' keys (``salt-key -A``) once they have asked, then
    wait until both answer ``test.ping``."""
    deadline = time.monotonic() + 300  # a loaded 2-core machine: minutes
    pending = master_root / "etc/salt/pki/master/minions_pre"
    accepted = master_root / "etc/salt/pki/master/minions"
    while time.monotonic() < deadline:
        have = {p.name for d in (pending, accepted) if d.is_dir() for p in d.iterdir()}
        if set(MINIONS) <= have:
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"the minions never asked for their keys:\n{_logs(master_root, base)}")
    subprocess.run([str(VENV_BIN / "salt-key"), "-c", "etc/salt", "-A", "-y"], cwd=repo, check=True,
                   capture_output=True)
    while time.monotonic() < deadline:
        proc = subprocess.run([str(VENV_BIN / "salt"), "-c", "etc/salt", "--static", "--out=json", "-t", "10",
                               "*", "test.ping"], cwd=repo, capture_output=True, text=True)
        try:
            if set(json.loads(proc.stdout or "{}")) >= set(MINIONS):
                return
        except ValueError:
            pass
        time.sleep(1)
    raise AssertionError(f"the minions never answered:\n{_logs(master_root, base)}")


@pytest.fixture(scope="module")
def synced(cluster):
    return cluster.salt("*", "saltutil.sync_all")


def test_sync_all_brings_the_custom_modules_from_the_master(synced):
    for mid in MINIONS:
        got = synced[mid]
        assert "grains.nvidia" in got["grains"]
        assert {"modules.k8snvidia", "modules.kubeadm", "modules.nvidia_driver", "modules.reboot_pending"} <= set(
            got["modules"])
        assert {"states.nvidia_driver", "states.containerd", "states.swap", "states.reboot_pending"} <= set(
            got["states"])
        assert {"utils.k8snvidia", "utils.nvidia_gpu", "utils.host"} <= set(got["utils"])


def test_the_nvidia_grain_answers_and_targets(cluster, synced):
    got = cluster.salt("*", "grains.get", "nvidia")
    gpu = got["node-110"]
    assert gpu["gpu_count"] == 1 and gpu["gpus"][0]["name"] == PASCAL and gpu["gpus"][0]["architecture"] == "Pascal"
    assert gpu["driver_version"] == DRIVER and gpu["kernel_module"] == "proprietary" and gpu["source"] == "nvidia-smi"
    assert got["cluster-master"]["gpu_count"] == 0 and got["cluster-master"]["driver_version"] is None
    # the README's targeting examples
    assert set(cluster.salt("-G", "nvidia:gpus:name:*1080*", "test.ping")) == {"node-110"}
    assert set(cluster.salt("-G", "nvidia:gpu_count:0", "test.ping")) == {"cluster-master"}


def test_the_cluster_view_reads_the_grains_the_minions_reported(cluster, synced):
    cluster.salt("*", "saltutil.refresh_pillar", "wait=True")  # the master caches the grains with the pillar
    view = cluster.runner("cluster.view")
    assert view["control_plane"] == ["cluster-master"]
    assert view["nodes"]["node-110"]["grains"] == "cached" and view["nodes"]["node-110"]["gpu"] is True
    assert view["nodes"]["cluster-master"]["gpu"] is False
    assert view["nodes"]["node-105"]["grains"] != "cached"  # no minion: the pillar's word


def test_the_inventory_asks_who_answers_and_marks_the_rest_down(cluster, synced):
    rows = cluster.runner("cluster.inventory", "timeout=5")
    assert set(rows) == {"cluster-master", "node-110", "node-109", "node-106", "node-105"}
    for down in ("node-109", "node-106", "node-105"):
        assert rows[down]["flags"] == "down: no answer within 5s" and rows[down]["driver"] is None
    gpu = rows["node-110"]
    assert (gpu["gpus"], gpu["models"], gpu["memory_mib"], gpu["driver"]) == (1, PASCAL, 11264, DRIVER)
    assert gpu["kernel"] == os.uname().release and gpu["joined"] is False
    # the minion's driver is not the one the pillar pins: flagged
    assert gpu["flags"].startswith(f"driver {DRIVER} != pillar ")
    assert rows["cluster-master"]["flags"] == "" and rows["cluster-master"]["gpus"] == 0
