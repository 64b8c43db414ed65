"""
The main job (bin/orchestrate): the whole `cluster` orchestration on the twin.

Brings the twin up with a cluster description and a pillar (default: the
seed's five machines and the repo's pillar/), runs
``salt-run state.orchestrate cluster`` with progress, prints the summary and
the inventory, runs the orchestration a second time to show that it changes
nothing, writes ``<run>/report.json`` and takes the twin down.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

from .cluster import REPO, Twin, TwinError

DEFAULT_CLUSTER = os.path.join(REPO, "twin", "clusters", "seed.yaml")
DEFAULT_PILLAR = os.path.join(REPO, "pillar")


def _say(msg):
    print(msg, flush=True)


def run_record(twin):
    return twin.path("master", "var", "cache", "salt", "master", "k8snvidia", "run.json")


def _load(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def orchestrate(twin, label, timeout):
    """Run the orchestration once, printing the run record's progress lines
    as they come. Returns (rc, seconds, record)."""
    path = run_record(twin)
    try:
        os.remove(path)
    except OSError:
        pass
    done = threading.Event()
    result = {}

    def target():
        try:
            result["proc"] = twin.command(
                ["salt-run", "state.orchestrate", "cluster", "--out=json", "--log-level=quiet"], timeout=timeout
            )
        except subprocess.TimeoutExpired:
            result["proc"] = None
        finally:
            done.set()

    started = time.time()
    _say(f"== {label}: salt-run state.orchestrate cluster")
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    shown = 0
    while True:
        finished = done.wait(1.0)
        lines = _load(path).get("log") or []
        for line in lines[shown:]:
            _say(f"   {line}")
        shown = len(lines)
        if finished:
            break
    seconds = round(time.time() - started, 1)
    proc = result.get("proc")
    rc = proc.returncode if proc is not None else 124
    if rc != 0:
        out = (proc.stdout if proc is not None else "") or ""
        record = _load(path)
        bad = {n: v.get("failed") for n, v in sorted((record.get("nodes") or {}).items()) if v.get("failed")}
        if bad:
            _say(f"   orchestration rc {rc}; failed nodes: " + "; ".join(f"{n} ({why})" for n, why in bad.items()))
        if record.get("stopped"):
            _say(f"   run stopped: {record['stopped']}")
        _say(f"   orchestration rc {rc}; failed steps:")
        try:
            data = json.loads(out)
            data = data.get("data", data)
            for minion in data.values():
                for key, val in (minion or {}).items():
                    if isinstance(val, dict) and val.get("result") is False:
                        _say(f"     {key.split('_|-')[1]}: {str(val.get('comment'))[:300]}")
        except (ValueError, AttributeError):
            _say(out[-2000:])
    return rc, seconds, _load(path)


REPORT = os.path.join(REPO, ".run", "twin", "report.json")


def _default_run():
    """.run/twin in the repo, unless that path is too long for Salt's unix
    sockets (a deep checkout): then a short one under /tmp."""
    path = os.path.join(REPO, ".run", "twin")
    if len(path) <= 60:
        return path
    import hashlib

    return os.path.join("/tmp", "k8snvidia-twin-" + hashlib.sha256(REPO.encode()).hexdigest()[:8])


def summary_table(summary):
    cols = ("node", "reboots", "joined", "gpus_allocatable", "changes", "failed")
    rows = [cols] + [
        (nid, str(v.get("reboots")), str(v.get("joined")), str(v.get("gpus_allocatable")), str(v.get("changes")),
         v.get("failed") or "-")
        for nid, v in sorted(summary.items())
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
    return "\n".join("  ".join(r[i].ljust(widths[i]) for i in range(len(cols))).rstrip() for r in rows)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="bin/orchestrate", description=__doc__.strip().splitlines()[0])
    ap.add_argument("--cluster", default=DEFAULT_CLUSTER, help="twin cluster description (YAML)")
    ap.add_argument("--pillar", default=DEFAULT_PILLAR, help="pillar directory")
    ap.add_argument("--run", default=os.environ.get("K8STWIN_RUN") or _default_run())
    ap.add_argument("--timeout", type=int, default=3600, help="seconds for one orchestration run")
    ap.add_argument("--keep", action="store_true", help="leave the twin up afterwards (bin/twin down)")
    args = ap.parse_args(argv)
    twin = Twin(args.run)
    report = {"cluster": os.path.abspath(args.cluster), "pillar": os.path.abspath(args.pillar), "nodes": {},
              "orchestrate_seconds": []}
    rc = 0
    try:
        _say(f"== twin up: {args.cluster} with pillar {args.pillar}")
        twin.up(args.cluster, args.pillar, log=lambda m: _say(f"   {m}"))
        first_rc, first_s, first = orchestrate(twin, "first run", args.timeout)
        summary = first.get("summary") or {}
        _say("== summary (first run)")
        _say(summary_table(summary) if summary else "   (no summary: the orchestration stopped early)")
        inv = twin.command(["salt-run", "cluster.inventory"], timeout=300)
        _say("== inventory")
        _say(inv.stdout.rstrip() or inv.stderr.rstrip())
        second_rc, second_s, second = orchestrate(twin, "second run (expect no changes)", args.timeout)
        again = second.get("summary") or {}
        report["orchestrate_seconds"] = [first_s, second_s]
        for nid in sorted(set(summary) | set(again)):
            one, two = summary.get(nid, {}), again.get(nid, {})
            report["nodes"][nid] = {
                "reboots": (one.get("reboots") or 0) + (two.get("reboots") or 0),
                "joined": bool(two.get("joined", one.get("joined"))),
                "gpus_allocatable": two.get("gpus_allocatable", one.get("gpus_allocatable", 0)),
                "changes_second_run": two.get("changes"),
                "failed": two.get("failed") or None,
            }
        report["rc"] = [first_rc, second_rc]
        changed = {n: v["changes_second_run"] for n, v in report["nodes"].items() if v["changes_second_run"]}
        _say("== second run: " + ("no changes" if not changed else f"changes on {changed}"))
        rc = first_rc or second_rc
        failed = {n: v["failed"] for n, v in report["nodes"].items() if v["failed"]}
        stopped = second.get("stopped") or (first.get("stopped") if not second else None)
        if failed or stopped:
            rc = rc or 1
            _say("== FAILED: " + "; ".join([f"{n}: {why}" for n, why in sorted(failed.items())]
                                            + ([f"run stopped: {stopped}"] if stopped else [])))
        report["failed"] = failed
    except TwinError as exc:
        _say(f"twin: {exc}")
        rc = 1
    finally:
        targets = [twin.path("report.json"), REPORT]  # REPORT: where users look for it
        for target in dict.fromkeys(targets):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w", encoding="utf-8") as fh:
                json.dump(report, fh, indent=1, sort_keys=True)
        _say(f"== report: {targets[-1]}")
        if not args.keep:
            twin.down(quiet=True)
            _say("== twin down")
    return rc


if __name__ == "__main__":
    sys.exit(main())
