"""SELinux's running mode (_states/selinux_mode.py): getenforce tells it,
setenforce changes it when it is the other mode; Disabled or no SELinux is
left so; test=True predicts. Salt's dunders through salt-factories' loader
mock (``configure_loader_modules``)."""

import pytest

from tests.conftest import load_source, loader_globals

state = load_source("_states/selinux_mode.py")


class SELinux:
    def __init__(self, mode="Enforcing", installed=True, setenforce_rc=0):
        self.mode, self.installed, self.setenforce_rc = mode, installed, setenforce_rc
        self.ran = []

    def which(self, name):
        return f"/usr/sbin/{name}" if self.installed else None

    def run_all(self, argv, python_shell=True, ignore_retcode=False, **kw):
        assert python_shell is False
        self.ran.append(argv)
        if argv == ["getenforce"]:
            return {"retcode": 0, "stdout": self.mode, "stderr": ""}
        if argv[0] == "setenforce":
            if self.setenforce_rc:
                return {"retcode": self.setenforce_rc, "stdout": "", "stderr": "setenforce: SELinux is disabled"}
            self.mode = {"0": "Permissive", "1": "Enforcing"}[argv[1]]
            return {"retcode": 0, "stdout": "", "stderr": ""}
        raise AssertionError(f"unexpected command {argv}")


@pytest.fixture
def selinux(monkeypatch):
    s = SELinux()
    monkeypatch.setattr(state.salt.utils.path, "which", s.which)
    return s


@pytest.fixture
def configure_loader_modules(selinux):
    return {state: loader_globals(__salt__={"cmd.run_all": selinux.run_all}, __opts__={"test": False})}


def test_test_then_real_then_nothing(selinux):
    state.__opts__["test"] = True
    ret = state.current("permissive")
    assert ret["result"] is None and ret["changes"] == {"old": "Enforcing", "new": "Permissive"}
    assert selinux.mode == "Enforcing" and "setenforce 0 would run" in ret["comment"]
    state.__opts__["test"] = False
    ret = state.current("permissive")
    assert ret["result"] is True and ret["changes"] == {"old": "Enforcing", "new": "Permissive"}
    assert selinux.ran[-1] == ["setenforce", "0"]
    again = state.current("permissive")
    assert again["changes"] == {} and again["comment"] == "SELinux is Permissive"
    assert state.current("enforcing")["changes"] == {"old": "Permissive", "new": "Enforcing"}


@pytest.mark.parametrize("mode", ["permissive", "enforcing"])
def test_disabled_or_absent_selinux_is_left_so(selinux, mode):
    selinux.mode = "Disabled"
    ret = state.current(mode)
    assert ret["result"] is True and ret["changes"] == {} and "Disabled" in ret["comment"]
    selinux.installed, selinux.ran = False, []
    ret = state.current(mode)
    assert ret["result"] is True and ret["changes"] == {} and selinux.ran == []


def test_failures_name_the_command_and_a_bad_mode_runs_nothing(selinux):
    selinux.setenforce_rc = 1
    ret = state.current("permissive")
    assert ret["result"] is False and ret["changes"] == {}
    assert "setenforce 0 failed (exit 1): setenforce: SELinux is disabled" in ret["comment"]
    selinux.ran = []
    ret = state.current("disabled")
    assert ret["result"] is False and "'disabled' is not one of permissive, enforcing" in ret["comment"]
    assert selinux.ran == []
