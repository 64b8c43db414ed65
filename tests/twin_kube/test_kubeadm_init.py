"""kubeadm init: preflight checks (order, names, messages, rc), config files,
second init, reset, ignore-preflight-errors semantics."""

import pytest

from .conftest import INIT_CONFIG, init_master


def _errors(err):
    return [ln.split("]")[0].split()[-1] for ln in err.splitlines() if ln.startswith("\t[ERROR")]


def _warnings(err):
    return [ln.split("]")[0].split()[-1] for ln in err.splitlines() if ln.startswith("\t[WARNING")]


def test_init_success_writes_files_and_cluster(twin):
    master, out = init_master(twin)
    assert "[init] Using Kubernetes version: v1.34.2" in out
    assert "Your Kubernetes control-plane has initialized successfully!" in out
    assert out.rstrip("\n").endswith(" ")  # the join line ends with a space
    for rel in ("/etc/kubernetes/admin.conf", "/etc/kubernetes/super-admin.conf", "/etc/kubernetes/pki/ca.crt",
                "/etc/kubernetes/manifests/kube-apiserver.yaml", "/var/lib/kubelet/kubeadm-flags.env"):
        assert master.read(rel) is not None, rel
    cluster = twin.cluster()
    cp = cluster["control_plane"]
    assert cp["endpoint"] == "192.168.0.113:6443" and cp["ca_hash"].startswith("sha256:")
    assert cluster["nodes"]["cluster-master"]["taints"] == [
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
    assert master.state()["services"]["kubelet"]["active"] is True
    assert cluster["warnings"] == []
    # the token of the config: 15 minutes
    tok = cluster["tokens"][0]
    assert 890 < tok["expires"] - tok["created"] <= 900


def test_ca_hash_matches_openssl_recipe(twin):
    cryptography = pytest.importorskip("cryptography")
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    assert cryptography
    master, _ = init_master(twin)
    cert = x509.load_pem_x509_certificate(master.read("/etc/kubernetes/pki/ca.crt").encode())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert twin.cluster()["control_plane"]["ca_hash"] == "sha256:" + hashlib.sha256(spki).hexdigest()


def test_second_init_fails_with_ports_files_dirs(twin):
    master, _ = init_master(twin)
    rc, out, err = master.run("kubeadm", "init", "--config", "/root/init.yaml")
    assert rc == 1
    assert _errors(err) == [
        "Port-6443", "Port-10259", "Port-10257",
        "FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml",
        "FileAvailable--etc-kubernetes-manifests-kube-controller-manager.yaml",
        "FileAvailable--etc-kubernetes-manifests-kube-scheduler.yaml",
        "FileAvailable--etc-kubernetes-manifests-etcd.yaml",
        "Port-10250", "Port-2379", "Port-2380", "DirAvailable--var-lib-etcd"]
    assert err.startswith("error execution phase preflight: [preflight] Some fatal errors occurred:\n")
    assert "\t[ERROR Port-6443]: Port 6443 is in use" in err
    assert "\t[ERROR DirAvailable--var-lib-etcd]: /var/lib/etcd is not empty" in err
    assert err.rstrip().endswith("To see the stack trace of this error execute with --v=5 or higher")
    assert "[preflight] Running pre-flight checks" in out


def test_reset_then_init_again(twin):
    master, _ = init_master(twin)
    rc, out, _ = master.run("kubeadm", "reset", "-f")
    assert rc == 0 and "[reset] Stopping the kubelet service" in out
    assert master.read("/etc/kubernetes/admin.conf") is None
    assert twin.cluster()["control_plane"] is None
    rc, _, err = master.run("kubeadm", "init", "--config", "/root/init.yaml")
    assert rc == 0, err


def test_reset_without_force_asks(twin):
    master, _ = init_master(twin)
    rc, out, err = master.run("kubeadm", "reset", stdin="n\n")
    assert rc == 1 and "Are you sure you want to proceed? [y/N]" in out and "aborted reset operation" in err


def test_preflight_network_swap_runtime_errors_in_order(twin):
    master = twin.add("cluster-master", ip="192.168.0.113")
    master.write("/root/init.yaml", INIT_CONFIG.format(ip="192.168.0.113", name="cluster-master"))

    def broken(st):
        st["services"]["containerd"]["active"] = False
        st["services"]["kubelet"]["enabled"] = False
        st["sysctl"]["net.ipv4.ip_forward"] = "0"
        st["swap"]["active"] = True
        st["services"]["firewalld"] = {"enabled": True, "active": True}
        for name in ("kubeadm", "kubelet", "kubectl"):
            st["packages"][name]["version"] = "1.27.6"
    master.edit(broken)
    master.write("/root/init.yaml", INIT_CONFIG.format(ip="192.168.0.113", name="cluster-master")
                 .replace("v1beta4", "v1beta3").replace("v1.34.2", "v1.27.6"))
    rc, out, err = master.run("kubeadm", "init", "--config", "/root/init.yaml")
    assert rc == 1
    assert _warnings(err) == ["Firewalld", "Service-Kubelet"]
    assert _errors(err) == ["CRI", "Swap", "FileContent--proc-sys-net-ipv4-ip_forward"]
    assert "running with swap on is not supported. Please disable swap" in err
    assert "container runtime is not running: output: " in err and "connect: no such file or directory" in err
    assert "/proc/sys/net/ipv4/ip_forward contents are not set to 1" in err
    assert "firewalld is active, please ensure ports [6443 10250] are open" in err
    # warnings come before the errors
    assert err.index("[WARNING Firewalld]") < err.index("Some fatal errors occurred")


def test_bridge_check_only_before_1_30(twin):
    master = twin.add("cluster-master", ip="192.168.0.113")

    def no_bridge(st, version):
        st["modules"] = ["overlay"]
        for name in ("kubeadm", "kubelet", "kubectl"):
            st["packages"][name]["version"] = version
    master.edit(lambda st: no_bridge(st, "1.29.4"))
    rc, _, err = master.run("kubeadm", "init", "--kubernetes-version", "v1.29.4")
    assert rc == 1
    assert ("\t[ERROR FileContent--proc-sys-net-bridge-bridge-nf-call-iptables]: "
            "/proc/sys/net/bridge/bridge-nf-call-iptables does not exist") in err
    master.edit(lambda st: no_bridge(st, "1.30.2"))
    rc, _, err = master.run("kubeadm", "init", "--kubernetes-version", "v1.30.2")
    assert rc == 0, err


@pytest.mark.parametrize("version,level,text", [
    ("1.28.2", "WARNING", "swap is enabled; production deployments should disable swap"),
    ("1.34.2", "WARNING", "swap is supported for cgroup v2 only."),
])
def test_swap_warning_then_kubelet_check_fails(twin, version, level, text):
    master = twin.add("cluster-master", ip="192.168.0.113")

    def swap(st):
        st["swap"]["active"] = True
        for name in ("kubeadm", "kubelet", "kubectl"):
            st["packages"][name]["version"] = version
    master.edit(swap)
    rc, out, err = master.run("kubeadm", "init", f"--kubernetes-version=v{version}")
    assert f"\t[{level} Swap]: {text}" in err
    # the kubelet (failSwapOn) still fails later
    assert rc == 1 and "error execution phase wait-control-plane" in err
    assert "[kubelet-check]" in out and "- The kubelet is not running" in out
    assert twin.cluster()["control_plane"] is None


def test_swap_allowed_with_failswapon_false(twin):
    master = twin.add("cluster-master", ip="192.168.0.113")
    master.edit(lambda st: st["swap"].update(active=True))
    master.write("/root/init.yaml", INIT_CONFIG.format(ip="192.168.0.113", name="cluster-master")
                 + "failSwapOn: false\n")
    rc, _, err = master.run("kubeadm", "init", "--config", "/root/init.yaml")
    assert rc == 0, err


def test_ignore_preflight_errors(twin):
    master = twin.add("cluster-master", ip="192.168.0.113")
    master.edit(lambda st: st["sysctl"].update({"net.ipv4.ip_forward": "0"}))
    rc, _, err = master.run("kubeadm", "init", "--ignore-preflight-errors=FILECONTENT--proc-sys-net-ipv4-ip_forward,nosuch")
    assert rc == 0, err
    assert "\t[WARNING FileContent--proc-sys-net-ipv4-ip_forward]: " in err
    rc, _, err = master.run("kubeadm", "init", "--ignore-preflight-errors=all,Swap")
    assert rc == 3 and "don't specify individual checks if 'all' is used" in err


def test_ignore_all_in_config_file_is_rejected(twin):
    master = twin.add("cluster-master", ip="192.168.0.113")
    master.write("/root/init.yaml", INIT_CONFIG.format(ip="192.168.0.113", name="cluster-master").replace(
        "  criSocket: unix:///run/containerd/containerd.sock",
        "  criSocket: unix:///run/containerd/containerd.sock\n  ignorePreflightErrors: [all]"))
    rc, _, err = master.run("kubeadm", "init", "--config", "/root/init.yaml")
    assert rc == 3 and "'all' cannot be used in configuration file" in err


def test_containerd_with_cri_disabled(twin):
    master = twin.add("cluster-master", ip="192.168.0.113")
    master.write("/etc/containerd/config.toml", 'disabled_plugins = ["cri"]\n')
    rc, _, err = master.run("kubeadm", "init")
    assert rc == 1 and "unknown service runtime.v1.RuntimeService" in err and "[ERROR CRI]" in err


def test_kubelet_newer_than_control_plane(twin):
    master = twin.add("cluster-master", ip="192.168.0.113")
    master.edit(lambda st: st["packages"]["kubelet"].update(version="1.35.0"))
    rc, _, err = master.run("kubeadm", "init", "--kubernetes-version", "v1.34.2")
    assert rc == 1 and "[ERROR KubeletVersion]: the kubelet version is higher than the control plane version" in err


def test_config_unknown_field_warns_and_records(twin):
    master = twin.add("cluster-master", ip="192.168.0.113")
    master.write("/root/init.yaml", INIT_CONFIG.format(ip="192.168.0.113", name="cluster-master").replace(
        "kubernetesVersion: v1.34.2", "kubernetesVersion: v1.34.2\npodSubnet: 10.1.0.0/16"))
    rc, _, err = master.run("kubeadm", "init", "--config", "/root/init.yaml")
    assert rc == 0
    assert 'strict decoding error: unknown field "podSubnet"' in err
    assert twin.cluster()["warnings"]


def test_config_api_versions_by_kubeadm_version(twin):
    master = twin.add("cluster-master", ip="192.168.0.113")
    text = INIT_CONFIG.format(ip="192.168.0.113", name="cluster-master")
    master.write("/root/v2.yaml", text.replace("v1beta4", "v1beta2"))
    rc, _, err = master.run("kubeadm", "init", "--config", "/root/v2.yaml")
    assert rc == 1 and 'your configuration file uses an old API spec: "kubeadm.k8s.io/v1beta2"' in err
    master.write("/root/v3.yaml", text.replace("v1beta4", "v1beta3"))
    rc, _, err = master.run("kubeadm", "init", "--config", "/root/v3.yaml")
    assert rc == 0 and "deprecated API spec" in err
    # v1beta4 on kubeadm 1.18
    master2 = twin.add("old-master", ip="192.168.0.120")
    master2.edit(lambda st: [st["packages"][n].update(version="1.18.20") for n in ("kubeadm", "kubelet", "kubectl")])
    master2.write("/root/v4.yaml", text)
    rc, _, err = master2.run("kubeadm", "init", "--config", "/root/v4.yaml")
    assert rc == 1 and 'no kind "InitConfiguration" is registered for version "kubeadm.k8s.io/v1beta4"' in err


def test_v1beta4_rejects_v1beta3_shapes_as_unknown(twin):
    master = twin.add("cluster-master", ip="192.168.0.113")
    master.write("/root/init.yaml", INIT_CONFIG.format(ip="192.168.0.113", name="cluster-master").replace(
        "imageRepository: registry.k8s.io", "imageRepository: registry.k8s.io\napiServer:\n  timeoutForControlPlane: 4m0s"))
    rc, _, err = master.run("kubeadm", "init", "--config", "/root/init.yaml")
    assert 'unknown field "timeoutForControlPlane"' in err


def test_validation_errors_rc3(twin):
    master = twin.add("cluster-master", ip="192.168.0.113")
    rc, _, err = master.run("kubeadm", "init", "--pod-network-cidr=10.96.0.0/16")
    assert rc == 3 and "pod subnet and service subnet overlap" in err
    rc, _, err = master.run("kubeadm", "init", "--pod-network-cidr=10.244.0.0/33")
    assert rc == 3 and "couldn't parse subnet" in err


def test_unknown_flags_and_mixing_config(twin):
    master = twin.add("cluster-master", ip="192.168.0.113")
    rc, _, err = master.run("kubeadm", "init", "--pod-cidr=10.0.0.0/16")
    assert rc == 1 and err.startswith("unknown flag: --pod-cidr")
    master.write("/root/init.yaml", INIT_CONFIG.format(ip="192.168.0.113", name="cluster-master"))
    rc, _, err = master.run("kubeadm", "init", "--config", "/root/init.yaml", "--pod-network-cidr=10.0.0.0/16")
    assert rc == 1 and "can not mix '--config' with arguments [pod-network-cidr]" in err
    rc, _, err = master.run("kubeadm", "frobnicate")
    assert rc == 1 and 'unknown command "frobnicate" for "kubeadm"' in err


def test_upload_certs_and_skip_phases(twin):
    master = twin.add("cluster-master", ip="192.168.0.113")
    master.edit(lambda st: st["sysctl"].update({"net.ipv4.ip_forward": "0"}))
    rc, out, err = master.run("kubeadm", "init", "--skip-phases=preflight", "--upload-certs",
                              "--control-plane-endpoint=192.168.0.113:6443")
    assert rc == 0, err
    assert "[preflight] Running pre-flight checks" not in out
    assert "[upload-certs] Using certificate key:" in out
    assert "--control-plane --certificate-key" in out
    assert twin.cluster()["control_plane"]["certificate_key"]["key"]


def test_version_and_images(twin):
    master = twin.add("cluster-master", ip="192.168.0.113")
    rc, out, _ = master.run("kubeadm", "version", "-o", "short")
    assert (rc, out) == (0, "v1.34.2\n")
    rc, out, _ = master.run("kubeadm", "config", "images", "list", "--kubernetes-version", "v1.34.2",
                            "--image-repository", "registry.aliyuncs.com/google_containers")
    lines = out.splitlines()
    assert lines[0] == "registry.aliyuncs.com/google_containers/kube-apiserver:v1.34.2"
    assert "registry.aliyuncs.com/google_containers/coredns:v1.12.1" in lines
    rc, out, _ = master.run("kubeadm", "config", "images", "list", "--kubernetes-version", "v1.34.2")
    assert "registry.k8s.io/coredns/coredns:v1.12.1" in out.splitlines()
    master.edit(lambda st: st["packages"].pop("kubeadm"))
    rc, _, err = master.run("kubeadm", "version")
    assert rc == 127


def test_new_error_format_from_1_35(twin):
    master = twin.add("cluster-master", ip="192.168.0.113")

    def v135(st):
        for n in ("kubeadm", "kubelet", "kubectl"):
            st["packages"][n]["version"] = "1.35.3"
        st["sysctl"]["net.ipv4.ip_forward"] = "0"
    master.edit(v135)
    rc, _, err = master.run("kubeadm", "init", "--kubernetes-version", "v1.35.3")
    assert rc == 1
    assert err.startswith("[preflight] Some fatal errors occurred:")
    assert "error: error execution phase preflight: preflight checks failed" in err


def test_old_kubeadm_docker_checks(twin):
    master = twin.add("cluster-master", ip="192.168.0.113", os_key="centos7")

    def seed(st):
        for n in ("kubeadm", "kubelet", "kubectl"):
            st["packages"][n]["version"] = "1.18.20"
        st["services"] = {"docker": {"enabled": True, "active": True}, "kubelet": {"enabled": True, "active": False}}
    master.edit(seed)
    rc, out, err = master.run("kubeadm", "init", "--kubernetes-version", "v1.18.20")
    assert rc == 0, err
    assert '[WARNING IsDockerSystemdCheck]: detected "cgroupfs" as the Docker cgroup driver' in err
    assert twin.cluster()["nodes"]["cluster-master"]["cri_socket"] == "/var/run/dockershim.sock"
    assert twin.cluster()["nodes"]["cluster-master"]["taints"] == [
        {"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}]


def test_cgroup_driver_mismatch_dockershim(twin):
    """kubelet systemd (the KubeletConfiguration) vs docker cgroupfs: the kubelet exits."""
    master = twin.add("cluster-master", ip="192.168.0.113", os_key="centos7")

    def seed(st):
        for n in ("kubeadm", "kubelet", "kubectl"):
            st["packages"][n]["version"] = "1.18.20"
        st["services"] = {"docker": {"enabled": True, "active": True}, "kubelet": {"enabled": True, "active": False}}
    master.edit(seed)
    cfg = INIT_CONFIG.format(ip="192.168.0.113", name="cluster-master").replace("v1beta4", "v1beta2").replace(
        "v1.34.2", "v1.18.20").replace("unix:///run/containerd/containerd.sock", "/var/run/dockershim.sock")
    master.write("/root/init.yaml", cfg)
    rc, out, err = master.run("kubeadm", "init", "--config", "/root/init.yaml")
    assert rc == 1 and "error execution phase wait-control-plane: couldn't initialize a Kubernetes cluster" in err
    assert "It seems like the kubelet isn't running or healthy." in out
    master.write("/etc/docker/daemon.json", '{"exec-opts": ["native.cgroupdriver=systemd"]}')
    assert master.run("kubeadm", "reset", "-f")[0] == 0
    rc, out, err = master.run("kubeadm", "init", "--config", "/root/init.yaml")
    assert rc == 0, err
    assert "IsDockerSystemdCheck" not in err


def test_containerd_systemdcgroup_false_control_plane_never_healthy(twin):
    master = twin.add("cluster-master", ip="192.168.0.113")
    rc, default, _ = master.run("containerd", "config", "default")
    master.write("/etc/containerd/config.toml", default)      # SystemdCgroup = false
    master.write("/root/init.yaml", INIT_CONFIG.format(ip="192.168.0.113", name="cluster-master"))
    rc, out, err = master.run("kubeadm", "init", "--config", "/root/init.yaml")
    assert rc == 1 and "failed while waiting for the control plane to start" in err
    assert "[kubelet-check] The kubelet is healthy" in out
    master.write("/etc/containerd/config.toml", default.replace("SystemdCgroup = false", "SystemdCgroup = true"))
    master.run("kubeadm", "reset", "-f")
    rc, _, err = master.run("kubeadm", "init", "--config", "/root/init.yaml")
    assert rc == 0, err


def test_old_kernel_fails_system_verification_from_1_32(twin):
    master = twin.add("cluster-master", ip="192.168.0.113", os_key="centos7")
    master.edit(lambda st: st.update(kernel={"running": "3.10.0-1062.18.1.el7.x86_64"}))
    rc, _, err = master.run("kubeadm", "init")
    assert rc == 1
    assert "\t[WARNING SystemVerification]: cgroups v1 support is in maintenance mode, please migrate to cgroups v2" in err
    assert ("\t[ERROR SystemVerification]: kernel release 3.10.0-1062.18.1.el7.x86_64 is unsupported. Recommended LTS "
            "version from the 4.x series is 4.19.") in err
    assert "\t[ERROR SystemVerification]: unexpected kernel config: CONFIG_CGROUP_BPF" in err
    # the seed's route: ELRepo kernel-lt
    master.edit(lambda st: st.update(kernel={"running": "5.4.278-1.el7.elrepo.x86_64"}))
    rc, _, err = master.run("kubeadm", "init")
    assert rc == 0, err
