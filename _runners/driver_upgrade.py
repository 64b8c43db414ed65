"""
Driver upgrades on joined GPU nodes: the steps around the orchestration's
``driver`` step (salt/cluster/init.sls) that need the control plane's admin
kubeconfig, which no GPU node has.

The device plugin, DCGM, nvidia-persistenced and every CUDA pod hold
``/dev/nvidia*`` open, so NVIDIA's ``.run`` installer cannot unload the old
module and aborts under ``--silent``. Three stages (docs/driver.md):

:func:`drain` (stage ``driver-drain``, before the driver step) asks every
joined GPU node what its driver state would do (``state.apply nvidia.driver
test=True``). A node whose plan says ``drain`` (a change while an NVIDIA
module is loaded) is, on the control plane:

1. ``kubectl cordon <node>``;
2. ``kubectl label --overwrite node <node> nvidia.com/gpu.deploy.device-plugin=false``:
   the device plugin DaemonSet does not run where that label is ``false``
   (its node affinity; ``kubectl drain`` skips DaemonSet pods), as with
   NVIDIA's GPU operator;
3. ``kubectl drain <node> --ignore-daemonsets --delete-emptydir-data
   --timeout=<t>s`` (the GPU pods and every other workload leave; a pod
   without a controller stops the drain: it would be lost);
4. waits until no device plugin pod is left on the node.

A node whose plan refuses (something that is neither a pod nor one of
``driver:stop_services`` holds the GPU) is not drained: its driver step
then fails with the refusal, and its workloads were never disturbed.

The driver state itself stops ``driver:stop_services`` (nvidia-persistenced,
DCGM), checks that nothing holds the GPU, installs, verifies (DKMS
included) and starts them again; a holder left is refused by name.

:func:`restore` (stage ``driver-restore``, after the driver step and its
reboot) lets the device plugin back on each drained node whose driver step
succeeded (the label removed) and waits until it runs there; the node stays
cordoned, so the ``gpu-check`` validation pod (bound to the node by name)
finds the GPU free.

:func:`uncordon` (stage ``driver-uncordon``, after ``gpu-check``): ``kubectl
uncordon`` for each drained node that has not failed. A drained node whose
driver was not touched (the drain or the driver step refused before the
driver changed) is given back too: its old driver is intact. A node whose
driver step failed after it began, or whose new driver failed its check,
stays cordoned, without the device plugin, and is named in the summary.

    salt-run driver_upgrade.drain            # every GPU node that needs it
    salt-run driver_upgrade.drain node-110   # one node, by hand
    salt-run driver_upgrade.restore node-110
    salt-run driver_upgrade.uncordon node-110
"""

import json
import logging
import os
import time

import salt.client

log = logging.getLogger(__name__)

# NVIDIA's GPU operator's label for the same purpose: the device plugin
# DaemonSet (salt/kubernetes/files/device-plugin.yaml.jinja) runs on nodes
# where it is not "false"
DEPLOY_LABEL = "nvidia.com/gpu.deploy.device-plugin"
PLUGIN_SELECTOR = "name=nvidia-device-plugin-ds"


def _run_path():
    return os.path.join(__opts__["cachedir"], "k8snvidia", "run.json")


def _load():
    try:
        with open(_run_path(), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {"nodes": {}, "log": []}


def _save(run):
    path = _run_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(run, fh, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _note(run, message):
    run.setdefault("log", []).append(f"{time.strftime('%H:%M:%S')} {message}")
    log.info("driver_upgrade: %s", message)


def _fail(run, nid, stage, why):
    entry = run["nodes"].setdefault(nid, {})
    if not entry.get("failed"):
        entry["failed"] = f"{stage}: {why}"


def _nodes():
    """The cluster view's nodes (cluster.view: role, gpu, driver)."""
    return __salt__["cluster.view"]()["nodes"]


def _alive(run, nodes):
    return [n for n in sorted(nodes) if not run["nodes"].get(n, {}).get("failed")]


def _control_plane(run, nodes):
    cps = [n for n in _alive(run, nodes) if nodes[n]["role"] == "control-plane"]
    return cps[0] if cps else None


def _kubectl(client, control, args, timeout=120):
    """kubectl with the admin kubeconfig on the control plane (its
    ``kube.kubectl``): (rc, text)."""
    ret = client.cmd(control, "kube.kubectl", [list(args)], timeout=timeout).get(control)
    if not isinstance(ret, dict):
        # a string is the minion's error (kubectl not installed); None: no answer
        return 1, str(ret) if isinstance(ret, str) else f"{control} did not answer ({ret!r})"
    rc = ret.get("retcode", 1)
    out = (ret.get("stdout") or "").strip()
    return rc, out if rc == 0 else ((ret.get("stderr") or "").strip() or out)


def _driver_states(prediction):
    if not isinstance(prediction, dict):
        return []
    return [v for k, v in prediction.items() if k.startswith("nvidia_driver_|-") and isinstance(v, dict)]


def drain_needed(prediction):
    """Whether a node's ``state.apply nvidia.driver test=True`` return
    plans a driver change while the GPU is in use (``changes.drain``)."""
    return any((v.get("changes") or {}).get("drain") for v in _driver_states(prediction))


def refused(prediction):
    """The comment of a driver state that refuses in its prediction (what
    holds the GPU), or None."""
    for v in _driver_states(prediction):
        if v.get("result") is False:
            return str(v.get("comment") or "refused")
    return None


def _plugin_phases(client, control, node, namespace):
    """(rc, [phase of each device plugin pod on ``node``] or the error)."""
    rc, out = _kubectl(client, control, ["get", "pods", "-n", namespace, "-l", PLUGIN_SELECTOR,
                                         f"--field-selector=spec.nodeName={node}", "-o",
                                         "jsonpath={range .items[*]}{.status.phase}{\"\\n\"}{end}"])
    return (rc, [line.strip() for line in out.splitlines() if line.strip()] if rc == 0 else out)


def _stage_done(run, stage):
    """The orchestration's record of stages (cluster_run runner): done, or not
    done when the run was stopped."""
    key = "not_done" if run.get("stopped") else "done"
    if stage and stage not in run.setdefault(key, []):
        run[key].append(stage)


def _wait_plugin(client, control, nid, namespace, timeout, gone):
    """Wait until no device plugin pod is on the node (``gone``) or one runs
    there; the error, or None."""
    deadline = time.time() + float(timeout)
    while True:
        rc, phases = _plugin_phases(client, control, nid, namespace)
        if rc != 0:
            return f"cannot list the device plugin pods on {nid}: {phases}"
        if (gone and not phases) or (not gone and "Running" in phases):
            return None
        if time.time() > deadline:
            return (f"the device plugin pod did not leave {nid} within {timeout}s" if gone else
                    f"the device plugin did not start on {nid} within {timeout}s "
                    f"({', '.join(phases) or 'no pod'}): see `kubectl -n {namespace} describe ds "
                    "nvidia-device-plugin-daemonset`")
        time.sleep(2)


def drain(node=None, timeout=600, namespace="kube-system", stage=None, node_timeout=None):
    """
    Cordon and drain the joined GPU nodes whose driver is about to be
    replaced, and move the device plugin off them (see the module doc).
    ``node``: only that node, whatever its prediction says. A node that
    cannot be drained is recorded as failed, so the driver step skips it.

    CLI Example:

    .. code-block:: bash

        salt-run driver_upgrade.drain
        salt-run driver_upgrade.drain node-110
    """
    stage_name = stage or "driver-drain"
    run = _load()
    if run.get("stopped"):  # a stopped run (signal, control plane) drains nothing
        _stage_done(run, stage)
        _save(run)
        return {"result": True, "drained": []}
    nodes = _nodes()
    client = salt.client.get_local_client(mopts=__opts__)
    gpu = [n for n in _alive(run, nodes) if nodes[n]["gpu"] and (node is None or n == node)]
    _stage_done(run, stage)
    if not gpu:
        _save(run)
        return {"result": True, "drained": []}
    # only nodes in the cluster can hold GPU pods: ask those (a first run asks nobody)
    joined = __salt__["cluster.membership"](gpu)
    targets = [n for n in gpu if joined.get(n)]
    if node is None and targets:
        preds = client.cmd(targets, "state.apply", ["nvidia.driver"], tgt_type="list", kwarg={"test": True},
                           timeout=600)
        for nid in targets:
            why = refused(preds.get(nid))
            if why:
                # the driver step will refuse with this: disturb nothing for an upgrade that cannot happen
                _note(run, f"[{stage_name}] {nid}: not drained, its driver step would refuse: {why[:300]}")
        targets = [n for n in targets if drain_needed(preds.get(n)) and not refused(preds.get(n))]
    control = _control_plane(run, nodes)
    if not targets:
        _note(run, f"[{stage_name}] no joined GPU node has its driver replaced")
        _save(run)
        return {"result": True, "drained": []}
    if not control:
        for nid in targets:
            _fail(run, nid, stage_name, "its driver must be replaced but no control plane is up to drain it")
        _save(run)
        return {"result": False, "drained": []}
    done = []
    for nid in targets:
        steps = (["cordon", nid], ["label", "--overwrite", "node", nid, f"{DEPLOY_LABEL}=false"],
                 ["drain", nid, "--ignore-daemonsets", "--delete-emptydir-data", f"--timeout={int(timeout)}s"])
        error = None
        for args in steps:
            rc, out = _kubectl(client, control, args, timeout=int(timeout) + 60)
            if rc != 0:
                error = f"kubectl {' '.join(args)} failed: {out}"
                break
        if error is None:
            error = _wait_plugin(client, control, nid, namespace, timeout, gone=True)
        entry = run["nodes"].setdefault(nid, {})
        entry["drained"] = True  # uncordon gives it back, also after a partial drain
        if error:
            _fail(run, nid, stage_name, error)
            _note(run, f"[{stage_name}] {nid}: FAILED ({error})")
        else:
            done.append(nid)
            _note(run, f"[{stage_name}] {nid}: cordoned, drained, device plugin moved off")
    _save(run)
    return {"result": len(done) == len(targets), "drained": done}


def _driver_untouched(entry):
    """Whether a failed node's driver is as it was: the failure came before
    the driver step (the drain), or the driver step changed no
    ``nvidia_driver`` state (a refusal, a prerequisite that failed)."""
    failed = str(entry.get("failed") or "")
    if failed.startswith("driver-drain:"):
        return True
    step = (entry.get("steps") or {}).get("driver")
    if failed.startswith("driver:") and isinstance(step, dict) and "changed" in step:
        return not any(str(s).startswith("nvidia_driver:") for s in step["changed"])
    return False


def _drained(run, node):
    out = [n for n, e in sorted(run["nodes"].items()) if e.get("drained") and (node is None or n == node)]
    if node is not None and node not in out:
        out.append(node)
    return out


def _give_back_begin(stage):
    """The run record, a client and the control plane for restore and
    uncordon; their stage is marked done even in a stopped run (what drain
    took is given back)."""
    run = _load()
    client = salt.client.get_local_client(mopts=__opts__)
    control = _control_plane(run, _nodes())
    if stage and stage not in run.setdefault("done", []):
        run["done"].append(stage)
    return run, client, control


def restore(node=None, timeout=300, namespace="kube-system", stage=None, node_timeout=None):
    """
    Let the device plugin back on the drained nodes whose driver step
    succeeded, or whose driver was not touched (the label removed), and wait
    until it runs there; the nodes stay cordoned until :func:`uncordon`. A
    node where the plugin does not start within ``timeout`` seconds fails.

    CLI Example:

    .. code-block:: bash

        salt-run driver_upgrade.restore
        salt-run driver_upgrade.restore node-110
    """
    stage_name = stage or "driver-restore"
    run, client, control = _give_back_begin(stage)
    back, kept = [], []
    for nid in _drained(run, node):
        entry = run["nodes"].setdefault(nid, {})
        if entry.get("restored"):
            continue
        if entry.get("failed") and node is None and not _driver_untouched(entry):
            kept.append(nid)
            _note(run, f"[{stage_name}] {nid}: no device plugin while its driver is not known good: {entry['failed']}")
            continue
        if not control:
            kept.append(nid)
            continue
        args = ["label", "node", nid, f"{DEPLOY_LABEL}-"]
        rc, out = _kubectl(client, control, args)
        error = None if rc == 0 else f"kubectl {' '.join(args)} failed: {out}"
        if error is None and not entry.get("failed"):
            error = _wait_plugin(client, control, nid, namespace, timeout, gone=False)
        if error:
            kept.append(nid)
            _fail(run, nid, stage_name, error)
            _note(run, f"[{stage_name}] {nid}: FAILED ({error})")
        else:
            entry["restored"] = True
            back.append(nid)
            _note(run, f"[{stage_name}] {nid}: device plugin back (still cordoned until the GPU check)")
    _save(run)
    return {"result": not kept, "restored": back, "kept": kept}


def uncordon(node=None, namespace="kube-system", stage=None, node_timeout=None):
    """
    Give back the nodes :func:`drain` took (``kubectl uncordon``, and the
    device plugin label if :func:`restore` has not removed it yet): those
    that have not failed, and those whose driver was not touched. A node
    whose driver step failed after it began, or that failed its GPU check,
    stays cordoned and says so. ``node``: that node, whatever its record.

    CLI Example:

    .. code-block:: bash

        salt-run driver_upgrade.uncordon
        salt-run driver_upgrade.uncordon node-110
    """
    stage_name = stage or "driver-uncordon"
    run, client, control = _give_back_begin(stage)
    back, kept = [], []
    for nid in _drained(run, node):
        entry = run["nodes"].setdefault(nid, {})
        untouched = entry.get("failed") and _driver_untouched(entry)
        if entry.get("failed") and node is None and not untouched:
            kept.append(nid)
            _note(run, f"[{stage_name}] {nid} stays cordoned: {entry['failed']}")
            continue
        if not control:
            kept.append(nid)
            continue
        steps = [] if entry.get("restored") else [["label", "node", nid, f"{DEPLOY_LABEL}-"]]
        error = None
        for args in steps + [["uncordon", nid]]:
            rc, out = _kubectl(client, control, args)
            if rc != 0:
                error = f"kubectl {' '.join(args)} failed: {out}"
                break
        if error:
            kept.append(nid)
            _fail(run, nid, stage_name, error)
            _note(run, f"[{stage_name}] {nid}: FAILED ({error})")
        else:
            entry.pop("drained", None)
            entry.pop("restored", None)
            back.append(nid)
            _note(run, f"[{stage_name}] {nid}: schedulable again" + (
                f" (its driver is unchanged: {entry['failed']})" if untouched else ""))
    _save(run)
    return {"result": not kept, "uncordoned": back, "cordoned": kept}
