"""Reboot semantics of twin nodes: the minion restarts and fires its start
event, /run is cleared while disks persist, and the boot-default kernel
becomes the running one (grain and uname)."""

import subprocess
import time

import pytest

CENTOS_KERNEL = "3.10.0-1062.18.1.el7.x86_64"
NEW_KERNEL = "4.4.243-1.el7.elrepo.x86_64"


@pytest.fixture(scope="module")
def seed(twin):
    twin.up("twin/clusters/seed.yaml")
    return twin


def _start_event_listener(twin, node):
    """salt-run state.event waiting for the node's start event (a Popen)."""
    cmd = twin.twin.salt_cmd("salt-run", "state.event", f"salt/minion/{node}/start", "count=1")
    proc = subprocess.Popen(cmd, cwd=twin.twin.run, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(3)  # let it subscribe before the reboot
    return proc


def test_reboot_from_salt_restarts_minion_and_clears_run(seed):
    node = "node-105"
    before = seed.node_state(node)["reboots"]
    seed.node_exec(node, "echo x > /run/twin-marker; echo y > /etc/twin-marker; echo z > /var/lib/twin-marker")
    listener = _start_event_listener(seed, node)
    try:
        seed.salt(node, "system.reboot")  # `shutdown -r now` inside the node
        seed.wait_rebooted(node, before, timeout=180)
        out, _ = listener.communicate(timeout=60)
    finally:
        if listener.poll() is None:
            listener.kill()
    assert f"salt/minion/{node}/start" in out
    assert seed.node_state(node)["reboots"] == before + 1
    files = seed.node_exec(node, "cat /run/twin-marker /etc/twin-marker /var/lib/twin-marker 2>&1").stdout
    assert "No such file" in files.splitlines()[0]
    assert files.splitlines()[1:] == ["y", "z"]
    assert seed.node_exec(node, "test -d /run/systemd/system && echo ok").stdout.strip() == "ok"
    rec = seed.records()["nodes"][node]
    assert rec["reboots"] == before + 1 and rec["reboot_events"]
    assert any(c["argv"][:3] == ["shutdown", "-r", "now"] for c in rec["commands"])


def test_boot_default_kernel_becomes_running(seed):
    node = "node-110"
    boot = pytest.importorskip("k8stwin.boot")
    if not hasattr(boot, "resolve_default"):
        pytest.skip("k8stwin.boot.resolve_default is not there yet")
    setup = seed.node_exec(node, f"""set -e
        cp /boot/vmlinuz-{CENTOS_KERNEL} /boot/vmlinuz-{NEW_KERNEL}
        cp -a /lib/modules/{CENTOS_KERNEL} /lib/modules/{NEW_KERNEL}
        dracut -f /boot/initramfs-{NEW_KERNEL}.img {NEW_KERNEL}
        grub2-mkconfig -o /boot/grub2/grub.cfg >/dev/null 2>&1
        grub2-set-default 0
        python3 -c 'from k8stwin import boot; print(boot.resolve_default())'""")
    assert setup.returncode == 0, setup.stderr
    expected = setup.stdout.strip().splitlines()[-1]
    assert expected == NEW_KERNEL
    assert seed.salt(node, "grains.get", "kernelrelease")[node] == CENTOS_KERNEL
    seed.reboot(node)
    assert seed.node_state(node)["kernel"]["running"] == NEW_KERNEL
    assert seed.salt(node, "grains.get", "kernelrelease")[node] == NEW_KERNEL
    uname = seed.node_exec(node, "python3 -c 'import os; print(os.uname().release)'").stdout.strip()
    assert uname == NEW_KERNEL


def test_reboot_requests_wait_for_the_running_job(seed):
    """`shutdown -r +1` inside a state: the job returns before the machine goes down."""
    node = "node-109"
    before = seed.node_state(node)["reboots"]
    ret = seed.salt(node, "cmd.run_all", "shutdown -r +1")
    assert ret[node]["retcode"] == 0
    assert "Shutdown scheduled for" in ret[node]["stderr"]
    seed.wait_rebooted(node, before, timeout=180)
    kinds = [e["event"] for e in seed.events(node)]
    assert kinds[-3:] == ["power_request", "reboot", "boot"]


def test_reboot_now_waits_until_the_job_returned(seed):
    """The machine goes down only after the minion returned the job that asked."""
    node = "cluster-master"
    before = seed.node_state(node)["reboots"]
    ret = seed.salt(node, "cmd.run", "reboot; sleep 4; echo still-here", timeout=120)
    assert ret[node] == "still-here"
    seed.wait_rebooted(node, before, timeout=180)
    assert seed.node_state(node)["reboots"] == before + 1


def test_shutdown_cancel(seed):
    node = "node-106"
    before = seed.node_state(node)["reboots"]
    seed.node_exec(node, "shutdown -r +5 && shutdown -c")
    assert not (seed.node_dir(node) / "power.request").exists()
    time.sleep(2)
    assert seed.node_state(node)["reboots"] == before
