"""nvidia.driver through Salt's real loader: the SLS as rendered for two OS
families, and the state run by salt-call (test mode, then for real) against
the twin's emulated .run installer in a scratch node."""

import json
import os
import shutil
import sys

import pytest
import yaml

from tests.conftest import ROOT
from tests.fakes.nvidia_installer import artifacts, hw
from tests.functional.render import salt_call, show_sls

VERSION = "580.95.05"
PIN = "580.178.04"  # the shipped pillar's (pillar/profiles/modern.sls)


def _ids(rendered, fun):
    return [k for k, v in rendered.items() if fun in v]


@pytest.mark.parametrize("os_name", ["centos7", "ubuntu1804"])
def test_driver_sls_order_and_values(os_name):
    out = show_sls(os_name, "nvidia.driver", minion_id="node-110")
    drv = dict((list(d.items())[0] if isinstance(d, dict) else (d, True)) for d in out["k8snvidia-driver"]["nvidia_driver"])
    assert drv["name"] == PIN and len(drv["sha256"]) == 64 and drv["method"] == "runfile"
    assert drv["url"].endswith(f"/{PIN}/NVIDIA-Linux-x86_64-{PIN}.run")
    assert out["k8snvidia-driver"]["__sls__"] == "nvidia.driver.runfile"
    req = drv["require"]
    assert {"sls": "kernel"} in req and {"sls": "nouveau"} in req
    assert {"pkg": "k8snvidia-driver-prerequisites"} in req
    # the kernel and nouveau layers are ordered before the driver
    # each state's one function key (Salt adds __sls__, __env__, __sls_included_from__ beside it)
    order = {k: [x for x in v[next(f for f in v if not f.startswith("__"))] if isinstance(x, dict) and "order" in x]
             for k, v in out.items()}
    first = {k: o[0]["order"] for k, o in order.items() if o}
    assert max(first[k] for k in first if out[k]["__sls__"] in ("kernel", "nouveau")) < first["k8snvidia-driver"]
    repo = "k8snvidia-driver-extra-repo" in out
    assert repo is (os_name == "centos7")  # EPEL for dkms on the RedHat family only (map data)


def test_state_through_salt_call(tmp_path, monkeypatch):
    kernel = os.uname().release
    node, root, art = tmp_path / "node", tmp_path / "root", tmp_path / "art"
    node.mkdir()
    (node / "node.json").write_text(json.dumps({
        "id": "node-110", "os": "CentOS Linux-7", "os_key": "centos7", "kernel": kernel,
        "gpus": ["NVIDIA GeForce GTX 1080 Ti"], "faults": {}}))
    (node / "state.json").write_text(json.dumps({
        "kernel": {"running": kernel}, "modules": [], "packages": {"gcc": {}, "make": {}, "dkms": {}}}))
    (root / "usr/src/kernels" / kernel).mkdir(parents=True)
    hw.sync(str(node))
    _path, sha = artifacts.make_runfile(str(art), VERSION)
    monkeypatch.setenv("K8STWIN_NODE_DIR", str(node))
    monkeypatch.setenv("K8STWIN_ROOT", str(root))
    monkeypatch.setenv("K8STWIN_PYTHON", sys.executable)
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "twin"))
    # the twin's dkms on PATH: the state checks `dkms status` after the install
    (node / "bin").mkdir()
    os.symlink(ROOT / "twin/bin/_dispatch", node / "bin" / "dkms")
    monkeypatch.setenv("PATH", f"{node / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    extra = {
        "k8snvidia.root": str(root),
        "k8snvidia.procfs_root": str(node / "proc"),
        "k8snvidia.sysfs_root": str(node / "sys"),
        "k8snvidia.artifact_mirror": "file://" + str(art),
    }
    args = ["state.single", "nvidia_driver.installed", VERSION,
            f"url=https://us.download.nvidia.com/XFree86/Linux-x86_64/{VERSION}/NVIDIA-Linux-x86_64-{VERSION}.run",
            f"sha256={sha}", f"cache_dir={tmp_path / 'cache'}", f"kernel={kernel}"]
    rc, out, err = salt_call("centos7", *args, "test=True", extra=extra)
    ret = next(iter(out.values()))
    assert ret["result"] is None, (out, err)
    assert "Would copy" in ret["comment"] and not (tmp_path / "cache").exists()
    assert not (node / "commands.jsonl").exists()
    rc, out, err = salt_call("centos7", *args, extra=extra)
    ret = next(iter(out.values()))
    assert rc == 0 and ret["result"] is True, (ret["comment"], err)
    assert ret["changes"]["version"] == {"old": None, "new": VERSION}
    assert ret["changes"]["kernel_module_type"] == "proprietary"  # nvidia.recommended: a Pascal GPU
    assert (root / "var/lib/nvidia/log").read_text().startswith("1.0-5809505 (580.95.05)")
    assert "nvidia" in json.loads((node / "state.json").read_text())["modules"]
    rc, out, err = salt_call("centos7", *args, extra=extra)
    ret = next(iter(out.values()))
    assert ret["result"] is True and ret["changes"] == {}, ret["comment"]


def _kw(out, sid):
    return dict((list(d.items())[0] if isinstance(d, dict) else (d, True))
                for d in out[sid][next(f for f in out[sid] if not f.startswith("__"))])


def test_package_method_on_ubuntu_is_map_data():
    """Ubuntu 22.04: the OS map chooses the package method (R580 with signed
    precompiled modules, DKMS packages otherwise); no .run, no sha256."""
    out = show_sls("ubuntu2204", "nvidia.driver", minion_id="node-105")
    assert out["k8snvidia-driver"]["__sls__"] == "nvidia.driver.package"
    drv = _kw(out, "k8snvidia-driver")
    assert drv["method"] == "package" and drv["branch"] == 580 and "url" not in drv
    assert drv["precompiled"]["proprietary"] == ["linux-modules-nvidia-{branch}-{kernel}"]
    assert drv["dkms_packages"]["open"] == ["nvidia-dkms-{branch}-open"]
    assert "k8snvidia-driver-prerequisites" not in out
    # the running kernel's headers: on Debian the release is in the package's name, no version
    hdr = _kw(out, "k8snvidia-driver-kernel-headers")
    assert hdr["name"] == "linux-headers-5.15.0-122-generic" and "version" not in hdr


def test_package_method_on_el_enables_the_cuda_repository_and_stream(tmp_path):
    pillar = tmp_path / "pillar"
    shutil.copytree(ROOT / "pillar", pillar)
    (pillar / "variant.sls").write_text(yaml.safe_dump({"k8snvidia": {"driver": {"method": "package"}}}))
    (pillar / "top.sls").write_text(yaml.safe_dump({"base": {"*": ["cluster", "variant"]}}))
    out = show_sls("rocky9", "nvidia.driver", minion_id="node-109", pillar_dir=pillar)
    drv = _kw(out, "k8snvidia-driver")
    assert drv["module_stream"] == {"proprietary": "nvidia-driver:{branch}-dkms", "open": "nvidia-driver:{branch}-open"}
    repo = _kw(out, "k8snvidia-driver-package-repo")
    assert repo["baseurl"].startswith("https://developer.download.nvidia.com/compute/cuda/repos/rhel9/")
    assert repo["gpgcheck"] in (1, True) and repo["gpgkey"].endswith(".pub")
    assert {"pkgrepo": "k8snvidia-driver-package-repo"} in drv["require"]


@pytest.mark.parametrize("os_name", ["centos7", "ubuntu2204"])
def test_clean_follows_the_method(os_name):
    out = show_sls(os_name, "nvidia.driver.clean", minion_id="node-110")
    kw = _kw(out, "k8snvidia-driver-clean-removed")
    assert kw["method"] == ("runfile" if os_name == "centos7" else "package")
