"""Twin machines: OS identity as Salt's own grains see it, and isolation
between nodes and from the host."""

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

ALL_OSES = {
    "nodes": [
        {"id": "c7", "os": "centos7", "kernel": "3.10.0-1062.18.1.el7.x86_64", "gpus": ["NVIDIA GeForce GTX 1080 Ti"]},
        {"id": "r8", "os": "rocky8"},
        {"id": "r9", "os": "rocky9"},
        {"id": "a9", "os": "alma9"},
        {"id": "u18", "os": "ubuntu1804", "kernel": "5.3.0-40-generic"},
        {"id": "u22", "os": "ubuntu2204"},
        {"id": "u24", "os": "ubuntu2404"},
        {"id": "d12", "os": "debian12"},
    ]
}

EXPECTED = {
    "c7": ("CentOS", "RedHat", "CentOS Linux-7", "7.7.1908", 7, "3.10.0-1062.18.1.el7.x86_64"),
    "r8": ("Rocky", "RedHat", "Rocky Linux-8", "8.10", 8, "4.18.0-553.el8_10.x86_64"),
    "r9": ("Rocky", "RedHat", "Rocky Linux-9", "9.6", 9, "5.14.0-570.58.1.el9_6.x86_64"),
    "a9": ("AlmaLinux", "RedHat", "AlmaLinux-9", "9.6", 9, "5.14.0-570.58.1.el9_6.x86_64"),
    "u18": ("Ubuntu", "Debian", "Ubuntu-18.04", "18.04", 18, "5.3.0-40-generic"),
    "u22": ("Ubuntu", "Debian", "Ubuntu-22.04", "22.04", 22, "5.15.0-119-generic"),
    "u24": ("Ubuntu", "Debian", "Ubuntu-24.04", "24.04", 24, "6.8.0-45-generic"),
    "d12": ("Debian", "Debian", "Debian-12", "12", 12, "6.1.0-25-amd64"),
}


@pytest.fixture(scope="module")
def oses(twin):
    twin.up(ALL_OSES)
    return twin


@pytest.fixture(scope="module")
def grains(oses):
    return oses.salt("*", "grains.item", "os", "os_family", "osfinger", "osrelease", "osmajorrelease",
                     "kernelrelease", "host", "id")


@pytest.mark.parametrize("node", sorted(EXPECTED))
def test_core_grains_detect_the_os(grains, node):
    os_, family, finger, release, major, kernel = EXPECTED[node]
    g = grains[node]
    assert (g["os"], g["os_family"], g["osfinger"], g["osrelease"], g["osmajorrelease"]) == (
        os_, family, finger, release, major)
    assert g["kernelrelease"] == kernel
    assert g["host"] == node


def test_uname_release_is_the_node_kernel(oses):
    proc = oses.node_exec("c7", ["python3", "-c", "import os, platform; print(os.uname().release, platform.release())"])
    assert proc.stdout.split() == ["3.10.0-1062.18.1.el7.x86_64"] * 2, proc.stderr
    assert oses.node_exec("u18", "hostname").stdout.strip() == "u18"


def test_files_are_private_to_each_node(oses, tmp_path):
    marker = f"twin-isolation-{os.getpid()}"
    for path in ("/etc", "/var/lib", "/boot", "/usr/local/bin", "/root", "/opt", "/usr/src", "/lib/modules", "/run", "/tmp"):
        proc = oses.node_exec("c7", f"mkdir -p {path} && echo c7 > {path}/{marker} && cat {path}/{marker}")
        assert proc.stdout.strip() == "c7", (path, proc.stderr)
        other = oses.node_exec("r9", f"cat {path}/{marker}")
        assert other.returncode != 0, f"r9 sees c7's {path}/{marker}"
        assert not os.path.exists(f"{path}/{marker}"), f"the host sees c7's {path}/{marker}"


def test_nodes_do_not_see_the_host_or_the_run_dir(oses):
    run = str(oses.run_dir)
    listing = oses.node_exec("c7", f"ls {run} {run}/nodes").stdout.split()
    assert "disks" not in listing and "master" not in listing and "etc" not in listing
    assert "c7" in listing
    # other nodes' twin directories (state.json: what the Kubernetes emulation
    # reads in place of kubelet reports) are read-only; their files are not there
    write = oses.node_exec("c7", f"touch {run}/nodes/r9/x; echo rc=$?; touch {run}/nodes/c7/x; echo rc=$?")
    assert write.stdout.split() == ["rc=1", "rc=0"], write.stderr
    assert oses.node_exec("c7", f"ls {run}/disks {run}/images 2>&1; true").stdout.count("No such file") == 2
    # the host is Debian-like here; a CentOS node has none of it
    probe = oses.node_exec("c7", "ls /etc/debian_version /etc/apt /var/lib/dpkg /usr/bin/apt-get 2>&1; true").stdout
    assert probe.count("No such file") == 4, probe
    assert oses.node_exec("u22", "cat /etc/debian_version").stdout.strip() == "bookworm/sid"
    # /etc holds the image, not the host's configuration
    assert oses.node_exec("c7", "test -e /etc/apt || test -e /etc/cron.daily; echo $?").stdout.strip() == "1"


def test_each_node_has_its_own_processes(oses):
    ps = oses.node_exec("c7", "ps -eo pid,args").stdout
    assert "k8stwin.machine" in ps.splitlines()[1]  # PID 1 is the node's init
    assert "salt-master" not in ps
    assert ps.count("salt-minion") >= 1
    others = [line for line in ps.splitlines() if "/machines/r9" in line]
    assert not others


def test_host_commands_that_act_on_the_machine_are_emulated(oses):
    for path in ("/sbin/reboot", "/usr/sbin/shutdown", "/usr/bin/systemctl", "/sbin/modprobe", "/usr/sbin/init"):
        target = oses.node_exec("c7", f"readlink {path}").stdout.strip()
        assert target.endswith("twin/bin/_dispatch"), (path, target)
    proc = oses.node_exec("c7", "init 6; echo rc=$?")
    assert "init: command not found" in proc.stderr and "rc=127" in proc.stdout
    assert oses.node_exec("c7", "command -v dnf apt-get; true").stdout.strip() == ""
    assert oses.node_exec("r9", "readlink -f $(command -v yum)").stdout.strip().endswith("_dispatch")
    assert oses.node_exec("u22", "command -v yum rpm; true").stdout.strip() == ""


def test_emulated_commands_run_in_the_nodes_tool_server(oses):
    # the command systemd-run starts is a child of the tool, which is a child
    # of the node's tool server (k8stwin.toolserver), not a Python of its own
    probe = "tr '\\0' ' ' < /proc/$(awk '/^PPid/{print $2}' /proc/$PPID/status)/cmdline"
    proc = oses.node_exec("c7", ["systemd-run", "--scope", "sh", "-c", probe])
    assert "k8stwin.toolserver /run/k8stwin/tools.sock" in proc.stdout, (proc.stdout, proc.stderr)
    # the same command without the server answers the same
    plain = oses.node_exec("c7", "K8STWIN_TOOL_SOCKET= getenforce; echo rc=$?")
    served = oses.node_exec("c7", "getenforce; echo rc=$?")
    assert plain.stdout == served.stdout == "Enforcing\nrc=0\n", (plain.stdout, served.stdout)


def test_minion_options_point_at_the_node(oses):
    opts = oses.salt("c7", "config.get", "k8snvidia.sysfs_root")["c7"]
    assert opts == str(oses.node_dir("c7") / "sys")
    assert oses.salt("c7", "config.get", "systemd.scope")["c7"] is False
    assert oses.salt("c7", "config.get", "master")["c7"] == "127.0.0.1"
    mirror = oses.salt("c7", "config.get", "k8snvidia.artifact_mirror")["c7"]
    assert oses.node_exec("c7", f"test -d {mirror} && touch {mirror}/x; echo $?").stdout.strip() != "0"


def test_commands_are_recorded(oses):
    oses.salt("c7", "cmd.run", "shutdown --no-such-flag")
    rec = oses.records()
    cmds = rec["nodes"]["c7"]["commands"]
    bad = [c for c in cmds if c["argv"][:2] == ["shutdown", "--no-such-flag"]]
    assert bad and bad[-1]["rc"] == 1
    assert any(r["argv"][:1] == ["salt"] for r in rec["runs"])
    assert (oses.run_dir / "records.json").exists()


def test_repo_is_read_only_and_its_runtime_hidden(oses):
    proc = oses.node_exec("c7", f"touch {ROOT}/twin-write-probe; echo rc=$?; ls -A {ROOT}/.run")
    assert "rc=1" in proc.stdout and "Read-only file system" in proc.stderr
    assert "salt" not in proc.stdout.split()
    assert not (ROOT / "twin-write-probe").exists()


def test_overlay_pillar_and_artifact_store(oses):
    artifacts = pytest.importorskip("k8stwin.artifacts")
    overlay = artifacts.pillar_overlay()
    sha = overlay["k8snvidia"]["driver"]["sha256"]
    assert oses.salt("c7", "pillar.get", "k8snvidia:driver:sha256", "unmask=True")["c7"] == sha
    # the repo pillar is still there underneath
    assert oses.salt("c7", "pillar.get", "k8snvidia:nodes:node-110:role", "unmask=True")["c7"] == "worker"
    mirror = oses.salt("c7", "config.get", "k8snvidia.artifact_mirror")["c7"]
    listing = oses.node_exec("c7", f"ls {mirror}").stdout.split()
    assert any(name.endswith(".run") for name in listing)


def test_host_kernel_knobs_are_read_only(oses):
    proc = oses.node_exec("c7", "echo 0 > /proc/sys/net/ipv4/ip_forward; echo rc=$?; "
                                "echo x > /proc/sysrq-trigger; echo rc=$?; iptables -F; echo rc=$?")
    rcs = proc.stdout.split()
    assert "rc=0" not in rcs[:2] and rcs[2] == "rc=127", proc.stderr
    assert "Read-only file system" in proc.stderr and "iptables: command not found" in proc.stderr
