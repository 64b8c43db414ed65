"""poweroff(8) in a twin node (see reboot.py)."""

from . import reboot


def main(argv):
    return reboot.main(argv, default="poweroff")
