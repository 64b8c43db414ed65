"""shutdown(8) of a systemd machine, in a twin node: asks the twin's
supervisor to reboot or power off the node (k8stwin.power).

Real command line (systemd's systemctl/shutdown.c): ``shutdown [OPTIONS...]
[TIME] [WALL...]``; TIME ``now``, ``+M`` or ``HH:MM``, default ``+1``;
``-r`` reboot, ``-h``/``-P`` power off, ``-H`` halt, ``-k`` wall only,
``-c`` cancel, ``--no-wall``.
"""

import getopt
import json
import os
import sys
import time

from .. import power, state

USAGE = """shutdown [OPTIONS...] [TIME] [WALL...]

Shut down the system.

     --help      Show this help
  -H --halt      Halt the machine
  -P --poweroff  Power-off the machine
  -r --reboot    Reboot the machine
  -h             Equivalent to --poweroff, overridden by --halt
  -k             Don't halt/power-off/reboot, just send warnings
     --no-wall   Don't send wall message before halt/power-off/reboot
  -c             Cancel a pending shutdown
"""


def time_scale():
    """Seconds of twin time per real second of a scheduled shutdown (node.json
    ``time_scale``, default 0.05: ``+1`` waits 3 s)."""
    try:
        with open(os.path.join(state.node_dir(), "node.json"), encoding="utf-8") as fh:
            return float(json.load(fh).get("time_scale", 0.05))
    except (OSError, ValueError, TypeError):
        return 0.05


def parse_time(spec, now=None):
    """Seconds until TIME (``now``, ``+M``, ``HH:MM``); None if unparsable."""
    now = time.time() if now is None else now
    if spec == "now":
        return 0
    if spec.startswith("+"):
        return int(spec[1:]) * 60 if spec[1:].isdigit() else None
    if ":" in spec:
        hh, _, mm = spec.partition(":")
        if not (hh.isdigit() and mm.isdigit()) or int(hh) > 23 or int(mm) > 59:
            return None
        lt = time.localtime(now)
        target = time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, int(hh), int(mm), 0, 0, 0, -1))
        if target < now:
            target += 86400
        return int(target - now)
    return None


def schedule(action, argv0, args):
    when = args[0] if args else "+1"
    delay = parse_time(when)
    if delay is None:
        sys.stderr.write(f"Failed to parse time specification: {when}\n")
        return 1
    power.request(action, delay * time_scale(), by=argv0)
    if delay > 0:
        at = time.strftime("%a %Y-%m-%d %H:%M:%S %Z", time.localtime(time.time() + delay))
        sys.stderr.write(f"Shutdown scheduled for {at}, use 'shutdown -c' to cancel.\n")
    return 0


def main(argv):
    try:
        opts, args = getopt.gnu_getopt(argv[1:], "HPrhkKtac", ["help", "halt", "poweroff", "reboot", "no-wall"])
    except getopt.GetoptError as exc:
        opt = exc.opt
        if len(opt) == 1:
            sys.stderr.write(f"{argv[0]}: invalid option -- '{opt}'\n")
        else:
            sys.stderr.write(f"{argv[0]}: unrecognized option '--{opt}'\n")
        return 1
    action, halt, warn_only = "poweroff", False, False
    for opt, _val in opts:
        if opt == "--help":
            sys.stdout.write(USAGE)
            return 0
        if opt in ("-r", "--reboot"):
            action = "reboot"
        elif opt in ("-H", "--halt"):
            halt = True
        elif opt in ("-P", "--poweroff", "-h"):
            action = "poweroff"
        elif opt == "-k":
            warn_only = True
        elif opt == "-c":
            power.cancel()
            return 0
    if halt and action != "reboot":
        action = "poweroff"
    if warn_only:
        return 0
    return schedule(action, argv[0], args)
