"""
The steps of the ``cluster`` orchestration (salt/cluster/init.sls).

Each step targets the nodes of the pillar that have not failed yet in this
run, records per-node results in a run file (no secrets in it), and reports
progress there and on the event bus (tag ``k8snvidia/progress``). A node that
fails a step is reported and left out of later steps; the others go on. A
step marked ``required`` fails the orchestration when any of its nodes fails
(the control plane: no node joins a cluster that has none).

    salt-run k8snvidia.run_file      # where this run's record is
"""

import json
import logging
import os
import time

import salt.client
import salt.utils.event

log = logging.getLogger(__name__)

PROGRESS_TAG = "k8snvidia/progress"


# ------------------------------------------------------------ run record
def run_file():
    """
    Path of the record of the current (or last) orchestration run.

    CLI Example:

    .. code-block:: bash

        salt-run k8snvidia.run_file
    """
    return os.path.join(__opts__["cachedir"], "k8snvidia", "run.json")


def _load():
    try:
        with open(run_file(), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {"nodes": {}, "log": []}


def _save(run):
    path = run_file()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(run, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


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


def _pillar_nodes():
    return __salt__["cluster.nodes"]()


def _select(run, role=None, gpu=None):
    nodes = _pillar_nodes()
    out = []
    for nid, node in sorted(nodes.items()):
        node = node or {}
        if run["nodes"].get(nid, {}).get("failed"):
            continue
        if role and node.get("role") != role:
            continue
        if gpu is not None and bool(node.get("gpus")) != gpu:
            continue
        out.append(nid)
    return out


def _fail(run, nid, step, why):
    entry = run["nodes"].setdefault(nid, {})
    if not entry.get("failed"):
        entry["failed"] = f"{step}: {why}"


# ------------------------------------------------------------- the steps
def begin():
    """
    Start the record of an orchestration run: every pillar node, with what
    is known of it from earlier runs (reboots are counted per run).

    CLI Example:

    .. code-block:: bash

        salt-run k8snvidia.begin
    """
    nodes = _pillar_nodes()
    run = {
        "started": time.time(),
        "nodes": {nid: {"failed": None, "reboots": 0, "changes": 0, "steps": {}} for nid in sorted(nodes)},
        "log": [],
    }
    _progress(run, f"orchestration started for {len(nodes)} node(s): {', '.join(sorted(nodes))}")
    return {"nodes": sorted(nodes)}


def _failed_states(ret):
    """(failed state comments, changes count) of a state.apply return."""
    if not isinstance(ret, dict):
        return [str(ret).strip() or "no result"], 0
    bad, changes = [], 0
    for key, val in ret.items():
        if not isinstance(val, dict):
            continue
        if val.get("changes"):
            changes += 1
        if val.get("result") is False:
            sid = key.split("_|-")[1] if "_|-" in key else key
            bad.append(f"{sid}: {str(val.get('comment', '')).strip()}")
    return bad, changes


def step(step_name, sls, role=None, gpu=None, required=False, batch=None, timeout=3600):
    """
    Apply ``sls`` (a list) on the nodes that have not failed, in parallel (or
    ``batch`` at a time). A node whose run fails, or that does not answer,
    is recorded as failed with the first failing state and its comment.

    CLI Example:

    .. code-block:: bash

        salt-run k8snvidia.step step_name=prepare sls= '[host, kernel]'
    """
    run = _load()
    targets = _select(run, role=role, gpu=gpu)
    if not targets:
        _progress(run, f"[{step_name}] no node to run")
        return {"result": True, "nodes": {}}
    _progress(run, f"[{step_name}] applying {', '.join(sls)} on {', '.join(targets)}")
    client = salt.client.get_local_client(mopts=__opts__)
    results = {}
    groups = [targets] if not batch else [targets[i : i + int(batch)] for i in range(0, len(targets), int(batch))]
    for group in groups:
        rets = client.cmd(group, "state.apply", [",".join(sls)], tgt_type="list", timeout=timeout, full_return=True)
        for nid in group:
            entry = run["nodes"].setdefault(nid, {"steps": {}})
            if nid not in rets:
                _fail(run, nid, step_name, "the minion did not answer (is it up?)")
                results[nid] = False
                continue
            bad, changes = _failed_states(rets[nid].get("ret"))
            entry.setdefault("steps", {})[step_name] = {"changes": changes, "failed": bad[:3]}
            entry["changes"] = entry.get("changes", 0) + changes
            if bad or rets[nid].get("retcode", 0) not in (0, None):
                _fail(run, nid, step_name, bad[0] if bad else f"retcode {rets[nid].get('retcode')}")
                results[nid] = False
            else:
                results[nid] = True
            state = "ok" if results[nid] else f"FAILED ({run['nodes'][nid]['failed']})"
            _progress(run, f"[{step_name}] {nid}: {state}, {changes} change(s)")
    ok = all(results.values()) if required else any(results.values()) or not results
    if not ok:
        __context__["retcode"] = 1
    return {"result": ok, "nodes": results}


def reboot(timeout=900):
    """
    Reboot only the nodes with a reboot pending (``k8snvidia.reboot_pending``)
    and wait, up to ``timeout`` seconds, for each to start again
    (``salt/minion/<id>/start``). A node that does not come back is failed.

    CLI Example:

    .. code-block:: bash

        salt-run k8snvidia.reboot timeout=900
    """
    run = _load()
    targets = _select(run)
    if not targets:
        return {"result": True, "rebooted": []}
    client = salt.client.get_local_client(mopts=__opts__)
    pending = client.cmd(targets, "k8snvidia.reboot_pending", tgt_type="list", timeout=60)
    need = {nid: reasons for nid, reasons in pending.items() if isinstance(reasons, list) and reasons}
    for nid in targets:
        if nid not in pending:
            _fail(run, nid, "reboot", "the minion did not answer before the reboot check")
    if not need:
        _progress(run, "[reboot] no node needs a reboot")
        return {"result": True, "rebooted": []}
    for nid, reasons in sorted(need.items()):
        _progress(run, f"[reboot] {nid}: {'; '.join(reasons)}")
    back = set()
    with salt.utils.event.get_master_event(__opts__, __opts__["sock_dir"], listen=True) as event:
        client.cmd_async(sorted(need), "system.reboot", tgt_type="list")
        deadline = time.time() + float(timeout)
        while time.time() < deadline and back != set(need):
            ev = event.get_event(wait=5, full=True)
            if not ev:
                continue
            tag = ev.get("tag", "")
            for nid in need:
                if tag == f"salt/minion/{nid}/start" and nid not in back:
                    back.add(nid)
                    run["nodes"].setdefault(nid, {})["reboots"] = run["nodes"][nid].get("reboots", 0) + 1
                    _progress(run, f"[reboot] {nid} is back")
    for nid in set(need) - back:
        _fail(run, nid, "reboot", f"did not come back within {timeout}s after the reboot")
        _progress(run, f"[reboot] {nid} did not come back within {timeout}s")
    _save(run)
    return {"result": True, "rebooted": sorted(back), "lost": sorted(set(need) - back)}


def publish_join_data():
    """
    Publish each worker's public key, then have the control plane publish
    join data encrypted for each (mine ``k8snvidia_join``). The token itself
    never passes through this runner's output.

    CLI Example:

    .. code-block:: bash

        salt-run k8snvidia.publish_join_data
    """
    run = _load()
    client = salt.client.get_local_client(mopts=__opts__)
    workers = _select(run, role="worker")
    control = _select(run, role="control-plane")
    if not control:
        __context__["retcode"] = 1
        _progress(run, "[join] no working control plane: no node joins")
        return {"result": False}
    if workers:
        client.cmd(workers, "mine.send", ["k8snvidia_pubkey"], tgt_type="list",
                   kwarg={"mine_function": "kubeadm.pubkey"}, timeout=60)
    sent = client.cmd(control[0], "mine.send", ["k8snvidia_join"],
                      kwarg={"mine_function": "kubeadm.join_data"}, timeout=120)
    ok = bool(sent.get(control[0]))
    _progress(run, f"[join] join data published by {control[0]} for {len(workers)} worker(s)" if ok
              else f"[join] {control[0]} could not publish join data")
    if not ok:
        __context__["retcode"] = 1
    return {"result": ok}


def publish_gpu_facts():
    """
    Refresh the GPU nodes' grains and publish their ``nvidia`` grain in the
    mine (``k8snvidia_gpu``), where kubernetes.master reads it for the node
    labels that the device plugin and GPU workloads select on.

    CLI Example:

    .. code-block:: bash

        salt-run k8snvidia.publish_gpu_facts
    """
    run = _load()
    gpu_nodes = _select(run, gpu=True)
    if not gpu_nodes:
        return {"result": True}
    client = salt.client.get_local_client(mopts=__opts__)
    client.cmd(gpu_nodes, "saltutil.refresh_grains", tgt_type="list", timeout=60)
    sent = client.cmd(gpu_nodes, "mine.send", ["k8snvidia_gpu", "nvidia"], tgt_type="list",
                      kwarg={"mine_function": "grains.get"}, timeout=60)
    quiet = sorted(set(gpu_nodes) - {n for n, ok in sent.items() if ok})
    _progress(run, f"[labels] GPU facts published by {len(gpu_nodes) - len(quiet)} node(s)"
                   + (f"; not by {', '.join(quiet)}" if quiet else ""))
    return {"result": True, "missing": quiet}


def gpu_check():
    """
    Check every GPU node: its driver (through the `nvidia` grain), its
    allocatable ``nvidia.com/gpu``, and a validation pod that requests one GPU
    and runs nvidia-smi on it.

    CLI Example:

    .. code-block:: bash

        salt-run k8snvidia.gpu_check
    """
    run = _load()
    client = salt.client.get_local_client(mopts=__opts__)
    control = _select(run, role="control-plane")
    gpu_nodes = _select(run, gpu=True)
    if not control or not gpu_nodes:
        return {"result": True}
    client.cmd(gpu_nodes, "saltutil.refresh_grains", tgt_type="list", timeout=60)
    grains = client.cmd(gpu_nodes, "grains.get", ["nvidia"], tgt_type="list", timeout=60)
    alloc = client.cmd(control[0], "kubeadm.allocatable", timeout=120).get(control[0]) or {}
    for nid in gpu_nodes:
        entry = run["nodes"].setdefault(nid, {})
        nv = grains.get(nid) or {}
        entry["driver"] = nv.get("driver_version")
        entry["gpus_allocatable"] = int((alloc.get(nid) if isinstance(alloc, dict) else 0) or 0)
        if not nv.get("driver_version"):
            _fail(run, nid, "gpu-check", "no NVIDIA driver loaded (see the nvidia grain)")
            continue
        if not entry["gpus_allocatable"]:
            _fail(run, nid, "gpu-check", "no nvidia.com/gpu allocatable (device plugin or container runtime)")
            continue
        pod = client.cmd(control[0], "kubeadm.validate_gpu", [nid], timeout=600).get(control[0]) or {}
        entry["validation_pod"] = pod.get("phase")
        if pod.get("phase") != "Succeeded":
            _fail(run, nid, "gpu-check", f"validation pod {pod.get('phase')}: {pod.get('reason', '')}".strip())
        _progress(run, f"[gpu-check] {nid}: driver {entry['driver']}, {entry['gpus_allocatable']} GPU(s) "
                       f"allocatable, validation pod {pod.get('phase')}")
    _save(run)
    return {"result": True}


def summary():
    """
    The per-node summary of the last orchestration run: reboots, joined,
    GPUs allocatable, changes, and what failed and why.

    CLI Example:

    .. code-block:: bash

        salt-run k8snvidia.summary
    """
    run = _load()
    ids = sorted(run.get("nodes", {}))
    joined = __salt__["cluster.membership"](ids) if ids else {}
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
    _save(run)
    failed = [n for n, v in out.items() if v["failed"]]
    _progress(run, f"orchestration finished: {len(ids) - len(failed)} node(s) ok"
                   + (f", failed: {', '.join(failed)}" if failed else ""))
    return out
