"""Helpers of the orchestration scenarios (tests/twin/test_orchestrate*.py):
one scenario per file, so that the test command's three workers run three of
them at a time."""

import copy
import json
import os
import shutil

import yaml

from tests.twin.conftest import ROOT

SEED = yaml.safe_load((ROOT / "twin/clusters/seed.yaml").read_text())
ORCH = ("salt-run", "state.orchestrate", "cluster", "--out=json", "--log-level=quiet")


def run_record(twin):
    path = twin.run_dir / "master/var/cache/salt/master/k8snvidia/run.json"
    return json.loads(path.read_text())


def orchestrate(twin, *extra):
    return twin.command(*ORCH, *extra, timeout=1800)


def seed_subset(keep, faults=None, extra=None):
    """The seed's cluster file with only the nodes in ``keep`` (and
    ``extra`` node entries appended), ``faults`` per node id."""
    cluster = copy.deepcopy(SEED)
    cluster["nodes"] = [n for n in cluster["nodes"] if n["id"] in keep] + list(extra or [])
    for node in cluster["nodes"]:
        if node["id"] in (faults or {}):
            node["faults"] = faults[node["id"]]
    return cluster


def pillar_copy(tmp_path, keep=None, extra_nodes=None, **cluster_keys):
    """A copy of the repo's pillar: only the nodes in ``keep`` (all when
    None), ``extra_nodes`` added, ``cluster_keys`` set under cluster:."""
    dst = tmp_path / "pillar"
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(ROOT / "pillar", dst)
    if keep is not None or extra_nodes or cluster_keys:
        data = yaml.safe_load((dst / "cluster.sls").read_text())
        nodes = data["k8snvidia"]["nodes"]
        if keep is not None:
            data["k8snvidia"]["nodes"] = nodes = {k: v for k, v in nodes.items() if k in keep}
        nodes.update(extra_nodes or {})
        data["k8snvidia"].setdefault("cluster", {}).update(cluster_keys)
        (dst / "cluster.sls").write_text(yaml.safe_dump(data, sort_keys=False))
    return dst


def secrets(run_dir):
    state = json.loads((run_dir / "cluster/kube-cluster.json").read_text())
    found = [t["secret"] for t in state.get("tokens", [])]
    key = (state.get("control_plane") or {}).get("certificate_key")
    return found + ([key] if key else [])


def files_holding(run_dir, needles):
    hits = []
    needles = [s.encode() for s in needles]
    for dirpath, _, files in os.walk(run_dir):
        for name in files:
            path = os.path.join(dirpath, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except OSError:
                continue
            if any(n in data for n in needles):
                hits.append(os.path.relpath(path, run_dir))
    return hits


def not_ok(stdout):
    """The orchestration steps whose result is not True, from
    ``salt-run --out=json state.orchestrate``'s output (for a failure
    message that names them, not the output's last lines)."""
    try:
        data = json.loads(stdout)["data"]
    except (ValueError, KeyError, TypeError):
        return stdout[-3000:]
    return {sid: {"result": r.get("result"), "comment": str(r.get("comment"))[:600],
                  "changes": str(r.get("changes"))[:600]}
            for master in data.values() if isinstance(master, dict)
            for sid, r in master.items() if isinstance(r, dict) and r.get("result") is not True}
