"""The download_checksum_mismatch fault: the node's driver download fails its
sha256 check, the state says so, and nothing of the driver is installed."""

import shutil

import yaml

from tests.twin.conftest import ROOT

NODE = "node-105"


def test_driver_download_with_a_bad_checksum_installs_nothing(twin, tmp_path):
    pillar = tmp_path / "pillar"
    shutil.copytree(ROOT / "pillar", pillar)
    cluster = yaml.safe_load((pillar / "cluster.sls").read_text())
    cluster["k8snvidia"]["nodes"][NODE]["overrides"] = {"kernel": {"manage": False}}
    (pillar / "cluster.sls").write_text(yaml.safe_dump(cluster, sort_keys=False))
    twin.up({"nodes": [{"id": NODE, "os": "ubuntu1804", "gpus": ["NVIDIA GeForce GTX 1080 Ti"],
                        "faults": {"download_checksum_mismatch": True}}]}, pillar=pillar, fresh=True)
    twin.salt(NODE, "saltutil.sync_all", timeout=300)
    ret = twin.salt(NODE, "state.apply", "nouveau", timeout=600)[NODE]
    assert all(v["result"] for v in ret.values())
    twin.reboot(NODE)
    ret = twin.salt(NODE, "state.apply", "nvidia.driver", timeout=600)[NODE]
    driver = next(v for k, v in ret.items() if "nvidia_driver_|-" in k)
    assert driver["result"] is False
    assert "sha256" in driver["comment"].lower(), driver["comment"]
    assert "nvidia_driver" not in twin.node_state(NODE) or not twin.node_state(NODE)["nvidia_driver"].get("version")
    commands = twin.records()["nodes"][NODE]["commands"]
    assert not any(c["argv"][0].startswith("NVIDIA-Linux") for c in commands)
