"""
Driver upgrades on joined GPU nodes: the steps around the orchestration's
``driver`` step (salt/cluster/init.sls) that need the control plane's admin
kubeconfig, which no GPU node has.

The device plugin, DCGM and nvidia-persistenced hold ``/dev/nvidia*`` open,
so NVIDIA's ``.run`` installer cannot unload the old module and aborts
under ``--silent``. Before the driver step, :func:`drain` asks every GPU node
what its driver state would do (``state.apply nvidia.driver test=True``:
the plan says ``drain`` when a change is planned while an NVIDIA module is
loaded) and, for each such node that is in the cluster, on the control
plane:

1. ``kubectl cordon <node>``;
2. ``kubectl label --overwrite node <node> nvidia.com/gpu.present=false``:
   the device plugin DaemonSet selects ``nvidia.com/gpu.present=true``, so
   its pod leaves the node (``kubectl drain`` skips DaemonSet pods);
3. ``kubectl drain <node> --ignore-daemonsets --delete-emptydir-data``
   (the GPU pods and every other workload move or stop);
4. waits until no device plugin pod runs on the node.

The driver state itself then stops nvidia-dcgm / nvidia-persistenced
(``driver:stop_services``), installs, verifies (DKMS included) and starts
them again; a holder left is refused by name (pid, command, device).
After the driver step, :func:`uncordon` gives back the nodes whose driver
step succeeded: ``nvidia.com/gpu.present=true`` and ``kubectl uncordon``.
A node whose driver step failed stays cordoned (no pods land on a node
without a working driver) and is named in the summary.

    salt-run k8snvidia_driver.drain            # every GPU node that needs it
    salt-run k8snvidia_driver.drain node-110   # one node, by hand
    salt-run k8snvidia_driver.uncordon node-110
"""

import json
import logging
import os
import time

import salt.client

log = logging.getLogger(__name__)

ADMIN_CONF = "/etc/kubernetes/admin.conf"
PRESENT_LABEL = "nvidia.com/gpu.present"
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
    log.info("k8snvidia_driver: %s", message)


def _fail(run, nid, why):
    entry = run["nodes"].setdefault(nid, {})
    if not entry.get("failed"):
        entry["failed"] = f"driver: {why}"


def _nodes():
    return __salt__["cluster.nodes"]() or {}


def _alive(run, nodes):
    return [n for n in sorted(nodes) if not run["nodes"].get(n, {}).get("failed")]


def _control_plane(run, nodes):
    cps = [n for n in _alive(run, nodes) if (nodes[n] or {}).get("role") == "control-plane"]
    return cps[0] if cps else None


def _kubectl(client, control, args, timeout=120):
    """kubectl with the admin kubeconfig on the control plane: (rc, text)."""
    cmd = ["kubectl", f"--kubeconfig={ADMIN_CONF}", *args]
    ret = client.cmd(control, "cmd.run_all", [cmd], kwarg={"python_shell": False, "ignore_retcode": True},
                     timeout=timeout).get(control)
    if not isinstance(ret, dict):
        return 1, f"{control} did not answer ({ret!r})"
    rc = ret.get("retcode", 1)
    out = (ret.get("stdout") or "").strip()
    return rc, out if rc == 0 else ((ret.get("stderr") or "").strip() or out)


def drain_needed(prediction):
    """Whether a node's ``state.apply nvidia.driver test=True`` return
    plans a driver change while the GPU is in use (``changes.drain``)."""
    if not isinstance(prediction, dict):
        return False
    for key, val in prediction.items():
        if key.startswith("nvidia_driver_|-") and isinstance(val, dict) and (val.get("changes") or {}).get("drain"):
            return True
    return False


def _plugin_pods(client, control, node, namespace):
    rc, out = _kubectl(client, control, ["get", "pods", "-n", namespace, "-l", PLUGIN_SELECTOR,
                                         f"--field-selector=spec.nodeName={node}", "-o", "name"])
    return (rc, [line for line in out.splitlines() if line.strip()] if rc == 0 else out)


def _stage_done(run, stage):
    """The orchestration's record of stages (k8snvidia runner): done, or not
    done when the run was stopped."""
    key = "not_done" if run.get("stopped") else "done"
    if stage and stage not in run.setdefault(key, []):
        run[key].append(stage)


def drain(node=None, timeout=600, namespace="kube-system", stage=None, node_timeout=None):
    """
    Cordon and drain the joined GPU nodes whose driver is about to be
    replaced, and move the device plugin off them (see the module doc).
    ``node``: only that node, whatever its prediction says. A node that
    cannot be drained is recorded as failed, so the driver step skips it.

    CLI Example:

    .. code-block:: bash

        salt-run k8snvidia_driver.drain
        salt-run k8snvidia_driver.drain node-110
    """
    run = _load()
    if run.get("stopped"):  # a stopped run (signal, control plane) drains nothing
        _stage_done(run, stage)
        _save(run)
        return {"result": True, "drained": []}
    nodes = _nodes()
    client = salt.client.get_local_client(mopts=__opts__)
    gpu = [n for n in _alive(run, nodes) if (nodes[n] or {}).get("gpus") and (node is None or n == node)]
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
        targets = [n for n in targets if drain_needed(preds.get(n))]
    control = _control_plane(run, nodes)
    if not targets:
        _note(run, "[driver-drain] no joined GPU node has its driver replaced")
        _save(run)
        return {"result": True, "drained": []}
    if not control:
        for nid in targets:
            _fail(run, nid, "its driver must be replaced but no control plane is up to drain it")
        _save(run)
        return {"result": False, "drained": []}
    done = []
    for nid in targets:
        steps = (["cordon", nid], ["label", "--overwrite", "node", nid, f"{PRESENT_LABEL}=false"],
                 ["drain", nid, "--ignore-daemonsets", "--delete-emptydir-data", f"--timeout={int(timeout)}s"])
        error = None
        for args in steps:
            rc, out = _kubectl(client, control, args, timeout=int(timeout) + 60)
            if rc != 0:
                error = f"kubectl {' '.join(args)} failed: {out}"
                break
        deadline = time.time() + float(timeout)
        while error is None:
            rc, pods = _plugin_pods(client, control, nid, namespace)
            if rc != 0:
                error = f"cannot list the device plugin pods on {nid}: {pods}"
            elif not pods:
                break
            elif time.time() > deadline:
                error = f"the device plugin pod ({', '.join(pods)}) did not leave {nid} within {timeout}s"
            else:
                time.sleep(2)
        entry = run["nodes"].setdefault(nid, {})
        entry["drained"] = True  # uncordon gives it back, also after a partial drain
        if error:
            _fail(run, nid, error)
            _note(run, f"[driver-drain] {nid}: FAILED ({error})")
        else:
            done.append(nid)
            _note(run, f"[driver-drain] {nid}: cordoned, drained, device plugin moved off")
    _save(run)
    return {"result": len(done) == len(targets), "drained": done}


def uncordon(node=None, stage=None, node_timeout=None):
    """
    Give back the nodes :func:`drain` took: the device plugin label set
    again and ``kubectl uncordon``, for each node whose driver step
    succeeded (or ``node``, by hand). A node whose driver step failed stays
    cordoned, and says so.

    CLI Example:

    .. code-block:: bash

        salt-run k8snvidia_driver.uncordon
        salt-run k8snvidia_driver.uncordon node-110
    """
    run = _load()
    nodes = _nodes()
    client = salt.client.get_local_client(mopts=__opts__)
    control = _control_plane(run, nodes)
    # also in a stopped run: what drain took is given back
    if stage and stage not in run.setdefault("done", []):
        run["done"].append(stage)
    drained = [n for n, e in sorted(run["nodes"].items()) if e.get("drained") and (node is None or n == node)]
    if node is not None and node not in drained:
        drained.append(node)
    back, kept = [], []
    for nid in drained:
        entry = run["nodes"].setdefault(nid, {})
        if entry.get("failed") and node is None:
            kept.append(nid)
            _note(run, f"[driver-uncordon] {nid} stays cordoned: {entry['failed']}")
            continue
        if not control:
            kept.append(nid)
            continue
        error = None
        for args in (["label", "--overwrite", "node", nid, f"{PRESENT_LABEL}=true"], ["uncordon", nid]):
            rc, out = _kubectl(client, control, args)
            if rc != 0:
                error = f"kubectl {' '.join(args)} failed: {out}"
                break
        if error:
            kept.append(nid)
            _fail(run, nid, error)
            _note(run, f"[driver-uncordon] {nid}: FAILED ({error})")
        else:
            entry.pop("drained", None)
            back.append(nid)
            _note(run, f"[driver-uncordon] {nid}: schedulable again")
    _save(run)
    return {"result": not kept, "uncordoned": back, "cordoned": kept}
