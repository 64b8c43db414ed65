"""The three states that mark "reboot pending" (bootkernel.default,
reboot_pending.*, nvidia_driver.installed) do it through one
helper, host.mark_reboot: already pending, predicted under test, marked, and
a failure of the reboot_pending module reported (result False), never dropped.
Salt's dunders through salt-factories' loader mock (``configure_loader_modules``):
each state's ``__salt__`` has this test's reboot_pending double."""

import pytest

from tests.conftest import load_source, loader_globals
from tests.fakes.reboot_marks import Marks

OLD, NEW = "5.4.0-100-generic", "6.1.0-25-amd64"
bootkernel_state = load_source("_states/bootkernel.py", "k8snvidia_test_marks_bootkernel")
reboot_pending_state = load_source("_states/reboot_pending.py", "k8snvidia_test_marks_reboot_pending")
nvidia_driver_state = load_source("_states/nvidia_driver.py", "k8snvidia_test_marks_nvd")


@pytest.fixture
def marks():
    return Marks()


@pytest.fixture
def configure_loader_modules(marks, tmp_path):
    return {
        bootkernel_state: loader_globals(__opts__={"test": False}, __salt__=dict(marks.salt(), **{
            "bootkernel.installed": lambda package=None: [OLD, NEW],
            "bootkernel.missing_tools": lambda _tool=None: [],
            "bootkernel.default": lambda **_kw: NEW,
            "bootkernel.running": lambda: OLD,
        })),
        reboot_pending_state: loader_globals(__salt__=marks.salt(),
                                             __opts__={"test": False, "k8snvidia.procfs_root": str(tmp_path)}),
        nvidia_driver_state: loader_globals(__salt__=marks.salt()),
    }


@pytest.fixture
def bootkernel(marks):
    return bootkernel_state, marks


def test_bootkernel_default_marks_once(bootkernel):
    state, marks = bootkernel
    state.__opts__["test"] = True
    ret = state.default(NEW)
    assert ret["result"] is None and ret["changes"] == {"reboot_pending": state._reboot_reason(NEW, OLD)}
    assert marks.reasons == []
    state.__opts__["test"] = False
    ret = state.default(NEW)
    assert ret["result"] is True and ret["changes"] == {"reboot_pending": state._reboot_reason(NEW, OLD)}
    assert "Reboot marked pending" in ret["comment"] and marks.reasons == [state._reboot_reason(NEW, OLD)]
    for test in (True, False):
        state.__opts__["test"] = test
        ret = state.default(NEW)
        assert ret["result"] is True and ret["changes"] == {} and "Reboot already pending" in ret["comment"]


def test_bootkernel_default_reports_a_failed_mark(bootkernel):
    state, marks = bootkernel
    marks.fail = "read-only file system"
    ret = state.default(NEW)
    assert ret["result"] is False and ret["changes"] == {}
    assert "could not mark the reboot pending" in ret["comment"] and "read-only file system" in ret["comment"]


@pytest.fixture
def reboot_pending(marks, tmp_path):
    (tmp_path / "modules").write_text("nouveau 1949696 1 - Live 0x0\n")
    return reboot_pending_state, marks


def test_reboot_pending_marks_and_reports_a_failed_mark(reboot_pending):
    state, marks = reboot_pending
    ret = state.if_module_loaded("nouveau")
    assert ret["result"] is True and ret["changes"] and len(marks.reasons) == 1
    marks.fail = "no space left on device"
    ret = state.marked("another reason")
    assert ret["result"] is False and ret["changes"] == {} and "no space left on device" in ret["comment"]


def test_reboot_pending_reads_the_deprecated_procfs_option(reboot_pending, tmp_path):
    state, marks = reboot_pending
    state.__opts__.clear()  # only the deprecated name
    state.__opts__.update({"test": True, "nvidia.procfs_root": str(tmp_path)})
    assert state.if_module_loaded("nouveau")["result"] is None


def test_nvidia_driver_in_place_marks_through_the_helper(marks):
    """A driver in place whose old module is still loaded: the reboot is
    predicted, marked, then already pending; a failure is the state's."""
    state = nvidia_driver_state
    reason = "NVIDIA driver 580.95.05 is installed but module 570.195.03 is still loaded"
    seen = []
    for test in (True, False, False):
        got = state._mark_reboot(reason, test)
        seen.append((got["status"], got["result"]))
    assert seen == [("predicted", None), ("marked", True), ("pending", True)]
    marks.fail = "read-only file system"
    got = state._mark_reboot("another", False)
    assert got["result"] is False and "read-only file system" in got["comment"]
