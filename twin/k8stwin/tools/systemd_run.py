"""Emulated systemd-run --scope CMD...: runs CMD in the node (no transient unit)."""

import subprocess

from .. import fs

ARG = {"--unit", "-u", "--description", "-p", "--property", "--slice", "--uid", "--gid", "-E", "--setenv", "--working-directory"}
NOARG = {"--scope", "--quiet", "-q", "--wait", "--collect", "-G", "--no-block", "--pipe", "-P", "--same-dir", "--user", "--system", "-t", "--pty"}


def main(argv):
    args = argv[1:]
    i = 0
    while i < len(args):
        a = args[i]
        key = a.split("=", 1)[0]
        if key in ARG:
            i += 1 if "=" in a else 2
            continue
        if a in NOARG:
            i += 1
            continue
        if a.startswith("-"):
            fs.err(f"systemd-run: unrecognized option '{a}'")
            return 1
        break
    cmd = args[i:]
    if not cmd:
        fs.err("Command line to execute required.")
        return 1
    try:
        return subprocess.call(cmd)
    except FileNotFoundError:
        fs.err(f"Failed to find executable {cmd[0]}: No such file or directory")
        return 1
