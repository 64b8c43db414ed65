"""The driver on an EL node with the kernel layer off (the default off
CentOS 7): nvidia.driver installs kernel-devel for the running kernel the way
Salt's pkg.installed can verify (name kernel-devel, version its
version-release), and the .run builds against those headers. One Rocky 9 GPU
node with its default (9.6) kernel, through the real master and minion."""

import shutil

import yaml

from tests.twin.conftest import ROOT

GTX = "NVIDIA GeForce GTX 1080 Ti"
NODE = "node-109"
KERNEL = "5.14.0-570.58.1.el9_6.x86_64"  # the twin's Rocky 9 default kernel


def _failed(ret):
    return [f"{v.get('__id__', k)}: {str(v.get('comment', ''))[:600]}" for k, v in ret.items() if not v.get("result")]


def _changed(ret):
    return sorted(v.get("__id__", k) for k, v in ret.items() if v.get("changes"))


def test_driver_with_running_kernel_headers_on_rocky9(twin, tmp_path):
    pillar = tmp_path / "pillar"
    shutil.copytree(ROOT / "pillar", pillar)
    cluster = yaml.safe_load((pillar / "cluster.sls").read_text())
    cluster["k8snvidia"]["nodes"][NODE]["os"] = "Rocky Linux-9"
    (pillar / "cluster.sls").write_text(yaml.safe_dump(cluster, sort_keys=False))
    twin.up({"nodes": [{"id": NODE, "os": "rocky9", "gpus": [GTX]}]}, pillar=pillar, fresh=True)
    assert twin.node_state(NODE)["kernel"]["running"] == KERNEL
    twin.salt(NODE, "saltutil.sync_all", timeout=300)
    ret = twin.salt(NODE, "state.apply", "host,kernel,nouveau", timeout=900)[NODE]
    assert _failed(ret) == []
    twin.reboot(NODE)  # nouveau was loaded: the reboot the orchestration makes between layers
    ret = twin.salt(NODE, "state.apply", "nvidia.driver", timeout=900)[NODE]
    assert _failed(ret) == []
    hdr = next(v for k, v in ret.items() if v.get("__id__") == "k8snvidia-driver-kernel-headers")
    assert hdr["changes"]["kernel-devel"]["new"] == KERNEL.rsplit(".", 1)[0]
    cmds = [c["argv"] for c in twin.records()["nodes"][NODE]["commands"]]
    assert any(a[0] in ("dnf", "yum") and "kernel-devel-5.14.0-570.58.1.el9_6" in a for a in cmds), cmds
    assert twin.node_exec(NODE, f"test -d /usr/src/kernels/{KERNEL}").returncode == 0
    smi = twin.node_exec(NODE, "nvidia-smi -L")
    assert smi.returncode == 0 and "GeForce GTX 1080 Ti" in smi.stdout, smi.stderr
    again = twin.salt(NODE, "state.apply", "nvidia.driver", timeout=900)[NODE]
    assert _failed(again) == [] and _changed(again) == []
