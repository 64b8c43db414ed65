"""Emulated grub-set-default (Debian): see grub2_set_default.py."""

from .grub2_set_default import main  # noqa: F401
