"""reboot(8) / poweroff(8) / halt(8) of a systemd machine, in a twin node:
asks the twin's supervisor to act now (k8stwin.power).

Real options (systemd's systemctl halt verbs): ``--help``, ``--halt``,
``-p/--poweroff``, ``--reboot``, ``-f/--force``, ``-w/--wtmp-only`` (only
write the wtmp record), ``-d/--no-wtmp``, ``-n/--no-sync``, ``--no-wall``.
"""

import getopt
import sys

from .. import power


def main(argv, default="reboot"):
    name = argv[0]
    try:
        opts, args = getopt.gnu_getopt(
            argv[1:], "pfwdn", ["help", "halt", "poweroff", "reboot", "force", "wtmp-only", "no-wtmp", "no-sync", "no-wall"]
        )
    except getopt.GetoptError as exc:
        opt = exc.opt
        if len(opt) == 1:
            sys.stderr.write(f"{name}: invalid option -- '{opt}'\n")
        else:
            sys.stderr.write(f"{name}: unrecognized option '--{opt}'\n")
        return 1
    action = default
    for opt, _val in opts:
        if opt == "--help":
            sys.stdout.write(f"{name} [OPTIONS...]\n\n{'Reboot' if default == 'reboot' else 'Power off'} the system.\n")
            return 0
        if opt in ("-w", "--wtmp-only"):
            return 0
        if opt in ("-p", "--poweroff", "--halt"):
            action = "poweroff"
        elif opt == "--reboot":
            action = "reboot"
    if len(args) > 1 or (args and action != "reboot"):
        sys.stderr.write(f"{name}: too many arguments.\n")
        return 1
    power.request(action, 0, by=name)
    return 0
