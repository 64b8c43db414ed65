"""Emulated update-grub (Debian): grub-mkconfig -o /boot/grub/grub.cfg."""

from .. import boot, fs


def main(argv):
    if len(argv) > 1:
        fs.err("Usage: update-grub")
        return 1
    fs.makedirs("/boot/grub")
    for line in boot.grub_mkconfig("/boot/grub/grub.cfg", debian=True):
        fs.err(line)
    return 0
