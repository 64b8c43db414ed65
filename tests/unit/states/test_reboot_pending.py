"""The reboot-pending states (_states/reboot_pending.py) with the
reboot_pending execution module on a scratch /run and a scratch procfs.
Salt's dunders through salt-factories' loader mock
(``configure_loader_modules``)."""

import pytest

from tests.conftest import load_source, loader_globals

state = load_source("_states/reboot_pending.py")
module = load_source("_modules/reboot_pending.py")

PROC_MODULES = (
    "nouveau 1949696 1 - Live 0x0000000000000000\n"
    "br_netfilter 22256 0 - Live 0x0000000000000000\n"
    "overlay 91659 0 - Live 0x0000000000000000\n"
)

REASON = "a new kernel is the boot default"


def _no_command(cmd, **kwargs):
    raise AssertionError(f"unexpected command {cmd}")


@pytest.fixture
def proc(tmp_path):
    path = tmp_path / "proc"
    path.mkdir()
    (path / "modules").write_text(PROC_MODULES)
    return path


@pytest.fixture
def configure_loader_modules(proc, tmp_path, monkeypatch):
    monkeypatch.setattr(module, "REBOOT_DIR", str(tmp_path / "run"))
    salt = {"reboot_pending.reasons": module.reasons, "reboot_pending.mark": module.mark,
            "cmd.run_all": _no_command, "kmod.mod_list": lambda: _no_command("lsmod")}
    return {state: loader_globals(__salt__=salt, __opts__={"test": False, "k8snvidia.procfs_root": str(proc)})}


def test_marked_predicts_marks_and_marks_once():
    state.__opts__["test"] = True
    ret = state.marked(REASON)
    assert ret["result"] is None and ret["changes"] == {"reboot_pending": REASON}
    assert module.reasons() == []
    state.__opts__["test"] = False
    ret = state.marked("kernel", reason=REASON)
    assert ret["result"] is True and ret["changes"] == {"reboot_pending": REASON}
    assert module.reasons() == [REASON]
    again = state.marked(REASON)
    assert again["result"] is True and again["changes"] == {}
    state.__opts__["test"] = True
    assert state.marked(REASON)["changes"] == {}


def test_mod_watch_marks_for_marked_only():
    ret = state.mod_watch("driver installed", sfun="marked")
    assert ret["changes"] == {"reboot_pending": "driver installed"}
    refused = state.mod_watch("x", sfun="if_module_loaded")
    assert refused["result"] is False and "reboot_pending.if_module_loaded" in refused["comment"]


def test_if_module_loaded_reads_proc_modules_only(proc):
    ret = state.if_module_loaded("nvidia")
    assert ret["result"] is True and ret["changes"] == {} and "not loaded" in ret["comment"]
    state.__opts__["test"] = True
    ret = state.if_module_loaded("nouveau")
    assert ret["result"] is None and "nouveau" in ret["changes"]["reboot_pending"]
    assert module.reasons() == []
    state.__opts__["test"] = False
    ret = state.if_module_loaded("nouveau")
    assert ret["result"] is True and ret["changes"]
    # still loaded (no reboot yet): nothing new
    assert state.if_module_loaded("nouveau")["changes"] == {}
    (proc / "modules").write_text("nvidia 100 0 - Live 0x0\n")
    assert state.if_module_loaded("nouveau")["changes"] == {}


def test_without_a_readable_procfs_lsmod_answers(proc):
    (proc / "modules").unlink()
    state.__salt__["kmod.mod_list"] = lambda: ["nouveau", "overlay"]
    ret = state.if_module_loaded("nouveau")
    assert ret["result"] is True and "nouveau" in ret["changes"]["reboot_pending"]


def test_a_kernel_without_module_support_has_nothing_loaded(proc):
    (proc / "modules").unlink()
    (proc / "self").mkdir()  # procfs is there: CONFIG_MODULES=n
    ret = state.if_module_loaded("nouveau")
    assert ret["result"] is True and ret["changes"] == {}
