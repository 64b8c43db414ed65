"""Emulated getenforce."""

from .. import fs, state


def main(argv):
    mode = (state.read().get("selinux") or {}).get("mode")
    if mode is None:
        mode = "disabled" if fs.node_os()[0] == "Debian" else "enforcing"
    fs.out(mode.capitalize())
    return 0
