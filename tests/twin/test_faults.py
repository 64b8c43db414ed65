"""Faults declared per node in the cluster file: a minion down at the start,
a node that never returns from reboot, one that returns late, one joined to
another cluster; a master restart; and power-off."""

import pytest
from k8stwin.cluster import TwinError

FAULTY = {
    "nodes": [
        {"id": "ok", "os": "centos7"},
        {"id": "late", "os": "ubuntu2204", "faults": {"minion_down_at_start": True}},
        {"id": "gone", "os": "rocky9", "faults": {"never_returns_from_reboot": True}},
        {"id": "slow", "os": "rocky9", "faults": {"returns_late_from_reboot": 4}},
        {"id": "moved", "os": "rocky9", "faults": {"joined_to_another_cluster": True}},
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


def test_returns_late_from_reboot_once(faulty):
    faulty.reboot("slow", wait=False)
    import time

    deadline = time.time() + 60
    while time.time() < deadline and not faulty.events("slow", "returns_late"):
        time.sleep(0.5)
    assert faulty.events("slow", "returns_late")[0]["after"] == 4
    assert faulty.status()["nodes"]["slow"]["state"] == "down"
    faulty.wait_rebooted("slow", 0, timeout=120)  # it comes back by itself
    assert faulty.salt("slow", "test.ping") == {"slow": True}
    before = faulty.node_state("slow").get("reboots", 0)
    faulty.reboot("slow", timeout=120)  # the next reboot is a normal one
    assert len(faulty.events("slow", "returns_late")) == 1
    assert faulty.node_state("slow").get("reboots", 0) == before + 1


def test_joined_to_another_cluster(faulty):
    out = faulty.node_exec("moved", "cat /etc/kubernetes/pki/ca.crt; grep -c server: /etc/kubernetes/kubelet.conf")
    assert "BEGIN CERTIFICATE" in out.stdout and out.stdout.strip().endswith("1")
    assert "10.99.0.10:6443" in faulty.node_exec("moved", "cat /etc/kubernetes/kubelet.conf").stdout
    # (once the kubernetes layer installed kubeadm, `kubeadm reset -f` takes it
    # out of that cluster: tests/twin/test_orchestrate.py)


def test_master_restart(faulty):
    faulty.twin.restart_master()
    assert faulty.events(None, "master_restart")
    faulty.twin.wait_ready(timeout=120, nodes=["ok"])
    assert faulty.salt("ok", "test.ping", timeout=120) == {"ok": True}


def test_poweroff_keeps_node_down(faulty):
    faulty.salt("ok", "cmd.run", "poweroff")
    import time

    deadline = time.time() + 60  # the machine goes, then its state passes "stopping" to "down"
    while time.time() < deadline and (faulty.status()["nodes"]["ok"]["machine"]
                                      or faulty.status()["nodes"]["ok"]["state"] == "stopping"):
        time.sleep(1)
    assert faulty.status()["nodes"]["ok"]["state"] == "down"
    assert faulty.events("ok", "poweroff")


def test_faults_are_in_node_json(faulty):
    import json

    node = json.loads((faulty.node_dir("gone") / "node.json").read_text())
    assert node["faults"] == {"never_returns_from_reboot": True}
    assert node["os"] == "Rocky Linux-9" and node["os_key"] == "rocky9"
