"""Emulated lsmod: kmod's format ``%-19s %8ld  %d`` plus holders."""

from .. import fs, kmods


def main(argv):
    if len(argv) > 1:
        fs.err("Usage: lsmod")
        return 1
    mods = kmods.loaded()
    hold = kmods.holders(mods)
    fs.out("Module                  Size  Used by")
    for m in reversed(mods):
        users = hold.get(m) or []
        line = "%-19s %8ld  %d" % (m, kmods.SIZES.get(m, 16384), len(users))
        if users:
            line += " " + ",".join(users)
        fs.out(line)
    return 0
