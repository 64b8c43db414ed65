"""
One stage of ``salt-run state.orchestrate cluster``: a runner function,
run the way ``salt.runner`` runs it, through one runner client for the
whole orchestration.

``salt.runner`` builds a new ``RunnerClient`` for every state (Salt's
``saltutil.runner``): a new ``MasterMinion`` and a runner loader that
imports every runner module again, about a third of a CPU-second each
time, and the orchestration has some twenty stages. This state keeps the
client in ``__context__``, which lives for one orchestration, so the
runners are loaded once per run. The return, ``test=True`` and the events
are ``salt.runner``'s.

.. code-block:: yaml

    k8snvidia-orchestrate-prepare:
      cluster_stage.run:
        - name: cluster_run.step
        - step_name: prepare

Only for the orchestration on the master; on a minion it does not load.
"""

import salt.runner
import salt.utils.args
import salt.utils.event

_CLIENT = "cluster_stage.client"


def __virtual__():
    if __opts__.get("__role") == "master":
        return True
    return (False, "cluster_stage runs in the orchestration on the master only")


def _client():
    client = __context__.get(_CLIENT)
    if client is None:
        client = __context__[_CLIENT] = salt.runner.RunnerClient(__opts__)
    return client


def run(name, **kwargs):
    """
    Run the runner function ``name`` with ``kwargs`` (what ``salt.runner``
    would pass it); the result is the function's ``success``, its return is
    in ``changes['return']``.
    """
    if __opts__.get("test", False):
        return {"name": name, "result": None, "changes": {},
                "comment": f"Runner function '{name}' would be executed."}
    if "master_job_cache" not in __opts__:  # not the master's own options: do what salt.runner does
        return __states__["salt.runner"](name, **kwargs)
    jid = globals().get("__orchestration_jid__")
    user = globals().get("__user__", "UNKNOWN")
    kwarg = salt.utils.args.clean_kwargs(**kwargs)
    client = _client()
    # a runner sets __context__["retcode"] to fail its call; the context is
    # the client's, shared by the stages, so each call starts without one
    client.context.pop("retcode", None)
    if jid:
        salt.utils.event.fire_args(__opts__, jid, {"type": "runner", "name": name, "args": [], "kwargs": kwarg},
                                   prefix="run")
    out = client.cmd(name, arg=[], kwarg=kwarg, pub_data={"user": user}, print_event=False, full_return=True)
    runner_return = out.get("return")
    success = out.get("success", True)
    if isinstance(runner_return, dict) and "Error" in runner_return:
        success = False
    ret = {"name": name, "changes": {"return": runner_return}, "result": success,
           "comment": "Runner function '{}' {}.".format(name, "executed" if success else "failed")}
    if "jid" in out:
        ret["__jid__"] = out["jid"]
    return ret
