"""The firewall port states (_states/firewall_port.py: open, closed):
firewalld's permanent configuration or a ufw rule, the same commands the host layer's cmd.run with
onlyif/unless ran, each check once per job, test=True predicting. Salt's
dunders through salt-factories' loader mock (``configure_loader_modules``)."""

import pytest

from tests.conftest import load_source, loader_globals

state = load_source("_states/firewall_port.py")


class Tools:
    """firewall-cmd and ufw as far as the state uses them (exit codes and
    output as the real ones give them: firewall-cmd --state exits 252 when
    not running, --query-port prints yes/no and exits 0/1)."""

    def __init__(self, running=True, ports=(), rules=(), installed=("firewall-cmd", "ufw")):
        self.running, self.ports, self.rules, self.installed = running, set(ports), list(rules), set(installed)
        self.ran = []

    def which(self, name):
        return f"/usr/bin/{name}" if name in self.installed else None

    def run_all(self, argv, python_shell=True, ignore_retcode=False, **kw):
        assert python_shell is False and isinstance(argv, list)
        self.ran.append(argv)
        if argv == ["firewall-cmd", "--state"]:
            return {"retcode": 0 if self.running else 252, "stdout": "running" if self.running else "not running",
                    "stderr": ""}
        if argv[:2] == ["firewall-cmd", "--permanent"]:
            op, port = argv[2].split("=", 1)
            if op == "--query-port":
                return {"retcode": 0 if port in self.ports else 1, "stdout": "yes" if port in self.ports else "no",
                        "stderr": ""}
            if port == "70000/tcp":
                return {"retcode": 102, "stdout": "", "stderr": "Error: INVALID_PORT: 70000"}
            if op == "--remove-port":
                self.ports.discard(port)
            else:
                self.ports.add(port)
            return {"retcode": 0, "stdout": "success", "stderr": ""}
        if argv == ["ufw", "show", "added"]:
            return {"retcode": 0, "stdout": "Added user rules (see 'ufw status' for running firewall):\n"
                    + "\n".join(f"ufw {r}" for r in self.rules), "stderr": ""}
        if argv[0] == "ufw" and argv[1] == "allow":
            self.rules.append(" ".join(argv[1:]))
            return {"retcode": 0, "stdout": "Rules updated\nRules updated (v6)", "stderr": ""}
        if argv[:2] == ["ufw", "delete"]:
            self.rules.remove(" ".join(argv[2:]))
            return {"retcode": 0, "stdout": "Rule deleted\nRule deleted (v6)", "stderr": ""}
        raise AssertionError(f"unexpected command {argv}")


@pytest.fixture
def tools(monkeypatch):
    t = Tools()
    monkeypatch.setattr(state.salt.utils.path, "which", t.which)
    return t


@pytest.fixture
def configure_loader_modules(tools):
    return {state: loader_globals(__salt__={"cmd.run_all": tools.run_all}, __opts__={"test": False})}


def test_firewalld_opens_a_closed_port_once_and_checks_its_state_once_per_job(tools):
    ret = state.open("6443/tcp", "firewalld")
    assert ret["result"] is True and ret["changes"] == {"opened": "6443/tcp", "backend": "firewalld"}
    assert ["firewall-cmd", "--permanent", "--add-port=6443/tcp"] in tools.ran
    again = state.open("6443/tcp", "firewalld")
    assert again["result"] is True and again["changes"] == {} and "is open" in again["comment"]
    state.open("10250/tcp", "firewalld")
    assert tools.ran.count(["firewall-cmd", "--state"]) == 1


def test_firewalld_not_running_or_absent_leaves_the_port_alone(tools):
    tools.running = False
    ret = state.open("6443/tcp", "firewalld")
    assert ret["result"] is True and ret["changes"] == {} and "not running" in ret["comment"]
    assert tools.ran == [["firewall-cmd", "--state"]]
    state.__context__.clear()
    tools.installed, tools.ran = set(), []
    assert state.open("6443/tcp", "firewalld")["changes"] == {} and tools.ran == []


def test_test_mode_predicts_and_changes_nothing(tools):
    state.__opts__["test"] = True
    ret = state.open("30000-32767/tcp", "ufw")
    assert ret["result"] is None and ret["changes"] == {"opened": "30000-32767/tcp", "backend": "ufw"}
    assert "ufw allow 30000:32767/tcp would run" in ret["comment"]
    ret = state.open("6443/tcp", "firewalld")
    assert ret["result"] is None and "firewall-cmd --permanent --add-port=6443/tcp would run" in ret["comment"]
    assert not tools.rules and not tools.ports
    assert not [a for a in tools.ran if "allow" in a or any(x.startswith("--add-port") for x in a)]


def test_ufw_writes_a_range_with_a_colon_and_knows_its_own_rules(tools):
    tools.rules = ["allow 10250/tcp"]
    assert state.open("10250/tcp", "ufw")["changes"] == {}
    ret = state.open("30000-32767/tcp", "ufw")
    assert ret["result"] is True and tools.rules[-1] == "allow 30000:32767/tcp"
    assert state.open("30000-32767/tcp", "ufw")["changes"] == {}
    assert tools.ran.count(["ufw", "show", "added"]) == 1


def test_no_ufw_is_left_alone(tools):
    tools.installed = {"firewall-cmd"}
    ret = state.open("6443/tcp", "ufw")
    assert ret["result"] is True and ret["changes"] == {} and "ufw is not installed" in ret["comment"]
    assert tools.ran == []


def test_a_refused_port_fails_with_the_tools_message_and_a_bad_backend_before_anything_runs(tools):
    ret = state.open("70000/tcp", "firewalld")
    assert ret["result"] is False and ret["changes"] == {}
    assert "exit 102" in ret["comment"] and "INVALID_PORT: 70000" in ret["comment"]
    tools.ran = []
    ret = state.open("6443/tcp", "iptables")
    assert ret["result"] is False and "'iptables' is not one of firewalld, ufw" in ret["comment"]
    assert tools.ran == []


def test_closed_takes_out_what_open_put_in_on_both_backends(tools):
    state.open("6443/tcp", "firewalld")
    state.open("30000-32767/tcp", "ufw")
    state.__opts__["test"] = True
    ret = state.closed("6443/tcp", "firewalld")
    assert ret["result"] is None and ret["changes"] == {"closed": "6443/tcp", "backend": "firewalld"}
    assert "6443/tcp" in tools.ports
    state.__opts__["test"] = False
    ret = state.closed("6443/tcp", "firewalld")
    assert ret["result"] is True and ["firewall-cmd", "--permanent", "--remove-port=6443/tcp"] in tools.ran
    assert "6443/tcp" not in tools.ports and state.closed("6443/tcp", "firewalld")["changes"] == {}
    ret = state.closed("30000-32767/tcp", "ufw")
    assert ret["result"] is True and ["ufw", "delete", "allow", "30000:32767/tcp"] in tools.ran
    assert tools.rules == [] and state.closed("30000-32767/tcp", "ufw")["changes"] == {}
    assert state.closed("10250/tcp", "ufw")["comment"] == "ufw does not have the rule 'allow 10250/tcp'"
