"""Emulated swapoff/swapon (-a, a device, --show, -s); the node's /proc/swaps
is mirrored at $K8STWIN_NODE_DIR/proc/swaps."""

import os

from .. import fs, kmods, state


def swap_main(argv, on):
    prog = os.path.basename(argv[0])
    args = argv[1:]
    dev = kmods.fstab_swap()
    show = any(a in ("--show", "-s", "--summary") for a in args)
    bad = [a for a in args if a.startswith("-") and a not in ("-a", "--all", "-v", "--verbose", "--show", "-s", "--summary", "-e", "--ifexists")]
    if bad:
        fs.err(f"{prog}: unrecognized option '{bad[0]}'" if bad[0].startswith("--") else f"{prog}: invalid option -- '{bad[0][1:2]}'")
        fs.err(f"Try '{prog} --help' for more information.")
        return 1
    cur = bool((state.read().get("swap") or {}).get("active"))
    if show:
        if on and cur and dev:
            if "--show" in args:
                fs.out(f"NAME      TYPE      SIZE USED PRIO\n{dev} partition   2G   0B   -2")
            else:
                fs.out(f"Filename\t\t\t\tType\t\tSize\tUsed\tPriority\n{dev:<40}partition\t2097148\t0\t-2")
        return 0
    devs = [a for a in args if not a.startswith("-")]
    if not devs and not any(a in ("-a", "--all") for a in args):
        fs.err(f"Usage:\n {prog} [options] [<spec>]")
        return 2
    for d in devs:
        if d != dev and not fs.exists(d):
            fs.err(f"{prog}: cannot open {d}: No such file or directory" if on else f"{prog}: {d}: swapoff failed: No such file or directory")
            return 4 if not on else 2
    new = bool(dev) if on else False
    if on and devs:
        new = True
    with state.locked() as st:
        st["swap"] = {"active": new}
    kmods.sync_proc_swaps()
    return 0


def main(argv):
    return swap_main(argv, on=False)
