"""Emulated ``nvidia-uninstall``: the installed nvidia-installer acting as
``--uninstall`` (see :mod:`k8stwin.tools.nvidia_installer`)."""

from .nvidia_installer import main

__all__ = ["main"]
