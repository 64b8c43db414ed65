"""The twin's dnf as strict as real dnf (tests/judges/test_dnf_repos.py::
test_an_installonly_package_by_name_and_version) for what nvidia.driver asks
on EL with the kernel layer off: `dnf install kernel-devel-<version>-<release>`
(Salt's yumpkg for name kernel-devel, version V-R), and the catalog has the
headers of every EL profile's default kernel."""

import sys

import pytest

from tests.twin_tools.conftest import TWIN

sys.path.insert(0, str(TWIN))
from k8stwin import os_profiles  # noqa: E402

DNF = ("dnf", "-y", "--best", "--allowerasing", "install")  # how Salt's yumpkg calls it
QF = "%{NAME}_|-%{EPOCH}_|-%{VERSION}_|-%{RELEASE}_|-%{ARCH}_|-(none)_|-%{INSTALLTIME}\n"  # yumpkg.list_pkgs'


def _listed(node):
    out = {}
    for line in node.run("rpm", "-qa", "--nodigest", "--nosignature", "--queryformat", QF).stdout.splitlines():
        name, _epoch, version, release = line.split("_|-")[:4]
        out.setdefault(name, []).append(f"{version}-{release}")
    return out


@pytest.mark.parametrize("os_key", sorted(k for k, p in os_profiles.PROFILES.items()
                                          if p["family"] == "RedHat" and p["major"] >= 8))
def test_default_kernel_has_its_headers(make_node, os_key):
    kernel = os_profiles.PROFILES[os_key]["kernel"]
    node = make_node(f"rocky{os_profiles.PROFILES[os_key]['major']}")
    r = node.run(*DNF, "kernel-devel-" + kernel.rsplit(".", 1)[0])
    assert r.returncode == 0, r.stdout + r.stderr
    assert node.file(f"/usr/src/kernels/{kernel}").is_dir()


def test_installonly_versions_side_by_side(make_node):
    node = make_node("rocky8")
    r = node.run(*DNF, "kernel-devel-4.18.0-553.81.1.el8_10")
    assert r.returncode == 0, r.stdout + r.stderr
    # an older version beside the newer one (kernel-devel is install-only), by name-version-release.arch
    r = node.run(*DNF, "kernel-devel-4.18.0-553.el8_10.x86_64")
    assert r.returncode == 0 and "kernel-devel-4.18.0-553.el8_10.x86_64" in r.stdout, r.stdout + r.stderr
    r = node.run(*DNF, "kernel-devel-4.18.0-553.el8_10")
    assert r.returncode == 0 and "Package kernel-devel-4.18.0-553.el8_10.x86_64 is already installed." in r.stdout
    listed = _listed(node)
    assert sorted(listed["kernel-devel"]) == ["4.18.0-553.81.1.el8_10", "4.18.0-553.el8_10"]
    assert not [n for n in listed if n.startswith("kernel-devel-")], listed
    for k in ("4.18.0-553.el8_10.x86_64", "4.18.0-553.81.1.el8_10.x86_64"):
        assert node.file(f"/usr/src/kernels/{k}").is_dir()
    r = node.run(*DNF, "kernel-devel-4.18.0-999.el8_10")
    assert r.returncode == 1 and "No match for argument: kernel-devel-4.18.0-999.el8_10" in r.stdout
