"""Real tools judge the twin: the twin's emulated apt/dpkg/dnf/rpm/systemctl/
ufw/sysctl/dkms/update-initramfs/containerd and its copy of the device
plugin's config loading, against the real ones (the `real` fixture and the
helpers of tests/judges). Marker ``judge``, as the product's judges."""

import os

import pytest

from tests.judges.conftest import real  # noqa: F401  (the real binaries, fetched once)


def pytest_configure(config):
    config.addinivalue_line("markers", "judge: checked by a real component (containerd, dockerd, kubernetes-validate)")


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.judge)
