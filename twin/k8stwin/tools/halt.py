"""halt(8) in a twin node: the machine stops and stays down (see reboot.py)."""

from . import reboot


def main(argv):
    return reboot.main(argv, default="poweroff")
