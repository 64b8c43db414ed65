"""bin/twin: bring the cluster twin up, run Salt against it, take it down.

  bin/twin up [--cluster FILE] [--pillar DIR] [--timeout S]
  bin/twin run -- salt '*' test.ping        (salt, salt-run, salt-key, salt-cp)
  bin/twin status [--json]
  bin/twin exec NODE [-- CMD...]            (a command, or a shell, inside the node)
  bin/twin reboot NODE [--no-wait]
  bin/twin start-minion NODE
  bin/twin disk NODE free|full|usage        (the disk_full fault's filesystems)
  bin/twin records                          (writes and prints records.json's path)
  bin/twin down

--run DIR (or $K8STWIN_RUN) picks the run directory (default .run/twin), so
several twins can run side by side.
"""

import argparse
import json
import sys

from .cluster import Twin, TwinError


def _log(msg):
    sys.stderr.write(msg + "\n")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    rest = []
    if "--" in argv:
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(prog="bin/twin", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="run directory (default .run/twin or $K8STWIN_RUN)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("up", help="bring the twin up")
    p.add_argument("--cluster", help="cluster description (default twin/clusters/seed.yaml)")
    p.add_argument("--pillar", help="pillar directory (default the repo's pillar/)")
    p.add_argument("--timeout", type=int, default=300)
    sub.add_parser("run", help="run salt/salt-run/salt-key against the twin master (after --)")
    p = sub.add_parser("status", help="what is up")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("exec", help="run a command inside a node (after --)")
    p.add_argument("node")
    p = sub.add_parser("reboot", help="reboot a node")
    p.add_argument("node")
    p.add_argument("--no-wait", action="store_true")
    p = sub.add_parser("start-minion", help="start a node's salt-minion")
    p.add_argument("node")
    p = sub.add_parser("disk", help="free or fill the filesystems of a node's disk_full fault")
    p.add_argument("node")
    p.add_argument("action", choices=["free", "full", "usage"])
    sub.add_parser("records", help="write records.json and print its path")
    sub.add_parser("down", help="stop everything; idempotent")
    args = ap.parse_args(argv)
    twin = Twin(args.run)
    try:
        if args.cmd == "up":
            twin.up(args.cluster, args.pillar, timeout=args.timeout, log=_log)
            _print_status(twin.status())
        elif args.cmd == "run":
            proc = twin.command(rest, capture=True)
            sys.stdout.write(proc.stdout)
            sys.stderr.write(proc.stderr)
            return proc.returncode
        elif args.cmd == "status":
            st = twin.status()
            if args.json:
                print(json.dumps(st, indent=1, sort_keys=True))
            else:
                _print_status(st)
            return 0 if st["up"] else 3
        elif args.cmd == "exec":
            env_shell = ["/bin/bash", "-l"] if not rest else rest
            return twin.node_exec(args.node, env_shell, timeout=None, capture=False).returncode
        elif args.cmd == "reboot":
            twin.reboot(args.node, wait=not args.no_wait)
            _log(f"twin: {args.node} rebooted")
        elif args.cmd == "start-minion":
            twin.start_minion(args.node)
        elif args.cmd == "disk":
            if args.action == "free":
                twin.clear_disk_full(args.node)
            elif args.action == "full":
                twin.fill_disk(args.node)
            for mnt, use in twin.disk_usage(args.node).items():
                print(f"{args.node} {mnt}: {use['used'] // 1024} KiB used, {use['free'] // 1024} KiB free")
        elif args.cmd == "records":
            twin.records(write=True)
            print(twin.path("records.json"))
        elif args.cmd == "down":
            forced = twin.down()
            if forced:
                _log("twin: forced: " + ", ".join(forced))
            _log(f"twin: down ({twin.run})")
    except TwinError as exc:
        _log(f"twin: {exc}")
        return 1
    return 0


def _print_status(st):
    print(f"twin {'up' if st['up'] else 'down'}: {st['run_dir']}")
    if st.get("cluster"):
        print(f"  cluster {st['cluster']}  pillar {st['pillar']}  ports {st['ports']}")
    for node, ns in (st.get("nodes") or {}).items():
        print(f"  {node:20} {ns['state']:10} minion={'up' if ns['minion'] else 'down':5} kernel={ns['kernel']} reboots={ns['reboots']}")


if __name__ == "__main__":
    sys.exit(main())
