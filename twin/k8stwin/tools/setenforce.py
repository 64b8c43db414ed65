"""Emulated setenforce [Enforcing|Permissive|1|0]."""

import os

from .. import fs, state


def main(argv):
    prog = os.path.basename(argv[0])
    args = argv[1:]
    usage = "usage:  setenforce [ Enforcing | Permissive | 1 | 0 ]"
    if len(args) != 1:
        fs.err(usage)
        return 1
    val = args[0].lower()
    if val in ("1", "enforcing"):
        new = "enforcing"
    elif val in ("0", "permissive"):
        new = "permissive"
    else:
        fs.err(usage)
        return 1
    with state.locked() as st:
        cur = (st.get("selinux") or {}).get("mode") or ("disabled" if fs.node_os()[0] == "Debian" else "enforcing")
        if cur == "disabled":
            fs.err(f"{prog}: SELinux is disabled")
            return 1
        st["selinux"] = {"mode": new}
    return 0
