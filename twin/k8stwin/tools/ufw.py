"""Emulated ufw: allow/deny PORT[/proto], delete allow, status [verbose|numbered],
enable/disable (--force), default, reload. State: ``firewall`` {"ufw_enabled", "rules": [...]}.

Checked against Debian 12's ufw 0.36.2 (tests/twin_judges/test_conformance_ufw.py).
`ufw enable` asks "Command may disrupt existing ssh connections" only when
run under sshd (ufw's under_ssh()); a twin node's minion never is."""

import re

from .. import fs, state

USAGE = """
Usage: ufw COMMAND

Commands:
 enable                          enables the firewall
 disable                         disables the firewall
 default ARG                     set default policy
 logging LEVEL                   set logging to LEVEL
 allow ARGS                      add allow rule
 deny ARGS                       add deny rule
 reject ARGS                     add reject rule
 limit ARGS                      add limit rule
 delete RULE|NUM                 delete RULE
 insert NUM RULE                 insert RULE at NUM
 prepend RULE                    prepend RULE
 route RULE                      add route RULE
 route delete RULE|NUM           delete route RULE
 route insert NUM RULE           insert route RULE at NUM
 reload                          reload firewall
 reset                           reset firewall
 status                          show firewall status
 status numbered                 show firewall status as numbered list of RULES
 status verbose                  show verbose firewall status
 show ARG                        show firewall report
 version                         display version information

Application profile commands:
 app list                        list application profiles
 app info PROFILE                show information on PROFILE
 app update PROFILE              update PROFILE
 app default ARG                 set default application policy

"""


def _rows(rules, verbose=False):
    out = []
    suffix = " IN" if verbose else ""
    for r in rules:
        to = r["to"]
        out.append((to, r["action"].upper() + suffix, "Anywhere"))
    for r in rules:
        out.append((f"{r['to']} (v6)", r["action"].upper() + suffix, "Anywhere (v6)"))
    return out


def main(argv):
    args = [a for a in argv[1:] if a not in ("--force", "-f")]
    if not args:
        fs.out(USAGE)
        fs.err("ERROR: not enough args")
        return 1
    if args[0] in ("--version", "version"):
        fs.out("ufw 0.36.2\nCopyright 2008-2023 Canonical Ltd.")
        return 0
    cmd = args[0]
    with state.locked() as st:
        fw = st.setdefault("firewall", {"backend": "ufw", "ufw_enabled": False, "rules": []})
        fw.setdefault("rules", [])
        active = bool(fw.get("ufw_enabled"))
        if cmd == "status":
            if not active:
                fs.out("Status: inactive")
                return 0
            fs.out("Status: active")
            if len(args) > 1 and args[1] == "verbose":
                fs.out("Logging: on (low)\nDefault: deny (incoming), allow (outgoing), disabled (routed)\nNew profiles: skip")
            if fw["rules"]:
                fs.out("")
                verbose = len(args) > 1 and args[1] == "verbose"
                fs.out(("%-26s %-12s%-26s" % ("To", "Action", "From")).rstrip())
                fs.out(("%-26s %-12s%-26s" % ("--", "------", "----")).rstrip())
                for row in _rows(fw["rules"], verbose):
                    fs.out("%-26s %-12s%-26s" % row)
                fs.out("")
            return 0
        if cmd == "enable":
            fw["ufw_enabled"] = True
            fw["running"] = True
            fs.out("Firewall is active and enabled on system startup")
            return 0
        if cmd == "disable":
            fw["ufw_enabled"] = False
            fw["running"] = False
            fs.out("Firewall stopped and disabled on system startup")
            return 0
        if cmd == "show" and args[1:2] == ["added"]:
            fs.out("Added user rules (see 'ufw status' for running firewall):")
            for r in fw["rules"]:
                fs.out(f"ufw {r['action']} {r['to']}")
            if not fw["rules"]:
                fs.out("(None)")
            return 0
        if cmd == "reload":
            fs.out("Firewall reloaded" if active else "Firewall not enabled (skipping reload)")
            return 0
        if cmd == "default":
            fs.out(f"Default incoming policy changed to '{args[1] if len(args) > 1 else 'deny'}'\n(be sure to update your rules accordingly)")
            return 0
        delete = False
        if cmd == "delete":
            delete = True
            args = args[1:]
            cmd = args[0] if args else ""
        if cmd in ("allow", "deny", "reject", "limit"):
            rest = args[1:]
            if rest[:1] == ["proto"] or "port" in rest:
                d = dict(zip(rest[::2], rest[1::2]))
                spec = f"{d.get('port', '')}/{d.get('proto', 'tcp')}" if d.get("proto") else d.get("port", "")
            else:
                spec = rest[0] if rest else ""
            if not spec:
                fs.out(USAGE)
                fs.err("ERROR: Invalid syntax")
                return 1
            if not re.match(r"^[\d:,/]", spec) and "/" not in spec:
                fs.err(f"ERROR: Could not find a profile matching '{spec}'")
                return 1
            m = re.match(r"^(\d+)(?::(\d+))?(?:/(tcp|udp))?$", spec)
            if m and m.group(2) and not m.group(3):
                fs.err("ERROR: Must specify 'tcp' or 'udp' with multiple ports")
                return 1
            if not m or spec.count("-"):
                fs.err("ERROR: Bad port")
                return 1
            if any(int(x) > 65535 or int(x) == 0 for x in (m.group(1), m.group(2)) if x):
                fs.err("ERROR: Bad port")
                return 1
            rule = {"to": spec, "action": cmd}
            exists = rule in fw["rules"]
            if delete:
                if not exists:
                    fs.out("Could not delete non-existent rule\nCould not delete non-existent rule (v6)")
                    return 0
                fw["rules"].remove(rule)
                fs.out("Rule deleted\nRule deleted (v6)" if active else "Rules updated\nRules updated (v6)")
                return 0
            if exists:
                fs.out("Skipping adding existing rule\nSkipping adding existing rule (v6)")
                return 0
            fw["rules"].append(rule)
            fs.out("Rule added\nRule added (v6)" if active else "Rules updated\nRules updated (v6)")
            return 0
    fs.out(USAGE)
    fs.err("ERROR: Invalid syntax")
    return 1
