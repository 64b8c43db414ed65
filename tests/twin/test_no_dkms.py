"""The seed's trap, reproduced on the twin: a driver installed without DKMS
on the old kernel is gone after the kernel switch (the seed reinstalled it
by hand); installed with DKMS (the default, see test_seed_layers) it stays."""

import shutil

import yaml

from tests.twin.conftest import ROOT

NODE = "node-105"


def _failed(ret):
    return [f"{v.get('__id__', k)}: {str(v.get('comment', ''))[:300]}" for k, v in ret.items() if not v.get("result")]


def _pillar(tmp_path, overrides):
    dst = tmp_path / "pillar"
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(ROOT / "pillar", dst)
    cluster = yaml.safe_load((dst / "cluster.sls").read_text())
    cluster["k8snvidia"]["nodes"][NODE]["overrides"] = overrides
    (dst / "cluster.sls").write_text(yaml.safe_dump(cluster, sort_keys=False))
    return dst


def test_driver_without_dkms_is_gone_after_the_kernel_switch(twin, tmp_path):
    pillar = _pillar(tmp_path, {"kernel": {"manage": False}, "driver": {"dkms": False}})
    twin.up({"nodes": [{"id": NODE, "os": "ubuntu1804", "gpus": ["NVIDIA GeForce GTX 1080 Ti"]}]},
            pillar=pillar, fresh=True)
    twin.salt(NODE, "saltutil.sync_all", timeout=300)
    old_kernel = twin.node_state(NODE)["kernel"]["running"]

    # the seed's order: driver first, on the running kernel, without DKMS
    ret = twin.salt(NODE, "state.apply", "host,nouveau", timeout=900)[NODE]
    assert _failed(ret) == []
    twin.reboot(NODE)  # the nouveau blacklist takes effect
    ret = twin.salt(NODE, "state.apply", "nvidia.driver", timeout=900)[NODE]
    assert _failed(ret) == []
    assert twin.node_state(NODE)["nvidia_driver"]["dkms"] is False
    smi = twin.node_exec(NODE, "nvidia-smi -L")
    assert smi.returncode == 0 and "GeForce GTX 1080 Ti" in smi.stdout, smi.stderr

    # then the kernel switch, as the seed did it
    _pillar(tmp_path, {"kernel": {"manage": True}, "driver": {"dkms": False}})
    ret = twin.salt(NODE, "state.apply", "kernel", timeout=900)[NODE]
    assert _failed(ret) == []
    twin.reboot(NODE)
    assert twin.node_state(NODE)["kernel"]["running"] != old_kernel
    smi = twin.node_exec(NODE, "nvidia-smi -L")
    assert smi.returncode != 0
    assert "couldn't communicate with the NVIDIA driver" in smi.stdout + smi.stderr

    # the state notices and rebuilds it for the new kernel (the seed's reinstall)
    ret = twin.salt(NODE, "state.apply", "nvidia.driver", timeout=900)[NODE]
    assert _failed(ret) == []
    smi = twin.node_exec(NODE, "nvidia-smi -L")
    assert smi.returncode == 0 and "GeForce GTX 1080 Ti" in smi.stdout, smi.stderr
