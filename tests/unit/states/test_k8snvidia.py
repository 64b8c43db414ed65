"""Unit tests of _states/k8snvidia.py: reboot-pending bookkeeping, the
loaded-module check and swap off, with a scratch procfs and /run."""

import pytest

from tests.conftest import load_source

PROC_MODULES = (
    "nouveau 1949696 1 - Live 0x0000000000000000\n"
    "br_netfilter 22256 0 - Live 0x0000000000000000\n"
    "overlay 91659 0 - Live 0x0000000000000000\n"
)
SWAPS_HEADER = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
SWAPS_ON = SWAPS_HEADER + "/dev/dm-1                               partition\t8388604\t\t0\t\t-2\n"


@pytest.fixture
def env(tmp_path):
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "modules").write_text(PROC_MODULES)
    (proc / "swaps").write_text(SWAPS_HEADER)
    k8s = load_source("_modules/k8snvidia.py", "k8s_mod_states")
    k8s.REBOOT_DIR = str(tmp_path / "run")
    state = load_source("_states/k8snvidia.py", "k8s_state_states")
    commands = []

    def no_commands(cmd, **kwargs):
        commands.append(cmd)
        raise AssertionError(f"unexpected command {cmd}")

    state.__salt__ = {
        "k8snvidia.reboot_pending": k8s.reboot_pending,
        "k8snvidia.set_reboot_pending": k8s.set_reboot_pending,
        "cmd.run_all": no_commands,
    }
    state.__opts__ = {"test": False, "k8snvidia.procfs_root": str(proc)}
    return state, k8s, proc, commands


def test_reboot_pending_test_real_and_again(env):
    state, k8s, _, _ = env
    state.__opts__["test"] = True
    ret = state.reboot_pending("a new kernel is the boot default")
    assert ret["result"] is None and ret["changes"] == {"reboot_pending": "a new kernel is the boot default"}
    assert k8s.reboot_pending() == []
    state.__opts__["test"] = False
    ret = state.reboot_pending("kernel", reason="a new kernel is the boot default")
    assert ret["result"] is True and ret["changes"] == {"reboot_pending": "a new kernel is the boot default"}
    assert k8s.reboot_pending() == ["a new kernel is the boot default"]
    again = state.reboot_pending("a new kernel is the boot default")
    assert again["result"] is True and again["changes"] == {}
    state.__opts__["test"] = True
    assert state.reboot_pending("a new kernel is the boot default")["changes"] == {}


def test_reboot_pending_mod_watch(env):
    state, k8s, _, _ = env
    ret = state.mod_watch("driver installed", sfun="reboot_pending")
    assert ret["changes"] == {"reboot_pending": "driver installed"}
    assert state.mod_watch("x", sfun="swap_off")["result"] is False


def test_reboot_pending_if_loaded_reads_proc_modules_only(env):
    state, k8s, proc, commands = env
    ret = state.reboot_pending_if_loaded("nvidia")
    assert ret["result"] is True and ret["changes"] == {}
    state.__opts__["test"] = True
    ret = state.reboot_pending_if_loaded("nouveau")
    assert ret["result"] is None and "nouveau" in ret["changes"]["reboot_pending"]
    assert k8s.reboot_pending() == []
    state.__opts__["test"] = False
    ret = state.reboot_pending_if_loaded("nouveau")
    assert ret["result"] is True and ret["changes"]
    # still loaded (no reboot yet): nothing new
    assert state.reboot_pending_if_loaded("nouveau")["changes"] == {}
    (proc / "modules").write_text("nvidia 100 0 - Live 0x0\n")
    assert state.reboot_pending_if_loaded("nouveau")["changes"] == {}
    assert commands == []  # no process was started


def test_swap_off_nothing_active_starts_nothing(env):
    state, _, _, commands = env
    ret = state.swap_off("swap")
    assert ret["result"] is True and ret["changes"] == {}
    assert commands == []


def test_swap_off_test_then_real(env):
    state, _, proc, _ = env
    (proc / "swaps").write_text(SWAPS_ON)
    state.__opts__["test"] = True
    ret = state.swap_off("swap")
    assert ret["result"] is None and ret["changes"] == {"swapoff": ["/dev/dm-1"]}
    ran = []

    def swapoff(cmd, python_shell=True, **kwargs):
        assert python_shell is False
        ran.append(cmd)
        (proc / "swaps").write_text(SWAPS_HEADER)
        return {"retcode": 0, "stdout": "", "stderr": ""}

    state.__salt__["cmd.run_all"] = swapoff
    state.__opts__["test"] = False
    ret = state.swap_off("swap")
    assert ret["result"] is True and ret["changes"] == {"swapoff": ["/dev/dm-1"]}
    assert ran == [["swapoff", "-a"]]
    assert state.swap_off("swap")["changes"] == {}


def test_swap_off_failure(env):
    state, _, proc, _ = env
    (proc / "swaps").write_text(SWAPS_ON)
    state.__salt__["cmd.run_all"] = lambda cmd, **kw: {
        "retcode": 255,
        "stdout": "",
        "stderr": "swapoff: /dev/dm-1: swapoff failed: Cannot allocate memory",
    }
    ret = state.swap_off("swap")
    assert ret["result"] is False
    assert "Cannot allocate memory" in ret["comment"] and "/dev/dm-1" in ret["comment"]


def test_without_procfs_files_the_tools_answer(env):
    state, _, proc, _ = env
    (proc / "swaps").unlink()
    (proc / "modules").unlink()
    swap = {"on": True}

    def run_all(cmd, python_shell=True, **kwargs):
        assert python_shell is False
        if cmd == ["swapon", "-s"]:
            out = SWAPS_ON if swap["on"] else ""
            return {"retcode": 0, "stdout": out.rstrip("\n"), "stderr": ""}
        assert cmd == ["swapoff", "-a"]
        swap["on"] = False
        return {"retcode": 0, "stdout": "", "stderr": ""}

    state.__salt__["cmd.run_all"] = run_all
    state.__salt__["kmod.mod_list"] = lambda: ["nouveau", "overlay"]
    ret = state.swap_off("swap")
    assert ret["result"] is True and ret["changes"] == {"swapoff": ["/dev/dm-1"]}
    assert state.swap_off("swap")["changes"] == {}
    assert state.reboot_pending_if_loaded("nouveau")["changes"]
