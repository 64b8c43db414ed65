"""Emulated dpkg: --get-selections, --set-selections (stdin), -l, -L, -s,
--compare-versions, --print-architecture, --configure -a."""

import fnmatch
import sys

from .. import fs, pkgdb, state
from . import dpkg_query

OPS = {"lt": lambda c: c < 0, "le": lambda c: c <= 0, "eq": lambda c: c == 0, "ne": lambda c: c != 0, "ge": lambda c: c >= 0, "gt": lambda c: c > 0, "<<": lambda c: c < 0, "<=": lambda c: c <= 0, "=": lambda c: c == 0, ">=": lambda c: c >= 0, ">>": lambda c: c > 0}


def _selection_line(name, sel):
    pad = "\t" * max(1, (48 - len(name) + 7) // 8)
    return f"{name}{pad}{sel}"


def main(argv):
    args = argv[1:]
    if not args:
        fs.err("dpkg: error: need an action option\n\nType dpkg --help for help about installing and deinstalling packages [*];\nUse 'apt' or 'aptitude' for user-friendly package management;")
        return 2
    a = args[0]
    rest = args[1:]
    if a == "--print-architecture":
        fs.out("amd64")
        return 0
    if a == "--compare-versions":
        if len(rest) != 3 or rest[1] not in OPS:
            fs.err("dpkg: error: --compare-versions takes three arguments: <version> <relation> <version>")
            return 2
        return 0 if OPS[rest[1]](pkgdb.deb_compare(rest[0], rest[2])) else 1
    if a == "--get-selections":
        st = state.read()
        holds = st.get("holds") or []
        pats = rest or ["*"]
        rows = [(n, "hold" if n in holds else "install") for n in sorted(st.get("packages") or {})]
        rows += [(n, "deinstall") for n in sorted(st.get("dpkg_config_files") or {})]
        for p in pats:
            hits = [r for r in rows if fnmatch.fnmatchcase(r[0], p)]
            if not hits and not any(c in p for c in "*?["):
                fs.err(f"dpkg: no packages found matching {p}")
            for n, sel in hits:
                fs.out(_selection_line(n, sel))
        return 0
    if a == "--set-selections":
        rc = 0
        data = sys.stdin.read()
        inst = pkgdb.installed()
        with state.locked() as st:
            holds = st.setdefault("holds", [])
            for line in data.splitlines():
                parts = line.split()
                if not parts:
                    continue
                if len(parts) != 2:
                    fs.err(f"dpkg: error: unexpected data after package and selection at line {line!r}")
                    return 2
                name, sel = parts
                if sel not in ("install", "hold", "deinstall", "purge"):
                    fs.err(f"dpkg: error: unknown wanted status at line {line!r}: {sel}")
                    return 2
                if name not in inst:
                    fs.err(f"dpkg: warning: package not in status nor available database at line 1: {name}")
                    continue
                if sel == "hold" and name not in holds:
                    holds.append(name)
                elif sel != "hold" and name in holds:
                    holds.remove(name)
        return rc
    if a == "--clear-selections":
        with state.locked() as st:
            st["holds"] = []
        return 0
    if a in ("-l", "--list", "-L", "--listfiles", "-s", "--status", "-W", "--show"):
        return dpkg_query.main(["dpkg-query"] + args)
    if a in ("--configure", "--audit", "-C"):
        return 0
    if a in ("-S", "--search"):
        inst = pkgdb.installed()
        rc = 0
        for p in rest:
            owners = [n for n, e in inst.items() if p in (e.get("files") or [])]
            if owners:
                fs.out(f"{', '.join(owners)}: {p}")
            else:
                fs.err(f"dpkg-query: no path found matching pattern {p}")
                rc = 1
        return rc
    fs.err(f"dpkg: error: unknown option {a}\n\nType dpkg --help for help about installing and deinstalling packages [*];")
    return 2
