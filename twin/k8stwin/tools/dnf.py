"""Emulated dnf (el8/9): the yum emulation in dnf mode (see yum.py)."""

from .yum import main  # noqa: F401
