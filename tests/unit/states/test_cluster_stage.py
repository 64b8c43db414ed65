"""The orchestration's stage state (_states/cluster_stage.py): a runner
function run as ``salt.runner`` runs it, through one RunnerClient kept in
``__context__`` for the whole orchestration. Salt's dunders through
salt-factories' loader mock; the RunnerClient is a fake that records its
calls."""

import pytest

from tests.conftest import load_source, loader_globals

state = load_source("_states/cluster_stage.py")


class FakeRunnerClient:
    made = []

    def __init__(self, opts):
        self.opts = opts
        self.context = {}
        self.calls = []
        FakeRunnerClient.made.append(self)

    def cmd(self, fun, arg=None, kwarg=None, pub_data=None, print_event=True, full_return=False):
        if fun == "cluster_run.step" and kwarg.get("step_name") == "join":
            self.context["retcode"] = 1  # a runner failing its call (a worker failed)
            return {"return": {"stage": "join"}, "success": self.context.get("retcode", 0) == 0}
        self.calls.append({"fun": fun, "arg": arg, "kwarg": kwarg, "pub_data": pub_data,
                           "print_event": print_event, "full_return": full_return})
        answer = {"cluster_run.step": {"return": {"stage": "prepare", "ok": ["n1"]},
                                       "success": self.context.get("retcode", 0) == 0, "jid": "1"},
                  "cluster_run.begin": {"return": {"Error": "another orchestration is running"}, "success": True},
                  "cluster_run.finish": {"return": "1 node failed", "success": False}}
        return answer[fun]


@pytest.fixture
def configure_loader_modules(monkeypatch):
    FakeRunnerClient.made = []
    monkeypatch.setattr(state.salt.runner, "RunnerClient", FakeRunnerClient)
    monkeypatch.setattr(state.salt.utils.event, "fire_args", lambda *a, **k: None)
    fallback = []

    def salt_runner(name, **kwargs):
        fallback.append((name, kwargs))
        return {"name": name, "result": True, "changes": {}, "comment": "salt.runner"}

    return {state: loader_globals(__opts__={"__role": "master", "master_job_cache": "local_cache", "test": False},
                                  __states__={"salt.runner": salt_runner, "fallback": fallback})}


def test_loads_only_on_the_master():
    assert state.__virtual__() is True
    state.__opts__["__role"] = "minion"
    assert state.__virtual__()[0] is False


def test_one_client_for_every_stage_and_the_return_as_salt_runner_gives_it():
    ret = state.run("cluster_run.step", step_name="prepare", sls=["host"], node_timeout=30)
    assert ret == {"name": "cluster_run.step", "result": True, "changes": {"return": {"stage": "prepare", "ok": ["n1"]}},
                   "comment": "Runner function 'cluster_run.step' executed.", "__jid__": "1"}
    assert state.run("cluster_run.step", step_name="join", sls=["kubernetes.node"])["result"] is False
    # the failed call's retcode does not fail the next stage
    assert state.run("cluster_run.step", step_name="labels", sls=["kubernetes.master"])["result"] is True
    assert len(FakeRunnerClient.made) == 1
    calls = FakeRunnerClient.made[0].calls
    assert calls[0]["kwarg"] == {"step_name": "prepare", "sls": ["host"], "node_timeout": 30}
    assert calls[1]["kwarg"]["step_name"] == "labels"
    assert all(c["full_return"] and not c["print_event"] and c["arg"] == [] for c in calls)


def test_an_error_return_or_no_success_fails_the_stage():
    ret = state.run("cluster_run.begin", plan=["prepare"])
    assert ret["result"] is False and ret["comment"] == "Runner function 'cluster_run.begin' failed."
    assert ret["changes"]["return"] == {"Error": "another orchestration is running"}
    ret = state.run("cluster_run.finish")
    assert ret["result"] is False and ret["changes"]["return"] == "1 node failed"


def test_test_mode_runs_nothing():
    state.__opts__["test"] = True
    ret = state.run("cluster_run.step", step_name="prepare")
    assert ret == {"name": "cluster_run.step", "result": None, "changes": {},
                   "comment": "Runner function 'cluster_run.step' would be executed."}
    assert FakeRunnerClient.made == []


def test_without_the_master_options_it_is_salt_runner():
    del state.__opts__["master_job_cache"]
    ret = state.run("cluster_run.summary")
    assert ret["comment"] == "salt.runner" and state.__states__["fallback"] == [("cluster_run.summary", {})]
    assert FakeRunnerClient.made == []
