"""Issue 9 items 7-10: the modern defaults (Kubernetes 1.36, the distribution's
kernel, cgroup v1 handled per node, Docker's live EL8 path, a validation
image that fits the node's driver), checked through the map and validator."""

import copy

import pytest
import yaml

from tests.conftest import ROOT, load_source

util = load_source("_utils/k8snvidia.py")
PARAMS = {n: yaml.safe_load((ROOT / f"salt/parameters/{n}.yaml").read_text()) for n in ("defaults", "os_family", "osfinger")}
PROFILE = {p: yaml.safe_load((ROOT / f"pillar/profiles/{p}.sls").read_text())["k8snvidia"] for p in ("modern", "seed2020")}
CLUSTER = yaml.safe_load((ROOT / "pillar/cluster.sls").read_text())["k8snvidia"]

GRAINS = {
    "CentOS Linux-7": ("RedHat", "CentOS", 7, None),
    "Rocky Linux-8": ("RedHat", "Rocky", 8, None),
    "AlmaLinux-8": ("RedHat", "AlmaLinux", 8, None),
    "Rocky Linux-9": ("RedHat", "Rocky", 9, None),
    "AlmaLinux-9": ("RedHat", "AlmaLinux", 9, None),
    "Ubuntu-18.04": ("Debian", "Ubuntu", 18, "bionic"),
    "Ubuntu-22.04": ("Debian", "Ubuntu", 22, "jammy"),
    "Ubuntu-24.04": ("Debian", "Ubuntu", 24, "noble"),
    "Debian-12": ("Debian", "Debian", 12, "bookworm"),
}


def grains(finger, nid="node-1"):
    fam, os_, major, code = GRAINS[finger]
    return {"id": nid, "os_family": fam, "osfinger": finger, "os": os_, "osmajorrelease": major, "oscodename": code}


def cluster(finger, profile="modern", **extra):
    """A one-worker cluster on `finger` with a GTX 1080 Ti, control plane on Rocky 9."""
    pil = copy.deepcopy(PROFILE[profile])
    pil = util.merge(pil, {
        "cluster": {"name": "t"},
        "nodes": {
            "cp": {"ip": "10.0.0.1", "role": "control-plane", "os": "Rocky Linux-9", "gpus": []},
            "node-1": {"ip": "10.0.0.2", "role": "worker", "os": finger, "gpus": ["NVIDIA GeForce GTX 1080 Ti"]},
        },
    })
    return util.merge(pil, extra)


def build(finger, profile="modern", nid="node-1", **extra):
    pil = cluster(finger, profile, **extra)
    return util.build(PARAMS, pil, nid, grains(finger, nid)), pil


def problems(finger, profile="modern", **extra):
    cfg, pil = build(finger, profile, **extra)
    return util.validate(cfg, pil)


def test_modern_default_is_the_136_line():
    cfg, _ = build("Rocky Linux-9")
    assert cfg["kubernetes"]["version"].startswith("1.36.")
    assert cfg["kubernetes"]["repo"]["baseurl"] == "https://pkgs.k8s.io/core:/stable:/v1.36/rpm/"
    assert PARAMS["defaults"]["kubernetes"]["version"].startswith("1.36.")
    assert "version" not in PROFILE["modern"]["kubernetes"]  # the map's, per OS


@pytest.mark.parametrize("finger,cgroup", [
    ("CentOS Linux-7", "v1"), ("Rocky Linux-8", "v1"), ("AlmaLinux-8", "v1"), ("Ubuntu-18.04", "v1"),
    ("Rocky Linux-9", "v2"), ("AlmaLinux-9", "v2"), ("Ubuntu-22.04", "v2"), ("Ubuntu-24.04", "v2"), ("Debian-12", "v2"),
])
def test_cgroup_fact_per_os(finger, cgroup):
    cfg, _ = build(finger, kubernetes={"version": "1.35.4"})
    assert cfg["host"]["cgroup"] == cgroup
    assert cfg["derived"]["cgroup"] == cgroup
    want = ["SystemVerification"] if cgroup == "v1" else []
    assert cfg["derived"]["preflight_ignore"] == want


def test_cgroup_v1_node_makes_the_cluster_kubelet_config_tolerate_v1():
    # the control plane (Rocky 9, v2) renders the cluster-wide KubeletConfiguration:
    # it must carry failCgroupV1: false because a worker is on cgroup v1.
    cfg, _ = build("Rocky Linux-8", nid="cp", kubernetes={"version": "1.36.4"})
    cfg_cp = util.build(PARAMS, cluster("Rocky Linux-8"), "cp", grains("Rocky Linux-9", "cp"))
    assert cfg_cp["derived"]["cgroup_v1_nodes"] == ["node-1"]
    assert cfg_cp["derived"]["fail_cgroup_v1"] is False
    assert cfg_cp["derived"]["preflight_ignore"] == []
    all_v2 = util.build(PARAMS, cluster("Rocky Linux-9"), "cp", grains("Rocky Linux-9", "cp"))
    assert all_v2["derived"]["fail_cgroup_v1"] is None and all_v2["derived"]["cgroup_v1_nodes"] == []
    old = util.build(PARAMS, cluster("Rocky Linux-8", kubernetes={"version": "1.33.6"}), "cp", grains("Rocky Linux-9", "cp"))
    assert old["derived"]["fail_cgroup_v1"] is None  # false by default before 1.35


def test_user_switched_node_to_cgroup_v2():
    pil = cluster("Rocky Linux-8")
    pil["nodes"]["node-1"]["overrides"] = {"host": {"cgroup": "v2"}}
    cfg = util.build(PARAMS, pil, "node-1", grains("Rocky Linux-8"))
    assert cfg["derived"]["cgroup"] == "v2"
    # Rocky 8's 4.18 still fails kubeadm's kernel check: skipped, the kernel layer being off
    assert cfg["derived"]["preflight_ignore"] == ["SystemVerification"]
    cp = util.build(PARAMS, pil, "cp", grains("Rocky Linux-9", "cp"))
    assert cp["derived"]["cgroup_v1_nodes"] == []


@pytest.fixture
def k8s_138_released(monkeypatch):
    """1.38 is not released in December 2026 (the validator refuses it as
    such): add it to the release table as its release will, so the cgroup v1
    rule that waits for it is exercised now."""
    monkeypatch.setitem(util._sibling("pillar_schema").K8S_EOL, 38, "2028-02-28")


def test_138_is_not_released_yet():
    found = problems("Rocky Linux-9", kubernetes={"version": "1.38.0"})
    assert any("1.37 is the newest minor" in p for p in found), found


@pytest.mark.parametrize("finger", ["CentOS Linux-7", "Rocky Linux-8", "Ubuntu-18.04"])
def test_cgroup_v1_refused_from_138(finger, k8s_138_released):
    found = problems(finger, kubernetes={"version": "1.38.0"})
    hits = [p for p in found if "cgroup v1" in p]
    assert hits and "k8snvidia:kubernetes:version: '1.38.0'" in hits[0] and "node-1" in hits[0] and finger in hits[0]


def test_cgroup_v2_node_runs_138(k8s_138_released):
    assert not [p for p in problems("Rocky Linux-9", kubernetes={"version": "1.38.0"}) if "cgroup" in p]


def test_bad_cgroup_value():
    found = problems("Rocky Linux-9", host={"cgroup": "hybrid"})
    assert any("k8snvidia:host:cgroup: 'hybrid' is invalid; expected one of v1, v2" in p for p in found), found


@pytest.mark.parametrize("finger", ["Rocky Linux-8", "AlmaLinux-8", "Rocky Linux-9", "AlmaLinux-9",
                                    "Ubuntu-22.04", "Ubuntu-24.04", "Debian-12", "Ubuntu-18.04"])
def test_distribution_kernel_by_default(finger):
    cfg, _ = build(finger)
    assert cfg["kernel"]["manage"] is False


def test_centos7_keeps_the_kernel_layer_and_the_first_elrepo_key():
    cfg, _ = build("CentOS Linux-7", kubernetes={"version": "1.35.4"})
    assert cfg["kernel"]["manage"] is True and cfg["kernel"]["package"] == "kernel-lt"
    assert cfg["kernel"]["repo"]["gpgkey"] == "https://www.elrepo.org/RPM-GPG-KEY-elrepo.org"


def test_centos7_without_the_kernel_layer_is_refused_for_kubeadm_132():
    found = problems("CentOS Linux-7", kubernetes={"version": "1.35.4"}, kernel={"manage": False})
    hit = [p for p in found if p.startswith("k8snvidia:kernel:manage: False")]
    assert hit and "4.19" in hit[0] and "3.10" in hit[0]
    # the seed's 1.18 needs no new kernel
    assert not [p for p in problems("CentOS Linux-7", "seed2020", kernel={"manage": False}) if "kernel:manage" in p]


@pytest.mark.parametrize("finger", ["Rocky Linux-8", "Rocky Linux-9", "AlmaLinux-9"])
def test_elrepo_opt_in_imports_both_keys_on_el8_el9(finger):
    cfg, _ = build(finger, kernel={"manage": True})
    keys = cfg["kernel"]["repo"]["gpgkey"].split()
    assert keys == ["https://www.elrepo.org/RPM-GPG-KEY-elrepo.org", "https://www.elrepo.org/RPM-GPG-KEY-v2-elrepo.org"]
    assert cfg["kernel"]["repo"]["baseurl"] == f"https://elrepo.org/linux/kernel/el{grains(finger)['osmajorrelease']}/$basearch/"


@pytest.mark.parametrize("finger,url", [
    ("CentOS Linux-7", "https://download.docker.com/linux/centos/7/$basearch/stable"),
    ("Rocky Linux-8", "https://download.docker.com/linux/rhel/8/$basearch/stable"),
    ("AlmaLinux-8", "https://download.docker.com/linux/rhel/8/$basearch/stable"),
    ("Rocky Linux-9", "https://download.docker.com/linux/centos/9/$basearch/stable"),
    ("AlmaLinux-9", "https://download.docker.com/linux/centos/9/$basearch/stable"),
    ("Ubuntu-22.04", "https://download.docker.com/linux/ubuntu"),
    ("Debian-12", "https://download.docker.com/linux/debian"),
])
def test_docker_repository_paths_are_live(finger, url):
    cfg, _ = build(finger)
    assert cfg["docker"]["repo"]["baseurl"] == url
    assert "/centos/8/" not in cfg["docker"]["repo"]["baseurl"]


@pytest.mark.parametrize("finger", ["Rocky Linux-8", "AlmaLinux-8", "Rocky Linux-9", "AlmaLinux-9",
                                    "Ubuntu-22.04", "Ubuntu-24.04", "Debian-12"])
def test_modern_os_passes_with_the_default_kubernetes(finger):
    assert problems(finger) == []


@pytest.mark.parametrize("finger,line", [("CentOS Linux-7", "1.6"), ("Ubuntu-18.04", "1.6")])
def test_old_containerd_refused_for_136(finger, line):
    # the modern profile keeps these systems on the 1.35 line ...
    cfg, _ = build(finger)
    assert cfg["kubernetes"]["version"].startswith("1.35.")
    # ... and 1.36 is refused there, naming the node, the OS and the versions
    found = problems(finger, kubernetes={"version": "1.36.4"})
    hit = [p for p in found if "containerd" in p]
    assert hit and f"containerd.io {line} at most" in hit[0] and "node-1" in hit[0] and "2.2+" in hit[0], found
    assert not [p for p in problems(finger, kubernetes={"version": "1.35.4"}) if "containerd" in p]


def test_shipped_seed_cluster_pillar_is_valid_on_every_node():
    pil = util.merge(PROFILE["modern"], CLUSTER)
    for nid, node in pil["nodes"].items():
        cfg = util.build(PARAMS, pil, nid, grains(node["os"], nid))
        assert util.validate(cfg, pil) == [], nid


@pytest.mark.parametrize("driver,image", [
    ("440.100", "nvidia/cuda:10.2-base-centos7"),
    ("470.256.02", "nvidia/cuda:11.0.3-base-ubuntu20.04"),
    ("535.288.01", "nvcr.io/nvidia/cuda:12.0.1-base-ubuntu22.04"),
    ("580.95.05", "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"),
])
def test_validation_image_fits_the_driver(driver, image):
    assert util.validation_image(PARAMS["defaults"]["validation"], driver) == image
    # keys may come from the pillar as strings
    as_text = {"images": {str(k): v for k, v in PARAMS["defaults"]["validation"]["images"].items()}}
    assert util.validation_image(as_text, driver) == image


def test_validation_image_forced_and_missing():
    assert util.validation_image({"image": "x/y:1", "images": {440: "a"}}, "580.1") == "x/y:1"
    assert util.validation_image({"images": {525: "a"}}, "440.100") is None
    found = problems("CentOS Linux-7", "seed2020", validation={"images": {440: None}})
    assert any(p.startswith("k8snvidia:validation:images:") and "440.100" in p for p in found), found


def test_seed2020_on_driver_440_gets_a_cuda_10_2_image():
    cfg, _ = build("CentOS Linux-7", "seed2020")
    assert util.validation_image(cfg["validation"], cfg["driver"]["version"]) == "nvidia/cuda:10.2-base-centos7"



def _mixed(cp_os, worker_os, **worker_overrides):
    pil = copy.deepcopy(PROFILE["modern"])
    worker = {"ip": "10.0.0.2", "role": "worker", "os": worker_os, "gpus": ["NVIDIA GeForce RTX 3090"]}
    if worker_overrides:
        worker["overrides"] = worker_overrides
    return util.merge(pil, {"cluster": {"name": "t"}, "nodes": {
        "cp": {"ip": "10.0.0.1", "role": "control-plane", "os": cp_os, "gpus": []}, "w": worker}})


def test_worker_never_newer_than_the_control_plane():
    """The seed's CentOS 7 control plane runs 1.35 (its containerd is too
    old for 1.36); an Ubuntu 22.04 worker added to it would get the map's
    1.36 and kubeadm join refuses a kubelet newer than the control plane:
    the worker takes the control plane's release, repository included."""
    pil = _mixed("CentOS Linux-7", "Ubuntu-22.04")
    cfg = util.build(PARAMS, pil, "w", grains("Ubuntu-22.04", "w"))
    assert cfg["kubernetes"]["version"] == "1.35.4"
    assert "/v1.35/" in cfg["kubernetes"]["repo"]["baseurl"]
    assert cfg["derived"]["kubernetes_package_version"].startswith("1.35.4")
    assert cfg["derived"]["kubernetes_version_lowered_from"] == "1.36.4"
    assert util.validate(cfg, pil) == []
    cp = util.build(PARAMS, pil, "cp", grains("CentOS Linux-7", "cp"))
    assert cp["kubernetes"]["version"] == "1.35.4" and cp["derived"]["control_plane_version"] == "1.35.4"


def test_older_worker_keeps_its_release():
    # kubelet older than the API server is supported: a CentOS 7 worker of a 1.36 control plane stays on 1.35
    pil = _mixed("Ubuntu-24.04", "CentOS Linux-7")
    cfg = util.build(PARAMS, pil, "w", grains("CentOS Linux-7", "w"))
    assert cfg["kubernetes"]["version"] == "1.35.4" and "kubernetes_version_lowered_from" not in cfg["derived"]
    assert not [p for p in util.validate(cfg, pil) if "control plane" in p]


def test_worker_too_far_behind_the_control_plane():
    pil = _mixed("Ubuntu-24.04", "Ubuntu-22.04", kubernetes={"version": "1.32.9"})
    cfg = util.build(PARAMS, pil, "w", grains("Ubuntu-22.04", "w"))
    found = [p for p in util.validate(cfg, pil) if "3 minors below the control plane" in p]
    assert found and "k8snvidia:kubernetes:version: '1.32.9'" in found[0] and "node w" in found[0], found
