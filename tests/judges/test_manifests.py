"""Every manifest we apply (flannel, the NVIDIA device plugin, the GPU
validation pod), rendered by the real state tree / module, through
kubernetes-validate --strict for each supported Kubernetes minor; the
device plugin's config file through the twin's copy of k8s-device-plugin
v0.20's config loading (no real plugin runs here)."""

import json

import pytest
import yaml
from kubernetes_validate import utils as kv

from tests.conftest import load_source
from tests.functional import render
from tests.judges import runtime_files as rf

MINORS = ("1.35", "1.36", "1.37")
MANIFESTS = {"k8snvidia-kubernetes-cni-manifest": "cni.yaml", "k8snvidia-kubernetes-device-plugin-manifest": "dp.yaml"}
_RENDERED = {}


def manifests(tmp_path_factory, profile, replicas):
    key = (profile, replicas)
    if key in _RENDERED:
        return _RENDERED[key]
    pillar = {"k8snvidia": {"device_plugin": {"time_slicing_replicas": replicas}}} if replicas is not None else {}
    rc, high, err = render.salt_call(
        "rocky9", "state.show_sls", "kubernetes.master", "pillar=" + json.dumps(pillar),
        minion_id="cluster-master", pillar_dir=rf.pillar_dir(profile),
    )
    assert rc == 0 and isinstance(high, dict), f"{high}\n{err}"
    out = tmp_path_factory.mktemp(f"manifests-{profile}-{replicas}")
    keep = {}
    for sid, fname in MANIFESTS.items():
        body = [a for a in high[sid]["file"] if not (isinstance(a, dict) and set(a) & set(rf.REQUISITES + ("name",)))]
        keep[sid] = {**{k: v for k, v in high[sid].items() if k.startswith("__")},
                     "file": body + [{"name": str(out / fname)}]}
    rc, ret, err = render.salt_call("rocky9", "state.high", json.dumps(keep), "pillar=" + json.dumps(pillar))
    assert isinstance(ret, dict) and all(v["result"] for v in ret.values()), f"{ret}\n{err}"
    docs = {fname: [d for d in yaml.safe_load_all((out / fname).read_text()) if d] for fname in MANIFESTS.values()}
    _RENDERED[key] = docs
    return docs


def validation_pod():
    mod = load_source("_modules/kube.py", "k8snvidia_judge_kube")
    util = load_source("_utils/k8snvidia.py", "k8snvidia_judge_utils")
    mod.__pillar__ = {"k8snvidia": {"validation": {"timeout": 1}}}
    # the map's validation images, and node-110's driver as its GPU facts in the mine say
    mod.__salt__ = {
        "cp.get_file_str": lambda path: (render.ROOT / "salt/parameters/defaults.yaml").read_text(),
        "mine.get": lambda tgt, fun, *a, **k: {tgt: {"driver_version": "580.178.04"}},
    }
    mod.__utils__ = {"k8snvidia.merge": util.merge, "k8snvidia.validation_image": util.validation_image}
    applied = []
    mod.apply = lambda text, *a, **k: applied.append(json.loads(text)) or {}
    mod.kubectl = lambda args, *a, **k: {"retcode": 0, "stdout": "Succeeded", "stderr": ""}
    mod.validate_gpu("node-110")
    assert len(applied) == 1
    return applied[0]


@pytest.mark.parametrize("minor", MINORS)
@pytest.mark.parametrize("profile,replicas", [("modern", None), ("seed2020", None), ("modern", 4)])
def test_manifests_validate_strict(tmp_path_factory, profile, replicas, minor):
    docs = manifests(tmp_path_factory, profile, replicas)
    kinds = []
    for items in docs.values():
        for doc in items:
            kv.validate(doc, minor, strict=True)
            kinds.append(doc["kind"])
    assert {"DaemonSet", "ConfigMap", "Namespace", "ClusterRole"} <= set(kinds)


@pytest.mark.parametrize("minor", MINORS)
def test_validation_pod_validates_strict(minor):
    pod = validation_pod()
    kv.validate(pod, minor, strict=True)
    assert pod["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 1}


def test_kubernetes_validate_judge_is_strict():
    # the judge itself: an unknown field fails in strict mode
    pod = validation_pod()
    pod["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(kv.ValidationError):
        kv.validate(pod, "1.36", strict=True)


@pytest.mark.parametrize("replicas,want", [(None, 1), (1, 1), (4, 4)])
def test_device_plugin_accepts_its_config(tmp_path_factory, replicas, want):
    # k8s-device-plugin v0.20 exits on "number of replicas must be >= 2": the
    # default (1: no sharing) must render no timeSlicing at all
    docs = manifests(tmp_path_factory, "modern", replicas)
    cm = next(d for d in docs["dp.yaml"] if d["kind"] == "ConfigMap")
    ds = next(d for d in docs["dp.yaml"] if d["kind"] == "DaemonSet")
    assert "--config-file=/etc/nvidia-device-plugin/config.yaml" in ds["spec"]["template"]["spec"]["containers"][0]["args"]
    # no sharing section unless shared (the device plugin's own reading of the
    # file, on the twin's copy of it: tests/twin_judges/test_manifests.py)
    assert ("timeSlicing" in cm["data"]["config.yaml"]) is (want > 1)
    image = ds["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "nvcr.io/nvidia/k8s-device-plugin:v0.20.0"


def test_flannel_pins(tmp_path_factory):
    docs = manifests(tmp_path_factory, "modern", None)
    ds = next(d for d in docs["cni.yaml"] if d["kind"] == "DaemonSet")
    spec = ds["spec"]["template"]["spec"]
    images = [c["image"] for c in spec["initContainers"] + spec["containers"]]
    assert images == ["ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3", "ghcr.io/flannel-io/flannel:v0.28.9",
                      "ghcr.io/flannel-io/flannel:v0.28.9"]
    # v0.28's image installs the CNI config with its own tool
    assert spec["initContainers"][1]["command"] == ["/opt/bin/install-conf"]
    cm = next(d for d in docs["cni.yaml"] if d["kind"] == "ConfigMap")
    assert json.loads(cm["data"]["net-conf.json"])["Network"] == "10.244.0.0/16"
