"""Conformance: the twin's dpkg and dpkg-query (twin/k8stwin/tools/dpkg.py,
dpkg_query.py) against Debian 12's dpkg 1.21.23 on a scratch admindir.

One package database, written as a dpkg status file for the real tool and as
state.json for the twin: an installed package with dependencies, a held one
with an epoch and arch all, one removed with its config files left. The
command lines are the ones Salt's aptpkg runs (list_pkgs' dpkg-query
format, get_selections, set_selections for hold/unhold, version_cmp) and
the product's bootkernel (`${Status}|${Depends}`); compared: exit code,
stdout, stderr."""

import shutil

import pytest

from tests.twin_judges import conformance as cf

REAL_VERSION = "1.21.23"  # dpkg on Debian 12 when these were recorded

PKGS = [
    # name, version, arch, status, depends
    ("alpha", "1.2-1", "amd64", "install ok installed", "beta (>= 1), gamma | delta"),
    ("beta", "2:3.0-1~deb12u1", "all", "hold ok installed", ""),
    ("gone", "0.9-1", "amd64", "deinstall ok config-files", ""),
]
LIST_FMT = "${Status} ${Package} ${Version} ${Architecture}\n"  # aptpkg.list_pkgs
BOOT_FMT = r"--showformat=${Status}|${Depends}\n"  # bootkernel._debian_releases (literal \n)

# id -> (argv after the tool, stdin, recorded real (rc, stdout, stderr))
T = "\t"
CASES = {
    "list_pkgs": (["dpkg-query", "--showformat", LIST_FMT, "-W"], None, (
        0, "install ok installed alpha 1.2-1 amd64\nhold ok installed beta 2:3.0-1~deb12u1 all\n"
           "deinstall ok config-files gone 0.9-1 amd64\n", "")),
    "W default format": (["dpkg-query", "-W"], None, (0, "alpha\t1.2-1\nbeta\t2:3.0-1~deb12u1\ngone\t0.9-1\n", "")),
    "W glob": (["dpkg-query", "-W", "b*"], None, (0, "beta\t2:3.0-1~deb12u1\n", "")),
    "W glob no match": (["dpkg-query", "-W", "x*"], None, (1, "", "dpkg-query: no packages found matching x*\n")),
    "bootkernel installed": (["dpkg-query", "-W", BOOT_FMT, "alpha"], None, (
        0, "install ok installed|beta (>= 1), gamma | delta\n", "")),
    "bootkernel config-files": (["dpkg-query", "-W", BOOT_FMT, "gone"], None, (0, "deinstall ok config-files|\n", "")),
    "bootkernel missing": (["dpkg-query", "-W", BOOT_FMT, "nosuch"], None, (
        1, "", "dpkg-query: no packages found matching nosuch\n")),
    "W one missing one found": (["dpkg-query", "-W", "nosuch", "alpha"], None, (
        1, "alpha\t1.2-1\n", "dpkg-query: no packages found matching nosuch\n")),
    "no action": (["dpkg-query", "alpha"], None, (
        2, "", "dpkg-query: error: need an action option\n\nUse --help for help about querying packages.\n")),
    "get_selections *": (["dpkg", "--get-selections", "*"], None, (
        0, f"alpha{T * 6}install\nbeta{T * 6}hold\ngone{T * 6}deinstall\n", "")),
    "get_selections one": (["dpkg", "--get-selections", "alpha"], None, (0, f"alpha{T * 6}install\n", "")),
    "get_selections missing": (["dpkg", "--get-selections", "nosuch"], None, (
        0, "", "dpkg: no packages found matching nosuch\n")),
    "get_selections glob no match": (["dpkg", "--get-selections", "n*"], None, (
        0, "", "dpkg: no packages found matching n*\n")),
    "set_selections hold+install": (["dpkg", "--set-selections"], "alpha hold\nbeta install\n", (0, "", "")),
    "set_selections unknown package": (["dpkg", "--set-selections"], "alpha install\nnosuch hold\n", (
        0, "", "dpkg: warning: package not in status nor available database at line 2: nosuch\n"
               "dpkg: warning: found unknown packages; this might mean the available database\n"
               "is outdated, and needs to be updated through a frontend method;\n"
               "please see the FAQ <https://wiki.debian.org/Teams/Dpkg/FAQ#set-selections>\n")),
    "set_selections bad status": (["dpkg", "--set-selections"], "alpha bogus\n", (
        2, "", "dpkg: error: unknown wanted status at line 1: bogus\n")),
    "set_selections no status": (["dpkg", "--set-selections"], "alpha\n", (
        2, "", "dpkg: error: unexpected end of line in package name at line 1\n")),
    "set_selections extra field": (["dpkg", "--set-selections"], "alpha hold extra\n", (
        2, "", "dpkg: error: unexpected data after package and selection at line 1\n")),
    "print-architecture": (["dpkg", "--print-architecture"], None, (0, "amd64\n", "")),
}
# after the set_selections case ran: what --get-selections prints
AFTER = {
    "set_selections hold+install": f"alpha{T * 6}hold\nbeta{T * 6}install\ngone{T * 6}deinstall\n",
    "set_selections unknown package": f"alpha{T * 6}install\nbeta{T * 6}hold\ngone{T * 6}deinstall\n",
}

# dpkg --compare-versions A OP B: recorded rc (Salt's version_cmp tries lt, eq, gt)
COMPARE = [
    ("1.34.1-1.1", "lt", "1.34.2-1.1", 0), ("1.34.2-1.1", "lt", "1.34.1-1.1", 1),
    ("1.34.2-1.1", "eq", "1.34.2-1.1", 0), ("1:1.0", "gt", "2.0", 0), ("1.0~rc1", "lt", "1.0", 0),
    ("1.0", "lt", "1.0+b1", 0), ("535.247.01-1~deb12u1", "lt", "535.247.01-1", 0),
    ("5.15.0-119.129", "gt", "5.15.0-119.12", 0), ("1.0a", "gt", "1.0", 0), ("1.0", "ge", "1.0-0", 0),
    ("1.0", "<<", "1.1", 0), ("2", ">>", "10", 1), ("", "lt", "1.0", 0),
]
COMPARE_ERRORS = {
    "too few": (["1.0", "lt"], (2, "dpkg: error: --compare-versions takes three arguments: <version> <relation> <version>")),
    "bad relation": (["1.0", "foo", "2"], (2, "dpkg: error: --compare-versions bad relation")),
    "bad epoch": (["a:1", "lt", "1.0"], (2, "dpkg: error: version 'a:1' has bad syntax: epoch in version is empty")),
}


def status_file(pkgs):
    out = []
    for name, ver, arch, status, deps in pkgs:
        out.append(f"Package: {name}\nStatus: {status}\nPriority: optional\nMaintainer: judge <j@judge.invalid>\n"
                   f"Architecture: {arch}\nVersion: {ver}\n" + (f"Depends: {deps}\n" if deps else "")
                   + ("Conffiles:\n /etc/gone.conf 0123456789abcdef0123456789abcdef\n" if "config-files" in status else "")
                   + f"Description: {name}\n")
    return "\n".join(out)


def twin_state(pkgs):
    st = {"packages": {}, "holds": [], "dpkg_config_files": {}}
    for name, ver, arch, status, deps in pkgs:
        if "config-files" in status:
            st["dpkg_config_files"][name] = ver
            continue
        st["packages"][name] = {"version": ver, "arch": arch, "depends": [d.strip() for d in deps.split(",") if d.strip()]}
        if status.startswith("hold"):
            st["holds"].append(name)
    return st


@pytest.fixture(scope="module")
def have_dpkg():
    if not shutil.which("dpkg-query"):
        return None
    return cf.deb_version("dpkg") or "?"


def admindir(tmp_path):
    adm = tmp_path / "admin"
    for sub in ("updates", "info"):
        (adm / sub).mkdir(parents=True, exist_ok=True)
    (adm / "status").write_text(status_file(PKGS))
    for f in ("available", "diversions"):
        (adm / f).write_text("")
    return adm


def with_admindir(argv, adm):
    return [argv[0], f"--admindir={adm}", *argv[1:]]


@pytest.mark.parametrize("case", list(CASES))
def test_dpkg_conforms(tmp_path, have_dpkg, case):
    argv, stdin, recorded = CASES[case]
    twin = cf.TwinNode(tmp_path / "twin", state=twin_state(PKGS))
    got = twin.run(argv, stdin=stdin)
    if have_dpkg:
        adm = admindir(tmp_path)
        ref = cf.real(with_admindir(argv, adm), stdin=stdin)
        assert tuple(ref) == recorded, cf.diff_hint(f"real dpkg {have_dpkg} no longer prints the recording", recorded, ref, who="real now")
    assert tuple(got) == recorded, cf.diff_hint(case, recorded, got)
    if case in AFTER:
        after = twin.run(["dpkg", "--get-selections"])
        assert after.out == AFTER[case]
        if have_dpkg:
            assert cf.real(with_admindir(["dpkg", "--get-selections"], adm)).out == AFTER[case]


def test_compare_versions_conforms(tmp_path, have_dpkg):
    twin = cf.TwinNode(tmp_path / "twin")
    for a, op, b, rc in COMPARE:
        argv = ["dpkg", "--compare-versions", a, op, b]
        if have_dpkg:
            assert cf.real(argv).rc == rc, argv
        assert twin.run(argv).rc == rc, argv
    for name, (args, (rc, first)) in COMPARE_ERRORS.items():
        argv = ["dpkg", "--compare-versions", *args]
        if have_dpkg:
            ref = cf.real(argv)
            assert (ref.rc, ref.err.splitlines()[0]) == (rc, first), name
        got = twin.run(argv)
        assert (got.rc, (got.err.splitlines() or [""])[0]) == (rc, first), (name, got)
