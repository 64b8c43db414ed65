"""Emulated dpkg: --get-selections, --set-selections (stdin), -l, -L, -s,
--compare-versions, --print-architecture, --configure -a."""

import fnmatch
import re
import sys

from .. import fs, pkgdb, state
from . import dpkg_query

OPS = {"lt": lambda c: c < 0, "le": lambda c: c <= 0, "eq": lambda c: c == 0, "ne": lambda c: c != 0, "ge": lambda c: c >= 0, "gt": lambda c: c > 0, "<<": lambda c: c < 0, "<=": lambda c: c <= 0, "=": lambda c: c == 0, ">=": lambda c: c >= 0, ">>": lambda c: c > 0}


HELP_TAIL = ("\n\nType dpkg --help for help about installing and deinstalling packages [*];\n"
             "Use 'apt' or 'aptitude' for user-friendly package management;\n"
             "Type dpkg -Dhelp for a list of dpkg debug flag values;\n"
             "Type dpkg --force-help for a list of forcing options;\n"
             "Type dpkg-deb --help for help about manipulating *.deb files;\n\n"
             "Options marked [*] produce a lot of output - pipe it through 'less' or 'more' !")
UNKNOWN_SELECTIONS = ("dpkg: warning: found unknown packages; this might mean the available database\n"
                      "is outdated, and needs to be updated through a frontend method;\n"
                      "please see the FAQ <https://wiki.debian.org/Teams/Dpkg/FAQ#set-selections>")


def version_problem(text):
    """dpkg's parseversion checks: (fatal, message) or None (lib/dpkg/parsehelp.c)."""
    v = text.strip()
    if not v:
        return True, "version string is empty"
    if any(c.isspace() for c in v):
        return True, "version string has embedded spaces"
    if ":" in v:
        epoch, _, v = v.partition(":")
        digits = re.match(r"\d*", epoch).group(0)
        if not digits:
            return True, "epoch in version is empty"
        if digits != epoch:
            return True, "epoch in version is not number"
        if int(digits) > 2147483647:
            return True, "epoch in version is too big"
        if not v:
            return True, "nothing after colon in version number"
    upstream, hyphen, revision = v.rpartition("-") if "-" in v else (v, "", "")
    if hyphen and not revision:
        return True, "revision number is empty"
    if not upstream:
        return True, "version number is empty"
    if not upstream[0].isdigit():
        return False, "version number does not start with digit"
    if any(not (c.isalnum() or c in ".-+~:") for c in upstream):
        return False, "invalid character in version number"
    if any(not (c.isalnum() or c in ".+~") for c in revision):
        return False, "invalid character in revision number"
    return None


def _selection_line(name, sel):
    pad = "\t" * max(1, (48 - len(name) + 7) // 8)
    return f"{name}{pad}{sel}"


def main(argv):
    args = argv[1:]
    if not args:
        fs.err("dpkg: error: need an action option" + HELP_TAIL)
        return 2
    a = args[0]
    rest = args[1:]
    if a == "--print-architecture":
        fs.out("amd64")
        return 0
    if a == "--compare-versions":
        if len(rest) != 3:
            fs.err("dpkg: error: --compare-versions takes three arguments: <version> <relation> <version>" + HELP_TAIL)
            return 2
        if rest[1] not in OPS:
            fs.err("dpkg: error: --compare-versions bad relation" + HELP_TAIL)
            return 2
        for v in (rest[0], rest[2]):
            problem = version_problem(v) if v.strip() else None  # an empty version sorts first
            if problem:
                fs.err(f"dpkg: {'error' if problem[0] else 'warning'}: version '{v}' has bad syntax: {problem[1]}")
                if problem[0]:
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
            if not hits:
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
            unknown = False
            for lineno, line in enumerate(data.splitlines(), 1):
                parts = line.split()
                if not parts or parts[0].startswith("#"):
                    continue
                if len(parts) == 1:
                    fs.err(f"dpkg: error: unexpected end of line in package name at line {lineno}")
                    return 2
                if len(parts) > 2:
                    fs.err(f"dpkg: error: unexpected data after package and selection at line {lineno}")
                    return 2
                name, sel = parts
                if sel not in ("install", "hold", "deinstall", "purge"):
                    fs.err(f"dpkg: error: unknown wanted status at line {lineno}: {sel}")
                    return 2
                if name not in inst and name not in (st.get("dpkg_config_files") or {}):
                    fs.err(f"dpkg: warning: package not in status nor available database at line {lineno}: {name}")
                    unknown = True
                    continue
                if sel == "hold" and name not in holds:
                    holds.append(name)
                elif sel != "hold" and name in holds:
                    holds.remove(name)
            if unknown:
                fs.err(UNKNOWN_SELECTIONS)
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
    fs.err(f"dpkg: error: unknown option {a}" + HELP_TAIL)
    return 2
