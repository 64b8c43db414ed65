"""A full disk, and nodes kept from writing the twin's shared state, on the
smallest cluster that shows both: a control plane, a healthy worker and a
worker whose / is full (Ubuntu 22.04, no GPU: nothing to reboot), plus a
machine whose /var is full that the pillar leaves out; one twin for the
module.

* a node cannot write the shared cluster state (read-only in every node);
  the twin's kubeadm/kubectl change it through the broker, which refuses a
  node's change to another node's registration;
* /var full: the salt-minion cannot start a job (it writes each one to
  /var/cache/salt/minion/proc first, as a real one does) and answers again
  once the disk is freed (the orchestration's begin step then fails such a
  node with the hint to look at /var: tests/unit/runners/test_cluster_run_failure_text.py);
* the orchestration: the full-/ worker is failed at prepare with the
  state's own error (No space left on device) and which filesystem is full;
  the others finish; the exit code is non-zero; once the disk is cleared a
  re-run joins it and changes nothing on the healthy nodes.
"""

import json
import shutil

import pytest
import yaml

from tests.twin.conftest import ROOT
from tests.twin.orch import not_ok

ORCH = ("salt-run", "state.orchestrate", "cluster", "--out=json", "--log-level=quiet")
NODES = [
    {"id": "cp", "os": "ubuntu2204", "role": "control-plane", "gpus": []},
    {"id": "w-ok", "os": "ubuntu2204", "role": "worker", "gpus": []},
    {"id": "w-root", "os": "ubuntu2204", "role": "worker", "gpus": [], "faults": {"disk_full": "/"}},
    {"id": "w-var", "os": "ubuntu2204", "role": "worker", "gpus": [], "faults": {"disk_full": "/var"}},
]


def _pillar(base):
    dst = base / "pillar"
    shutil.copytree(ROOT / "pillar", dst)
    data = yaml.safe_load((dst / "cluster.sls").read_text())
    data["k8snvidia"]["cluster"].update({"name": "disks", "node_timeout": 10})
    data["k8snvidia"]["nodes"] = {n["id"]: {"ip": f"192.168.0.{20 + i}", "role": n["role"], "os": "Ubuntu-22.04",
                                            "gpus": []} for i, n in enumerate(NODES) if n["id"] != "w-var"}
    (dst / "cluster.sls").write_text(yaml.safe_dump(data, sort_keys=False))
    return dst


@pytest.fixture(scope="module")
def disks(twin, tmp_path_factory):
    twin.up({"name": "disks", "nodes": NODES}, pillar=_pillar(tmp_path_factory.mktemp("disks")), fresh=True)
    return twin


def _py(code):
    return f'"$K8STWIN_PYTHON" -c "{code}"'


def test_nodes_cannot_write_the_shared_cluster_state(disks):
    run = disks.run_dir
    state = run / "cluster" / "kube-cluster.json"
    before = state.read_text()
    out = disks.node_exec("w-ok", f"echo x >> {state}; touch {run}/cluster/new; rm -f {state}")
    assert out.stderr.count("Read-only file system") == 3, out.stderr
    assert state.read_text() == before and not (run / "cluster" / "new").exists()
    # the twin's own tools change it through the broker ...
    out = disks.node_exec("w-ok", _py("from k8stwin import kube\nwith kube.locked() as c: c['warnings'].append('w-ok')"))
    assert out.returncode == 0, out.stderr
    assert json.loads(state.read_text())["warnings"] == ["w-ok"]
    # ... which knows who speaks and refuses a change to another node's registration
    out = disks.node_exec("w-ok", _py("from k8stwin import kube\n"
                                      "with kube.locked() as c: c['node_dirs']['cp']['dir'] = '/tmp'"))
    assert out.returncode != 0 and "node w-ok may not change the registration of node cp" in out.stderr, out.stderr
    assert json.loads(state.read_text())["node_dirs"]["cp"]["dir"].endswith("/nodes/cp")
    out = disks.node_exec("w-ok", _py("from k8stwin import kube\nwith kube.locked() as c: c['warnings'].clear()"))
    assert out.returncode == 0, out.stderr
    log = [json.loads(line) for line in (run / "broker.jsonl").read_text().splitlines()]
    assert [e["node"] for e in log] == ["w-ok"] * 3 and "refused" in log[1], log


def test_a_full_var_silences_the_minion_until_freed(disks):
    twin = disks.twin
    assert twin.disk_usage("w-var")["/var"]["free"] == 0
    ping = twin.salt_api_ping(["w-ok", "w-var"], timeout=3)
    assert ping["w-ok"] is True and ping.get("w-var") is not True, ping
    twin.clear_disk_full("w-var")
    assert twin.disk_usage("w-var")["/var"]["free"] > 0
    assert twin.salt_api_ping(["w-var"], timeout=10) == {"w-var": True}
    assert [e["event"] for e in disks.events("w-var") if e["event"].startswith("disk_")] == ["disk_full", "disk_freed"]


def test_a_full_disk_fails_its_node_with_the_reason_and_a_rerun_converges(disks):
    twin = disks.twin
    assert twin.disk_usage("w-root")["/"]["free"] == 0
    out = disks.node_exec("w-root", "cp /etc/os-release /etc/copy; df -P /etc | tail -1")
    assert "No space left on device" in out.stderr and " 100% " in out.stdout, (out.stdout, out.stderr)
    proc = disks.command(*ORCH, timeout=1800)
    assert proc.returncode != 0
    record = json.loads((disks.run_dir / "master/var/cache/salt/master/k8snvidia/run.json").read_text())
    summary = record["summary"]
    failed = {n: v["failed"] for n, v in summary.items() if v["failed"]}
    assert sorted(failed) == ["w-root"], failed
    # the state's own error, no traceback, and which filesystem to look at
    root = failed["w-root"]
    assert root.startswith("prepare: ") and "[Errno 28] No space left on device" in root, root
    assert "Traceback" not in root and "the filesystem holding /etc is full" in root and "df -h /etc" in root, root
    for node in ("cp", "w-ok"):
        assert summary[node]["joined"] and not summary[node]["failed"], (node, summary[node])
    assert "w-root failed at prepare" in proc.stdout
    # the twin's kubeadm (init, join) and kubectl wrote the cluster through the broker
    writers = {json.loads(line)["node"] for line in (disks.run_dir / "broker.jsonl").read_text().splitlines()}
    assert {"cp", "w-ok"} <= writers, writers

    # the admin frees the disk; the re-run finishes the node and changes nothing else
    twin.clear_disk_full("w-root")
    proc = disks.command(*ORCH, timeout=1800)
    assert proc.returncode == 0, not_ok(proc.stdout)
    record = json.loads((disks.run_dir / "master/var/cache/salt/master/k8snvidia/run.json").read_text())
    summary = record["summary"]
    assert all(v["joined"] and not v["failed"] for v in summary.values()), summary
    assert summary["w-ok"]["changes"] == 0 and summary["cp"]["changes"] == 0, summary
