"""Emulated grub2-set-default ENTRY: unset prev_saved_entry, set saved_entry (no existence check)."""

import os

from .. import boot, fs


def main(argv):
    prog = os.path.basename(argv[0])
    args = [a for a in argv[1:] if not a.startswith("--boot-directory")]
    if any(a.startswith("-") for a in args):
        fs.err(f"Unrecognized option `{[a for a in args if a.startswith('-')][0]}'\nUsage: {prog} [OPTION] MENU_ENTRY")
        return 1
    if not args:
        fs.err(f"entry not specified.\nUsage: {prog} [OPTION] MENU_ENTRY")
        return 1
    p = boot.grubenv_path()
    env = boot.read_grubenv(p)
    env.pop("prev_saved_entry", None)
    env["saved_entry"] = args[0]
    boot.write_grubenv(env, p)
    return 0
