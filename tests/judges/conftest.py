"""Real judges: Debian's containerd (1.6, 1.7, 2.1) and dockerd, unpacked
from the archive (tests/judges/binaries.py), and kubernetes-validate judge
what the states write. Marker ``judge``."""

import shutil

import pytest

from tests.judges import binaries


@pytest.fixture(scope="session")
def real():
    """line -> path of the real binary (fetched once, cached)."""
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        pytest.skip("the real binaries come from Debian's archive through apt-get and dpkg-deb (not on this host)")
    cache = {}

    def get(line):
        if line not in cache:
            cache[line] = binaries.fetch(line)
        return cache[line]

    return get
