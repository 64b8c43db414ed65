"""Emulated apt-cache: policy, madison, show, showpkg (what Salt's aptpkg reads)."""

from .. import fs, pkgdb
from . import apt_get


def _packages_line(repo_id):
    """'<uri> <suite>' -> how apt names that index: flat repos '<uri>  Packages'."""
    uri, _, suite = repo_id.rpartition(" ")
    if suite == "/":
        return f"{uri}  Packages"
    if suite.endswith("/"):
        return f"{uri}/{suite}  Packages"
    return f"{uri} {suite}/main amd64 Packages"


def _policy(names):
    inst = pkgdb.installed()
    cands = apt_get.available()
    if not names:
        fs.out("Package files:\n 100 /var/lib/dpkg/status\n     release a=now")
        for e in pkgdb.apt_index():
            fs.out(f" 500 {e['uri'].rstrip('/')} {e['suite']} Packages")
        fs.out("Pinned packages:")
        return 0
    for name in names:
        vs = apt_get.versions_of(name, cands)
        cur = inst.get(name)
        if not vs and not cur:
            continue
        # a dpkg hold does not change the candidate (pins do): `apt-cache
        # policy` of a held package still shows the newest version
        cand = vs[0].full if vs else cur["version"]
        if cur and vs and pkgdb.deb_compare(cur["version"], vs[0].full) > 0:
            cand = cur["version"]
        fs.out(f"{name}:")
        fs.out(f"  Installed: {cur['version'] if cur else '(none)'}")
        fs.out(f"  Candidate: {cand}")
        fs.out("  Version table:")
        shown = False
        for c in vs:
            mark = " *** " if cur and cur["version"] == c.full else "     "
            fs.out(f"{mark}{c.full} 500")
            fs.out(f"        500 {_packages_line(c.repo_id)}")
            if mark.strip():
                fs.out("        100 /var/lib/dpkg/status")
                shown = True
        if cur and not shown:
            fs.out(f" *** {cur['version']} 100")
            fs.out("        100 /var/lib/dpkg/status")
    return 0


def main(argv):
    args = [a for a in argv[1:] if a not in ("-q", "-qq", "--quiet")]
    opts = []
    while args and args[0].startswith("-"):
        a = args.pop(0)
        if a in ("-o", "-t", "-c"):
            if args:
                args.pop(0)
            continue
        if a in ("--no-all-versions", "--all-versions", "--names-only", "--full", "--installed", "-i"):
            opts.append(a)
            continue
        fs.err(f"E: Command line option {a} is not understood in combination with the other options")
        return 100
    # trailing -o options (Salt appends them after the names)
    clean = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("-o", "-t"):
            skip = True
            continue
        clean.append(a)
    if not clean:
        fs.err("E: No operation given" if True else "")
        return 100
    cmd, names = clean[0], clean[1:]
    try:
        apt_get.sources()
    except apt_get.Fail as exc:
        fs.err(exc.text)
        return 100
    if cmd == "policy":
        return _policy(names)
    if cmd == "madison":
        for name in names:
            for c in apt_get.versions_of(name):
                fs.out(f"{name:>10} | {c.full} | {_packages_line(c.repo_id)}")
        return 0
    if cmd in ("show", "showpkg"):
        rc = 0
        for name in names:
            vs = apt_get.versions_of(name)
            if not vs:
                fs.err(f"N: Unable to locate package {name}\nE: No packages found")
                rc = 100
                continue
            for c in vs:
                deps = ", ".join(c.spec.get("requires") or [])
                fs.out(f"Package: {name}\nVersion: {c.full}\nArchitecture: {c.arch}\n" + (f"Depends: {deps}\n" if deps else "") + f"Description: {name}\n")
        return rc
    if cmd == "search":
        for c in apt_get.available():
            if any(n in c.name for n in names):
                fs.out(f"{c.name} - {c.name}")
        return 0
    fs.err(f"E: Invalid operation {cmd}")
    return 100
