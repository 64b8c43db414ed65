"""Emulated systemctl: status/is-active/is-enabled/start/stop/restart/reload/
enable/disable/mask/unmask/daemon-reload/list-unit-files/list-units/show/--version,
reboot/poweroff (delegated to the twin's reboot tool).

Unit state lives in state.json ``services``: ``{unit: {"enabled", "active", "masked"?, "static"?}}``.
Starting/stopping a unit calls ``k8stwin.daemons.on_service(unit, active)`` when
that module exists; it may return False or an error string to fail the start.
el7 runs systemd 219, whose ``status`` of an unknown unit prints ``Loaded: not-found``
on stdout (rc 3) instead of ``Unit X could not be found.`` (rc 4, systemd >= 231).
"""

import os
import time

from .. import fs, state

VERSIONS = {"centos7": 219, "rocky8": 239, "alma8": 239, "rocky9": 252, "alma9": 252, "ubuntu1804": 237, "ubuntu2004": 245, "ubuntu2204": 249, "ubuntu2404": 255, "debian12": 252}
FEATURES = "+PAM +AUDIT +SELINUX +IMA -APPARMOR +SMACK +SYSVINIT +UTMP +LIBCRYPTSETUP +GCRYPT +GNUTLS +ACL +XZ +LZ4 -SECCOMP +BLKID +ELFUTILS +KMOD +IDN"
UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
NOARG = {"--no-pager", "--full", "-l", "--no-legend", "--system", "-q", "--quiet", "--now", "--all", "-a", "--no-block", "--no-ask-password", "--plain", "--value", "--no-reload", "--force", "-f", "--failed", "--user", "--global", "--runtime"}
ARG = {"-n", "--lines", "-p", "--property", "-P", "-t", "--type", "--state", "-o", "--output", "-H", "--host", "-M", "--machine", "--root", "--job-mode", "--signal", "-s", "--kill-who"}


def version():
    _fam, _major, key = fs.node_os()
    return VERSIONS.get(key, 252)


def norm(unit):
    if "." not in unit.rsplit("/", 1)[-1]:
        return unit + ".service"
    return unit


def unit_file(unit):
    for d in UNIT_DIRS:
        if fs.isfile(f"{d}/{unit}") or fs.exists(f"{d}/{unit}"):
            return f"{d}/{unit}"
    return None


def known(unit, svcs):
    return unit in svcs or unit_file(unit) is not None


def _install_section(unit):
    """The [Install] keys of the unit file (WantedBy=, RequiredBy=, Alias=, Also=)."""
    keys = {}
    section = None
    for line in (fs.read(unit_file(unit) or "") or "").splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Install]" and "=" in line:
            k, v = line.split("=", 1)
            keys[k.strip()] = v.strip()
    return keys


def is_static(unit, s=None):
    """A unit whose file has no installation config is 'static' (systemctl
    is-enabled says so, enable refuses), whatever state.json says."""
    if (s or {}).get("static"):
        return True
    return unit_file(unit) is not None and not (set(_install_section(unit)) & {"WantedBy", "RequiredBy", "Alias", "Also", "DefaultInstance"})


def _description(unit):
    for line in (fs.read(unit_file(unit) or "") or "").splitlines():
        if line.strip().startswith("Description="):
            return line.split("=", 1)[1].strip()
    return None


def _file_state(unit, s):
    return "masked" if s.get("masked") else ("static" if is_static(unit, s) else ("enabled" if s.get("enabled") else "disabled"))


NO_INSTALL = (
    "The unit files have no installation config (WantedBy=, RequiredBy=, Also=,\n"
    "Alias= settings in the [Install] section, and DefaultInstance= for template\n"
    "units). This means they are not meant to be enabled using systemctl.\n"
    " \n"  # (sic: a line of one blank)
    "Possible reasons for having this kind of units are:\n"
    "\u2022 A unit may be statically enabled by being symlinked from another unit's\n"
    "  .wants/ or .requires/ directory.\n"
    "\u2022 A unit's purpose may be to act as a helper for some other unit which has\n"
    "  a requirement dependency on it.\n"
    "\u2022 A unit may be started when needed via activation (socket, path, timer,\n"
    "  D-Bus, udev, scripted systemctl call, ...).\n"
    "\u2022 In case of template units, the unit is meant to be enabled with some\n"
    "  instance name specified.")


def _wanted_by(unit):
    text = fs.read(unit_file(unit) or "") or ""
    for line in text.splitlines():
        if line.startswith("WantedBy="):
            return line.split("=", 1)[1].split()[0]
    return "multi-user.target"


def _status_252(unit, s):
    """systemd >= 252 (checked against Debian 12's 252): bullet by state,
    5-space indent, 'preset:'; a masked unit shows no description."""
    active, failed = s.get("active"), s.get("failed")
    dot = "×" if failed else ("●" if active else "○")
    since = time.strftime("%a %Y-%m-%d %H:%M:%S UTC", time.gmtime(s.get("since", time.time())))
    if s.get("masked"):
        lines = [f"{dot} {unit}", f"     Loaded: masked (Reason: Unit {unit} is masked.)"]
    else:
        desc = _description(unit)
        lines = [f"{dot} {unit}" + (f" - {desc}" if desc else ""),
                 f"     Loaded: loaded ({unit_file(unit) or '/lib/systemd/system/' + unit}; {_file_state(unit, s)}; preset: enabled)"]
    if failed:
        lines.append(f"     Active: failed (Result: exit-code) since {since}; 0s ago")
    elif active:
        lines.append(f"     Active: {'active (' + (s.get('substate') or 'running') + ')'} since {since}; 0s ago")
    else:
        lines.append("     Active: inactive (dead)")
    if s.get("changed_on_disk"):  # what Salt's _check_for_unit_changes looks for
        lines.insert(1, f"Warning: The unit file, source configuration file or drop-ins of {unit} changed on disk. "
                        "Run 'systemctl daemon-reload' to reload units.")
    return "\n".join(lines)


def _status_text(unit, s, v):
    if v >= 252:
        return _status_252(unit, s)
    uf = unit_file(unit) or f"/usr/lib/systemd/system/{unit}"
    en = "masked" if s.get("masked") else ("static" if s.get("static") else ("enabled" if s.get("enabled") else "disabled"))
    fam, _m, _k = fs.node_os()
    preset = "disabled" if fam == "RedHat" else "enabled"
    active = s.get("active")
    sub = s.get("substate") or ("running" if active else "dead")
    since = time.strftime("%a %Y-%m-%d %H:%M:%S UTC", time.gmtime(s.get("since", time.time())))
    state_word = "failed" if s.get("failed") else ("active" if active else "inactive")
    dot = "●" if v >= 219 else "*"
    lines = [f"{dot} {unit} - {unit.split('.')[0]}", f"   Loaded: loaded ({uf}; {en}; vendor preset: {preset})", f"   Active: {state_word} ({sub if not s.get('failed') else 'Result: exit-code'}){' since ' + since if active or s.get('failed') else ''}"]
    if s.get("changed_on_disk"):
        lines.insert(1, f"Warning: The unit file, source configuration file or drop-ins of {unit} changed on disk. Run 'systemctl daemon-reload' to reload units.")
    return "\n".join(lines)


def _start(unit, svcs):
    s = svcs.setdefault(unit, {"enabled": False, "active": False})
    if s.get("masked"):
        return f"Failed to start {unit}: Unit {unit} is masked.", 1
    problem = config_problem(unit)
    if problem is None:
        res = fs.hook("daemons", "on_service", unit, True)
        if res is False or isinstance(res, str):
            problem = res or "failed"
    if problem:
        s["active"] = False
        s["failed"] = True
        v = version()
        if v >= 233:
            return f'Job for {unit} failed because the control process exited with error code.\nSee "systemctl status {unit}" and "journalctl -xeu {unit}" for details.', 1
        return f'Job for {unit} failed because the control process exited with error code. See "systemctl status {unit}" and "journalctl -xe" for details.', 1
    s["active"] = True
    s.pop("failed", None)
    s["since"] = time.time()
    return "", 0


def config_problem(unit):
    """Why ``unit`` would fail to start on its own config (None: it starts)."""
    problem = None
    if unit == "docker.service":
        # Debian's real dockerd validates daemon.json (k8stwin.realbins)
        from k8stwin import realbins

        try:
            problem = realbins.docker_problem(fs.root())
        except realbins.Missing as exc:
            problem = str(exc)
    elif unit == "containerd.service":
        # Debian's real containerd of the release's line loads config.toml
        # and its imports; the service fails on what it refuses (k8stwin.realbins)
        from k8stwin import kube

        error = kube.containerd_effective(kube.here_view())[2]
        if error:
            problem = f"containerd: {error}"
    return problem


def main(argv):
    args = argv[1:]
    flags = set()
    props = []
    pos = []
    i = 0
    while i < len(args):
        a = args[i]
        key = a.split("=", 1)[0] if a.startswith("--") else a
        if a == "--version":
            fs.out(f"systemd {version()}\n{FEATURES}")
            return 0
        if key in NOARG:
            flags.add(key)
        elif key in ARG:
            if "=" not in a:
                i += 1
                val = args[i] if i < len(args) else ""
            else:
                val = a.split("=", 1)[1]
            if key in ("-p", "--property", "-P"):
                props += val.split(",")
                if key == "-P":
                    flags.add("--value")
        elif a.startswith("-n") and a[2:].isdigit():
            pass
        elif a.startswith("-"):
            fs.err(f"systemctl: unrecognized option '{a}'" if a.startswith("--") else f"systemctl: invalid option -- '{a[1:2]}'")
            return 1
        else:
            pos.append(a)
        i += 1
    if not pos:
        pos = ["list-units"]
    cmd, units = pos[0], [norm(u) for u in pos[1:]]
    v = version()
    quiet = bool(flags & {"-q", "--quiet"})
    if cmd in ("reboot", "poweroff", "halt", "kexec"):
        import importlib

        name = "reboot" if cmd in ("reboot", "kexec") else ("halt" if cmd == "halt" else "poweroff")
        try:
            mod = importlib.import_module(f"k8stwin.tools.{name}")
        except ImportError:
            fs.err("Failed to talk to init daemon.")
            return 1
        return mod.main([name])
    if cmd in ("daemon-reload", "daemon-reexec", "reset-failed"):
        with state.locked() as st:
            for s in (st.get("services") or {}).values():
                s.pop("changed_on_disk", None)
                if cmd == "reset-failed":
                    s.pop("failed", None)
        return 0
    if cmd == "list-unit-files":
        # every unit file on disk (and those state.json knows), with the
        # preset column systemd >= 245 prints; patterns filter
        import fnmatch

        svcs = state.read().get("services") or {}
        units = set(svcs)
        for d in UNIT_DIRS:
            units.update(p.rsplit("/", 1)[-1] for p in fs.glob(f"{d}/*.service") + fs.glob(f"{d}/*.socket")
                         + fs.glob(f"{d}/*.timer"))
        pats = pos[1:]
        rows = []
        for unit in sorted(units):
            if pats and not any(fnmatch.fnmatchcase(unit, norm(p)) for p in pats):
                continue
            st = _file_state(unit, svcs.get(unit) or {})
            rows.append((unit, st, "-" if st == "static" else "enabled"))
        if rows:
            w1 = max(len(r[0]) for r in rows)
            w2 = max(len(r[1]) for r in rows)
            if "--no-legend" not in flags:
                w1, w2 = max(w1, len("UNIT FILE")), max(w2, len("STATE"))
                fs.out(f"{'UNIT FILE':<{w1}} {'STATE':<{w2}} PRESET")
            for r in rows:
                fs.out(f"{r[0]:<{w1}} {r[1]:<{w2}} {r[2]}" if v >= 245 else f"{r[0]:<{w1}} {r[1]}")
            if "--no-legend" not in flags:
                fs.out(f"\n{len(rows)} unit files listed.")
        return 0
    if cmd == "list-units":
        svcs = state.read().get("services") or {}
        for unit in sorted(svcs):
            s = svcs[unit]
            fs.out(f"{unit:<40} loaded {'active' if s.get('active') else 'inactive'} {'running' if s.get('active') else 'dead'} {unit}")
        return 0
    if cmd == "is-system-running":
        fs.out("running")
        return 0
    if cmd == "status" and not units:
        import socket

        svcs = state.read().get("services") or {}
        failed = sum(1 for s in svcs.values() if s.get("failed"))
        fs.out(f"● {socket.gethostname()}\n    State: {'degraded' if failed else 'running'}\n     Jobs: 0 queued\n   Failed: {failed} units\n    Since: {time.strftime('%a %Y-%m-%d %H:%M:%S UTC', time.gmtime())}\n   CGroup: /")
        return 0
    if not units:
        fs.err("Too few arguments.")
        return 1
    rc = 0
    import copy

    svcs = copy.deepcopy(state.read().get("services") or {})
    before = copy.deepcopy(svcs)
    fw_running = None
    out = []
    for unit in units:
        s = svcs.get(unit)
        exists = known(unit, svcs)
        if cmd == "status":
            if not exists:
                if v < 231:
                    out.append(f"● {unit}\n   Loaded: not-found (Reason: No such file or directory)\n   Active: inactive (dead)")
                    rc = max(rc, 3)
                else:
                    fs.err(f"Unit {unit} could not be found.")
                    rc = max(rc, 4)
                continue
            s = s or {"enabled": False, "active": False}
            out.append(_status_text(unit, s, v))
            if not s.get("active"):
                rc = max(rc, 3)
        elif cmd == "is-active":
            word = "failed" if (s or {}).get("failed") else ("active" if (s or {}).get("active") else ("inactive" if v >= 230 or exists else "unknown"))
            if not quiet:
                out.append(word)
            if word != "active":
                rc = 3
        elif cmd == "is-failed":
            word = "failed" if (s or {}).get("failed") else ("active" if (s or {}).get("active") else "inactive")
            if not quiet:
                out.append(word)
            rc = 0 if word == "failed" else 1
        elif cmd == "is-enabled":
            if not exists:
                fs.err(f"Failed to get unit file state for {unit}: No such file or directory")
                rc = 1
                continue
            s = s or {}
            word = _file_state(unit, s)
            if not quiet:
                out.append(word)
            if word not in ("enabled", "static"):
                rc = 1
        elif cmd in ("start", "restart", "reload", "try-restart", "reload-or-restart", "condrestart"):
            if not exists:
                fs.err(f"Failed to {cmd} {unit}: Unit {'not found' if v < 231 else unit + ' not found'}.")
                rc = 5
                continue
            if cmd == "try-restart" and not (s or {}).get("active"):
                continue
            if cmd == "reload" and not (s or {}).get("active"):
                fs.err(f"Job for {unit} invalid.")
                rc = 1
                continue
            msg, r = _start(unit, svcs)
            if r:
                fs.err(msg)
                rc = r
            elif unit == "firewalld.service":
                fw_running = True
        elif cmd in ("stop", "kill"):
            if not exists:
                fs.err(f"Failed to stop {unit}: Unit {unit} not loaded.")
                rc = 5
                continue
            if s:
                s["active"] = False
                s.pop("failed", None)
            fs.hook("daemons", "on_service", unit, False)
            if unit == "firewalld.service":
                fw_running = False
        elif cmd in ("enable", "disable", "mask", "unmask"):
            if not exists and cmd != "mask":
                fs.err(f"Failed to {cmd} unit: Unit file {unit} does not exist." if v >= 231 else "Failed to execute operation: No such file or directory")
                rc = 1
                continue
            s = svcs.setdefault(unit, {"enabled": False, "active": False})
            link = f"/etc/systemd/system/{_wanted_by(unit)}.wants/{unit}"
            target = unit_file(unit) or f"/usr/lib/systemd/system/{unit}"
            local = f"/etc/systemd/system/{unit}"
            if cmd == "enable" and is_static(unit, s) and not s.get("masked"):
                if v >= 252:
                    fs.err(NO_INSTALL)
            elif cmd == "enable" and not s.get("enabled"):
                s["enabled"] = True
                fs.symlink(target, link)
                fs.err(f"Created symlink from {link} to {target}." if v < 231 else f"Created symlink {link} → {target}.")
            elif cmd == "disable" and s.get("enabled"):
                s["enabled"] = False
                fs.remove(link)
                fs.err(f"Removed symlink {link}." if v < 240 else f"Removed \"{link}\".")
            elif cmd == "mask" and not s.get("masked"):
                if fs.isfile(local) and not os.path.islink(fs.path(local)):
                    # a unit file of the admin's own in /etc cannot be masked over
                    fs.err(f"Failed to mask unit: File {local} already exists.")
                    rc = 1
                    continue
                s["masked"] = True
                fs.symlink("/dev/null", local)
                fs.err(f"Created symlink from {local} to /dev/null." if v < 231 else f"Created symlink {local} → /dev/null.")
            elif cmd == "unmask" and s.get("masked"):
                s.pop("masked", None)
                fs.remove(local)
                fs.err(f"Removed symlink {local}." if v < 240 else f"Removed \"{local}\".")
            if "--now" in flags:
                if cmd == "enable":
                    msg, r = _start(unit, svcs)
                    if r:
                        fs.err(msg)
                        rc = r
                elif cmd in ("disable", "mask"):
                    s["active"] = False
                    fs.hook("daemons", "on_service", unit, False)
        elif cmd == "show":
            s = s or {}
            vals = {"ActiveState": "active" if s.get("active") else ("failed" if s.get("failed") else "inactive"), "SubState": "running" if s.get("active") else "dead", "UnitFileState": "masked" if s.get("masked") else ("enabled" if s.get("enabled") else "disabled"), "LoadState": "loaded" if exists else "not-found", "Id": unit, "FragmentPath": unit_file(unit) or ""}
            for k in props or list(vals):
                out.append(vals.get(k, "") if "--value" in flags else f"{k}={vals.get(k, '')}")
        elif cmd == "cat":
            if not exists:
                fs.err(f"No files found for {unit}.")
                rc = 1
                continue
            out.append(f"# {unit_file(unit)}\n{fs.read(unit_file(unit) or '') or ''}")
        else:
            fs.err(f"Unknown operation '{cmd}'." if v >= 231 else f"Unknown operation '{cmd}'.")
            return 1
    # write back only what this command changed (hooks ran without the lock)
    with state.locked() as st:
        cur = st.setdefault("services", {})
        for unit in set(svcs) | set(before):
            if svcs.get(unit) != before.get(unit):
                if unit in svcs:
                    cur[unit] = svcs[unit]
                else:
                    cur.pop(unit, None)
        if fw_running is not None:
            fw = st.setdefault("firewall", {"ports": [], "runtime_ports": []})
            fw["running"] = fw_running
            if fw_running:
                fw["runtime_ports"] = list(fw.get("ports") or [])
    for line in out:
        fs.out(line)
    return rc
