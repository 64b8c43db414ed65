"""The package catalog (twin/catalog/*.yaml) is well formed, and the version
comparisons the package tools use order versions like rpm and dpkg."""

import sys

import pytest

from tests.twin_tools.conftest import TWIN

sys.path.insert(0, str(TWIN))
from k8stwin import pkgdb  # noqa: E402

PAYLOAD_KEYS = {"kernel", "headers", "files", "links", "dirs", "tools", "services", "nvidia_driver"}


def test_catalog_is_well_formed():
    repos = pkgdb.catalog()
    assert len(repos) > 20
    names = set()
    for repo in repos:
        assert repo["name"] not in names, repo["name"]
        names.add(repo["name"])
        assert repo["type"] in ("rpm", "deb") and repo["urls"], repo["name"]
        provided = {n for r in repos if r["type"] == repo["type"] for n in r["packages"]}
        for name, spec in repo["packages"].items():
            assert spec["versions"] or repo.get("dead"), (repo["name"], name)
            assert set(spec.get("payload") or {}) <= PAYLOAD_KEYS, (repo["name"], name)
            for req in spec.get("requires") or []:
                assert req.split()[0] in provided, (repo["name"], name, req)


@pytest.mark.parametrize(
    "url,suite,expect",
    [
        ("https://vault.centos.org/7.9.2009/os/x86_64/", None, "centos7-vault-base"),
        ("https://pkgs.k8s.io/core:/stable:/v1.34/rpm/", None, "pkgs-k8s-v1.34-rpm"),
        ("https://pkgs.k8s.io/core:/stable:/v1.34/deb/", "/", "pkgs-k8s-v1.34-deb"),
        ("http://archive.ubuntu.com/ubuntu", "bionic-updates", "ubuntu-bionic"),
        ("https://download.docker.com/linux/debian", "bookworm", "docker-ce-deb"),
        ("https://elrepo.org/linux/kernel/el7/x86_64/", None, None),
    ],
)
def test_find_catalog(url, suite, expect):
    repo = pkgdb.find_catalog("deb" if suite else "rpm", url, suite)
    assert (repo["name"] if repo else None) == expect


@pytest.mark.parametrize(
    "a,b,rc",
    [
        ("1.34.2-150500.1.1", "1.34.10-150500.1.1", -1),
        ("5.4.278-1.el7.elrepo", "3.10.0-1160.119.1.el7", 1),
        ("3:26.1.4-1.el7", "26.1.5-1.el7", 1),
        ("1.0~rc1-1", "1.0-1", -1),
        ("2.02-0.87.el7.centos", "2.02-0.87.el7.centos", 0),
    ],
)
def test_rpm_compare(a, b, rc):
    assert pkgdb.rpm_compare(a, b) == rc


@pytest.mark.parametrize(
    "a,b,rc",
    [
        ("1.34.2-1.1", "1.34.1-1.1", 1),
        ("5.4.0.150.167~18.04.121", "5.4.0.150.167", -1),
        ("1:1.0", "2.0", 1),
        ("5:28.5.2-1~ubuntu.22.04~jammy", "5:24.0.9-1~ubuntu.18.04~bionic", 1),
        ("1.0", "1.0-0", 0),
    ],
)
def test_deb_compare(a, b, rc):
    assert pkgdb.deb_compare(a, b) == rc
