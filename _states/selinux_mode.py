"""
SELinux's running mode (``selinux_mode.current``), for the host layer
(salt/host/selinux.sls; the mode at boot is /etc/selinux/config's, a
``file.replace`` there).

.. code-block:: yaml

    k8snvidia-host-selinux-mode-now:
      selinux_mode.current:
        - name: permissive        # or enforcing

``getenforce`` tells the mode; ``setenforce 0`` (permissive) or
``setenforce 1`` (enforcing) changes it when it is the other one. SELinux
disabled (``Disabled``) or not installed (no ``getenforce``) is left so:
setenforce cannot change it without a reboot. The same commands ``cmd.run``
with ``onlyif`` would run, without the cost of Salt's ``mod_run_check``
lookup (see _states/firewall_port.py).
"""

import salt.utils.path

__virtualname__ = "selinux_mode"

MODES = {"permissive": ("Permissive", "0"), "enforcing": ("Enforcing", "1")}


def __virtual__():
    return __virtualname__


def current(name):
    """
    SELinux runs in mode ``name`` (``permissive`` or ``enforcing``) now.
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    if name not in MODES:
        ret["result"] = False
        ret["comment"] = f"name: {name!r} is not one of {', '.join(MODES)}"
        return ret
    want, flag = MODES[name]
    if not salt.utils.path.which("getenforce"):
        ret["comment"] = "getenforce is not installed: SELinux is not managed here"
        return ret
    res = __salt__["cmd.run_all"](["getenforce"], python_shell=False, ignore_retcode=True)
    now = (res.get("stdout") or "").strip()
    if res["retcode"] != 0 or now not in ("Enforcing", "Permissive", "Disabled"):
        ret["result"] = False
        ret["comment"] = f"getenforce failed (exit {res['retcode']}): {(res.get('stderr') or now).strip()}"
        return ret
    if now == want:
        ret["comment"] = f"SELinux is {now}"
        return ret
    if now == "Disabled":
        ret["comment"] = "SELinux is Disabled: left so (setenforce cannot change it)"
        return ret
    ret["changes"] = {"old": now, "new": want}
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = f"setenforce {flag} would run (SELinux is {now})"
        return ret
    res = __salt__["cmd.run_all"](["setenforce", flag], python_shell=False, ignore_retcode=True)
    if res["retcode"] != 0:
        ret["changes"] = {}
        ret["result"] = False
        ret["comment"] = f"setenforce {flag} failed (exit {res['retcode']}): {(res.get('stderr') or '').strip()}"
        return ret
    ret["comment"] = f"SELinux is {want} now (was {now})"
    return ret
