"""
The steps of the ``cluster`` orchestration (salt/cluster/init.sls).

Each step targets the nodes of the pillar that have not failed yet in this
run, records per-node results in a run file (no secrets in it), and reports
progress there and on the event bus (tag ``k8snvidia/progress``). A node that
fails a step is reported and left out of later steps; the others go on. A
step marked ``required`` (the control plane's) stops the run when its node
fails: the later steps, the workers' included, do not run, and the summary
says what was and was not done.

One orchestration at a time: :py:func:`begin` takes a lock (holder's pid and
start time) that :py:func:`finish` releases; a lock whose holder is gone is
taken over, with a message. Every run keeps its own record
(``runs/<run id>.json``; ``run.json`` is the latest). SIGINT and SIGTERM stop
the run between steps: the step running finishes, the others are skipped,
the summary says what was not done, the exit code is non-zero; a re-run
finishes it. A node that stops answering is failed once it has been silent
for ``cluster:node_timeout`` seconds (Salt's job check), with what was last
seen of it, instead of after the step's whole timeout.

    salt-run cluster_run.run_file      # where this run's record is
    salt-run cluster_run.failed        # the failed nodes of the last run
"""

import json
import logging
import os
import re
import signal
import time

import salt.client
import salt.utils.event

log = logging.getLogger(__name__)

PROGRESS_TAG = "k8snvidia/progress"
KEEP_RUNS = 20
NODE_TIMEOUT = 120


# ------------------------------------------------------------ run record
def _dir():
    return os.path.join(__opts__["cachedir"], "k8snvidia")


def run_file():
    """
    Path of the record of the current (or last) orchestration run.

    CLI Example:

    .. code-block:: bash

        salt-run cluster_run.run_file
    """
    return os.path.join(_dir(), "run.json")


def _lock_file():
    return os.path.join(_dir(), "orchestrate.lock")


def _load():
    try:
        with open(run_file(), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {"nodes": {}, "log": []}


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _save(run):
    _write(run_file(), run)
    if run.get("id"):
        _write(os.path.join(_dir(), "runs", f"{run['id']}.json"), run)


def _progress(run, message):
    line = f"{time.strftime('%H:%M:%S')} {message}"
    run.setdefault("log", []).append(line)
    _save(run)
    log.info("k8snvidia: %s", message)
    try:
        with salt.utils.event.get_master_event(__opts__, __opts__["sock_dir"], listen=False) as event:
            event.fire_event({"message": message}, PROGRESS_TAG)
    except Exception:  # pylint: disable=broad-except
        pass  # progress is best effort: no bus, no event


def _view():
    """The cluster view (cluster.view): roles, GPU nodes, drivers, decided
    in one place for the whole orchestration."""
    return __salt__["cluster.view"]()


def _select(run, role=None, gpu=None, view=None):
    """The nodes of the view that have not failed in this run, of ``role``
    (control-plane or worker) and, with ``gpu``, that do or do not get the
    GPU layers."""
    nodes = (view or _view())["nodes"]
    out = []
    for nid, node in sorted(nodes.items()):
        if run["nodes"].get(nid, {}).get("failed"):
            continue
        if role and (node["role"] == "control-plane") != (role == "control-plane"):
            continue
        if gpu is not None and node["gpu"] != gpu:
            continue
        out.append(nid)
    return out


_NO_SPACE = re.compile(r"no space left on device|\[errno 28\]|enospc|disk quota exceeded", re.IGNORECASE)
_QUOTED_PATH = re.compile(r"""['"](/[^'"]*)['"]""")
_BARE_PATH = re.compile(r"(/[\w.@+,-]+(?:/[\w.@+,-]+)*):? no space left on device", re.IGNORECASE)


def _explain(why):
    """``why``, with what to do when it is a full filesystem (ENOSPC): the
    directory whose filesystem is full, and how to look at it."""
    if not _NO_SPACE.search(why) or "is full" in why:
        return why
    paths = _BARE_PATH.findall(why) or [p for p in _QUOTED_PATH.findall(why) if not p.startswith("/tmp/__salt")]
    where = os.path.dirname(paths[-1].rstrip("/")) if paths else ""
    if where:
        return (f"{why} -- the filesystem holding {where} is full (No space left on device): free space there "
                f"(`df -h {where}`) and re-run")
    return f"{why} -- a filesystem of the node is full (No space left on device): free space (`df -h`) and re-run"


def _fail(run, nid, step, why):
    entry = run["nodes"].setdefault(nid, {})
    if not entry.get("failed"):
        entry["failed"] = f"{step}: {_explain(str(why))}"


def _seen(run, nid, what):
    run["nodes"].setdefault(nid, {})["last_seen"] = f"{time.strftime('%H:%M:%S')} {what}"


def _last_seen(run, nid):
    return run["nodes"].get(nid, {}).get("last_seen") or "never answered in this run"


def _stage(step_name, role=None):
    return f"{step_name}" + (f" ({role})" if role else "")


def _halted(run, stage):
    """True (and the stage recorded as not done) when the run was stopped:
    by a signal, or because the control plane failed."""
    if run.get("stopped"):
        run.setdefault("not_done", [])
        if stage not in run["not_done"]:
            run["not_done"].append(stage)
        _save(run)
        return True
    return False


def _done(run, stage):
    run.setdefault("done", [])
    if stage not in run["done"]:
        run["done"].append(stage)


def _stop(run, why):
    if not run.get("stopped"):
        run["stopped"] = why
        _progress(run, f"run stopped: {why}")


# ------------------------------------------------------------- the lock
def _alive(pid):
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError, TypeError):
        return False
    try:
        with open(f"/proc/{int(pid)}/cmdline", "rb") as fh:
            cmdline = fh.read().replace(b"\0", b" ")
    except OSError:
        return True
    # empty while it execs (or a zombie): counted as alive, never taken over by mistake
    return not cmdline.strip() or b"salt" in cmdline or b"python" in cmdline


def _take_lock():
    """(True, message or None) when this process holds the lock now;
    (False, why) when a live orchestration holds it."""
    path = _lock_file()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    me = {"pid": os.getpid(), "started": time.time(), "started_text": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                with open(path, encoding="utf-8") as fh:
                    holder = json.load(fh)
            except (OSError, ValueError):
                holder = {}
            if holder.get("pid") == os.getpid():
                return True, None
            if holder and _alive(holder.get("pid")):
                return False, (
                    f"another orchestration is running (pid {holder.get('pid')}, started "
                    f"{holder.get('started_text')}): wait for it to finish, or stop it (Ctrl-C, or kill "
                    f"{holder.get('pid')}); its lock is {path}"
                )
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
            taken = (
                f"took over a stale lock of pid {holder.get('pid')} (started {holder.get('started_text')}; "
                "that process is gone)" if holder else "took over an unreadable lock"
            )
            me["took_over"] = taken
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(me, fh)
        return True, me.get("took_over")
    return False, f"could not take the lock {path}"


def _release_lock():
    path = _lock_file()
    try:
        with open(path, encoding="utf-8") as fh:
            holder = json.load(fh)
    except (OSError, ValueError):
        return
    if holder.get("pid") == os.getpid():
        os.remove(path)


# ------------------------------------------------------------- signals
# Salt loads this module anew for every runner call, so a signal is kept in
# a file (the handler set by begin() writes it; every step reads it).
def _stop_file():
    return os.path.join(_dir(), "stop.request")


def _install_signals():
    path = _stop_file()
    try:
        os.remove(path)
    except FileNotFoundError:
        pass

    def on_signal(signum, frame):  # pylint: disable=unused-argument
        if os.path.exists(path):
            raise KeyboardInterrupt  # a second signal: stop now
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(signal.Signals(signum).name)
        log.warning("k8snvidia: %s: the run stops after the step now running", signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, on_signal)
        except (ValueError, OSError):  # not the main thread: Salt's own handling stays
            pass


def _check_signal(run):
    try:
        with open(_stop_file(), encoding="utf-8") as fh:
            name = fh.read().strip() or "a signal"
    except OSError:
        return
    _stop(run, f"{name} received; the step then running finished, the later ones did not run")


def _client():
    """The master's LocalClient, one per runner loader: the orchestration's
    stages share one loader (the cluster_stage state), so they share it."""
    client = __context__.get("cluster_run.local_client")
    if client is None:
        client = __context__["cluster_run.local_client"] = salt.client.get_local_client(mopts=__opts__)
    return client


# ------------------------------------------------------------- the steps
def begin(plan=None, node_timeout=NODE_TIMEOUT):
    """
    Start an orchestration run: take the lock (fails when another
    orchestration runs), start this run's record with every pillar node, and
    check that every node answers (``node_timeout`` seconds); a node that
    does not is failed with what to check. When the control plane does not
    answer, the run stops here: no node is changed.

    CLI Example:

    .. code-block:: bash

        salt-run cluster_run.begin
    """
    ok, message = _take_lock()
    if not ok:
        __context__["retcode"] = 1
        return {"result": False, "comment": message}
    _install_signals()
    view = _view()
    nodes = view["nodes"]
    started = time.time()
    run = {
        "id": time.strftime("%Y%m%dT%H%M%S", time.localtime(started)) + f"-{os.getpid()}",
        "started": started,
        "pid": os.getpid(),
        "plan": list(plan or []),
        "done": [],
        "nodes": {nid: {"failed": None, "reboots": 0, "changes": 0, "steps": {}} for nid in sorted(nodes)},
        "log": [],
    }
    _prune_runs()
    if message:
        _progress(run, message)
    _progress(run, f"orchestration started for {len(nodes)} node(s): {', '.join(sorted(nodes))}")
    ids = sorted(nodes)
    answered = _client().cmd(ids, "test.ping", tgt_type="list", timeout=int(node_timeout),
                             gather_job_timeout=min(int(node_timeout), 10)) if ids else {}
    for nid in ids:
        if answered.get(nid) is True:
            _seen(run, nid, "answered test.ping at the start")
        else:
            _fail(run, nid, "begin", f"not reachable at the start: no answer within {node_timeout}s (is its "
                  f"salt-minion running and its key accepted? `salt-key -L`, `systemctl status salt-minion`; "
                  f"a minion whose /var is full cannot start a job either: `df -h /var`)")
            _progress(run, f"[begin] {nid}: not reachable")
    lost = [n for n in view["control_plane"] if run["nodes"][n].get("failed")]
    if lost:
        _stop(run, f"the control plane {', '.join(lost)} is not reachable: no node was changed")
    _done(run, "begin")
    _save(run)
    return {"result": True, "nodes": ids, "unreachable": [n for n in ids if run["nodes"][n].get("failed")]}


# The kinds of custom code the tree ships to the minions (_utils, _grains,
# _modules, _states; the runners stay on the master): what ``sync`` syncs, in
# one job with one refresh at the end, instead of saltutil.sync_all's twenty
# kinds (about half the time of a sync that changes nothing).
SYNCED = ("utils", "grains", "modules", "states")


def _sync_problem(answer, funs):
    """Why a node's answer to the sync job is not a success (None when it is)."""
    if not isinstance(answer, dict):
        return f"no answer ({answer!r})" if answer else None
    for fun in funs:
        value = answer.get(fun)
        good = value is True if fun == "saltutil.refresh_pillar" else isinstance(value, list)
        if not good:
            lines = str(value).strip().splitlines()
            last = lines[-1] if lines else repr(value)
            return f"{fun}: {last}"
    return None


def sync(node_timeout=NODE_TIMEOUT, stage="sync"):
    """
    Sync the custom utils, grains, modules and states (:data:`SYNCED`) to the
    nodes that answered at the start, then refresh their modules and pillar
    (as ``saltutil.sync_all`` does, for the kinds the tree has); a node that
    fails it is failed.

    CLI Example:

    .. code-block:: bash

        salt-run cluster_run.sync
    """
    run = _load()
    _check_signal(run)
    if _halted(run, stage):
        return {"result": True, "skipped": run["stopped"]}
    targets = _select(run)
    funs = [f"saltutil.sync_{kind}" for kind in SYNCED] + ["saltutil.refresh_pillar"]
    args = [[{"__kwarg__": True, "refresh": False}] for _ in SYNCED] + [[]]
    got = _client().cmd(targets, funs, args, tgt_type="list", timeout=int(node_timeout)) if targets else {}
    for nid in targets:
        problem = _sync_problem(got.get(nid), funs) if got.get(nid) else f"no answer within {node_timeout}s"
        if problem:
            _fail(run, nid, "sync", f"sync of the custom modules: {problem}")
            _progress(run, f"[sync] {nid}: FAILED ({run['nodes'][nid]['failed']})")
        else:
            _seen(run, nid, "synced the custom modules")
    _done(run, stage)
    _save(run)
    return {"result": True}


def _prune_runs():
    folder = os.path.join(_dir(), "runs")
    try:
        names = sorted(n for n in os.listdir(folder) if n.endswith(".json"))
    except OSError:
        return
    for name in names[:-KEEP_RUNS]:
        try:
            os.remove(os.path.join(folder, name))
        except OSError:
            pass


def _condense(comment):
    """A state's comment without the Python traceback Salt puts in it when
    the state raised: what it raised, as its last line says."""
    if "Traceback (most recent call last)" not in comment:
        return comment
    head = comment.split("Traceback (most recent call last)", 1)[0].rstrip(" :")
    last = [line.strip() for line in comment.splitlines() if line.strip()][-1]
    last = re.sub(r"^(?:\w+\.)+(?=\w+: )", "", last)  # salt.exceptions.CommandExecutionError: ...
    return f"{head}: {last}" if head else last


def _failed_states(ret):
    """(failed state comments, changes count) of a state.apply return, in
    the order the states ran, the ones that failed by themselves before the
    ones whose requisites failed. A command that failed with no more than
    Salt's ``Command "..." run`` gets the last line of its stderr."""
    if not isinstance(ret, dict):
        if isinstance(ret, list):  # render or compile errors
            return ["; ".join(str(r).strip() for r in ret) or "no result"], 0
        return [str(ret).strip() or "no result"], 0
    bad, changes = [], 0
    items = sorted((v.get("__run_num__", 1 << 30), k, v) for k, v in ret.items() if isinstance(v, dict))
    for _num, key, val in items:
        if val.get("changes"):
            changes += 1
        if val.get("result") is False:
            sid = key.split("_|-")[1] if "_|-" in key else key
            comment = _condense(str(val.get("comment", "")).strip())
            err = val.get("changes", {}).get("stderr") if isinstance(val.get("changes"), dict) else None
            if err and comment.startswith("Command ") and comment.endswith(" run"):
                last = [line for line in str(err).splitlines() if line.strip()][-1:]
                if last:
                    comment = f"{comment}: {last[0].strip()[:300]}"
            requisite = comment.startswith("One or more requisite failed")
            bad.append((requisite, f"{sid}: {comment}"))
    return [text for _req, text in sorted(bad, key=lambda b: b[0])], changes


def _changed_states(ret, limit=50):
    """``<state module>:<id>`` of the states of a state.apply return that
    changed something (the driver runner tells a driver left as it was
    from one that was touched)."""
    if not isinstance(ret, dict):
        return []
    out = []
    for key, val in ret.items():
        if isinstance(val, dict) and val.get("changes") and "_|-" in key:
            mod, sid = key.split("_|-")[:2]
            out.append(f"{mod}:{sid}")
    return sorted(out)[:limit]


def step(step_name, sls, role=None, gpu=None, required=False, batch=None, node_timeout=NODE_TIMEOUT, stage=None):
    """
    Apply ``sls`` (a list) on the nodes that have not failed, in parallel (or
    ``batch`` at a time). A node whose run fails is recorded as failed with
    the first failing state and its comment; a node that is silent for
    ``node_timeout`` seconds (no return, no answer to Salt's job check) is
    failed with what was last seen of it. ``required``: when a node fails,
    the run stops (the control plane's steps).

    CLI Example:

    .. code-block:: bash

        salt-run cluster_run.step step_name=prepare sls='[host, kernel]'
    """
    run = _load()
    stage = stage or _stage(step_name, role)
    _check_signal(run)
    if _halted(run, stage):
        return {"result": True, "skipped": run["stopped"]}
    view = _view()
    targets = _select(run, role=role, gpu=gpu, view=view)
    if required and role:
        lost = [n for n, v in sorted(view["nodes"].items())
                if v["role"] == role and run["nodes"].get(n, {}).get("failed")]
        if lost:
            why = "; ".join(f"{n} failed earlier ({run['nodes'][n]['failed']})" for n in lost)
            _stop(run, f"{stage} cannot run: {why}")
            __context__["retcode"] = 1
            return {"result": False, "comment": why}
    if not targets:
        _done(run, stage)
        _progress(run, f"[{step_name}] no node to run")
        return {"result": True, "nodes": {}}
    _progress(run, f"[{step_name}] applying {', '.join(sls)} on {', '.join(targets)}")
    client = _client()
    results = {}
    groups = [targets] if not batch else [targets[i : i + int(batch)] for i in range(0, len(targets), int(batch))]
    for group in groups:
        rets = client.cmd(group, "state.apply", [",".join(sls)], tgt_type="list", timeout=int(node_timeout),
                          full_return=True)
        for nid in group:
            entry = run["nodes"].setdefault(nid, {"steps": {}})
            if nid not in rets:
                _fail(run, nid, step_name, f"stopped answering: silent for {node_timeout}s (last seen: "
                      f"{_last_seen(run, nid)})")
                results[nid] = False
                _progress(run, f"[{step_name}] {nid}: FAILED ({run['nodes'][nid]['failed']})")
                continue
            bad, changes = _failed_states(rets[nid].get("ret"))
            entry.setdefault("steps", {})[step_name] = {"changes": changes, "failed": bad[:3],
                                                        "changed": _changed_states(rets[nid].get("ret"))}
            entry["changes"] = entry.get("changes", 0) + changes
            if bad or rets[nid].get("retcode", 0) not in (0, None):
                _fail(run, nid, step_name, bad[0] if bad else f"retcode {rets[nid].get('retcode')}")
                results[nid] = False
            else:
                results[nid] = True
            _seen(run, nid, f"{step_name} {'ok' if results[nid] else 'failed'}")
            state = "ok" if results[nid] else f"FAILED ({run['nodes'][nid]['failed']})"
            _progress(run, f"[{step_name}] {nid}: {state}, {changes} change(s)")
    _done(run, stage)
    ok = all(results.values()) if required else any(results.values()) or not results
    if required and not ok:
        failed = [n for n, good in results.items() if not good]
        _stop(run, f"{stage} failed on {', '.join(failed)}: "
                   + "; ".join(run["nodes"][n]["failed"] for n in failed)
                   + "; the later steps (the workers' included) were not run")
    _save(run)
    if not ok:
        __context__["retcode"] = 1
    return {"result": ok, "nodes": results}


def reboot(timeout=900, role=None, grace=300, node_timeout=NODE_TIMEOUT, required=False, stage=None):
    """
    Reboot only the nodes with a reboot pending (``reboot_pending.reasons``)
    and wait, up to ``timeout`` seconds, for each to start again
    (``salt/minion/<id>/start``). Once every other node is back, a node still
    away is waited for ``grace`` seconds more, not the whole ``timeout``: it is
    failed (the re-run finishes it once it is up) and the others go on.

    CLI Example:

    .. code-block:: bash

        salt-run cluster_run.reboot timeout=900
    """
    run = _load()
    stage = stage or _stage("reboot", role)
    _check_signal(run)
    if _halted(run, stage):
        return {"result": True, "skipped": run["stopped"]}
    targets = _select(run, role=role)
    if not targets:
        _done(run, stage)
        _save(run)
        return {"result": True, "rebooted": []}
    client = _client()
    pending = client.cmd(targets, "reboot_pending.reasons", tgt_type="list", timeout=int(node_timeout))
    need = {nid: reasons for nid, reasons in pending.items() if isinstance(reasons, list) and reasons}
    for nid in targets:
        if nid not in pending:
            _fail(run, nid, "reboot", f"did not answer the reboot check within {node_timeout}s (last seen: "
                  f"{_last_seen(run, nid)})")
        else:
            _seen(run, nid, "answered the reboot check")
    if not need:
        _done(run, stage)
        _progress(run, "[reboot] no node needs a reboot")
        return _reboot_end(run, stage, role, required, [], [])
    for nid, reasons in sorted(need.items()):
        _progress(run, f"[reboot] {nid}: {'; '.join(reasons)}")
    back = set()
    late_since = None
    with salt.utils.event.get_master_event(__opts__, __opts__["sock_dir"], listen=True) as event:
        client.cmd_async(sorted(need), "system.reboot", tgt_type="list")
        started = time.time()
        deadline = started + float(timeout)
        while time.time() < deadline and back != set(need):
            if late_since is None and len(need) > 1 and len(back) == len(need) - 1:
                late_since = time.time()
                deadline = min(deadline, late_since + float(grace))
            ev = event.get_event(wait=2, full=True)
            if not ev:
                continue
            tag = ev.get("tag", "")
            for nid in need:
                if tag == f"salt/minion/{nid}/start" and nid not in back:
                    back.add(nid)
                    run["nodes"].setdefault(nid, {})["reboots"] = run["nodes"][nid].get("reboots", 0) + 1
                    _seen(run, nid, f"back from reboot after {int(time.time() - started)}s")
                    _progress(run, f"[reboot] {nid} is back")
    lost = sorted(set(need) - back)
    for nid in lost:
        if late_since is not None and time.time() < started + float(timeout):
            why = (f"not back {int(grace)}s after the other rebooted nodes (cluster:reboot_grace); "
                   "the others went on: re-run once it is up")
        else:
            why = f"did not come back within {timeout}s after the reboot"
        _fail(run, nid, "reboot", f"{why} (last seen: {_last_seen(run, nid)})")
        _progress(run, f"[reboot] {nid}: {why}")
    _done(run, stage)
    return _reboot_end(run, stage, role, required, sorted(back), lost)


def _reboot_end(run, stage, role, required, back, lost):
    nodes = _view()["nodes"]
    bad = sorted(n for n in nodes if run["nodes"].get(n, {}).get("failed")
                 and (not role or nodes[n]["role"] == role))
    if required and bad:
        _stop(run, f"{stage}: " + "; ".join(f"{n}: {run['nodes'][n]['failed']}" for n in bad)
                   + "; the later steps (the workers' included) were not run")
        __context__["retcode"] = 1
    _save(run)
    return {"result": not (required and bad), "rebooted": back, "lost": lost}


def publish_join_data(node_timeout=NODE_TIMEOUT, stage="join-data"):
    """
    Publish each worker's public key, then have the control plane publish
    join data encrypted for each (mine ``k8snvidia_join``). The token itself
    never passes through this runner's output.

    CLI Example:

    .. code-block:: bash

        salt-run cluster_run.publish_join_data
    """
    run = _load()
    _check_signal(run)
    if _halted(run, stage):
        return {"result": True, "skipped": run["stopped"]}
    client = _client()
    workers = _select(run, role="worker")
    control = _select(run, role="control-plane")
    if not control:
        _stop(run, "no working control plane: no node joins")
        __context__["retcode"] = 1
        return {"result": False}
    if workers:
        client.cmd(workers, "mine.send", ["k8snvidia_pubkey"], tgt_type="list",
                   kwarg={"mine_function": "kubeadm.pubkey"}, timeout=int(node_timeout))
    # the workers are the view's (not the control plane's own reading of the pillar)
    sent = client.cmd(control[0], "mine.send", ["k8snvidia_join"],
                      kwarg={"mine_function": "kubeadm.join_data", "workers": workers}, timeout=int(node_timeout))
    ok = bool(sent.get(control[0]))
    _progress(run, f"[join] join data published by {control[0]} for {len(workers)} worker(s)" if ok
              else f"[join] {control[0]} could not publish join data")
    _done(run, stage)
    if not ok:
        _fail(run, control[0], "join-data", "could not publish the join data (kubeadm token create)")
        _stop(run, f"{control[0]} could not publish join data: no node joins")
        __context__["retcode"] = 1
    _save(run)
    return {"result": ok}


def publish_gpu_facts(node_timeout=NODE_TIMEOUT, stage="gpu-facts"):
    """
    Refresh the GPU nodes' grains and publish their ``nvidia`` grain in the
    mine (``k8snvidia_gpu``), where kubernetes.master reads it for the node
    labels that the device plugin and GPU workloads select on.

    CLI Example:

    .. code-block:: bash

        salt-run cluster_run.publish_gpu_facts
    """
    run = _load()
    _check_signal(run)
    if _halted(run, stage):
        return {"result": True, "skipped": run["stopped"]}
    gpu_nodes = _select(run, gpu=True)
    _done(run, stage)
    if not gpu_nodes:
        _save(run)
        return {"result": True}
    client = _client()
    # one job: the grains reloaded (refresh_grains without its pillar refresh
    # clears a grains cache and reloads the modules), then the pillar refresh
    # waited for: the minion handles the two in order, so once it completes
    # the mine.send below and the gpu-check step see the new grains
    client.cmd(gpu_nodes, ["saltutil.refresh_grains", "saltutil.refresh_pillar"],
               [[{"__kwarg__": True, "refresh_pillar": False}],
                [{"__kwarg__": True, "wait": True, "timeout": int(node_timeout)}]],
               tgt_type="list", timeout=int(node_timeout))
    sent = client.cmd(gpu_nodes, "mine.send", ["k8snvidia_gpu", "nvidia"], tgt_type="list",
                      kwarg={"mine_function": "grains.get"}, timeout=int(node_timeout))
    quiet = sorted(set(gpu_nodes) - {n for n, ok in sent.items() if ok})
    _progress(run, f"[labels] GPU facts published by {len(gpu_nodes) - len(quiet)} node(s)"
                   + (f"; not by {', '.join(quiet)}" if quiet else ""))
    return {"result": True, "missing": quiet}


def gpu_check(node_timeout=NODE_TIMEOUT, stage="gpu-check", refresh=True):
    """
    Check every GPU node: its driver (through the `nvidia` grain), its
    allocatable ``nvidia.com/gpu``, and a validation pod that requests one GPU
    and runs nvidia-smi on it. ``refresh`` refreshes the nodes' grains first;
    the orchestration passes ``False``: its gpu-facts step refreshed them
    just before (only the control plane's labels step runs in between).

    CLI Example:

    .. code-block:: bash

        salt-run cluster_run.gpu_check
    """
    run = _load()
    _check_signal(run)
    if _halted(run, stage):
        return {"result": True, "skipped": run["stopped"]}
    client = _client()
    view = _view()
    control = _select(run, role="control-plane", view=view)
    gpu_nodes = _select(run, gpu=True, view=view)
    _done(run, stage)
    if not control or not gpu_nodes:
        _save(run)
        return {"result": True}
    if refresh:
        client.cmd(gpu_nodes, "saltutil.refresh_grains", tgt_type="list", timeout=int(node_timeout))
    grains = client.cmd(gpu_nodes, "grains.get", ["nvidia"], tgt_type="list", timeout=int(node_timeout))
    alloc = client.cmd(control[0], "kube.allocatable", timeout=int(node_timeout)).get(control[0]) or {}
    for nid in gpu_nodes:
        _check_signal(run)
        if run.get("stopped"):
            run.setdefault("not_done", []).append(f"gpu-check ({nid})")
            continue
        entry = run["nodes"].setdefault(nid, {})
        if nid not in grains:
            _fail(run, nid, "gpu-check", f"stopped answering (last seen: {_last_seen(run, nid)})")
            continue
        nv = grains.get(nid) or {}
        entry["driver"] = nv.get("driver_version")
        entry["gpus_allocatable"] = int((alloc.get(nid) if isinstance(alloc, dict) else 0) or 0)
        if not nv.get("driver_version"):
            _fail(run, nid, "gpu-check", "no NVIDIA driver loaded (see the nvidia grain)")
            continue
        if not entry["gpus_allocatable"]:
            _fail(run, nid, "gpu-check", "no nvidia.com/gpu allocatable (device plugin or container runtime)")
            continue
        # the image whose CUDA fits this node's driver, from the node's own map (cluster.view)
        settings = view["nodes"][nid]["validation"]
        image = __utils__["k8snvidia.validation_image"](settings, entry["driver"])
        if not image:
            _fail(run, nid, "gpu-check", f"no k8snvidia:validation:images entry fits driver {entry['driver']}")
            continue
        timeout = int(float(settings.get("timeout") or 300))
        pod = client.cmd(control[0], "kube.validate_gpu", [nid], kwarg={"image": image, "timeout": timeout},
                         timeout=timeout + 60).get(control[0]) or {}
        entry["validation_pod"] = pod.get("phase")
        busy = pod.get("phase") == "Failed" and str(pod.get("pod_reason") or "").startswith("OutOf")
        if busy:
            # every GPU serves a running pod: the node works; the check itself had no GPU to run on
            entry["validation_pod"] = "not run: every GPU in use"
        elif pod.get("phase") != "Succeeded":
            _fail(run, nid, "gpu-check", f"validation pod {pod.get('phase')}: {pod.get('reason', '')}".strip())
        _progress(run, f"[gpu-check] {nid}: driver {entry['driver']}, {entry['gpus_allocatable']} GPU(s) "
                       f"allocatable, validation pod " + (f"not run: every GPU is in use by running pods "
                                                          f"({pod.get('pod_reason')})" if busy else
                                                          str(pod.get("phase"))))
    _save(run)
    return {"result": True}


def summary():
    """
    The per-node summary of the last orchestration run: reboots, joined,
    GPUs allocatable, changes, and what failed and why; when the run was
    stopped (a signal, the control plane), why and which steps did not run.

    CLI Example:

    .. code-block:: bash

        salt-run cluster_run.summary
    """
    run = _load()
    _check_signal(run)
    ids = sorted(run.get("nodes", {}))
    reachable = [n for n in ids if not str(run["nodes"][n].get("failed") or "").startswith("begin:")]
    joined = __salt__["cluster.membership"](reachable) if reachable else {}
    out = {}
    for nid in ids:
        entry = run["nodes"][nid]
        out[nid] = {
            "reboots": entry.get("reboots", 0),
            "joined": bool(joined.get(nid)),
            "gpus_allocatable": entry.get("gpus_allocatable", 0),
            "changes": entry.get("changes", 0),
            "failed": entry.get("failed"),
        }
    run["summary"] = out
    run["finished"] = time.time()
    bad = [n for n, v in out.items() if v["failed"]]
    untouched = []
    if run.get("stopped"):
        plan = run.get("plan") or []
        not_done = [s for s in plan if s not in (run.get("done") or [])] or run.get("not_done") or []
        run["not_done"] = not_done
        untouched = [n for n in ids if not out[n]["changes"] and not out[n]["failed"]]
        _progress(run, f"run stopped: {run['stopped']}; not done: {', '.join(not_done) or '-'}"
                       + (f"; left as they were: {', '.join(untouched)}" if untouched else ""))
    _progress(run, f"orchestration {'stopped' if run.get('stopped') else 'finished'}: "
                   f"{len(ids) - len(bad) - len(untouched)} node(s) ok"
                   + (f", failed: {', '.join(bad)}" if bad else "")
                   + (f", not run: {', '.join(untouched)}" if untouched else ""))
    return out


def finish():
    """
    The orchestration's last step: release the lock and fail (non-zero exit
    code of ``salt-run state.orchestrate cluster``) when a node failed or the
    run was stopped, naming the nodes and why.

    CLI Example:

    .. code-block:: bash

        salt-run cluster_run.finish
    """
    run = _load()
    _check_signal(run)
    _release_lock()
    try:
        os.remove(_stop_file())
    except FileNotFoundError:
        pass
    bad = {n: v.get("failed") for n, v in sorted(run.get("nodes", {}).items()) if v.get("failed")}
    ok = not bad and not run.get("stopped")
    comment = "every node ok" if ok else "; ".join(
        ([f"stopped: {run['stopped']}"] if run.get("stopped") else [])
        + [f"{n} failed at {why}" for n, why in bad.items()]
    )
    if not ok:
        __context__["retcode"] = 1
    return {"result": ok, "failed": bad, "stopped": run.get("stopped"), "comment": comment}


def failed():
    """
    The failed nodes of the last orchestration run, with why (empty when
    none), and why it stopped if it did.

    CLI Example:

    .. code-block:: bash

        salt-run cluster_run.failed
    """
    run = _load()
    out = {n: v.get("failed") for n, v in sorted(run.get("nodes", {}).items()) if v.get("failed")}
    if run.get("stopped"):
        out["(stopped)"] = run["stopped"]
    if out:
        __context__["retcode"] = 1
    return out
