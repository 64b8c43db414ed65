"""Emulated ufw: allow/deny PORT[/proto], delete allow, status [verbose|numbered],
enable/disable (--force), default, reload. State: ``firewall`` {"ufw_enabled", "rules": [...]}."""

import re

from .. import fs, state


def _rows(rules):
    out = []
    for r in rules:
        to = r["to"]
        out.append((to, r["action"].upper(), "Anywhere"))
    for r in rules:
        out.append((f"{r['to']} (v6)", r["action"].upper(), "Anywhere (v6)"))
    return out


def main(argv):
    args = [a for a in argv[1:] if a not in ("--force", "-f")]
    force = len(args) != len(argv) - 1
    if not args:
        fs.err("ERROR: not enough args")
        return 1
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
            fs.out("")
            if fw["rules"]:
                fs.out("%-26s %-12s%-26s" % ("To", "Action", "From"))
                fs.out("%-26s %-12s%-26s" % ("--", "------", "----"))
                for row in _rows(fw["rules"]):
                    fs.out("%-26s %-12s%-26s" % row)
            return 0
        if cmd == "enable":
            if not force:
                fs.out("Command may disrupt existing ssh connections. Proceed with operation (y|n)? Aborted")
                return 0
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
            m = re.match(r"^(\d+)(?::(\d+))?(?:/(tcp|udp))?$", spec)
            if not m or (m.group(2) and not m.group(3)) or spec.count("-"):
                fs.err("ERROR: Bad port" if spec else "ERROR: Invalid syntax")
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
    fs.err("ERROR: Invalid syntax")
    return 1
