"""Emulated grub2-editenv FILE list|set K=V|unset K|create."""

import os

from .. import boot, fs


def main(argv):
    prog = os.path.basename(argv[0])
    args = argv[1:]
    if len(args) < 2:
        fs.err(f"{prog}: error: no command specified." if len(args) == 1 else f"Usage: {prog} [OPTION...] FILENAME COMMAND")
        return 1
    f, cmd, rest = args[0], args[1], args[2:]
    if f == "-":
        f = boot.grubenv_path()
    env = boot.read_grubenv(f)
    if cmd == "create":
        boot.write_grubenv({}, f)
        return 0
    if cmd == "list":
        if not fs.exists(f):
            fs.err(f"{prog}: error: cannot open `{f}': No such file or directory.")
            return 1
        for k, v in env.items():
            fs.out(f"{k}={v}")
        return 0
    if cmd == "set":
        for kv in rest:
            if "=" not in kv:
                fs.err(f"{prog}: error: invalid parameter {kv}.")
                return 1
            k, v = kv.split("=", 1)
            env[k] = v
        boot.write_grubenv(env, f)
        return 0
    if cmd == "unset":
        for k in rest:
            env.pop(k, None)
        boot.write_grubenv(env, f)
        return 0
    fs.err(f"{prog}: error: unrecognized command `{cmd}'.")
    return 1
