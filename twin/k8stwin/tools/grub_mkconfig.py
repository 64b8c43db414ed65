"""Emulated grub-mkconfig (Debian): see grub2_mkconfig.py."""

from .grub2_mkconfig import main  # noqa: F401
