"""16 machines on one small host: all answer, each with its OS."""

import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.twin_scale
def test_sixteen_nodes(twin):
    twin.up("twin/clusters/scale16.yaml", pillar=ROOT / "twin/clusters/scale16-pillar", timeout=400)
    nodes = twin.twin.info()["nodes"]
    assert len(nodes) == 16
    pings = twin.salt("*", "test.ping", timeout=300)
    assert sorted(pings) == sorted(nodes) and all(v is True for v in pings.values())
    fingers = twin.salt("*", "grains.get", "osfinger")
    assert fingers["cp-1"] == "CentOS Linux-7"
    assert fingers["cpu-01"] == "Debian-12"
    assert {fingers[n] for n in nodes} == {"CentOS Linux-7", "Rocky Linux-9", "Ubuntu-22.04", "Ubuntu-18.04", "Debian-12"}
    before = twin.node_state("gpu-03")["reboots"]
    twin.reboot("gpu-03")
    assert twin.node_state("gpu-03")["reboots"] == before + 1
    twin.down()
