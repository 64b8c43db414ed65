"""Emulated dpkg-query: -W/--show with --showformat/-f, -l, -s (what Salt's aptpkg reads)."""

import fnmatch
import re
import sys

from .. import fs, pkgdb, state

DEFAULT_FMT = "${binary:Package}\t${Version}\n"


def rows():
    """[(name, fields)] for installed and config-files packages."""
    st = state.read()
    holds = st.get("holds") or []
    out = []
    for name, e in sorted((st.get("packages") or {}).items()):
        want = "hold" if name in holds else "install"
        out.append((name, {"Package": name, "binary:Package": name, "Version": e.get("version", ""), "Architecture": e.get("arch", "amd64"), "Status": f"{want} ok installed", "db:Status-Abbrev": "hi " if want == "hold" else "ii ", "db:Status-Want": want, "db:Status-Status": "installed", "Installed-Size": "1024", "Maintainer": "k8stwin", "Source": name, "binary:Summary": name, "Description": name, "Depends": ", ".join(e.get("depends") or [])}))
    for name, ver in sorted((st.get("dpkg_config_files") or {}).items()):
        out.append((name, {"Package": name, "binary:Package": name, "Version": ver, "Architecture": "amd64", "Status": "deinstall ok config-files", "db:Status-Abbrev": "rc ", "db:Status-Want": "deinstall", "db:Status-Status": "config-files", "Installed-Size": "0", "Maintainer": "k8stwin", "Source": name, "binary:Summary": name, "Description": name}))
    return out


def fmt(template, fields):
    text = template.replace("\\n", "\n").replace("\\t", "\t")
    return re.sub(r"\$\{([^}:;]+(?::[^};]+)?)(?:;-?\d+)?\}", lambda m: fields.get(m.group(1), ""), text)


def main(argv):
    args = argv[1:]
    mode = None
    template = DEFAULT_FMT
    pats = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-W", "--show"):
            mode = "W"
        elif a in ("-l", "--list"):
            mode = "l"
        elif a in ("-s", "--status"):
            mode = "s"
        elif a in ("-L", "--listfiles"):
            mode = "L"
        elif a in ("-f", "--showformat"):
            i += 1
            if i >= len(args):
                fs.err("dpkg-query: error: --showformat needs a value\n\nUse --help for help about querying packages.")
                return 2
            template = args[i]
        elif a.startswith("--showformat="):
            template = a.split("=", 1)[1]
        elif a.startswith("-"):
            fs.err(f"dpkg-query: error: unknown option {a}\n\nUse --help for help about querying packages.")
            return 2
        else:
            pats.append(a)
        i += 1
    if mode is None:
        fs.err("dpkg-query: error: need an action option\n\nUse --help for help about querying packages.")
        return 2
    data = rows()
    rc = 0
    selected = []
    if pats:
        for p in pats:
            hit = [r for r in data if fnmatch.fnmatchcase(r[0], p)]
            if not hit:
                fs.err(f"dpkg-query: no packages found matching {p}")
                rc = 1
            selected += [h for h in hit if h not in selected]
    else:
        selected = data if mode != "l" else data
    if mode == "W":
        for _n, f in selected:
            sys.stdout.write(fmt(template, f))
    elif mode == "l":
        fs.out("Desired=Unknown/Install/Remove/Purge/Hold\n| Status=Not/Inst/Conf-files/Unpacked/halF-conf/Half-inst/trig-aWait/Trig-pend\n|/ Err?=(none)/Reinst-required (Status,Err: uppercase=bad)\n||/ Name           Version      Architecture Description\n+++-==============-============-============-=================================")
        for n, f in selected:
            fs.out(f"{f['db:Status-Abbrev']:<3} {n:<14} {f['Version']:<12} {f['Architecture']:<12} {n}")
    elif mode == "s":
        for n, f in selected:
            fs.out(f"Package: {n}\nStatus: {f['Status']}\nArchitecture: {f['Architecture']}\nVersion: {f['Version']}\n")
    elif mode == "L":
        inst = pkgdb.installed()
        for n, _f in selected:
            for p in (inst.get(n) or {}).get("files") or []:
                fs.out(p)
    return rc
