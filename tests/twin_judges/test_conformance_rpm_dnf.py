"""Conformance: the twin's dnf and rpm (twin/k8stwin/tools/yum.py in dnf mode,
rpm.py) against Debian 12's dnf 4.14 and rpm 4.18 (apt-get installed when
missing), on a scratch installroot.

A local repository of tiny noarch rpms built with rpmbuild and signed with a
throwaway key (alpha 1.0-1 and 1.1-1, beta 1.1-1 requiring alpha, gamma
1:0.5-2), gpgcheck on with a file:// gpgkey; the twin (a Rocky 9 node) gets
the same .repo and dnf.conf files and a catalog listing the same packages.
One sequence of the command lines Salt's yumpkg and rpm_lowpkg run in dnf
mode (clean expire-cache, check-update, `--quiet list available`, `-y
--best --allowerasing install NAME-VERSION`, downgrade, remove,
--disableexcludes, --enablerepo) and the product's `rpm -q --queryformat`;
compared at each step: exit code, the Error:/No match lines, what Salt
parses (list's name.arch/version/repo triples, rpm -qa's queryformat
fields) and the rpm database afterwards (gpg-pubkey rows are compared by
name only: the twin's key ids are not the key's)."""

import re
import shutil

import pytest

from tests.twin_judges import conformance as cf

REAL_VERSION = "dnf 4.14.0, rpm 4.18.0"
SPECS = {  # spec name -> (Name, Version, Release, Epoch, subpackage beta?)
    "alpha-1.0": ("alpha", "1.0", "1", None, False),
    "alpha-1.1": ("alpha", "1.1", "1", None, True),
    "gamma": ("gamma", "0.5", "2", "1", False),
}
SPEC = """Name: {name}
Version: {version}
Release: {release}
{epoch}Summary: conformance probe
License: MIT
BuildArch: noarch
%description
probe
{sub}%install
mkdir -p %{{buildroot}}/usr/share/probe
echo {name} > %{{buildroot}}/usr/share/probe/{name}
{subinstall}%files
/usr/share/probe/{name}
{subfiles}"""
SUB = "%package -n beta\nSummary: probe\nRequires: alpha\n%description -n beta\nprobe\n"
DNF_CONF = "[main]\ngpgcheck=1\ninstallonly_limit=3\nclean_requirements_on_remove=True\nbest=True\nskip_if_unavailable=False\n"
QF = "%{NAME}_|-%{EPOCH}_|-%{VERSION}_|-%{RELEASE}_|-%{ARCH}_|-(none)_|-%{INSTALLTIME}\n"  # yumpkg.list_pkgs
RPM_QA = ["rpm", "-qa", "--nodigest", "--nosignature", "--queryformat", QF]
INSTALL = ["dnf", "-y", "--best", "--allowerasing", "install"]  # yumpkg.install on dnf
NOARCH = "{}_|-{}_|-{}_|-{}_|-noarch_|-(none)"


def q(name, ver, rel, epoch="(none)"):
    return NOARCH.format(name, epoch, ver, rel)


A10, A11, B11, G = q("alpha", "1.0", "1"), q("alpha", "1.1", "1"), q("beta", "1.1", "1"), q("gamma", "0.5", "2", "1")
KEY = "gpg-pubkey"
# (argv or action, recorded real view[, "twin"]): "twin" steps were observed
# on the real dnf when the table was written but are not re-run (each dnf
# command costs a second or two); they leave the package set as they found it
T = "twin"
STEPS = [
    (["dnf", "--quiet", "--assumeyes", "clean", "expire-cache"], {"rc": 0, "err": []}, T),
    (["dnf", "--quiet", "--assumeyes", "check-update"], {"rc": 0, "err": []}, T),
    (["dnf", "--quiet", "list", "available", "alpha"], {"rc": 0, "err": [], "list": [("alpha.noarch", "1.1-1", "judge")]}),
    (["dnf", "--quiet", "list", "available", "nosuch"], {"rc": 1, "err": ["Error: No matching Packages to list"], "list": []}),
    (INSTALL + ["nosuch"], {"rc": 1, "err": ["No match for argument: nosuch", "Error: Unable to find a match: nosuch"], "rpm": []}),
    (INSTALL + ["alpha-9-1"], {"rc": 1, "err": ["No match for argument: alpha-9-1", "Error: Unable to find a match: alpha-9-1"], "rpm": []}, T),
    (INSTALL + ["alpha-1.0-1"], {"rc": 0, "err": [], "rpm": [A10, KEY]}),
    (["dnf", "--quiet", "--assumeyes", "check-update"], {"rc": 100, "err": [], "list": [("alpha.noarch", "1.1-1", "judge")]}),
    (["rpm", "-q", "--queryformat", r"%{VERSION}-%{RELEASE}.%{ARCH}\n", "alpha"], {"rc": 0, "err": [], "out": "1.0-1.noarch\n"}),
    (["rpm", "-q", "--queryformat", r"%{VERSION}-%{RELEASE}.%{ARCH}\n", "nosuch", "beta"], {"rc": 2, "err": [], "out": (
        "package nosuch is not installed\npackage beta is not installed\n")}),
    # a bad queryformat: the error in place of each matched package's line, exit 0
    (["rpm", "-q", "--queryformat", r"%{NAME} %{FOO}\n", "alpha"], {"rc": 0, "err": ['error: incorrect format: unknown tag: "FOO"'], "out": ""}),
    (INSTALL + ["beta", "gamma"], {"rc": 0, "err": [], "rpm": [A10, B11, G, KEY]}),  # alpha 1.0 satisfies beta
    (["rpm", "-q", "--queryformat", r"%{EPOCH}:%{VERSION}-%{RELEASE}\n", "gamma", "alpha-1.0"], {"rc": 0, "err": [], "out": (
        "1:0.5-2\n(none):1.0-1\n")}),
    (INSTALL + ["alpha-1.1-1"], {"rc": 0, "err": [], "rpm": [A11, B11, G, KEY]}),
    # dnf 4 downgrades on `install NAME-OLDER`; Salt runs `downgrade` for a lower pin
    (INSTALL + ["alpha-1.0-1"], {"rc": 0, "err": [], "rpm": [A10, B11, G, KEY]}, T),
    (INSTALL + ["alpha-1.1-1"], {"rc": 0, "err": [], "rpm": [A11, B11, G, KEY]}, T),
    (["dnf", "-y", "downgrade", "alpha-1.0-1"], {"rc": 0, "err": [], "rpm": [A10, B11, G, KEY]}),
    # removing what others require removes them too
    (["dnf", "-y", "remove", "alpha"], {"rc": 0, "err": [], "rpm": [G, KEY]}),
    (["dnf", "-y", "remove", "alpha"], {"rc": 0, "err": ["No match for argument: alpha", "No packages marked for removal."], "rpm": [G, KEY]}, T),
    (["rpm", "-e", "nosuch"], {"rc": 1, "err": ["error: package nosuch is not installed"], "out": ""}),
    # exclude= in the .repo, lifted per repository by --disableexcludes (the kubernetes repo's way)
    ("repo", "exclude=alpha beta\n"),
    (INSTALL + ["alpha"], {"rc": 1, "err": ["All matches were filtered out by exclude filtering for argument: alpha",
                                            "Error: Unable to find a match: alpha"], "rpm": [G, KEY]}),
    (["dnf", "-y", "--disableexcludes=judge", "--best", "--allowerasing", "install", "alpha"], {"rc": 0, "err": [], "rpm": [A11, G, KEY]}),
    # a disabled repository, enabled for one command
    ("repo", "enabled=0\n"),
    (["dnf", "--quiet", "list", "available", "beta"], {"rc": 1, "err": ["Error: No matching Packages to list"], "list": []}, T),
    (["dnf", "--quiet", "--enablerepo=judge", "list", "available", "beta"], {"rc": 0, "err": [], "list": [("beta.noarch", "1.1-1", "judge")]}),
    (["dnf", "--quiet", "--enablerepo=nosuch", "list", "available", "beta"], {"rc": 1, "err": ["Error: Unknown repo: 'nosuch'"], "list": []}, T),
]


def build_repo(base):
    """Signed rpms and repodata under base/repo; returns the armored key's path."""
    repo = base / "repo"
    repo.mkdir()
    for spec_name, (name, version, release, epoch, sub) in SPECS.items():
        top = base / f"rpmbuild-{spec_name}"
        (top / "SPECS").mkdir(parents=True)
        spec = top / "SPECS" / f"{spec_name}.spec"
        spec.write_text(SPEC.format(name=name, version=version, release=release,
                                    epoch=f"Epoch: {epoch}\n" if epoch else "", sub=SUB if sub else "",
                                    subinstall="echo beta > %{buildroot}/usr/share/probe/beta\n" if sub else "",
                                    subfiles="%files -n beta\n/usr/share/probe/beta\n" if sub else ""))
        res = cf.real(["rpmbuild", "--define", f"_topdir {top}", "--define", "_build_id_links none", "--nodeps", "-bb", spec])
        assert res.rc == 0, res.err[-2000:]
        for rpm in (top / "RPMS/noarch").glob("*.rpm"):
            shutil.copy(rpm, repo)
    home = base / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
    try:
        assert cf.real(gpg + ["--quick-gen-key", "judge <j@judge.invalid>", "rsa2048", "sign", "never"]).rc == 0
        fpr = next(x.split(":")[9] for x in cf.real(gpg + ["--list-keys", "--with-colons"]).out.splitlines()
                   if x.startswith("fpr:"))
        for rpm in sorted(repo.glob("*.rpm")):
            res = cf.real(["rpmsign", "--addsign", "--define", f"_gpg_name {fpr}", "--define", f"_gpg_path {home}",
                           "--define", "__gpg /usr/bin/gpg", rpm])
            assert res.rc == 0, res.err
        key = base / "judge.asc"
        key.write_text(cf.real(gpg + ["--armor", "--export", fpr]).out)
    finally:
        cf.real(["gpgconf", "--homedir", home, "--kill", "gpg-agent"])
    assert cf.real(["createrepo_c", "--quiet", repo]).rc == 0
    return key


def repo_text(base, extra=""):
    return (f"[judge]\nname=Judge\nbaseurl=file://{base}/repo\nenabled=1\ngpgcheck=1\n"
            f"gpgkey=file://{base}/judge.asc\n{extra}")


def catalog_text(base):
    return (f"repositories:\n  - name: judge\n    type: rpm\n    urls: [\"file://{base}/repo\"]\n"
            f"    gpgkeys: [\"file://{base}/judge.asc\"]\n    packages:\n"
            "      alpha: {versions: [\"1.0-1\", \"1.1-1\"], arch: noarch}\n"
            "      beta: {versions: [\"1.1-1\"], arch: noarch, requires: [alpha]}\n"
            "      gamma: {versions: [\"1:0.5-2\"], arch: noarch}\n")


@pytest.fixture(scope="module")
def sides(tmp_path_factory):
    reason = cf.ensure_packages({"dnf": "dnf", "rpm": "rpm", "rpmbuild": "rpm", "rpmsign": "rpm",
                                 "createrepo_c": "createrepo-c", "gpg": "gnupg"})
    base = tmp_path_factory.mktemp("dnf")
    root = base / "real"
    if reason is None:
        key = build_repo(base)
        for d in ("etc/yum.repos.d", "etc/dnf", "var/log", "var/cache/dnf"):
            (root / d).mkdir(parents=True)
        assert cf.real(["rpm", "--root", root, "--initdb"]).rc == 0
        (root / "etc/dnf/dnf.conf").write_text(DNF_CONF)
    (base / "catalog").mkdir()
    (base / "catalog/judge.yaml").write_text(catalog_text(base))
    twin = cf.TwinNode(base / "twin", os_key="rocky9", catalog=base / "catalog")
    twin.write("/etc/dnf/dnf.conf", DNF_CONF)
    twin.write(str(base / "judge.asc"), key.read_text() if reason is None else "stand-in key")
    prefix = ["dnf", f"--installroot={root}", "--releasever=9", "-c", f"{root}/etc/dnf/dnf.conf",
              f"--setopt=reposdir={root}/etc/yum.repos.d", f"--setopt=cachedir={root}/var/cache/dnf",
              f"--setopt=logdir={root}/var/log", "--noplugins", "--setopt=install_weak_deps=False"]

    def write_repo(extra=""):
        text = repo_text(base, extra)
        twin.write("/etc/yum.repos.d/judge.repo", text)
        if reason is None:
            (root / "etc/yum.repos.d/judge.repo").write_text(text)

    def run(argv, twin_only=False):
        ref = None
        if reason is None and not twin_only:
            full = prefix + argv[1:] if argv[0] == "dnf" else ["rpm", "--root", root, *argv[1:]]
            ref = cf.real(full, timeout=300)
        return ref, twin.run(argv)

    write_repo()
    yield run, write_repo, root if reason is None else None
    # dnf started no agent: the key was only read; gpg's agent was ended in build_repo


def err_lines(res):
    keep = ("Error", "error:", "No match", "No packages", "All matches")
    return [x for x in (res.out + res.err).splitlines() if x.startswith(keep)]


def salt_list(out):
    """yumpkg._yum_pkginfo's reading: (name.arch, version, repo) triples after the headers."""
    words = [w for line in out.splitlines() if line.strip() and not re.match(r"^(Available|Installed|Last metadata)", line)
             for w in line.split()]
    return [tuple(words[i:i + 3]) for i in range(0, len(words) - 2, 3)]


def rpm_rows(out):
    rows = []
    for line in out.splitlines():
        fields = line.split("_|-")
        rows.append(KEY if fields[0] == KEY else "_|-".join(fields[:-1]))
    return sorted(rows)


def view(kind, argv, res, after):
    out = {"rc": res.rc, "err": err_lines(res)}
    if kind == "rpm_q":
        out["out"] = res.out
    elif "list" in argv or "check-update" in argv and res.rc == 100:
        out["list"] = salt_list(res.out)
    if after is not None:
        out["rpm"] = rpm_rows(after.out)
    return out


def test_dnf_rpm_conform(sides):
    run, write_repo, root = sides
    for i, (argv, recorded, *only) in enumerate(STEPS):
        if argv == "repo":
            write_repo(recorded)
            continue
        ref, got = run(argv, twin_only=bool(only))
        kind = "rpm_q" if argv[0] == "rpm" else "dnf"
        tail = (None, None)
        if "rpm" in recorded:
            tail = run(RPM_QA, twin_only=bool(only))
        tv = view(kind, argv, got, tail[1])
        if ref is not None:
            rv = view(kind, argv, ref, tail[0])
            assert rv == recorded, cf.diff_hint(f"step {i} {argv}: real {REAL_VERSION}? not as recorded", recorded, rv, who="real now")
        assert tv == recorded, cf.diff_hint(f"step {i} {argv}", recorded, tv)


def test_salt_list_pkgs_fields(sides):
    """rpm -qa with yumpkg's queryformat: the twin's rows have the real ones'
    seven fields, epoch '(none)' or a number, INSTALLTIME a time_t."""
    run, _write_repo, _root = sides
    for res in filter(None, run(RPM_QA)):
        for line in res.out.splitlines():
            fields = line.split("_|-")
            assert len(fields) == 7 and fields[5] == "(none)" and fields[6].isdigit(), line
            assert fields[1] == "(none)" or fields[1].isdigit(), line

