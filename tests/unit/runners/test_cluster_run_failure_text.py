"""What the orchestration says about a failed node (_runners/cluster_run.py):
the state that failed by itself, not its dependents; Salt's traceback cut
to what was raised; a command's stderr; a full filesystem named with what
to look at (the twin's disk_full fault, tests/twin/test_disk_full.py)."""

from tests.conftest import load_source
from tests.fakes.salt_client import default_answers
from tests.unit.runners.test_cluster_run import (  # noqa: F401  (fixtures: the runner and its loader mock)
    _run_all,
    configure_loader_modules,
    runner,
)

MOD = load_source("_runners/cluster_run.py", "cluster_run_failure_text")

SALT_ENOSPC = ("Unable to manage file: [Errno 28] No space left on device: '/tmp/__salt.tmp.0brtchwk' -> "
               "'/etc/sysctl.d/k8s.confe_szqusv'")
TRACEBACK = """An exception occurred in this state: Traceback (most recent call last):
  File "/salt/modules/file.py", line 2964, in replace
    shutil.move(temp_file, backup_name)
OSError: [Errno 28] No space left on device: '/tmp/__salt.tmp.n307bo1j' -> '/etc/fstab.bak'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/salt/state.py", line 2485, in call
salt.exceptions.CommandExecutionError: Unable to move the temp file '/etc/fstab'. Exception: [Errno 28] No space \
left on device: '/tmp/__salt.tmp.n307bo1j' -> '/etc/fstab.bak'"""


def test_the_state_that_failed_by_itself_comes_first_in_run_order():
    ret = {
        "file_|-b_|-/etc/b_|-managed": {"result": False, "comment": "One or more requisite failed: a", "changes": {},
                                         "__run_num__": 1},
        "file_|-a_|-/etc/a_|-managed": {"result": False, "comment": "boom", "changes": {}, "__run_num__": 2},
        "file_|-z_|-/etc/z_|-managed": {"result": False, "comment": "first", "changes": {}, "__run_num__": 0},
        "pkg_|-p_|-p_|-installed": {"result": True, "comment": "", "changes": {"p": {}}, "__run_num__": 3},
    }
    bad, changes = MOD._failed_states(ret)
    assert bad == ["z: first", "a: boom", "b: One or more requisite failed: a"] and changes == 1


def test_a_traceback_is_cut_to_what_was_raised_and_a_command_gets_its_stderr():
    ret = {"file_|-swap_|-/etc/fstab_|-replace": {"result": False, "comment": TRACEBACK, "changes": {}},
           "cmd_|-dracut_|-dracut -f_|-run": {"result": False, "comment": 'Command "dracut -f" run',
                                              "changes": {"retcode": 1, "stderr": "x\ndracut: /boot/i.img: "
                                                                                  "No space left on device\n"}}}
    bad, _ = MOD._failed_states(ret)
    assert bad[0] == ('dracut: Command "dracut -f" run: dracut: /boot/i.img: No space left on device')
    assert bad[1].startswith("swap: An exception occurred in this state: CommandExecutionError: Unable to move")
    assert "Traceback" not in bad[1] and bad[1].endswith("-> '/etc/fstab.bak'")
    assert MOD._failed_states(["Rendering SLS 'base:host' failed: x"])[0] == ["Rendering SLS 'base:host' failed: x"]


def test_a_full_filesystem_is_named_with_what_to_look_at():
    why = MOD._explain(f"k8s-sysctl: {SALT_ENOSPC}")
    assert why.startswith(f"k8s-sysctl: {SALT_ENOSPC} -- the filesystem holding /etc/sysctl.d is full")
    assert "`df -h /etc/sysctl.d`" in why
    go = MOD._explain("kubeadm init failed: open /etc/kubernetes/admin.conf: no space left on device")
    assert "the filesystem holding /etc/kubernetes is full" in go
    assert "`df -h`" in MOD._explain("Error occurred installing package(s): No space left on device")
    assert MOD._explain("kubeadm join failed: boom") == "kubeadm join failed: boom"


def test_enospc_in_a_step_and_a_silent_minion_at_the_start(runner):  # noqa: F811
    def answers(nid, fun, arg):
        if nid == "node-105" and fun == "test.ping":
            return None  # a minion whose /var is full cannot start a job
        if nid == "node-110" and fun == "state.apply" and arg == ["host"]:
            return {"file_|-k8s-sysctl_|-/etc/sysctl.d/k8s.conf_|-managed": {
                "result": False, "changes": {}, "comment": SALT_ENOSPC, "__run_num__": 4}}
        return default_answers(nid, fun, arg)

    mod = runner(answers)
    summary, fin, rc = _run_all(mod)
    assert rc == 1
    assert summary["node-110"]["failed"].startswith(f"prepare: k8s-sysctl: {SALT_ENOSPC} -- the filesystem holding "
                                                    "/etc/sysctl.d is full (No space left on device)")
    assert summary["node-105"]["failed"].startswith("begin: not reachable at the start")
    assert "`df -h /var`" in summary["node-105"]["failed"]
    assert summary["cluster-master"]["failed"] is None
