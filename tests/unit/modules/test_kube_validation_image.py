"""The validation pod's image fits the node's driver (issue 9 item 10): one
choice (_utils/k8snvidia.validation_image) from the map's validation:images,
used by kube.validate_gpu with the node's driver from the mine. Salt's
dunders through salt-factories' loader mock (``configure_loader_modules``)."""

import json
import re

import pytest

from tests.conftest import ROOT, load_source, loader_globals

util = load_source("_utils/k8snvidia.py")
kube = load_source("_modules/kube.py")


@pytest.fixture
def gpu_mine():
    """The node's k8snvidia_gpu mine entry (set by kube_for)."""
    return {}


@pytest.fixture
def configure_loader_modules(gpu_mine):
    return {kube: loader_globals(__salt__={
        "cp.get_file_str": lambda url: (ROOT / "salt/parameters/defaults.yaml").read_text()
        if url == "salt://parameters/defaults.yaml" else None,
        "mine.get": lambda tgt, fun: {tgt: dict(gpu_mine)} if fun == "k8snvidia_gpu" else {},
    }, __utils__={"k8snvidia.merge": util.merge, "k8snvidia.validation_image": util.validation_image})}


@pytest.fixture
def kube_for(gpu_mine, monkeypatch):
    """The kube module of a node whose driver is ``driver``, with ``pillar``
    (a test may call it again for another node: the dunders are this test's,
    refilled in place)."""

    def make(driver, pillar=None):
        applied = []
        gpu_mine.clear()
        gpu_mine["driver_version"] = driver
        kube.__pillar__.clear()
        kube.__pillar__["k8snvidia"] = pillar or {}
        kube.__context__.clear()
        monkeypatch.setattr(kube, "apply", lambda text: applied.append(json.loads(text)))
        monkeypatch.setattr(kube, "kubectl", lambda args, **kw: {
            "retcode": 0, "stdout": "Succeeded" if "jsonpath" in " ".join(args) else "", "stderr": ""})
        return kube, applied

    return make


@pytest.mark.parametrize("driver,image", [
    ("440.100", "nvidia/cuda:10.2-base-centos7"),
    ("580.95.05", "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04"),
])
def test_pod_image_follows_the_driver(kube_for, driver, image):
    mod, applied = kube_for(driver)
    res = mod.validate_gpu("node-110", timeout=5)
    assert res["phase"] == "Succeeded"
    assert applied[0]["spec"]["containers"][0]["image"] == image


def test_pillar_overrides_and_forced_image(kube_for):
    mod, applied = kube_for("440.100", {"validation": {"images": {440: "mirror.example/cuda:10.2-base"}}})
    mod.validate_gpu("node-110", timeout=5)
    assert applied[-1]["spec"]["containers"][0]["image"] == "mirror.example/cuda:10.2-base"
    mod, applied = kube_for("440.100", {"validation": {"image": "x/y:1"}})
    mod.validate_gpu("node-110", timeout=5)
    assert applied[-1]["spec"]["containers"][0]["image"] == "x/y:1"


def test_no_fitting_image_is_reported_not_run(kube_for):
    mod, applied = kube_for("390.157")
    res = mod.validate_gpu("node-110", timeout=5)
    assert res["phase"] == "NotRun" and "390.157" in res["reason"] and not applied


def test_one_place_for_the_image():
    # no image literal outside the map
    for rel in ("_modules/kubeadm.py", "_modules/kube.py", "_runners/cluster_run.py", "salt/kubernetes/master.sls"):
        assert not re.search(r"cuda:\d", (ROOT / rel).read_text()), rel


def test_a_rejected_pod_says_why(kube_for, monkeypatch):
    """Every GPU taken by running pods: the kubelet rejects the validation pod
    (OutOfnvidia.com/gpu); validate_gpu returns that reason, which gpu-check
    reports instead of failing the node."""
    mod, _ = kube_for("580.95.05")
    answers = {"{.status.phase}": "Failed",
               "{.status.reason}: {.status.message}": "OutOfnvidia.com/gpu: Pod was rejected: Node didn't have "
                                                      "enough resource: nvidia.com/gpu, requested: 1, used: 1, "
                                                      "capacity: 1"}

    def kubectl(args, **kw):
        spec = next((a.split("=", 1)[1] for a in args if a.startswith("jsonpath=")), None)
        return {"retcode": 0, "stdout": answers.get(spec, ""), "stderr": ""}

    monkeypatch.setattr(mod, "kubectl", kubectl)
    res = mod.validate_gpu("node-110", timeout=5)
    assert res["phase"] == "Failed" and res["pod_reason"].startswith("OutOfnvidia.com/gpu: Pod was rejected")
    assert "(OutOfnvidia.com/gpu: " in res["reason"]
