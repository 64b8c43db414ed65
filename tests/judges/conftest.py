"""Real judges: Debian's containerd (1.6, 1.7, 2.1) and dockerd, unpacked
from the archive (tests/judges/binaries.py), and kubernetes-validate judge
what the states write. Marker ``judge``."""

import os
import shutil

import pytest

from tests.judges import binaries


def pytest_configure(config):
    config.addinivalue_line("markers", "judge: checked by a real component (containerd, dockerd, kubernetes-validate)")


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.judge)


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
