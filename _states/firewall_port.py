"""
A port open in the node's firewall (``firewall_port.open``), for the host
layer (salt/host/firewall.sls): in firewalld's permanent configuration, or
as a ufw rule; ``firewall_port.closed`` takes it out again (host.clean).

.. code-block:: yaml

    k8snvidia-host-firewall-port-6443-tcp:
      firewall_port.open:
        - name: 6443/tcp
        - backend: firewalld      # or ufw

* firewalld: nothing to do while firewalld is not running (``firewall-cmd
  --state`` fails); else ``firewall-cmd --permanent --add-port=PORT`` unless
  ``--query-port`` finds it. The running firewall takes the permanent
  configuration when salt/host/firewall.sls reloads it (onchanges).
* ufw: nothing to do on a node without ufw (Debian 12 has none by default);
  else ``ufw allow PORT`` unless ``ufw show added`` lists the rule (ufw
  writes a range with a colon: ``30000:32767/tcp``). A ufw that is not
  enabled keeps the rule for when it is.

The same commands ``cmd.run`` with ``onlyif``/``unless`` would run. This
state runs them itself because a state with ``onlyif``/``unless`` makes
Salt look up ``<state>.mod_run_check``; ``cmd`` has none, and that miss
loads every state, execution and utils module Salt has (about 1.4 s of CPU
in each job that applies the host layer; saltstack/salt#68606). Per job,
``firewall-cmd --state`` and ``ufw show added`` run once (``__context__``).
"""

import salt.utils.path

__virtualname__ = "firewall_port"

BACKENDS = ("firewalld", "ufw")
CONTEXT = "firewall_port"


def __virtual__():
    return __virtualname__


def _run(argv):
    return __salt__["cmd.run_all"](argv, python_shell=False, ignore_retcode=True)


def _cache():
    return __context__.setdefault(CONTEXT, {})


def _firewalld_running():
    cache = _cache()
    if "firewalld" not in cache:
        cache["firewalld"] = bool(salt.utils.path.which("firewall-cmd")) and _run(["firewall-cmd", "--state"])["retcode"] == 0
    return cache["firewalld"]


def _ufw_rules():
    """The rules ``ufw show added`` lists; None without ufw."""
    cache = _cache()
    if "ufw" not in cache:
        if not salt.utils.path.which("ufw"):
            cache["ufw"] = None
        else:
            res = _run(["ufw", "show", "added"])
            cache["ufw"] = (res.get("stdout") or "").splitlines() if res["retcode"] == 0 else res
    return cache["ufw"]


def _failed(ret, what, res):
    ret["result"] = False
    out = (res.get("stderr") or res.get("stdout") or "").strip()
    ret["comment"] = f"{what} failed (exit {res.get('retcode')}): {out}"
    return ret


def _port(name, backend, opened):
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if backend not in BACKENDS:
        ret["result"] = False
        ret["comment"] = f"backend: {backend!r} is not one of {', '.join(BACKENDS)}"
        return ret
    verb = "open" if opened else "close"
    if backend == "firewalld":
        if not _firewalld_running():
            ret["comment"] = f"firewalld is not running: nothing to {verb}"
            return ret
        present = _run(["firewall-cmd", "--permanent", f"--query-port={name}"])["retcode"] == 0
        if present == opened:
            ret["comment"] = f"Port {name} is {'open' if opened else 'not open'} in firewalld's permanent configuration"
            return ret
        argv = ["firewall-cmd", "--permanent", f"--{'add' if opened else 'remove'}-port={name}"]
    else:
        rules = _ufw_rules()
        if rules is None:
            ret["comment"] = f"ufw is not installed: nothing to {verb}"
            return ret
        if isinstance(rules, dict):
            return _failed(ret, "ufw show added", rules)
        rule = "allow " + name.replace("-", ":")
        if (f"ufw {rule}" in rules) == opened:
            ret["comment"] = f"ufw {'has' if opened else 'does not have'} the rule {rule!r}"
            return ret
        argv = ["ufw", *([] if opened else ["delete"]), *rule.split()]
    ret["changes"] = {"opened" if opened else "closed": name, "backend": backend}
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = f"{' '.join(argv)} would run"
        return ret
    res = _run(argv)
    if res["retcode"] != 0:
        ret["changes"] = {}
        return _failed(ret, " ".join(argv), res)
    if backend == "ufw":
        rules = _cache()["ufw"]
        if opened:
            rules.append(f"ufw {rule}")
        else:
            rules.remove(f"ufw {rule}")
    ret["comment"] = f"{' '.join(argv)}: {(res.get('stdout') or '').strip() or 'done'}"
    return ret


def open(name, backend):  # noqa: A001 - the state's name
    """
    Open ``name`` (``PORT/PROTO`` or ``FIRST-LAST/PROTO``) in the firewall
    ``backend`` (``firewalld`` or ``ufw``).
    """
    return _port(name, backend, True)


def closed(name, backend):
    """
    ``name`` no longer opened by the firewall ``backend``: the port taken out
    of firewalld's permanent configuration (``--remove-port``), or the ufw
    rule deleted (``ufw delete allow PORT``); the host layer's clean.
    """
    return _port(name, backend, False)
