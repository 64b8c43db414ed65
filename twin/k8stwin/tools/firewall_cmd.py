"""Emulated firewall-cmd: --state, --[permanent] --add-port/--remove-port/--list-ports/
--add-service/--list-all, --reload, --zone, --get-default-zone, --query-port.

State: ``firewall`` = {"running", "enabled", "ports" (permanent), "runtime_ports", "services"}.
"""

import re

from .. import fs, state

NOT_RUNNING = 252
INVALID_PORT = 102
ZONES = ("public", "trusted", "drop", "block", "external", "dmz", "work", "home", "internal")


def _valid_port(p):
    m = re.match(r"^(\d+)(?:-(\d+))?/(tcp|udp|sctp|dccp)$", p)
    if not m:
        return False
    lo = int(m.group(1))
    hi = int(m.group(2) or lo)
    return 0 < lo <= 65535 and 0 < hi <= 65535 and lo <= hi


def main(argv):
    args = argv[1:]
    st = state.read()
    fw = st.get("firewall") or {}
    running = bool(fw.get("running"))
    if args == ["--state"]:
        if running:
            fs.out("running")
            return 0
        fs.err("not running")
        return NOT_RUNNING
    if args in (["--version"], ["-V"]):
        fs.out("0.6.3" if fs.node_os()[1] == 7 else "1.3.4")
        return 0
    permanent = "--permanent" in args
    ops = []
    for a in args:
        if a == "--permanent" or a.startswith("--zone="):
            if a.startswith("--zone=") and a.split("=", 1)[1] not in ZONES:
                if not running:
                    break
                fs.err(f"Error: INVALID_ZONE: {a.split('=', 1)[1]}")
                return 112
            continue
        if a in ("-q", "--quiet"):
            continue
        m = re.match(r"^--(add-port|remove-port|query-port|add-service|remove-service|query-service)=(.*)$", a)
        if m:
            ops.append((m.group(1), m.group(2)))
        elif a in ("--reload", "--complete-reload", "--list-ports", "--list-services", "--list-all", "--get-default-zone", "--get-active-zones", "--runtime-to-permanent"):
            ops.append((a[2:], None))
        else:
            if not running:
                break
            fs.err(f"usage: see firewall-cmd man page\nfirewall-cmd: error: unrecognized arguments: {a}")
            return 2
    if not running:
        fs.err("FirewallD is not running")
        return NOT_RUNNING
    rc = 0
    out = []
    with state.locked() as st2:
        fw = st2.setdefault("firewall", {"running": True, "ports": [], "runtime_ports": []})
        key = "ports" if permanent else "runtime_ports"
        skey = "services" if permanent else "runtime_services"
        fw.setdefault(key, [])
        fw.setdefault(skey, list(fw.get("services") or []))
        for op, val in ops:
            if op in ("add-port", "remove-port", "query-port"):
                if not _valid_port(val):
                    fs.err(f"Error: INVALID_PORT: {val}")
                    return INVALID_PORT
                if op == "add-port":
                    if val in fw[key]:
                        fs.err(f"Warning: ALREADY_ENABLED: {val.replace('/', ':')}")
                    else:
                        fw[key].append(val)
                    out.append("success")
                elif op == "remove-port":
                    if val not in fw[key]:
                        fs.err(f"Warning: NOT_ENABLED: {val.replace('/', ':')}")
                    else:
                        fw[key].remove(val)
                    out.append("success")
                else:
                    yes = val in fw[key]
                    out.append("yes" if yes else "no")
                    rc = 0 if yes else 1
            elif op in ("add-service", "remove-service", "query-service"):
                if op == "add-service":
                    if val in fw[skey]:
                        fs.err(f"Warning: ALREADY_ENABLED: {val}")
                    else:
                        fw[skey].append(val)
                    out.append("success")
                elif op == "remove-service":
                    if val in fw[skey]:
                        fw[skey].remove(val)
                    out.append("success")
                else:
                    out.append("yes" if val in fw[skey] else "no")
                    rc = 0 if val in fw[skey] else 1
            elif op in ("reload", "complete-reload"):
                fw["runtime_ports"] = list(fw.get("ports") or [])
                fw["runtime_services"] = list(fw.get("services") or [])
                out.append("success")
            elif op == "runtime-to-permanent":
                fw["ports"] = list(fw.get("runtime_ports") or [])
                out.append("success")
            elif op == "list-ports":
                out.append(" ".join(fw[key]))
            elif op == "list-services":
                out.append(" ".join(fw[skey]))
            elif op == "get-default-zone":
                out.append("public")
            elif op == "get-active-zones":
                out.append("public\n  interfaces: eth0")
            elif op == "list-all":
                out.append(f"public (active)\n  target: default\n  interfaces: eth0\n  services: {' '.join(fw[skey])}\n  ports: {' '.join(fw[key])}\n  protocols: \n  masquerade: no")
    for line in out:
        fs.out(line)
    return rc
