"""The swap state (_states/swap.py): swap off now, from /proc/swaps (a
scratch procfs), else ``swapon -s``. Salt's dunders through salt-factories'
loader mock (``configure_loader_modules``)."""

import pytest

from tests.conftest import load_source, loader_globals

state = load_source("_states/swap.py")

SWAPS_HEADER = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
SWAPS_ON = SWAPS_HEADER + "/dev/dm-1                               partition\t8388604\t\t0\t\t-2\n"


def _no_command(cmd, **kwargs):
    raise AssertionError(f"unexpected command {cmd}")


@pytest.fixture
def proc(tmp_path):
    path = tmp_path / "proc"
    path.mkdir()
    (path / "swaps").write_text(SWAPS_HEADER)
    return path


@pytest.fixture
def configure_loader_modules(proc):
    return {state: loader_globals(__salt__={"cmd.run_all": _no_command},
                                  __opts__={"test": False, "k8snvidia.procfs_root": str(proc)})}


def test_nothing_active_starts_nothing():
    ret = state.off("swap")
    assert ret["result"] is True and ret["changes"] == {} and ret["comment"] == "No swap is active"


def test_test_then_real(proc):
    (proc / "swaps").write_text(SWAPS_ON)
    state.__opts__["test"] = True
    ret = state.off("swap")
    assert ret["result"] is None and ret["changes"] == {"swapoff": ["/dev/dm-1"]}
    ran = []

    def swapoff(cmd, python_shell=True, **kwargs):
        assert python_shell is False
        ran.append(cmd)
        (proc / "swaps").write_text(SWAPS_HEADER)
        return {"retcode": 0, "stdout": "", "stderr": ""}

    state.__salt__["cmd.run_all"] = swapoff
    state.__opts__["test"] = False
    ret = state.off("swap")
    assert ret["result"] is True and ret["changes"] == {"swapoff": ["/dev/dm-1"]}
    assert ran == [["swapoff", "-a"]]
    assert state.off("swap")["changes"] == {}


def test_failure_names_the_device_and_the_error(proc):
    (proc / "swaps").write_text(SWAPS_ON)
    state.__salt__["cmd.run_all"] = lambda cmd, **kw: {
        "retcode": 255,
        "stdout": "",
        "stderr": "swapoff: /dev/dm-1: swapoff failed: Cannot allocate memory",
    }
    ret = state.off("swap")
    assert ret["result"] is False
    assert "Cannot allocate memory" in ret["comment"] and "/dev/dm-1" in ret["comment"]


def test_without_proc_swaps_swapon_answers(proc):
    (proc / "swaps").unlink()
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
    ret = state.off("swap")
    assert ret["result"] is True and ret["changes"] == {"swapoff": ["/dev/dm-1"]}
    assert state.off("swap")["changes"] == {}
