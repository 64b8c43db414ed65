"""The running kernel's headers in nvidia.driver (kernel layer off), as
rendered by Salt's real loader: on the RedHat family the package is named
kernel-devel with the kernel's version-release as `version:` (Salt's
pkg.installed finds an rpm by its name only: a name with the version inside is
installed by dnf and then reported as failed), on Debian linux-headers-<release>
is itself the package name. And no package state of the RedHat tree carries a
version or an arch in a package name. (Debian's name: test_nvidia_driver_sls.py's
Ubuntu 22.04 render.)"""

import json
import re

import pytest
import yaml

from tests.conftest import ROOT
from tests.functional.render import salt_call

HEADERS = "k8snvidia-driver-kernel-headers"
ROCKY9 = yaml.safe_load((ROOT / "etc/os/rocky9/minion").read_text())["grains"]
ALMA8 = dict(ROCKY9, os="AlmaLinux", osfinger="AlmaLinux-8", osfullname="AlmaLinux", osrelease="8.10",
             osmajorrelease=8, oscodename="Cerulean Leopard", kernelrelease="4.18.0-553.el8_10.x86_64")
# CentOS 7 turns the kernel layer on (kubeadm 1.32+ refuses its 3.10): off, with a release that takes 3.10
CENTOS7_OFF = {"kernel": {"manage": False}, "kubernetes": {"version": "1.31.14"}}
# a version inside a package name (-5.14.0-427.el9, -1.36.4-150500.1.1) or an rpm arch suffix
VERSION_IN_NAME = re.compile(r"-\d+(\.\d+)+(-[^-]+)?$|\.(x86_64|aarch64|ppc64le|s390x|i686|noarch)$")

CASES = {
    # os, grains (None: etc/os/<os>/minion), pillar, SLS, the headers' name and version, the driver's SLS
    "rocky9": ("rocky9", None, {},
               "host,kernel,nouveau,docker,docker.containerd,nvidia.container_toolkit,kubernetes,nvidia.driver",
               "kernel-devel", "5.14.0-427.13.1.el9_4", "nvidia.driver.runfile"),
    "alma8-package": ("rocky9", ALMA8, {"driver": {"method": "package"}}, "nvidia.driver",
                      "kernel-devel", "4.18.0-553.el8_10", "nvidia.driver.package"),
    "centos7": ("centos7", None, CENTOS7_OFF, "nvidia.driver",
                "kernel-devel", "3.10.0-1062.18.1.el7", "nvidia.driver.runfile"),
}


def _kw(state):
    fun = next(f for f in state if not f.startswith("__"))
    return dict((list(d.items())[0] if isinstance(d, dict) else (d, True)) for d in state[fun])


@pytest.mark.parametrize("case", sorted(CASES))
def test_running_kernel_headers(case):
    os_name, grains, pillar, sls, name, version, driver_sls = CASES[case]
    args = ["state.show_sls", sls]
    if pillar:
        args.append("pillar=" + json.dumps({"k8snvidia": pillar}))
    rc, out, err = salt_call(os_name, *args, minion_id="node-109", extra={"grains": grains} if grains else None)
    assert rc == 0 and isinstance(out, dict), (out, err)
    hdr = _kw(out[HEADERS])
    assert "pkg" in out[HEADERS] and hdr["name"] == name and hdr.get("version") == version
    assert out["k8snvidia-driver"]["__sls__"] == driver_sls
    assert {"pkg": HEADERS} in _kw(out["k8snvidia-driver"])["require"]
    # every package name of the RedHat tree is a bare name (versions go in version: or pkgs' values)
    names = []
    for state in out.values():
        if "pkg" not in state:
            continue
        kw = _kw(state)
        names += [kw["name"]] if "pkgs" not in kw and "sources" not in kw else []
        names += [next(iter(p)) if isinstance(p, dict) else p for p in kw.get("pkgs") or []]
    assert names and not [n for n in names if VERSION_IN_NAME.search(n)], names
