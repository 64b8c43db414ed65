"""
Cluster-wide commands for K8sNvidia, run on the master (no daemon needed):

    salt-run cluster.validate
"""

import copy
import difflib
import json
import logging
import os
import re
import sys
import types
import warnings

import salt.pillar
import salt.utils.files
import salt.utils.yaml

log = logging.getLogger(__name__)

PARAMS = ("defaults", "os_family", "osfinger")


def _process_cache(name):
    """A dict kept for the life of this process. An orchestration calls
    cluster.view once per step, each time through a new runner loader that
    imports this module afresh, so module globals would not last; the dict
    lives in a module of its own in ``sys.modules``."""
    holder = sys.modules.get("_k8snvidia_runner_cache")
    if holder is None:
        holder = sys.modules["_k8snvidia_runner_cache"] = types.ModuleType("_k8snvidia_runner_cache")
        holder.data = {}
    return holder.data.setdefault(name, {})


def _fingerprint(roots):
    """(path, mtime, size) of every file under ``roots``: what a cached
    parse of them is valid for."""
    out = []
    for root in roots:
        for dirpath, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(dirpath, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                out.append((path, st.st_mtime_ns, st.st_size))
    return out


def _cached(name, key, build):
    """``build()``, reused while ``key`` (JSON-able) is unchanged in this process."""
    cache = _process_cache(name)
    key = json.dumps(key, sort_keys=True, default=str)
    if key not in cache:
        cache.clear()
        cache[key] = build()
    return copy.deepcopy(cache[key])


def _params():
    for root in __opts__["file_roots"].get("base", []):
        path = os.path.join(root, "parameters")
        if os.path.isdir(path):

            def build(path=path):
                out = {}
                for name in PARAMS:
                    with salt.utils.files.fopen(os.path.join(path, f"{name}.yaml")) as fh:
                        out[name] = salt.utils.yaml.safe_load(fh) or {}
                return out

            return _cached("params", _fingerprint([path]), build)
    raise FileNotFoundError("parameters/ not found in file_roots:base")


def _pillar(minion_id, grains):
    """The compiled pillar of ``minion_id``; compiled again only when a
    pillar file (any environment) or the pillar settings changed since this
    process last compiled it (an orchestration asks once per step)."""
    roots = [r for env in sorted(__opts__.get("pillar_roots") or {}) for r in __opts__["pillar_roots"][env]]
    settings = {k: __opts__.get(k) for k in ("pillar_roots", "ext_pillar", "pillarenv", "renderer",
                                             "pillar_source_merging_strategy", "pillar_merge_lists")}
    key = [minion_id, grains, settings, _fingerprint(roots)]
    return _cached("pillar:" + minion_id, key,
                   lambda: salt.pillar.get_pillar(__opts__, grains, minion_id, saltenv="base").compile_pillar())


class _Quiet(logging.Filter):
    """Drops the records a filter is installed for: Salt's own reports of a
    pillar render error (a traceback; cluster.validate prints the file, line
    and problem instead) and Salt 3008's "unclosed Runner / MasterMinion /
    SyncWrapper" finalizer warnings (saltstack/salt#70174), printed by every
    salt-run at exit."""

    def __init__(self, unclosed_only=True):
        super().__init__()
        self.unclosed_only = unclosed_only

    def filter(self, record):
        if self.unclosed_only:
            return not str(record.msg).startswith("unclosed ")
        return record.levelno < logging.WARNING


UNCLOSED_LOGGERS = ("salt.runner", "salt.minion", "salt.wheel", "salt.utils.asynchronous", "salt.utils.event",
                    "salt.utils.resource_warnings", "salt.transport.tcp", "salt.transport.ws", "salt.client")
RENDER_LOGGERS = ("salt.pillar", "salt.template", "salt.renderers.yaml", "salt.renderers.jinja",
                  "salt.utils.templates")


def __virtual__():
    # The runner's job file goes to <cachedir>/proc before the function runs:
    # on a fresh clone (no `bash bin/venv` yet) that folder does not exist
    # and salt-run would die with FileNotFoundError. Loading this module
    # happens first, so it is made here (under .run/, git-ignored).
    try:
        os.makedirs(os.path.join(__opts__["cachedir"], "proc"), exist_ok=True)
    except (OSError, KeyError, TypeError) as exc:
        return False, f"cannot create Salt's proc folder ({exc}); run `bash bin/venv` from the repo root"
    quiet = _Quiet()
    for name in UNCLOSED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Quiet) for f in logger.filters):
            logger.addFilter(quiet)
    warnings.filterwarnings("ignore", message="unclosed ", category=ResourceWarning)
    return True


def _sls_path(sls, roots):
    rel = str(sls).replace(".", os.sep)
    for root in roots:
        for cand in (os.path.join(root, rel + ".sls"), os.path.join(root, rel, "init.sls")):
            if os.path.isfile(cand):
                return os.path.relpath(cand) if not os.path.relpath(cand).startswith("..") else cand
    return f"{sls}.sls"


RENDER_RE = re.compile(r"^Rendering SLS '(?P<sls>[^']+)' failed(?:, render error)?:?\s*(?P<msg>.*)$", re.S)
WHERE_RE = re.compile(r'\s*in "<[^>]+>", line (\d+), column (\d+)')


def _render_error(error, roots):
    """One Salt pillar error as 'FILE: line N, column M: problem'."""
    text = str(error)
    match = RENDER_RE.match(text)
    top = re.match(r"^Rendering (?:Primary )?Top file failed(?:, render error)?:?\s*(?P<msg>.*)$", text, re.S)
    if match:
        path = _sls_path(match.group("sls"), roots)
    elif top:
        path, match = _sls_path(os.path.splitext(__opts__.get("state_top") or "top.sls")[0], roots), top
    else:
        return f"pillar: {' '.join(text.split())}"
    msg = match.group("msg").strip()
    places = WHERE_RE.findall(msg)
    if places:  # a YAML error: its lines name the places
        parts = [p.strip() for p in WHERE_RE.sub("\n", msg).split("\n") if p.strip()]
        line, col = places[-1]
        head = f"{path}: line {line}, column {col}: {parts[-1] if parts else 'YAML error'}"
        if len(parts) > 1 and len(places) > 1:
            head += f" ({parts[0]} at line {places[0][0]}, column {places[0][1]})"
        return head
    jinja = re.search(r"line (\d+)", msg)
    first = msg.split("\n")[0].strip().rstrip(";")
    first = re.sub(r";?\s*line \d+$", "", first)
    return f"{path}: " + (f"line {jinja.group(1)}: " if jinja else "") + first


def _compile_pillar(minion_id, grains):
    """The pillar as Salt compiles it; render errors as (file, line, problem)
    lines, without Salt's traceback on the console."""
    opts = dict(__opts__)
    opts["pillar_safe_render_error"] = False
    quiet = _Quiet(unclosed_only=False)
    loggers = [logging.getLogger(n) for n in RENDER_LOGGERS]
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        pil = salt.pillar.get_pillar(opts, grains, minion_id, saltenv="base").compile_pillar()
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)
    errors = pil.get("_errors")
    if errors:
        roots = (opts.get("pillar_roots") or {}).get("base", [])
        return pil, list(dict.fromkeys(_render_error(e, roots) for e in errors))
    return pil, []


def _same_pillar_everywhere(roots):
    """True when every minion gets the same pillar: the top file gives every
    SLS to '*' only, and no pillar file has Jinja or another renderer (so
    nothing in it can depend on the minion id or grains). cluster.validate
    then compiles the pillar once, not once per node (Salt's compile of a
    1000-node pillar takes seconds)."""
    sls_files = []
    for root in roots:
        for base, _dirs, files in os.walk(root):
            sls_files += [os.path.join(base, f) for f in files if f.endswith(".sls")]
    tops = []
    for path in sls_files:
        try:
            with salt.utils.files.fopen(path, "r") as fh:
                text = fh.read()
        except OSError:
            return False
        if "{{" in text or "{%" in text or text.startswith("#!"):
            return False
        if os.path.basename(path) == "top.sls" and os.path.dirname(path) in roots:
            tops.append(text)
    for text in tops:
        try:
            top = salt.utils.yaml.safe_load(text) or {}
        except Exception:  # pylint: disable=broad-except
            return False
        for targets in (top.values() if isinstance(top, dict) else [None]):
            if not isinstance(targets, dict) or any(t != "*" for t in targets):
                return False
            for entries in targets.values():
                for entry in entries or []:
                    if isinstance(entry, dict) and any(k == "match" for k in entry):
                        return False
    return True


def validate(pillar_dir=None):
    """
    Check the pillar for every node of the cluster, before anything changes:
    against the pillar schema (``_utils/pillar_schema.py``: types, unknown
    keys, allowed values), the cluster as a whole, and each node's effective
    configuration. Prints each problem once with its pillar key, the bad
    value and what is expected (a problem several nodes share names them);
    a YAML or Jinja error names the file and line. Exits non-zero when there
    is a problem; warnings (a Kubernetes minor past its end of life) do not
    fail.

    CLI Example:

    .. code-block:: bash

        salt-run cluster.validate
        salt-run cluster.validate pillar_dir=/path/to/pillar
    """
    if pillar_dir:
        if not os.path.isdir(str(pillar_dir)):
            __context__["retcode"] = 1
            return {"valid": False, "problems": [f"pillar_dir={pillar_dir}: no such directory"], "retcode": 1}
        __opts__["pillar_roots"] = {"base": [os.path.abspath(str(pillar_dir))]}
    params = _params()
    first, errors = _compile_pillar("validate", {"id": "validate"})
    if errors:
        __context__["retcode"] = 1
        return {"valid": False, "problems": errors, "retcode": 1}
    pillar_cfg = first.get("k8snvidia")
    # a misspelt top key: its whole content would be ignored
    typos = [f"pillar key {k}: unknown; did you mean k8snvidia? (nothing under it is read)"
             for k in first if k != "k8snvidia" and difflib.get_close_matches(str(k), ["k8snvidia"], cutoff=0.8)]
    nodes = pillar_cfg.get("nodes") if isinstance(pillar_cfg, dict) else None
    node_pillars = {}
    roots = (__opts__.get("pillar_roots") or {}).get("base", [])
    per_node = not _same_pillar_everywhere([os.path.abspath(r) for r in roots])
    for nid, node in (nodes.items() if isinstance(nodes, dict) and per_node else ()):
        grains = __utils__["k8snvidia.grains_for"](nid, node if isinstance(node, dict) else {})
        mine, errors = _compile_pillar(nid, grains)
        if errors:
            __context__["retcode"] = 1
            return {"valid": False, "problems": errors, "retcode": 1}
        node_pillars[nid] = mine.get("k8snvidia")
    found = __utils__["k8snvidia.check_pillar"](
        params, pillar_cfg, node_pillars=node_pillars, gpu_check=__utils__.get("nvidia_gpu.driver_problems"),
        schema=__utils__["pillar_schema.schema"](), facts=__utils__["pillar_schema.facts"](),
    )
    problems = typos + found["problems"]
    ret = {"valid": not problems, "nodes": found["nodes"], "problems": problems}
    if found["warnings"]:
        ret["warnings"] = found["warnings"]
    if problems:
        ret["retcode"] = 1
        __context__["retcode"] = 1  # fails the orchestration's validate step
    return ret


ROSTER_HEADER = (
    "# Generated by `salt-run cluster.roster` from the pillar's node list\n"
    "# (k8snvidia:nodes); edit the pillar, not this file. Bootstrap with:\n"
    "#   salt-ssh '*' state.apply salt.minion\n"
)


def _roster_path(path=None):
    path = path or __opts__.get("roster_file") or os.path.join(
        os.path.dirname(__opts__.get("conf_file") or "etc/salt/master"), "roster"
    )
    return os.path.abspath(path)


def roster(write=True, path=None, pillar_dir=None):
    """
    The salt-ssh roster of the cluster, from the pillar's node list: each
    node id -> its ip as ``host`` and ``k8snvidia:salt:ssh_user`` (per node,
    overrides included) as ``user``; ``sudo: True`` for a user other than
    root. With ``write`` (the default) it is written to the master's
    ``roster_file`` (``etc/salt/roster`` in the repo config) or ``path``.
    Nothing is written while the cluster-wide pillar checks find a problem.

    CLI Example:

    .. code-block:: bash

        salt-run cluster.roster
        salt-run cluster.roster write=False
        salt-ssh '*' state.apply salt.minion
    """
    if pillar_dir:
        __opts__["pillar_roots"] = {"base": [pillar_dir]}
    params = _params()
    first = _pillar("roster", {"id": "roster"})
    if first.get("_errors"):
        return {"written": False, "problems": first["_errors"], "retcode": 1}
    pillar_cfg = first.get("k8snvidia") or {}
    problems = __utils__["k8snvidia.validate_cluster"](pillar_cfg)
    if problems:
        return {"written": False, "problems": problems, "retcode": 1}
    entries = {}
    for nid, node in sorted(pillar_cfg["nodes"].items()):
        grains = __utils__["k8snvidia.grains_for"](nid, node)
        node_pillar = _pillar(nid, grains).get("k8snvidia") or {}
        cfg = __utils__["k8snvidia.build"](params, node_pillar, nid, grains)
        user = str((cfg.get("salt") or {}).get("ssh_user") or "root")
        entry = {"host": str(node["ip"]), "user": user}
        if user != "root":
            entry["sudo"] = True
        entries[nid] = entry
    ret = {"roster": entries, "written": False}
    if write:
        dest = _roster_path(path)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        text = ROSTER_HEADER + salt.utils.yaml.safe_dump(entries, default_flow_style=False)
        with salt.utils.files.fopen(dest, "w") as fh:
            fh.write(text)
        ret.update(written=True, path=dest)
    return ret


INVENTORY_COLUMNS = (
    ("node", "node"),
    ("role", "role"),
    ("gpus", "GPUs"),
    ("models", "models"),
    ("memory_mib", "memory MiB"),
    ("driver", "driver"),
    ("cuda", "CUDA"),
    ("kernel", "kernel"),
    ("joined", "joined"),
    ("allocatable", "nvidia.com/gpu"),
    ("flags", "flags"),
)


def _table(rows):
    cells = [[label for _, label in INVENTORY_COLUMNS]]
    for row in rows:
        cells.append(["-" if row.get(key) in (None, "", []) else str(row.get(key)) for key, _ in INVENTORY_COLUMNS])
    widths = [max(len(c[i]) for c in cells) for i in range(len(INVENTORY_COLUMNS))]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(widths))).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def inventory(pillar_dir=None, timeout=5):
    """
    The fleet at a glance: per node its role, GPUs and models, GPU memory,
    driver, CUDA, kernel, whether it joined the cluster and how many
    ``nvidia.com/gpu`` it offers. Flags nodes whose driver differs from the
    pillar or from their peers, and nodes that do not answer within
    ``timeout`` seconds (marked down). A table by default; data with
    ``--out=json`` or ``--out=yaml``.

    CLI Example:

    .. code-block:: bash

        salt-run cluster.inventory
        salt-run cluster.inventory --out=json
    """
    import salt.client

    if pillar_dir:
        __opts__["pillar_roots"] = {"base": [pillar_dir]}
    seen = view()
    nodes = seen["nodes"]
    ids = sorted(nodes)
    client = salt.client.get_local_client(mopts=__opts__)
    # who answers, within `timeout` seconds: only those are asked the rest,
    # so nodes that are down cost one short wait, not one per question
    kw = {"tgt_type": "list", "timeout": int(timeout), "gather_job_timeout": int(timeout)}
    up = sorted(n for n, ok in (client.cmd(ids, "test.ping", **kw) if ids else {}).items() if ok is True)
    if up:  # the driver may have changed since the minions cached their grains
        client.cmd(up, "saltutil.refresh_grains", **kw)
    grains = client.cmd(up, "grains.item", ["nvidia", "kernelrelease"], **kw) if up else {}
    joined = membership(up, seen, timeout=timeout) if up else {}
    control = seen["control_plane"]
    alloc = {}
    if control and joined.get(control[0]):
        got = client.cmd([control[0]], "kube.allocatable", **kw).get(control[0])
        alloc = got if isinstance(got, dict) else {}
    rows = []
    for nid in ids:
        node = nodes[nid]
        g = grains.get(nid) if isinstance(grains.get(nid), dict) else None
        nv = (g or {}).get("nvidia") or {}
        gpus = nv.get("gpus") or []
        # the version the node's own map pins (overrides, by_os_family and
        # by_osfinger included); None where the repositories decide (package)
        want_node = node["driver"]["pin"]
        row = {
            "node": nid,
            "role": node.get("role"),
            "gpus": nv.get("gpu_count", len(gpus)) if g else None,
            "models": ", ".join(sorted({str(x.get("name") or x.get("pci_device_id")) for x in gpus})),
            "memory_mib": sum(int(x.get("memory_mib") or 0) for x in gpus) or None,
            "driver": nv.get("driver_version"),
            "cuda": nv.get("cuda_version"),
            "kernel": (g or {}).get("kernelrelease"),
            "joined": bool(joined.get(nid) is True),
            "allocatable": int(alloc.get(nid, 0) or 0),
            "flags": [],
            "_want": want_node if node["gpu"] else None,
        }
        if nid not in up:
            row["flags"].append(f"down: no answer within {int(timeout)}s")
        elif g is None:
            row["flags"].append("no answer")
        elif row["_want"] and row["driver"] and str(row["driver"]) != str(row["_want"]):
            row["flags"].append(f"driver {row['driver']} != pillar {row['_want']}")
        rows.append(row)
    drivers = [r["driver"] for r in rows if r["driver"]]
    if drivers:
        common = max(set(drivers), key=drivers.count)
        for row in rows:
            if row["driver"] and row["driver"] != common:
                row["flags"].append(f"driver differs from peers ({common})")
    for row in rows:
        row.pop("_want")
        row["flags"] = "; ".join(row["flags"])
    if __opts__.get("output") in ("json", "yaml", "pprint", "raw", "nested"):
        return {r["node"]: {k: v for k, v in r.items() if k != "node"} for r in rows}
    return _table(rows)


def nodes():
    """
    The pillar's node list (``k8snvidia:nodes``): minion id -> ip, role,
    gpus, as written. Which nodes are the control plane, the workers and the
    GPU nodes, and which driver each gets, is cluster.view's answer.

    CLI Example:

    .. code-block:: bash

        salt-run cluster.nodes
    """
    found = (_pillar("cluster", {"id": "cluster"}).get("k8snvidia") or {}).get("nodes")
    return found if isinstance(found, dict) else {}


def _cached_grains(ids):
    """The grains the master holds for ``ids`` (its minion data cache, as
    the minions last sent them): no minion is asked."""
    if not ids:
        return {}
    try:
        got = __salt__["cache.grains"](tgt=",".join(sorted(ids)), tgt_type="list")
    except Exception as exc:  # pylint: disable=broad-except
        log.debug("cluster.view: no cached grains (%s); the pillar's os and gpus stand in", exc)
        return {}
    return {k: v for k, v in (got or {}).items() if isinstance(v, dict) and v}


def view(pillar_dir=None):
    """
    The one view of the cluster that the orchestration, the runners and the
    inventory use: per pillar node its role, OS, GPUs (what its ``nvidia``
    grain saw, else the pillar's ``gpus``: the same rule as the highstate's
    salt/top.sls), whether it gets the GPU layers, and the driver its own
    map gives it (overrides, ``by_os_family`` and ``by_osfinger``
    included); then the control plane, the workers and the GPU nodes. Built
    through the state tree's map (salt/parameters and the pillar) with the
    grains the master has cached; a node it has no grains for is taken from
    its pillar ``os``.

    CLI Example:

    .. code-block:: bash

        salt-run cluster.view
        salt-run cluster.view --out=json
    """
    if pillar_dir:
        __opts__["pillar_roots"] = {"base": [pillar_dir]}
    pillar_cfg = _pillar("cluster", {"id": "cluster"}).get("k8snvidia") or {}
    listed = pillar_cfg.get("nodes") if isinstance(pillar_cfg, dict) and isinstance(pillar_cfg.get("nodes"), dict) else {}
    return __utils__["k8snvidia.cluster_view"](_params(), pillar_cfg, _cached_grains(list(listed)))


def membership(ids=None, cluster=None, timeout=10):
    """
    Which nodes belong to this Kubernetes cluster: the control plane once it
    is initialised (its API server answers), a worker once it trusts the
    control plane's CA (``kubeadm.ca_hash``) and its node object is
    registered there. A node that does not answer within ``timeout`` seconds,
    or that belongs to another cluster, is not a member. ``cluster``: the
    cluster view (cluster.view) when the caller has one.

    CLI Example:

    .. code-block:: bash

        salt-run cluster.membership
    """
    import salt.client

    seen = cluster if cluster is not None else view()
    ids = sorted(ids or seen["nodes"])
    if not ids:
        return {}
    control = seen["control_plane"][:1]
    client = salt.client.get_local_client(mopts=__opts__)
    kw = {"tgt_type": "list", "timeout": int(timeout), "gather_job_timeout": int(timeout)}
    hashes = client.cmd(sorted(set(ids) | set(control)), "kubeadm.ca_hash", **kw)
    ready, registered, cluster_ca = False, [], None
    if control:
        cp = control[0]
        ready = client.cmd([cp], "kubeadm.initialized", **kw).get(cp) is True
        if ready:
            got = client.cmd([cp], "kube.registered", **kw).get(cp)
            registered = got if isinstance(got, list) else []
            cluster_ca = hashes.get(cp) if str(hashes.get(cp) or "").startswith("sha256:") else None
    out = {}
    for nid in ids:
        if control and nid == control[0]:
            out[nid] = ready
        else:
            out[nid] = bool(ready and cluster_ca and hashes.get(nid) == cluster_ca and nid in registered)
    return out
