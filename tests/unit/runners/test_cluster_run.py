"""The orchestration's runner (_runners/cluster_run.py) with a fake Salt client:
the lock, per-run records, the control plane first, nodes that stop
answering, reboot stragglers, SIGINT/SIGTERM between steps, the exit code.
Salt's dunders through salt-factories' loader mock (``configure_loader_modules``)."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import cluster_view, load_source, loader_globals
from tests.fakes.salt_client import NODES, FakeBus, FakeClient, default_answers

PLAN = ["prepare-control-plane", "control-plane", "prepare", "join"]


def _bad_state(comment):
    return {"kubeadm_|-init_|-init_|-initialized": {"result": False, "changes": {}, "comment": comment}}


cluster_run = load_source("_runners/cluster_run.py", "cluster_run_runner_test")


@pytest.fixture
def configure_loader_modules(tmp_path):
    return {cluster_run: loader_globals(
        __opts__={"cachedir": str(tmp_path / "cache"), "sock_dir": str(tmp_path / "sock")},
        __salt__={"cluster.view": lambda: cluster_view(NODES),
                  "cluster.membership": lambda ids: {n: True for n in ids}},
    )}


@pytest.fixture
def runner(monkeypatch):
    def make(answers=default_answers, events=()):
        mod = cluster_run
        client = FakeClient(answers)
        monkeypatch.setattr(mod.salt.client, "get_local_client", lambda mopts=None: client)
        bus = FakeBus(events)

        @contextlib.contextmanager
        def master_event(opts, sock_dir, listen=False):
            yield bus

        monkeypatch.setattr(mod.salt.utils.event, "get_master_event", master_event)
        monkeypatch.setattr(mod, "client", client, raising=False)
        return mod

    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield make
    for sig, handler in old.items():
        signal.signal(sig, handler)


def _record(mod):
    with open(mod.run_file(), encoding="utf-8") as fh:
        return json.load(fh)


def _fresh_context(mod):
    """A new salt-run call: its ``__context__`` starts empty."""
    mod.__context__.clear()
    return mod


def _run_all(mod, fail_required=False):
    """The plan's steps as the SLS runs them (a shortened plan)."""
    mod.begin(plan=PLAN)
    mod.step("prepare", ["host"], role="control-plane", required=True, stage="prepare-control-plane")
    mod.step("control-plane", ["kubernetes.master"], role="control-plane", required=True, stage="control-plane")
    mod.step("prepare", ["host"], role="worker", stage="prepare")
    mod.step("join", ["kubernetes.node"], role="worker", stage="join")
    summary = mod.summary()
    _fresh_context(mod)
    return summary, mod.finish(), mod.__context__.get("retcode", 0)


def test_a_clean_run_exits_zero_and_releases_the_lock(runner):
    mod = runner()
    summary, fin, rc = _run_all(mod)
    assert rc == 0 and fin["result"] is True and fin["failed"] == {}
    assert all(v["failed"] is None for v in summary.values())
    assert not os.path.exists(mod._lock_file())
    record = _record(mod)
    assert record["done"] == ["begin", *PLAN] and not record.get("stopped")
    # every call waits node_timeout for a silent node, not the step's hour
    assert {c["timeout"] for c in mod.client.calls if not c.get("async")} == {mod.NODE_TIMEOUT}


def test_a_failed_worker_gives_a_non_zero_exit_naming_it(runner):
    def answers(nid, fun, arg):
        if fun == "state.apply" and nid == "node-110" and arg == ["kubernetes.node"]:
            return {"kubeadm_|-join_|-node-110_|-joined": {"result": False, "changes": {},
                                                         "comment": "kubeadm join failed: boom"}}
        return default_answers(nid, fun, arg)

    mod = runner(answers)
    summary, fin, rc = _run_all(mod)
    assert rc == 1 and fin["result"] is False
    assert list(fin["failed"]) == ["node-110"] and "node-110 failed at join:" in fin["comment"]
    assert summary["node-105"]["failed"] is None


def test_control_plane_first_a_failing_one_leaves_the_workers_untouched(runner):
    def answers(nid, fun, arg):
        if fun == "state.apply" and nid == "cluster-master" and arg == ["kubernetes.master"]:
            return _bad_state("kubeadm init failed: [ERROR NumCPU]")
        return default_answers(nid, fun, arg)

    mod = runner(answers)
    summary, fin, rc = _run_all(mod)
    assert rc == 1 and "NumCPU" in fin["comment"] and "stopped:" in fin["comment"]
    # no state ever ran on a worker
    assert all(ids == ["cluster-master"] for ids, _ in mod.client.applied()), mod.client.applied()
    record = _record(mod)
    assert record["not_done"] == ["prepare", "join"]
    assert "left as they were: node-105, node-110" in " ".join(record["log"])
    assert summary["cluster-master"]["failed"].startswith("control-plane:")


def test_an_unreachable_control_plane_stops_the_run_before_any_change(runner):
    def answers(nid, fun, arg):
        if nid == "cluster-master":
            return None
        return default_answers(nid, fun, arg)

    mod = runner(answers)
    summary, fin, rc = _run_all(mod)
    assert rc == 1 and mod.client.applied() == []
    assert "not reachable at the start" in summary["cluster-master"]["failed"]
    assert "salt-key -L" in summary["cluster-master"]["failed"]
    assert "is not reachable: no node was changed" in fin["comment"]


def test_a_node_that_stops_answering_is_failed_with_what_was_last_seen(runner):
    def answers(nid, fun, arg):
        if nid == "node-105" and fun == "state.apply" and arg == ["kubernetes.node"]:
            return None  # died after the prepare step
        return default_answers(nid, fun, arg)

    mod = runner(answers)
    summary, fin, rc = _run_all(mod)
    why = summary["node-105"]["failed"]
    assert why.startswith("join: stopped answering: silent for 120s") and "prepare ok" in why, why
    assert summary["node-110"]["failed"] is None and rc == 1


def test_one_orchestration_at_a_time_and_a_stale_lock_is_taken_over(runner, tmp_path):
    mod = runner()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    for _ in range(200):  # until it runs its own command line
        with open(f"/proc/{holder.pid}/cmdline", "rb") as fh:
            if b"sleep" in fh.read():
                break
        time.sleep(0.05)
    try:
        os.makedirs(os.path.dirname(mod._lock_file()), exist_ok=True)
        with open(mod._lock_file(), "w", encoding="utf-8") as fh:
            json.dump({"pid": holder.pid, "started_text": "2026-12-01 10:00:00"}, fh)
        ret = mod.begin(plan=PLAN)
        assert ret["result"] is False and mod.__context__["retcode"] == 1
        assert f"another orchestration is running (pid {holder.pid}, started 2026-12-01 10:00:00)" in ret["comment"]
        assert not os.path.exists(mod.run_file())  # the holder's record is not touched
    finally:
        holder.kill()
        holder.wait()
    _fresh_context(mod)
    assert mod.begin(plan=PLAN)["result"] is True  # its holder is gone: taken over
    assert any(f"took over a stale lock of pid {holder.pid}" in line for line in _record(mod)["log"])
    with open(mod._lock_file(), encoding="utf-8") as fh:
        assert json.load(fh)["pid"] == os.getpid()
    mod.finish()


def test_each_run_keeps_its_record(runner, monkeypatch):
    mod = runner()
    _run_all(mod)
    first = _record(mod)["id"]
    stamps = iter(["20261201T100000", "20261201T110000"])
    monkeypatch.setattr(mod.time, "strftime", lambda fmt, *a: next(stamps) if fmt == "%Y%m%dT%H%M%S" else "12:00:00")
    _run_all(mod)
    runs = sorted(os.listdir(os.path.join(mod._dir(), "runs")))
    assert len(runs) == 2 and f"{first}.json" in runs


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_run_between_steps_with_a_summary(runner, sig):
    mod = runner()
    mod.begin(plan=PLAN)
    mod.step("prepare", ["host"], role="control-plane", required=True, stage="prepare-control-plane")
    os.kill(os.getpid(), sig)  # Ctrl-C / kill during the run: the handler records it
    mod.step("control-plane", ["kubernetes.master"], role="control-plane", required=True, stage="control-plane")
    mod.step("prepare", ["host"], role="worker", stage="prepare")
    mod.summary()
    _fresh_context(mod)
    fin = mod.finish()
    assert mod.__context__["retcode"] == 1 and fin["result"] is False
    assert f"{signal.Signals(sig).name} received" in fin["comment"]
    record = _record(mod)
    assert record["not_done"] == ["control-plane", "prepare", "join"]
    assert [ids for ids, _ in mod.client.applied()] == [["cluster-master"]]
    assert not os.path.exists(mod._lock_file()) and not os.path.exists(mod._stop_file())


def test_a_straggler_after_reboot_does_not_hold_the_others(runner):
    def answers(nid, fun, arg):
        if fun == "reboot_pending.reasons":
            return ["kernel 5.4 is the boot default"] if nid != "cluster-master" else []
        return default_answers(nid, fun, arg)

    mod = runner(answers, events=[{"tag": "salt/minion/node-105/start", "data": {}}])
    mod.begin(plan=PLAN)
    ret = mod.reboot(timeout=900, role="worker", grace=0.2, stage="reboot")
    assert ret["rebooted"] == ["node-105"] and ret["lost"] == ["node-110"]
    why = _record(mod)["nodes"]["node-110"]["failed"]
    assert why.startswith("reboot: not back 0s after the other rebooted nodes (cluster:reboot_grace)"), why
    assert "re-run once it is up" in why
    assert _record(mod)["nodes"]["node-105"]["reboots"] == 1


def test_failed_lists_the_last_runs_failures(runner):
    def answers(nid, fun, arg):
        if nid == "node-110" and fun == "test.ping":
            return None
        return default_answers(nid, fun, arg)

    mod = runner(answers)
    _run_all(mod)
    _fresh_context(mod)
    out = mod.failed()
    assert list(out) == ["node-110"] and mod.__context__["retcode"] == 1


def test_sync_syncs_the_trees_kinds_in_one_job_and_fails_a_node_that_cannot(runner):
    funs = [f"saltutil.sync_{kind}" for kind in cluster_run.SYNCED] + ["saltutil.refresh_pillar"]

    def answers(nid, fun, arg):
        if fun != funs:
            return default_answers(nid, fun, arg)
        if nid == "node-110":
            return None  # silent
        ret = {f: [] for f in funs[:-1]}
        ret["saltutil.refresh_pillar"] = True
        if nid == "node-105":
            ret["saltutil.sync_modules"] = "Traceback (most recent call last):\n...\nOSError: [Errno 28] No space left"
        return ret

    mod = runner(answers)
    mod.begin(plan=["sync"])
    assert mod.sync(node_timeout=30) == {"result": True}
    call = next(c for c in mod.client.calls if c["fun"] == funs)
    assert call["timeout"] == 30 and set(call["ids"]) == {"cluster-master", "node-105", "node-110"}
    # nothing refreshes until the last function; the sync functions do not each reload the modules
    assert call["arg"] == [[{"__kwarg__": True, "refresh": False}]] * len(cluster_run.SYNCED) + [[]]
    nodes = _record(mod)["nodes"]
    assert nodes["cluster-master"]["failed"] is None
    assert "saltutil.sync_modules: OSError: [Errno 28] No space left" in nodes["node-105"]["failed"]
    assert "no answer within 30s" in nodes["node-110"]["failed"]


def _gpu_answers(nid, fun, arg):
    if fun == "grains.get":
        return {"driver_version": "580.178.04"}
    if fun == "kube.allocatable":
        return {"node-105": 1, "node-110": 1}
    if fun == "kube.validate_gpu":
        return {"phase": "Succeeded"}
    return default_answers(nid, fun, arg)


@pytest.mark.parametrize("refresh", [True, False])
def test_gpu_check_refreshes_the_grains_unless_told_not_to(runner, refresh):
    """The orchestration passes refresh=False: its gpu-facts step refreshed them just before."""
    mod = runner(_gpu_answers)
    mod.begin(plan=["gpu-check"])
    assert mod.gpu_check(refresh=refresh) == {"result": True}
    funs = [c["fun"] for c in mod.client.calls]
    assert ("saltutil.refresh_grains" in funs) is refresh
    assert funs.count("kube.validate_gpu") == 2
    nodes = _record(mod)["nodes"]
    assert all(nodes[n]["validation_pod"] == "Succeeded" and nodes[n]["gpus_allocatable"] == 1
               for n in ("node-105", "node-110")), nodes
