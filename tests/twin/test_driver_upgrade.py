"""A driver upgrade on a joined GPU node, end to end on the twin: the
smallest cluster that shows it (a Rocky 9 control plane: no kernel switch,
no reboot; one Ubuntu 18.04 GPU worker: the distribution kernel, the .run
driver, one reboot for nouveau; a Rocky 9 GPU worker cannot get its kernel
headers through the headers state yet, see the report).

Converged once, the worker runs what holds a real node's GPU: the device
plugin pod, nvidia-persistenced (a unit the admin installed) and a GPU
workload (a Deployment). Then driver:version is bumped in a copy of the
pillar and ``salt-run state.orchestrate cluster`` runs:

* cordon, the device plugin held off, the drain (the workload evicted, its
  replacement Pending on the cordoned node), persistenced stopped, the
  installer run with nothing holding the GPU, DKMS verified for the boot
  kernel, persistenced started again, the plugin back, the GPU check, the
  uncordon: the node schedulable, nvidia.com/gpu allocatable, the workload
  back on it; no reboot for the upgrade (one in all, nouveau's);
* a second run changes nothing;
* then a process outside Kubernetes that is no GPU service (python3, pid
  4242) holds the GPU and the version is bumped again; the orchestration's
  two calls for the driver, run by hand (a third whole run would add a
  minute and a half): the drain stage's prediction refuses, so the node is
  not even cordoned; the driver state fails naming the holder and what to
  do; the old driver stays and the node keeps serving (docs/driver.md
  "Upgrading the driver on a joined node").

One twin for the three; its cost is measured in the report.
"""

import json
import shutil
import sys
import time

import pytest
import yaml

from tests.twin.conftest import ROOT

sys.path.insert(0, str(ROOT / "twin"))

from k8stwin import artifacts  # noqa: E402

GTX = "NVIDIA GeForce GTX 1080 Ti"
CP, GPU = "cp", "gpu-1"
FIRST = "580.178.04"          # the shipped pin
NEXT = "580.201.01"           # a later R580 (the twin's stand-in .run is version-independent)
REFUSED = "580.205.02"        # the upgrade a held GPU refuses
CLUSTER = {"name": "drain", "nodes": [
    {"id": CP, "os": "rocky9", "kernel": "5.14.0-570.58.1.el9_6.x86_64", "ip": "10.20.0.10", "role": "control-plane",
     "gpus": []},
    {"id": GPU, "os": "ubuntu1804", "ip": "10.20.0.11", "role": "worker", "gpus": [GTX]},
]}
ORCH = ("salt-run", "state.orchestrate", "cluster", "--out=json", "--log-level=quiet")
ADMIN = "kubectl --kubeconfig=/etc/kubernetes/admin.conf"
PERSISTENCED_UNIT = """[Unit]
Description=NVIDIA Persistence Daemon
Wants=syslog.target

[Service]
Type=forking
ExecStart=/usr/bin/nvidia-persistenced --user nvidia-persistenced --no-persistence-mode --verbose
ExecStopPost=/bin/rm -rf /var/run/nvidia-persistenced

[Install]
WantedBy=multi-user.target
"""
WORKLOAD = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: trainer
  namespace: default
spec:
  replicas: 1
  selector: {matchLabels: {app: trainer}}
  template:
    metadata: {labels: {app: trainer}}
    spec:
      containers:
      - name: cuda
        image: nvcr.io/nvidia/cuda:12.8.1-base-ubuntu22.04
        command: [sleep, infinity]
        resources:
          limits: {nvidia.com/gpu: 1}
"""


def _pillar(path, version):
    if not path.exists():
        shutil.copytree(ROOT / "pillar", path)
    osfinger = {"rocky9": "Rocky Linux-9", "ubuntu1804": "Ubuntu-18.04"}
    nodes = {n["id"]: {"ip": n["ip"], "role": n["role"], "os": osfinger[n["os"]], "gpus": n["gpus"]}
             for n in CLUSTER["nodes"]}
    (path / "cluster.sls").write_text(yaml.safe_dump({
        "include": ["profiles.modern"],
        "k8snvidia": {"cluster": {"name": "drain", "node_network": "10.20.0.0/24"}, "nodes": nodes,
                      "driver": {"version": version}}}, sort_keys=False))
    return path


def _orchestrate(twin):
    t0 = time.time()
    proc = twin.command(*ORCH, timeout=1500)
    record = json.loads((twin.run_dir / "master/var/cache/salt/master/k8snvidia/run.json").read_text())
    return {"rc": proc.returncode, "out": proc.stdout, "err": proc.stderr, "record": record,
            "seconds": round(time.time() - t0, 1), "started": t0}


def _commands(twin, node, since):
    path = twin.node_dir(node) / "commands.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["t"] >= since]


def _first(rows, pred, what):
    for r in rows:
        if pred(r["argv"]):
            return r["t"]
    raise AssertionError(f"no {what} in {[' '.join(r['argv'])[:80] for r in rows]}")


def _kubectl(twin, args):
    proc = twin.node_exec(CP, f"{ADMIN} {args}")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _node(twin):
    return json.loads(_kubectl(twin, f"get node {GPU} -o json"))


def _trainer_pods(twin):
    items = json.loads(_kubectl(twin, "get pods -l app=trainer -o json"))["items"]
    return {p["metadata"]["name"]: (p["status"]["phase"], (p.get("spec") or {}).get("nodeName")) for p in items}


@pytest.fixture(scope="module")
def rehearsal(twin):
    """Everything runs once; the tests read what happened."""
    cost = {}
    t0 = time.time()
    # beside the twin, not under pytest's basetemp (other pytest sessions on the machine prune that)
    pillar = _pillar(twin.base / "drain-pillar", FIRST)
    twin.up(CLUSTER, pillar=pillar, fresh=True)
    cost["up"] = round(time.time() - t0, 1)
    first = _orchestrate(twin)
    assert first["rc"] == 0, first["out"][-3000:] + first["err"][-2000:]
    cost["converge"] = first["seconds"]
    result = after_converge(twin, pillar, cost)
    cost["total"] = round(time.time() - t0, 1)
    sys.stderr.write(f"\ntest_driver_upgrade cost (s): {cost}\n")
    return dict(result, first=first, cost=cost)


def after_converge(twin, pillar, cost):
    """The rehearsal once the cluster has converged (a function of its own
    so that a twin left up with K8STWIN_TEST_KEEP can be driven again)."""
    # what holds a real joined node's GPU besides the device plugin
    proc = twin.twin.node_exec(GPU, "cat > /etc/systemd/system/nvidia-persistenced.service && systemctl daemon-reload "
                               "&& systemctl enable --now nvidia-persistenced", input=PERSISTENCED_UNIT)
    assert proc.returncode == 0, proc.stderr
    proc = twin.twin.node_exec(CP, f"{ADMIN} apply -f -", input=WORKLOAD)
    assert proc.returncode == 0, proc.stderr
    time.sleep(2)  # the node's kubelet stand-in starts the workload's process (about once a second)
    held_before = twin.salt(GPU, "nvidia.holders")[GPU]
    pods_before = _trainer_pods(twin)
    state_before = twin.node_state(GPU)

    # the upgrade: a newer release in the artifact mirror, the pin bumped
    artifacts.make_runfile(str(twin.run_dir / "artifacts"), NEXT)
    _pillar(pillar, NEXT)
    upgrade = _orchestrate(twin)
    cost["upgrade"] = upgrade["seconds"]
    after = {"node": _node(twin), "pods": _trainer_pods(twin), "state": twin.node_state(GPU),
             "dkms": twin.node_exec(GPU, "dkms status").stdout,
             "log": twin.node_exec(GPU, "cat /var/log/nvidia-installer.log").stdout,
             "cp": _commands(twin, CP, upgrade["started"]), "gpu": _commands(twin, GPU, upgrade["started"])}
    second = _orchestrate(twin)
    cost["second"] = second["seconds"]

    # a holder that is neither a pod nor a GPU service, then another bump: the
    # orchestration's own two calls for the driver (its drain stage, its driver step)
    proc = twin.node_exec(GPU, "\"$K8STWIN_PYTHON\" -c 'from k8stwin import gpuholders, state\n"
                               "with state.locked() as st:\n"
                               "    st[\"device_holders\"] = [{\"pid\": 4242, \"argv\": [\"python3\", \"train.py\"]}]\n"
                               "gpuholders.sync()'")
    assert proc.returncode == 0, proc.stderr
    artifacts.make_runfile(str(twin.run_dir / "artifacts"), REFUSED)
    _pillar(pillar, REFUSED)
    t1 = time.time()
    drained = twin.salt_run("driver_upgrade.drain", timeout=900)
    applied = twin.salt(GPU, "state.apply", "nvidia.driver", timeout=900)[GPU]
    cost["refused"] = round(time.time() - t1, 1)
    record = json.loads((twin.run_dir / "master/var/cache/salt/master/k8snvidia/run.json").read_text())
    refused = {"drained": drained, "applied": applied, "log": record["log"]}
    refused_after = {"node": _node(twin), "pods": _trainer_pods(twin), "state": twin.node_state(GPU),
                     "cp": _commands(twin, CP, t1)}
    return {"held_before": held_before, "pods_before": pods_before, "state_before": state_before,
            "upgrade": upgrade, "after": after, "second": second, "refused": refused,
            "refused_after": refused_after}


def test_upgrade_drains_installs_verifies_and_gives_the_node_back(rehearsal):
    r = rehearsal
    # before: the GPU held by the device plugin and the workload (pods) and persistenced (its unit)
    held = {p["command"]: p for p in r["held_before"]["processes"]}
    assert held["nvidia-device-plugin"].get("pod") and held["sleep"].get("pod"), held
    assert held["nvidia-persistenced"]["unit"] == "nvidia-persistenced", held
    (old_pod,) = [n for n, (phase, node) in r["pods_before"].items() if phase == "Running" and node == GPU]

    up = r["upgrade"]
    assert up["rc"] == 0, up["out"][-3000:] + up["err"][-2000:]
    summary = up["record"]["summary"]
    assert all(v["failed"] is None for v in summary.values()), summary
    log = up["record"]["log"]
    assert any(f"[driver-drain] {GPU}: cordoned, drained, device plugin moved off" in line for line in log), log
    assert any(f"[driver-restore] {GPU}: device plugin back" in line for line in log), log
    assert any(f"[driver-uncordon] {GPU}: schedulable again" in line for line in log), log

    # the order, from the commands the nodes ran (one clock: the host's)
    cp, gpu = r["after"]["cp"], r["after"]["gpu"]
    kube = [c for c in cp if c["argv"][0] == "kubectl"]
    cordon = _first(kube, lambda a: "cordon" in a and GPU in a, "kubectl cordon")
    held_off = _first(kube, lambda a: "nvidia.com/gpu.deploy.device-plugin=false" in a, "the plugin label")
    drain = _first(kube, lambda a: "drain" in a, "kubectl drain")
    stop = _first(gpu, lambda a: a[0] == "systemctl" and "stop" in a and any("nvidia-persistenced" in x for x in a),
                  "systemctl stop nvidia-persistenced")
    install = _first(gpu, lambda a: a[0].endswith(f"{NEXT}.run"), "the installer")
    verify = _first([c for c in gpu if c["t"] > install], lambda a: a[:2] == ["dkms", "status"], "dkms status")
    start = _first([c for c in gpu if c["t"] > install],
                   lambda a: a[0] == "systemctl" and "start" in a and any("nvidia-persistenced" in x for x in a),
                   "systemctl start nvidia-persistenced")
    back = _first(kube, lambda a: "nvidia.com/gpu.deploy.device-plugin-" in a, "the plugin label removed")
    uncordon = _first(kube, lambda a: "uncordon" in a and GPU in a, "kubectl uncordon")
    assert cordon < held_off < drain < stop < install < verify < start < back < uncordon
    installer = [c for c in gpu if c["argv"][0].endswith(f"{NEXT}.run")]
    assert [c["rc"] for c in installer] == [0], installer
    # nothing held the GPU when the installer ran: the old module was unloaded, the new one loaded
    assert "is in use" not in r["after"]["log"] and "Unloaded kernel module(s): nvidia" in r["after"]["log"]
    boot = r["after"]["state"]["kernel"]["running"]
    # dkms 3 prints "nvidia/V, K, arch: installed", dkms 2 (Ubuntu 18.04's) "nvidia, V, K, arch: installed"
    assert (f"nvidia/{NEXT}, {boot}, x86_64: installed" in r["after"]["dkms"]
            or f"nvidia, {NEXT}, {boot}, x86_64: installed" in r["after"]["dkms"]), r["after"]["dkms"]
    assert r["after"]["state"]["nvidia_driver"]["version"] == NEXT
    assert "loaded_version" not in r["after"]["state"]["nvidia_driver"]
    assert r["after"]["state"]["services"]["nvidia-persistenced.service"]["active"] is True

    # the node given back: schedulable, its GPU allocatable, the workload back on it (a new pod)
    node = r["after"]["node"]
    assert not node["spec"].get("unschedulable") and not node["spec"].get("taints"), node["spec"]
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu.deploy.device-plugin" not in node["metadata"]["labels"]
    assert node["metadata"]["labels"]["nvidia.com/cuda.driver-version.full"] == NEXT
    (new_pod,) = [n for n, (phase, where) in r["after"]["pods"].items() if phase == "Running" and where == GPU]
    assert new_pod != old_pod
    # validated before it was given back (the GPU still free then)
    assert summary[GPU]["gpus_allocatable"] == 1
    assert any(f"[gpu-check] {GPU}: driver {NEXT}, 1 GPU(s) allocatable, validation pod Succeeded" in line
               for line in log), log
    # at most one reboot: nouveau's, in the first converge
    assert r["state_before"]["reboots"] == 1 and r["after"]["state"]["reboots"] == 1
    assert summary[GPU]["reboots"] == 0


def test_second_run_changes_nothing(rehearsal):
    second = rehearsal["second"]
    assert second["rc"] == 0, second["out"][-3000:]
    summary = second["record"]["summary"]
    assert all(v["changes"] == 0 and v["failed"] is None and v["reboots"] == 0 for v in summary.values()), summary
    assert any("[driver-drain] no joined GPU node has its driver replaced" in line
               for line in second["record"]["log"])
    # every GPU serves the workload: the check says so instead of failing the node
    assert any(f"[gpu-check] {GPU}:" in line and "not run: every GPU is in use by running pods" in line
               for line in second["record"]["log"]), second["record"]["log"]


def test_a_holder_outside_kubernetes_is_refused_by_name_and_the_node_keeps_serving(rehearsal):
    r = rehearsal["refused"]
    # the drain stage asks first: the driver step would refuse, so the node is not drained
    assert r["drained"] == {"result": True, "drained": []}, r["drained"]
    assert any(f"[driver-drain] {GPU}: not drained, its driver step would refuse" in line and "pid 4242" in line
               for line in r["log"]), r["log"]
    (ret,) = [v for k, v in r["applied"].items() if k.startswith("nvidia_driver_|-")]
    assert ret["result"] is False and ret["changes"] == {}
    comment = ret["comment"]
    assert comment.startswith(f"Refusing to install NVIDIA driver {REFUSED}: the NVIDIA driver in use cannot be "
                              "replaced while the GPU is held by python3 (pid 4242, /dev/nvidia0, /dev/nvidiactl), "
                              "outside Kubernetes"), comment
    assert "k8snvidia:driver:stop_services" in comment and "k8snvidia:driver:force: true" in comment
    assert comment.endswith("Nothing was installed.")
    # nothing was disturbed: never cordoned, the plugin and the workload stayed, the old driver is in place
    kube = [c["argv"] for c in rehearsal["refused_after"]["cp"] if c["argv"][0] == "kubectl"]
    assert not [a for a in kube if "cordon" in a or "drain" in a], kube
    node = rehearsal["refused_after"]["node"]
    assert not node["spec"].get("unschedulable") and node["status"]["allocatable"]["nvidia.com/gpu"] == "1"
    assert rehearsal["refused_after"]["pods"] == rehearsal["after"]["pods"]
    assert rehearsal["refused_after"]["state"]["nvidia_driver"]["version"] == NEXT
