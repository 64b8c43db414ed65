"""Emulated grub2-mkconfig / grub-mkconfig -o FILE (menuentries for the kernels in /boot, newest first)."""

import os

from .. import boot, fs


def main(argv):
    prog = os.path.basename(argv[0])
    args = argv[1:]
    out = None
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-o", "--output"):
            i += 1
            out = args[i] if i < len(args) else None
        elif a.startswith("--output="):
            out = a.split("=", 1)[1]
        elif a == "--update-bls-cmdline":
            pass
        else:
            fs.err(f"{prog}: unrecognized option '{a}'\nUsage: {prog} [OPTION]")
            return 1
        i += 1
    if not out:
        # real tool prints the config to stdout
        tmp = "/tmp/.k8stwin-grub.cfg"
        for line in boot.grub_mkconfig(tmp):
            fs.err(line)
        fs.out(fs.read(tmp) or "")
        fs.remove(tmp)
        return 0
    if not fs.isdir(os.path.dirname(out)):
        fs.err(f"{prog}: line 1: {out}.new: No such file or directory")
        return 1
    for line in boot.grub_mkconfig(out, debian=prog == "grub-mkconfig" or fs.node_os()[0] == "Debian"):
        fs.err(line)
    return 0
