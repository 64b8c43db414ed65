"""kubectl cordon / uncordon / drain as kubectl does them (k8s.io/kubectl
pkg/cmd/drain, pkg/drain: the filters in their order, their messages, the
exit codes), the scheduler's view of a cordoned node, Deployments whose
evicted pods come back, field selectors, and what holds the node's GPU
while the pods run (k8stwin.gpuholders: the device plugin, GPU pods)."""

import json

import pytest
from k8stwin import gpuholders

from .conftest import GTX, configure_nvidia, init_master, join_cmd
from .test_kubectl_gpu import FLANNEL, kubectl, plugin

# the project's device plugin: not where a driver upgrade holds it off
PLUGIN_AFFINITY = plugin().replace(
    "      tolerations:",
    "      affinity:\n        nodeAffinity:\n          requiredDuringSchedulingIgnoredDuringExecution:\n"
    "            nodeSelectorTerms:\n            - matchExpressions:\n"
    "              - {key: nvidia.com/gpu.deploy.device-plugin, operator: NotIn, values: ['false']}\n"
    "      tolerations:", 1)

WORKLOAD = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: trainer
spec:
  replicas: 1
  selector: {matchLabels: {app: trainer}}
  template:
    metadata: {labels: {app: trainer}}
    spec:
      nodeSelector: {kubernetes.io/hostname: node-110}
      containers:
      - name: cuda
        image: nvcr.io/nvidia/cuda:12.8.1-base-ubuntu22.04
        command: [sleep, infinity]
        resources:
          limits: {nvidia.com/gpu: 1}
"""

BARE = """apiVersion: v1
kind: Pod
metadata:
  name: notebook
spec:
  nodeSelector: {kubernetes.io/hostname: node-110}
  containers:
  - name: nb
    image: nvcr.io/nvidia/cuda:12.8.1-base-ubuntu22.04
    command: [sleep, infinity]
  volumes: []
"""


@pytest.fixture
def cluster(twin):
    master, _ = init_master(twin)
    w = twin.add("node-110", gpus=[GTX])
    configure_nvidia(w)
    rc, _, err = w.run("kubeadm", "join", *join_cmd(master))
    assert rc == 0, err
    assert kubectl(master, "apply", "-f", "-", stdin=FLANNEL)[0] == 0
    rc, _, err = kubectl(master, "apply", "-f", "-", stdin=PLUGIN_AFFINITY)
    assert rc == 0, err
    return master, w


def _pods_on(master, node):
    rc, out, err = kubectl(master, "get", "pods", "-A", f"--field-selector=spec.nodeName={node}", "-o",
                           "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}={.status.phase}\n{end}")
    assert rc == 0, err
    return dict(line.split("=") for line in out.splitlines())


def _holders(node):
    return [(h["command"], h["kind"]) for h in gpuholders.holders(json.loads((node.dir / "node.json").read_text()),
                                                                     node.state())]


def test_cordon_and_uncordon(cluster):
    master, _ = cluster
    rc, out, err = kubectl(master, "cordon", "node-110")
    assert (rc, out, err) == (0, "node/node-110 cordoned\n", "")
    assert kubectl(master, "cordon", "node-110")[1] == "node/node-110 already cordoned\n"
    rc, out, _ = kubectl(master, "get", "nodes")
    assert out.splitlines()[2].split()[:2] == ["node-110", "Ready,SchedulingDisabled"]
    node = json.loads(kubectl(master, "get", "node", "node-110", "-o", "json")[1])
    assert node["spec"]["unschedulable"] is True
    assert [(t["key"], t["effect"]) for t in node["spec"]["taints"]] == [("node.kubernetes.io/unschedulable",
                                                                          "NoSchedule")]
    # DaemonSet pods tolerate it (the controller adds the toleration): the plugin stays
    assert any(p.startswith("kube-system/nvidia-device-plugin-daemonset-") for p in _pods_on(master, "node-110"))
    rc, out, _ = kubectl(master, "get", "node", "node-110", "-o", "jsonpath={.status.allocatable.nvidia\\.com/gpu}")
    assert out == "1"
    # new pods do not land there
    assert kubectl(master, "apply", "-f", "-", stdin=WORKLOAD)[0] == 0
    rc, out, _ = kubectl(master, "get", "pods", "-o", "json")
    (pod,) = json.loads(out)["items"]
    assert pod["metadata"]["name"].startswith("trainer-") and pod["status"]["phase"] == "Pending"
    assert "1 node(s) were unschedulable" in pod["status"]["conditions"][0]["message"]
    assert kubectl(master, "uncordon", "node-110")[1] == "node/node-110 uncordoned\n"
    assert kubectl(master, "uncordon", "node-110")[1] == "node/node-110 already uncordoned\n"
    assert _pods_on(master, "node-110")[f"default/{pod['metadata']['name']}"] == "Running"
    rc, _, err = kubectl(master, "cordon", "node-999")
    assert (rc, err) == (1, 'Error from server (NotFound): nodes "node-999" not found\n')
    rc, _, err = kubectl(master, "cordon")
    assert rc == 1 and err.startswith("error: USAGE: cordon NODE [flags]")


def test_drain_refuses_daemonset_and_unmanaged_pods_as_kubectl_does(cluster):
    master, _ = cluster
    assert kubectl(master, "apply", "-f", "-", stdin=BARE)[0] == 0
    rc, out, err = kubectl(master, "drain", "node-110")
    assert rc == 1 and out == "node/node-110 cordoned\n"  # cordoned even so
    lines = err.splitlines()
    # two errors, aggregated as [a, b] (kubectl's order is a Go map's: any)
    assert lines[0].startswith('error: unable to drain node "node-110" due to error: [cannot delete ')
    assert "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): kube-flannel/kube-flannel-ds-" \
        in lines[0]
    assert "kube-system/kube-proxy-" in lines[0] and "kube-system/nvidia-device-plugin-daemonset-" in lines[0]
    assert "cannot delete Pods that declare no controller (use --force to override): default/notebook" in lines[0]
    assert lines[0].endswith(", continuing command...")
    assert lines[1:3] == ["There are pending nodes to be drained:", " node-110"]
    assert lines[3].startswith("error: [cannot delete ") and lines[3].endswith("]")
    rc, out, err = kubectl(master, "drain", "node-110", "--ignore-daemonsets")
    assert rc == 1 and out == "node/node-110 already cordoned\n"
    assert err.splitlines()[-1] == ("error: cannot delete Pods that declare no controller (use --force to override): "
                                    "default/notebook")
    assert "default/notebook" in _pods_on(master, "node-110")  # nothing was evicted
    rc, out, err = kubectl(master, "drain", "node-110", "--ignore-daemonsets", "--force", "--timeout=60s")
    assert rc == 0, err
    assert out.splitlines() == ["node/node-110 already cordoned", "evicting pod default/notebook",
                                "pod/notebook evicted", "node/node-110 drained"]
    # (kubectl joins its warnings in map order: any order)
    assert err.startswith("Warning: ") and "deleting Pods that declare no controller: default/notebook" in err
    assert "ignoring DaemonSet-managed Pods: kube-flannel/kube-flannel-ds-" in err
    rc, _, err = kubectl(master, "drain", "node-110", "--timeout=ten")
    assert rc == 1 and 'invalid argument "ten" for "--timeout" flag: time: invalid duration "ten"' in err


def test_drain_evicts_the_gpu_pods_the_deployment_brings_them_back_after_uncordon(cluster):
    master, w = cluster
    assert kubectl(master, "apply", "-f", "-", stdin=WORKLOAD)[0] == 0
    before = _pods_on(master, "node-110")
    trainer = next(p for p in before if p.startswith("default/trainer-"))
    assert before[trainer] == "Running"
    # the GPU is held: the device plugin (NVML) and the CUDA job, each in its pod
    assert _holders(w) == [("nvidia-device-plugin", "pod"), ("sleep", "pod")]
    rc, out, _ = kubectl(master, "get", "deploy", "trainer", "-o", "jsonpath={.status.availableReplicas}")
    assert out == "1"
    # the plugin off the node (the runner's label), then the drain
    rc, out, err = kubectl(master, "label", "--overwrite", "node", "node-110",
                           "nvidia.com/gpu.deploy.device-plugin=false")
    assert (rc, out) == (0, "node/node-110 labeled\n"), err
    assert not any("nvidia-device-plugin" in p for p in _pods_on(master, "node-110"))
    rc, out, err = kubectl(master, "drain", "node-110", "--ignore-daemonsets", "--delete-emptydir-data",
                           "--timeout=600s")
    assert rc == 0, err
    assert out.splitlines() == ["node/node-110 cordoned", f"evicting pod {trainer}",
                                f"pod/{trainer.split('/')[1]} evicted", "node/node-110 drained"]
    assert err.startswith("Warning: ignoring DaemonSet-managed Pods: ")
    assert _holders(w) == []
    # the Deployment made a new pod: Pending while the node is cordoned
    rc, out, _ = kubectl(master, "get", "pods", "-l", "app=trainer", "-o", "json")
    (pod,) = json.loads(out)["items"]
    assert f"default/{pod['metadata']['name']}" != trainer and pod["status"]["phase"] == "Pending"
    assert "node(s) were unschedulable" in pod["status"]["conditions"][0]["message"]
    # given back: the plugin and the workload return, and hold the GPU again
    rc, out, _ = kubectl(master, "label", "node", "node-110", "nvidia.com/gpu.deploy.device-plugin-")
    assert out == "node/node-110 labeled\n"
    assert kubectl(master, "label", "node", "node-110", "nvidia.com/gpu.deploy.device-plugin-")[1] == (
        'label "nvidia.com/gpu.deploy.device-plugin" not found.\nnode/node-110 not labeled\n')
    assert kubectl(master, "uncordon", "node-110")[0] == 0
    assert _pods_on(master, "node-110")[f"default/{pod['metadata']['name']}"] == "Running"
    assert _holders(w) == [("nvidia-device-plugin", "pod"), ("sleep", "pod")]
    # one GPU, one taker: a second GPU pod waits
    second = BARE.replace("name: notebook", "name: second").replace(
        "    command: [sleep, infinity]\n", "    command: [sleep, infinity]\n    resources:\n      limits: {nvidia.com/gpu: 1}\n")
    assert kubectl(master, "apply", "-f", "-", stdin=second)[0] == 0
    rc, out, _ = kubectl(master, "get", "pods", "--field-selector=status.phase=Running", "-o", "name")
    assert out == f"pod/{pod['metadata']['name']}\n"
    rc, out, _ = kubectl(master, "get", "pod", "second", "-o", "json")
    assert "1 Insufficient nvidia.com/gpu" in json.loads(out)["status"]["conditions"][0]["message"]
    rc, _, err = kubectl(master, "get", "pods", "--field-selector=spec.foo=bar")
    assert rc == 1 and "field label not supported: spec.foo" in err


def test_gpu_services_and_other_processes_hold_the_gpu(tmp_path):
    """Outside a cluster: the GPU services while active, other processes
    (device_holders), nvidia-smi's processes; nothing without the module."""
    node = {"id": "n1", "os_key": "centos7", "gpus": [GTX]}
    st = {"modules": ["nvidia"], "services": {"nvidia-persistenced.service": {"active": True}},
          "device_holders": [{"pid": 4242, "command": "python3"}],
          "gpu_processes": [{"pid": 77, "name": "cuda-job", "gpu": 0}]}
    found = gpuholders.holders(node, st)
    assert [(h["command"], h["kind"]) for h in found] == [("cuda-job", "process"), ("nvidia-persistenced", "service"),
                                                          ("python3", "process")]  # by pid
    persist = found[1]
    assert persist["unit"] == "nvidia-persistenced" and persist["command"] == "nvidia-persistenced"
    assert "1:name=systemd:/system.slice/nvidia-persistenced.service" in persist["cgroup"]  # cgroup v1 on el7
    gpuholders.write_procfs(tmp_path, found)
    pid = tmp_path / str(persist["pid"])
    assert (pid / "comm").read_text() == "nvidia-persiste\n"  # TASK_COMM_LEN
    assert (pid / "cmdline").read_bytes().split(b"\0")[0] == b"/usr/bin/nvidia-persistenced"
    assert sorted(p.readlink().as_posix() for p in (pid / "fd").iterdir())[-2:] == ["/dev/nvidia0", "/dev/nvidiactl"]
    assert gpuholders.extra_refs(found) == {"nvidia": 6, "nvidia_uvm": 1}  # one per open device
    st["services"] = {}
    st["device_holders"] = []
    gpuholders.write_procfs(tmp_path, gpuholders.holders(node, st))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["77"]
    assert gpuholders.holders(node, dict(st, modules=[])) == []
