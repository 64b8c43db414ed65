"""The real binaries' fetcher (bin/debian_binaries.py, shared with the twin
without either importing the other), loaded by path for the judges."""

import importlib.util

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location("k8snvidia_debian_binaries", ROOT / "bin" / "debian_binaries.py")
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)

CACHE, KEYRING, LINES, MIRROR = _mod.CACHE, _mod.KEYRING, _mod.LINES, _mod.MIRROR
Unavailable, fetch, version = _mod.Unavailable, _mod.fetch, _mod.version
