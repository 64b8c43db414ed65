"""Emulated depmod [-a] [KVER]: rewrites modules.dep from the .ko files present."""

import os

from .. import fs, kmods


def main(argv):
    args = [a for a in argv[1:] if a not in ("-a", "--all", "-A", "--quick", "-q", "--quiet", "-v")]
    bad = [a for a in args if a.startswith("-")]
    if bad:
        fs.err(f"depmod: ERROR: unknown option {bad[0]}")
        return 1
    kver = args[0] if args else fs.running_kernel()
    base = f"/lib/modules/{kver}"
    if not fs.isdir(base):
        fs.err(f"depmod: ERROR: could not open directory {base}: No such file or directory")
        fs.err("depmod: FATAL: could not search modules: No such file or directory")
        return 1
    rels = []
    for dirpath, _dirs, files in os.walk(fs.path(base)):
        for f in files:
            if ".ko" in f:
                rels.append(os.path.relpath(os.path.join(dirpath, f), fs.path(base)))
    byname = {kmods.norm(os.path.basename(r).split(".ko")[0]): r for r in rels}
    lines = []
    for r in sorted(rels):
        n = kmods.norm(os.path.basename(r).split(".ko")[0])
        deps = " ".join(byname[d] for d in kmods.DEPENDS.get(n, []) if d in byname)
        lines.append(f"{r}: {deps}".rstrip())
    fs.write(f"{base}/modules.dep", "".join(x + "\n" for x in lines))
    return 0
