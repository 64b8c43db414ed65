"""Emulated lsmod: kmod's format ``%-19s %8ld  %d`` plus holders."""

from .. import fs, kmods, state


def main(argv):
    if len(argv) > 1:
        fs.err("Usage: lsmod")
        return 1
    mods = kmods.loaded()
    try:
        gpus = state.node().get("gpus") or []
    except (OSError, ValueError):
        gpus = []
    hold = kmods.holders(mods)
    fs.out("Module                  Size  Used by")
    for m in reversed(mods):
        users = hold.get(m) or []
        count = len(users) + (1 if m == "nouveau" and gpus else 0)  # fbcon
        line = "%-19s %8ld  %d" % (m, kmods.SIZES.get(m, 16384), count)
        if users:
            line += " " + ",".join(users)
        fs.out(line)
    return 0
