"""Emulated rmmod."""

from .. import fs
from . import modprobe


def main(argv):
    names = [a for a in argv[1:] if not a.startswith("-")]
    bad = [a for a in argv[1:] if a.startswith("-") and a not in ("-f", "--force", "-v", "--verbose", "-s", "--syslog")]
    if bad:
        fs.err(f"rmmod: ERROR: unknown option {bad[0]}")
        return 1
    if not names:
        fs.err("rmmod: ERROR: missing module name.")
        return 1
    rc = 0
    for n in names:
        rc = modprobe.remove(n, verb="rmmod") or rc
    return rc
