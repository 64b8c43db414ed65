"""The twin as strict as kubeadm 1.35+ and the kubelet on cgroup v1 hosts
(issue 9 item 7): SystemVerification fails on cgroup v1 unless skipped
(system-validators' message as kubeadm prints it), the kubelet refuses to
start there unless failCgroupV1: false, and the kubeadm configuration our
module renders passes both."""

import yaml
from k8stwin import os_profiles  # noqa: E402  (tests/twin_kube/conftest puts twin/ on sys.path)

from tests.conftest import load_source

from .conftest import CONTAINERD_CONFIG, good_state, join_cmd

CRI = "unix:///run/containerd/containerd.sock"
V1_ERROR = ("\t[ERROR SystemVerification]: cgroups v1 support is deprecated and will be removed in a future release. "
            "Please migrate to cgroups v2. To explicitly enable cgroups v1 support for kubelet v1.35 or newer, you "
            "must set the kubelet configuration option 'FailCgroupV1' to 'false'. You must also explicitly skip this "
            "validation. For more information, see https://git.k8s.io/enhancements/keps/sig-node/5573-remove-cgroup-v1")


def _node(twin, name, os_key, version="1.36.4", ip=None):
    node = twin.add(name, ip=ip, os_key=os_key)
    node.set_state(good_state(version=version, gpu_driver=False))
    node.write("/etc/containerd/config.toml", CONTAINERD_CONFIG)
    return node


def _config(version="1.36.4", ignore=None, fail_cgroup_v1=None, ip="192.168.0.113", name="cluster-master"):
    mod = load_source("_modules/kubeadm.py")
    return mod.init_config(name, ip, version, "10.244.0.0/16", "10.96.0.0/12", CRI,
                           ignore_preflight_errors=ignore or [], fail_cgroup_v1=fail_cgroup_v1)


def _init(node, text):
    node.write("/root/init.yaml", text)
    return node.run("kubeadm", "init", "--config", "/root/init.yaml")


def test_os_profiles_know_their_cgroup():
    assert {k: os_profiles.cgroup(k) for k in os_profiles.PROFILES} == {
        "centos7": "v1", "rocky8": "v1", "rocky9": "v2", "alma9": "v2", "ubuntu1804": "v1",
        "ubuntu2204": "v2", "ubuntu2404": "v2", "debian12": "v2"}
    assert os_profiles.cgroup("CentOS Linux-7") == "v1"


def test_cgroup_v1_fails_system_verification_from_135(twin):
    master = _node(twin, "cluster-master", "rocky8", ip="192.168.0.113")
    rc, _, err = _init(master, _config())
    assert rc == 1
    assert V1_ERROR in err.splitlines()
    assert "error: error execution phase preflight: preflight checks failed" in err


def test_cgroup_v1_is_a_warning_before_135(twin):
    master = _node(twin, "cluster-master", "rocky8", version="1.34.2", ip="192.168.0.113")
    rc, _, err = _init(master, _config(version="1.34.2"))
    assert rc == 0, err
    assert "\t[WARNING SystemVerification]: cgroups v1 support is in maintenance mode, please migrate to cgroups v2" in err


def test_skipped_check_but_kubelet_refuses_cgroup_v1(twin):
    master = _node(twin, "cluster-master", "rocky8", ip="192.168.0.113")
    rc, out, err = _init(master, _config(ignore=["SystemVerification"]))
    assert rc == 1
    assert V1_ERROR.replace("[ERROR", "[WARNING") in err.splitlines()
    assert "The kubelet is not healthy" in out
    assert "failed while waiting for the kubelet to start" in err
    assert "kubelet is configured to not run on a host using cgroup v1" in master.read("/var/log/k8stwin-kubelet.log")


def test_our_config_runs_on_cgroup_v1(twin):
    master = _node(twin, "cluster-master", "rocky8", ip="192.168.0.113")
    text = _config(ignore=["SystemVerification"], fail_cgroup_v1=False)
    assert yaml.safe_load_all(text)
    rc, out, err = _init(master, text)
    assert rc == 0, err
    assert "Your Kubernetes control-plane has initialized successfully!" in out


def test_cgroup_v2_needs_nothing(twin):
    master = _node(twin, "cluster-master", "rocky9", ip="192.168.0.113")
    rc, _, err = _init(master, _config())
    assert rc == 0, err
    assert "SystemVerification" not in err


def test_kernel_below_419_fails_system_verification(twin):
    master = _node(twin, "cluster-master", "rocky9", ip="192.168.0.113")
    master.edit(lambda st: st.setdefault("kernel", {}).update(running="3.10.0-1160.el7.x86_64"))
    rc, _, err = _init(master, _config())
    assert rc == 1
    assert ("\t[ERROR SystemVerification]: kernel release 3.10.0-1160.el7.x86_64 is unsupported. Recommended LTS "
            "version from the 4.x series is 4.19.") in err


def _join(worker, master, ignore=()):
    args = join_cmd(master)
    extra = [f"--ignore-preflight-errors={','.join(ignore)}"] if ignore else []
    return worker.run("kubeadm", "join", *args, *extra)


def test_worker_on_cgroup_v1_needs_the_clusters_fail_cgroup_v1_false(twin):
    master = _node(twin, "cluster-master", "rocky9", ip="192.168.0.113")
    rc, _, err = _init(master, _config())  # an all-v2 configuration: failCgroupV1 left at its default
    assert rc == 0, err
    worker = _node(twin, "node-1", "rocky8", ip="192.168.0.110")
    rc, _, err = _join(worker, master)
    assert rc == 1 and V1_ERROR in err.splitlines()
    rc, _, err = _join(worker, master, ignore=["SystemVerification"])
    assert rc == 1 and "timed out waiting for the condition" in err
    assert "kubelet is configured to not run on a host using cgroup v1" in worker.read("/var/log/k8stwin-kubelet.log")


def test_worker_on_cgroup_v1_joins_a_cluster_that_tolerates_v1(twin):
    master = _node(twin, "cluster-master", "rocky9", ip="192.168.0.113")
    rc, _, err = _init(master, _config(fail_cgroup_v1=False))
    assert rc == 0, err
    worker = _node(twin, "node-1", "centos7", ip="192.168.0.110")
    rc, out, err = _join(worker, master, ignore=["SystemVerification"])
    assert rc == 0, err
    assert "This node has joined the cluster:" in out
