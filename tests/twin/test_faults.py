"""Faults declared per node in the cluster file: a minion down at the start,
a node that never returns from reboot; and power-off."""

import pytest
from k8stwin.cluster import TwinError

FAULTY = {
    "nodes": [
        {"id": "ok", "os": "centos7"},
        {"id": "late", "os": "ubuntu2204", "faults": {"minion_down_at_start": True}},
        {"id": "gone", "os": "rocky9", "faults": {"never_returns_from_reboot": True}},
    ]
}


@pytest.fixture(scope="module")
def faulty(twin):
    twin.up(FAULTY)
    return twin


def test_minion_down_at_start(faulty):
    st = faulty.status()["nodes"]
    assert st["late"]["machine"] and not st["late"]["minion"]
    assert "late" not in faulty.salt("-L", "ok,late", "test.ping", "-t", "3")
    # the machine itself runs: its files and tools are there
    assert faulty.node_exec("late", "cat /etc/hostname").stdout.strip() == "late"
    faulty.twin.start_minion("late")
    faulty.twin.wait_ready(timeout=120, nodes=["late"])
    assert faulty.salt("late", "test.ping") == {"late": True}


def test_never_returns_from_reboot(faulty):
    with pytest.raises(TwinError, match="did not come back"):
        faulty.reboot("gone", timeout=60)
    st = faulty.status()["nodes"]["gone"]
    assert st["state"] == "down" and not st["machine"]
    assert [e["event"] for e in faulty.events("gone")][-2:] == ["reboot", "stays_down"]
    with pytest.raises(TwinError, match="not running"):
        faulty.node_exec("gone", "true")


def test_poweroff_keeps_node_down(faulty):
    faulty.salt("ok", "cmd.run", "poweroff")
    import time

    deadline = time.time() + 60
    while time.time() < deadline and faulty.status()["nodes"]["ok"]["machine"]:
        time.sleep(1)
    assert faulty.status()["nodes"]["ok"]["state"] == "down"
    assert faulty.events("ok", "poweroff")


def test_faults_are_in_node_json(faulty):
    import json

    node = json.loads((faulty.node_dir("gone") / "node.json").read_text())
    assert node["faults"] == {"never_returns_from_reboot": True}
    assert node["os"] == "Rocky Linux-9" and node["os_key"] == "rocky9"
