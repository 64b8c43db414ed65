"""Teardown leaves no process, mount or namespace behind: after a normal
down, after a failed up and after the supervisor itself died."""

import os
import signal
import subprocess
import tempfile
import time

import pytest
from k8stwin.cluster import Twin, TwinError

ONE = "nodes:\n  - {id: solo, os: centos7, gpus: [NVIDIA GeForce GTX 1080 Ti]}\n"


@pytest.fixture
def scratch():
    if os.geteuid() != 0:
        pytest.skip("the cluster twin needs root")
    base = tempfile.mkdtemp(prefix="k8stwin-c-", dir="/tmp")
    cluster = os.path.join(base, "one.yaml")
    with open(cluster, "w", encoding="utf-8") as fh:
        fh.write(ONE)
    t = Twin(os.path.join(base, "run"))
    yield t, cluster
    t.down()
    import shutil

    shutil.rmtree(base, ignore_errors=True)


def _namespaces_of(pids):
    out = set()
    for pid in pids:
        try:
            out.add(os.readlink(f"/proc/{pid}/ns/mnt"))
        except OSError:
            pass
    return out


def _in_namespaces(ns, run):
    """pid: (state, command line) of every process of this twin (``run`` in
    its command line or environment) in one of ``ns``. The kernel reuses a
    namespace's id once the namespace is gone, and the other pytest workers
    make namespaces all the time: another twin's process in a namespace of
    the same id is not a leftover of this one."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/mnt") not in ns:
                continue
            with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")[:120]
        except OSError:
            continue
        if run in cmd or run in _environ(entry):
            out[int(entry)] = (fields[0], cmd)
    return out


def _environ(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def _namespaces_gone(ns, run, wait=10.0):
    """Wait up to ``wait`` seconds for the last process of ``ns`` to finish
    exiting (one can still be tearing down when down() returns); what is
    left then (empty when clean)."""
    deadline = time.time() + wait
    while True:
        left = _in_namespaces(ns, run)
        if not left or time.time() > deadline:
            return left
        time.sleep(0.2)


def assert_clean(t):
    assert t.leftover_processes() == []
    assert t.leftover_mounts() == []
    assert not t.is_up()


def test_down_leaves_nothing_and_is_idempotent(scratch):
    t, cluster = scratch
    t.up(cluster, timeout=120)
    init = t.init_pid("solo")
    assert init
    ns = _namespaces_of([init])
    assert ns and ns.isdisjoint(_namespaces_of([os.getpid()]))
    assert t.down() == []  # the supervisor cleaned up; nothing had to be forced
    assert_clean(t)
    assert _namespaces_gone(ns, str(t.run)) == {}  # the node's namespace is gone
    assert t.down() == []


def test_failed_up_leaves_nothing(scratch):
    t, cluster = scratch
    with pytest.raises(TwinError, match="timed out"):
        t.up(cluster, timeout=1)
    assert_clean(t)


def test_down_after_the_supervisor_died(scratch):
    t, cluster = scratch
    t.up(cluster, timeout=120)
    os.kill(t.supervisor_pid(), signal.SIGKILL)
    time.sleep(0.5)
    assert t.leftover_processes()  # machine, minion and master are orphans now
    forced = t.down()
    assert forced
    assert_clean(t)


def test_bad_cluster_file_is_refused(scratch):
    t, _cluster = scratch
    bad = os.path.join(os.path.dirname(t.run), "bad.yaml")
    with open(bad, "w", encoding="utf-8") as fh:
        fh.write("nodes:\n  - {id: x, os: windows95}\n")
    with pytest.raises(TwinError, match="unknown OS"):
        t.up(bad)
    with open(bad, "w", encoding="utf-8") as fh:
        fh.write("nodes:\n  - {id: x, faults: {meteor_strike: true}}\n")
    with pytest.raises(TwinError, match="unknown faults"):
        t.up(bad)
    assert_clean(t)


def test_twin_goes_down_with_its_owner(scratch):
    t, cluster = scratch
    owner = subprocess.Popen(["sleep", "600"])
    try:
        t.up(cluster, timeout=120, owner_pid=owner.pid)
        assert t.is_up()
    finally:
        owner.kill()
        owner.wait()
    deadline = time.time() + 60
    while time.time() < deadline and (t.is_up() or t.leftover_processes()):
        time.sleep(0.5)
    assert_clean(t)
    assert t._events(None, "owner_gone")
