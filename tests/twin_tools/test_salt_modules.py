"""Salt's own execution and state modules (yumpkg, aptpkg, systemd_service,
kmod, linux_sysctl, pkg/service/sysctl states) running on top of the emulated
tools of a temp-root node: the commands Salt runs and the output it parses."""

import os

import pytest
import salt.config
import salt.exceptions
import salt.loader
import salt.state
import salt.utils.systemd

GRAINS = {
    "centos7": {"os": "CentOS", "os_family": "RedHat", "osmajorrelease": 7, "osrelease": "7.7.1908", "osfinger": "CentOS Linux-7"},
    "rocky9": {"os": "Rocky", "os_family": "RedHat", "osmajorrelease": 9, "osrelease": "9.4", "osfinger": "Rocky Linux-9"},
    "ubuntu2204": {"os": "Ubuntu", "os_family": "Debian", "osmajorrelease": 22, "osrelease": "22.04", "osfinger": "Ubuntu-22.04", "oscodename": "jammy"},
}
VAULT = ("[base]\nname=CentOS base\nbaseurl=https://vault.centos.org/7.9.2009/os/$basearch/\ngpgcheck=1\ngpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7\n"
         "[updates]\nname=CentOS updates\nbaseurl=https://vault.centos.org/7.9.2009/updates/$basearch/\ngpgcheck=1\ngpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7\n")
ELREPO = ("[elrepo-kernel]\nname=ELRepo kernel\nbaseurl=https://mirrors.coreix.net/elrepo-archive-archive/kernel/el7/x86_64/\n"
          "enabled=0\ngpgcheck=1\ngpgkey=https://www.elrepo.org/RPM-GPG-KEY-elrepo.org\n")


@pytest.fixture
def salt_on(make_node, monkeypatch, tmp_path):
    def make(os_key, **kw):
        node = make_node(os_key, **kw)
        for key in ("K8STWIN_ROOT", "K8STWIN_NODE_DIR", "PATH", "PYTHONPATH"):
            monkeypatch.setenv(key, node.env[key])
        monkeypatch.setattr(salt.utils.systemd, "booted", lambda context=None: True)
        opts = salt.config.minion_config(None)
        grains = dict(GRAINS[os_key], osarch="x86_64" if os_key != "ubuntu2204" else "amd64", cpuarch="x86_64", kernel="Linux", init="systemd", id=node.os_key)
        cache = tmp_path / f"cache-{os_key}"
        opts.update({"cachedir": str(cache), "systemd.scope": False, "file_client": "local", "grains": grains,
                     "file_roots": {"base": [str(tmp_path)]}, "pillar_roots": {"base": [str(tmp_path)]}, "pillar": {},
                     "extension_modules": str(cache / "extmods")})
        mods = salt.loader.minion_mods(opts, context={})
        return node, opts, mods

    return make


def test_yumpkg_on_el7(salt_on):
    node, _opts, mods = salt_on("centos7")
    assert mods["pkg.refresh_db"]() is False  # stock CentOS-Base.repo: mirrorlist.centos.org is gone
    node.write("/etc/yum.repos.d/CentOS-Base.repo", VAULT)
    node.write("/etc/yum.repos.d/elrepo.repo", ELREPO)
    assert mods["pkg.refresh_db"]() is True  # check-update rc 100
    pkgs = mods["pkg.list_pkgs"]()
    assert pkgs["kernel"] == "3.10.0-1062.18.1.el7" and pkgs["systemd"] == "219-67.el7_7.4"
    assert mods["pkg.latest_version"]("kernel-lt", refresh=False, enablerepo="elrepo-kernel") == "5.4.278-1.el7.elrepo"
    with pytest.raises(salt.exceptions.CommandExecutionError) as exc:
        mods["pkg.install"]("kernel-devel", version="3.10.0-1062.18.1.el7")
    assert "No package kernel-devel-3.10.0-1062.18.1.el7 available." in str(exc.value.info["errors"])
    ret = mods["pkg.install"]("kernel-lt-devel", version="5.4.277-1.el7.elrepo", enablerepo="elrepo-kernel")
    assert ret["kernel-lt-devel"] == {"old": "", "new": "5.4.277-1.el7.elrepo"}
    assert mods["pkg.version_cmp"]("5.4.278-1.el7.elrepo", "5.4.277-1.el7.elrepo") == 1
    with pytest.raises(salt.exceptions.SaltInvocationError, match="yum-plugin-versionlock is not installed"):
        mods["pkg.hold"]("kernel-lt-devel")
    mods["pkg.install"]("yum-plugin-versionlock")
    assert mods["pkg.hold"]("kernel-lt-devel")["kernel-lt-devel"]["result"] is True
    assert mods["pkg.list_holds"]() == ["0:kernel-lt-devel-5.4.277-1.el7.elrepo.*"]
    assert mods["pkg.latest_version"]("kernel-lt-devel", refresh=False, enablerepo="elrepo-kernel") == ""  # locked


def test_systemd_kmod_sysctl_modules_on_el7(salt_on):
    node, _opts, mods = salt_on("centos7")
    assert mods["service.available"]("firewalld") is True
    assert mods["service.available"]("docker") is False  # systemd 219: parsed from 'Loaded: not-found'
    assert mods["service.status"]("firewalld") is True
    assert mods["service.stop"]("firewalld") is True
    assert mods["service.status"]("firewalld") is False
    assert mods["service.disable"]("firewalld") is True and mods["service.enabled"]("firewalld") is False
    assert mods["kmod.load"]("br_netfilter") == ["br_netfilter", "bridge"]
    assert [m["module"] for m in mods["kmod.lsmod"]()] == ["br_netfilter", "bridge"]
    assert mods["sysctl.get"]("net.bridge.bridge-nf-call-iptables") == "1"
    assert mods["sysctl.assign"]("net.ipv4.ip_forward", 1) == {"net.ipv4.ip_forward": "1"}
    assert node.state()["sysctl"]["net.ipv4.ip_forward"] == "1"


def test_pkg_and_service_states_on_el9(salt_on, tmp_path):
    node, opts, _mods = salt_on("rocky9")
    node.write("/etc/yum.repos.d/elrepo.repo", ELREPO.replace("mirrors.coreix.net/elrepo-archive-archive/kernel/el7", "elrepo.org/linux/kernel/el9").replace("enabled=0", "enabled=1"))
    st = salt.state.State(opts)
    high = {
        "kernel-lt": {"pkg": ["installed", {"version": "6.1.158-1.el9.elrepo"}, {"order": 1}], "__env__": "base", "__sls__": "t"},
        "firewalld": {"service": ["running", {"enable": True}, {"order": 2}], "__env__": "base", "__sls__": "t"},
        "net.ipv4.ip_forward": {"sysctl": ["present", {"value": 1}, {"config": str(tmp_path / "99-k8s.conf")}, {"order": 3}], "__env__": "base", "__sls__": "t"},
    }
    ret = st.call_high(high)
    assert isinstance(ret, dict), ret
    by_id = {k.split("_|-")[1]: v for k, v in ret.items()}
    assert by_id["kernel-lt"]["result"] is True, by_id["kernel-lt"]["comment"]
    assert by_id["kernel-lt"]["changes"]["kernel-lt"]["new"] == "6.1.158-1.el9.elrepo"
    assert by_id["firewalld"]["result"] is True
    assert by_id["net.ipv4.ip_forward"]["result"] is True, by_id["net.ipv4.ip_forward"]["comment"]
    again = {k.split("_|-")[1]: v for k, v in st.call_high(high).items()}
    assert again["kernel-lt"]["changes"] == {} and again["kernel-lt"]["result"] is True
    assert os.path.exists(node.file("/boot/vmlinuz-6.1.158-1.el9.elrepo.x86_64"))


def test_aptpkg_on_ubuntu(salt_on):
    node, _opts, mods = salt_on("ubuntu2204")
    node.write("/etc/apt/sources.list.d/kubernetes.list", "deb [signed-by=/etc/apt/keyrings/k8s.gpg] https://pkgs.k8s.io/core:/stable:/v1.34/deb/ /\n")
    node.write("/etc/apt/keyrings/k8s.gpg", "key")
    refreshed = mods["pkg.refresh_db"]()
    assert refreshed["https://pkgs.k8s.io/core:/stable:/v1.34/deb InRelease"] is True
    assert mods["pkg.latest_version"]("kubeadm", refresh=False) == "1.34.2-1.1"
    ret = mods["pkg.install"]("kubeadm", version="1.34.1-1.1", refresh=False)
    assert ret["kubeadm"] == {"old": "", "new": "1.34.1-1.1"} and "kubelet" in ret
    assert mods["pkg.hold"]("kubeadm")["kubeadm"]["result"] is True
    assert mods["pkg.get_selections"](state="hold") == {"hold": ["kubeadm"]}
    assert mods["pkg.version_cmp"]("1.34.2-1.1", "1.34.1-1.1") == 1
    with pytest.raises(salt.exceptions.CommandExecutionError):
        mods["pkg.install"]("no-such-package", refresh=False)
    assert mods["pkg.list_pkgs"]()["kubeadm"] == "1.34.1-1.1"
    assert mods["service.available"]("kubelet") is True


def _bootkernel(node, mods, grains):
    from tests.conftest import load_source

    bk = load_source("salt/_modules/bootkernel.py", name="k8snvidia_twin_bootkernel")
    bk.ROOT = str(node.root)
    bk.__salt__ = mods
    bk.__grains__ = grains
    return bk


@pytest.mark.parametrize("os_key", ["centos7", "rocky9", "ubuntu2204"])
def test_bootkernel_reads_what_the_tools_write(salt_on, os_key):
    """The project's own bootkernel module and the twin's boot resolver agree."""
    node, opts, mods = salt_on(os_key)
    if os_key == "ubuntu2204":
        assert node.run("apt-get", "-q", "update").returncode == 0
        assert node.run("apt-get", "-q", "-y", "install", "linux-generic-hwe-22.04").returncode == 0
        new, tool = "6.8.0-87-generic", "update-grub"
    else:
        url = "mirrors.coreix.net/elrepo-archive-archive/kernel/el7" if os_key == "centos7" else "elrepo.org/linux/kernel/el9"
        node.write("/etc/yum.repos.d/elrepo.repo", ELREPO.replace("mirrors.coreix.net/elrepo-archive-archive/kernel/el7", url))
        node.write("/etc/yum.repos.d/CentOS-Base.repo", "")
        r = node.run("yum", "-y", "--enablerepo=elrepo-kernel", "install", "kernel-lt")
        assert r.returncode == 0, r.stdout + r.stderr
        new = "5.4.278-1.el7.elrepo.x86_64" if os_key == "centos7" else "6.1.158-1.el9.elrepo.x86_64"
        tool = "grub2-mkconfig" if os_key == "centos7" else "grubby"
    bk = _bootkernel(node, mods, opts["grains"])
    twin = node.py("from k8stwin import boot; print(boot.resolve_default())").strip()
    assert bk.default(boot_tool=tool) == twin
    assert new in bk.installed()
    if os_key != "ubuntu2204":
        assert twin != new
        assert bk.installed("kernel-lt") == [new]


def test_pkg_installed_with_hold_on_ubuntu(salt_on):
    node, opts, _mods = salt_on("ubuntu2204")
    node.write("/etc/apt/sources.list.d/kubernetes.list", "deb [signed-by=/etc/apt/keyrings/kubernetes.asc] https://pkgs.k8s.io/core:/stable:/v1.34/deb/ /\n")
    node.write("/etc/apt/keyrings/kubernetes.asc", "key")
    st = salt.state.State(opts)
    pkgs = [{"kubelet": "1.34.1-1.1"}, {"kubeadm": "1.34.1-1.1"}, {"kubectl": "1.34.1-1.1"}]
    high = {"k8s": {"pkg": ["installed", {"pkgs": pkgs}, {"hold": True}, {"order": 1}], "__env__": "base", "__sls__": "t"}}
    ret = next(iter(st.call_high(high).values()))
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"]["kubeadm"]["new"] == "1.34.1-1.1\nhold"  # Salt appends the hold
    assert sorted(node.state()["holds"]) == ["kubeadm", "kubectl", "kubelet"]
    again = next(iter(st.call_high(high).values()))
    assert again["result"] is True and again["changes"] == {}
    # a newer pin is refused while held... unless the state lifts the hold itself
    high["k8s"]["pkg"][1] = {"pkgs": [{"kubelet": "1.34.2-1.1"}, {"kubeadm": "1.34.2-1.1"}, {"kubectl": "1.34.2-1.1"}]}
    up = next(iter(st.call_high(high).values()))
    assert up["result"] is True, up["comment"]
    assert node.state()["packages"]["kubeadm"]["version"] == "1.34.2-1.1"
    assert sorted(node.state()["holds"]) == ["kubeadm", "kubectl", "kubelet"]


def test_pkg_installed_disableexcludes_on_el7(salt_on):
    node, opts, _mods = salt_on("centos7")
    node.write("/etc/yum.repos.d/CentOS-Base.repo", VAULT)
    node.write("/etc/yum.repos.d/kubernetes.repo", "[kubernetes]\nname=Kubernetes\nbaseurl=https://pkgs.k8s.io/core:/stable:/v1.34/rpm/\nenabled=1\ngpgcheck=1\ngpgkey=https://pkgs.k8s.io/core:/stable:/v1.34/rpm/repodata/repomd.xml.key\nexclude=kubelet kubeadm kubectl cri-tools kubernetes-cni\n")
    st = salt.state.State(opts)
    pkgs = [{n: "1.34.2-150500.1.1"} for n in ("kubelet", "kubeadm", "kubectl")]
    high = {"k8s": {"pkg": ["installed", {"pkgs": pkgs}, {"order": 1}], "__env__": "base", "__sls__": "t"}}
    ret = next(iter(st.call_high(high).values()))
    assert ret["result"] is False  # the repository excludes them
    high["k8s"]["pkg"].insert(2, {"disableexcludes": "kubernetes"})
    ret = next(iter(st.call_high(high).values()))
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"]["kubelet"]["new"] == "1.34.2-150500.1.1"
    assert "cri-tools" in ret["changes"] and "kubernetes-cni" in ret["changes"]
    again = next(iter(st.call_high(high).values()))
    assert again["result"] is True and again["changes"] == {}
