"""The pillar validation: one test per rejected case, and the shipped pillar passes."""

import copy

import pytest
import yaml

from tests.conftest import ROOT, load_source, salt_cmd

util = load_source("_utils/k8snvidia.py")
PARAMS = {n: yaml.safe_load((ROOT / f"salt/parameters/{n}.yaml").read_text()) for n in ("defaults", "os_family", "osfinger")}
CENTOS7 = {"id": "node-110", "os_family": "RedHat", "osfinger": "CentOS Linux-7", "os": "CentOS", "osmajorrelease": 7}


def shipped():
    cluster = yaml.safe_load((ROOT / "pillar/cluster.sls").read_text())["k8snvidia"]
    profile = yaml.safe_load((ROOT / "pillar/profiles/modern.sls").read_text())["k8snvidia"]
    return util.merge(profile, cluster)


def problems_for(pillar_cfg, grains=CENTOS7):
    cfg = util.build(PARAMS, pillar_cfg, grains["id"], grains)
    return util.validate(cfg, pillar_cfg)


def test_shipped_pillar_is_valid():
    assert problems_for(shipped()) == []


def _bad(mutate, grains=CENTOS7):
    cfg = copy.deepcopy(shipped())
    mutate(cfg)
    return problems_for(cfg, grains)


@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda c: c["nodes"]["node-105"].update(ip="912.168.0.105"), "k8snvidia:nodes:node-105:ip: '912.168.0.105'"),
        (lambda c: c["nodes"]["node-105"].update(ip="192.168.0.110"), "a unique address; node-110 has it too"),
        (lambda c: c["nodes"].update({"Node-110": {"ip": "192.168.0.120", "role": "worker"}}), "a unique node name"),
        (lambda c: c["nodes"]["node-109"].update(role="gpu-worker"), "k8snvidia:nodes:node-109:role: 'gpu-worker'"),
        (lambda c: c["nodes"]["cluster-master"].update(role="worker"), "exactly one node with role: control-plane"),
        (lambda c: c["driver"].pop("sha256"), "k8snvidia:driver:sha256: None is invalid"),
        (lambda c: c.setdefault("docker", {}).update(repo={"baseurl": "http://mirror.example/docker", "gpgcheck": False}),
         "k8snvidia:docker:repo:gpgcheck: False"),
        (lambda c: c["cluster"].update(pod_cidr="192.168.0.0/16"), "k8snvidia:cluster:pod_cidr: '192.168.0.0/16'"),
        (lambda c: c["kubernetes"].update(cri="docker"), "no dockershim"),
        (lambda c: c["kubernetes"].update(version="1.34"), "k8snvidia:kubernetes:version: '1.34'"),
        (lambda c: c.setdefault("host", {}).update(selinux="off"), "k8snvidia:host:selinux: 'off'"),
    ],
)
def test_rejected(mutate, needle):
    found = _bad(mutate)
    assert any(needle in p for p in found), found


def test_runner_validate_passes_and_names_bad_ip(repo_copy):
    ok = salt_cmd("salt-run", "cluster.validate", cwd=repo_copy)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    path = repo_copy / "pillar/cluster.sls"
    path.write_text(path.read_text().replace("ip: 192.168.0.105", "ip: 912.168.0.105"))
    bad = salt_cmd("salt-run", "cluster.validate", cwd=repo_copy)
    assert bad.returncode != 0
    assert "k8snvidia:nodes:node-105:ip: '912.168.0.105' is invalid; expected an IPv4 address" in bad.stdout
