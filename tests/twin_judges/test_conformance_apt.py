"""Conformance: the twin's apt-get and apt-cache (twin/k8stwin/tools/apt_get.py,
apt_cache.py) against Debian 12's apt 2.6.1 on a scratch root.

A local repository (four tiny .debs built with dpkg-deb: alpha 1.0 and 1.1,
beta depending on alpha, gamma with an epoch and a conffile), its InRelease
signed with a throwaway key, served on loopback; the twin gets the same
sources file and a catalog listing the same packages. Real apt runs with
`-o Dir=ROOT` (its own sources, lists, cache and dpkg database; dpkg
`--root=ROOT`). One sequence of the command lines Salt's aptpkg runs
(refresh_db, latest_version's `apt-cache -q policy`, install with the
confold/confdef options, `--force-yes` for a downgrade, hold/unhold
through dpkg --set-selections, remove, purge), plus the failures a state
meets (unknown package or version, held package, unsigned repository,
missing Release file, two keyrings for one source). Compared at each step:
exit code, the E:/W: lines, what Salt parses (refresh_db's Get/Hit/Ign/Err
lines, the policy text) and the package list afterwards."""

import hashlib
import re
import shutil

import pytest

from tests.twin_judges import conformance as cf

REAL_VERSION = "2.6.1"  # apt on Debian 12 when these were recorded

PACKAGES = [  # name, version, Depends, conffile
    ("alpha", "1.0", None, False), ("alpha", "1.1", None, False),
    ("beta", "2.0-1", "alpha (>= 1.0)", False), ("gamma", "1:0.5-2", None, True),
]
CATALOG = """repositories:
  - name: judge
    type: deb
    urls: ["http://127.0.0.1:*/repo", "http://127.0.0.1:*/other", "http://127.0.0.1:*/new"]
    suites: [stable]
    packages:
      alpha: {versions: ["1.0", "1.1"]}
      beta: {versions: ["2.0-1"], requires: ["alpha (>= 1.0)"]}
      gamma: {versions: ["1:0.5-2"], payload: {files: {/etc/gamma.conf: "x=1\\n"}}}
"""
SALT_INSTALL = ["apt-get", "-q", "-y", "-o", "DPkg::Options::=--force-confold", "-o",
                "DPkg::Options::=--force-confdef", "install"]  # aptpkg.install
SALT_DOWNGRADE = SALT_INSTALL[:-1] + ["--force-yes", "install"]  # aptpkg.install, a lower version
LIST = ["dpkg-query", "--showformat", "${Status} ${Package} ${Version} ${Architecture}\n", "-W"]  # list_pkgs
NO_KEY = "The following signatures couldn't be verified because the public key is not available: NO_PUBKEY KEYID"
SIGNED = "deb [signed-by={root}/etc/apt/keyrings/judge.gpg] {url}/repo stable main\n"

# (what, argv or action, recorded real view); views are described in view()
UPDATED = {"URL/repo stable InRelease": True, "URL/repo stable/main amd64 Packages": True}
II = "install ok installed"
STEPS = [
    ("update", ["apt-get", "-q", "update"], {"rc": 0, "err": [], "salt": UPDATED}),
    ("update", ["apt-get", "-q", "update"], {"rc": 0, "err": [], "salt": {"URL/repo stable InRelease": None}}),
    ("policy", ["apt-cache", "-q", "policy", "alpha", "beta", "nosuch"], {"rc": 0, "err": [], "out": (
        "alpha:\n  Installed: (none)\n  Candidate: 1.1\n  Version table:\n     1.1 500\n"
        "        500 URL/repo stable/main amd64 Packages\n     1.0 500\n        500 URL/repo stable/main amd64 Packages\n"
        "beta:\n  Installed: (none)\n  Candidate: 2.0-1\n  Version table:\n     2.0-1 500\n"
        "        500 URL/repo stable/main amd64 Packages\n")}),
    ("install", SALT_INSTALL + ["alpha=1.0"], {"rc": 0, "err": [], "pkgs": [f"{II} alpha 1.0 amd64"]}),
    ("policy", ["apt-cache", "-q", "policy", "alpha"], {"rc": 0, "err": [], "out": (
        "alpha:\n  Installed: 1.0\n  Candidate: 1.1\n  Version table:\n     1.1 500\n"
        "        500 URL/repo stable/main amd64 Packages\n *** 1.0 500\n        500 URL/repo stable/main amd64 Packages\n"
        "        100 /var/lib/dpkg/status\n")}),
    ("install", SALT_INSTALL + ["beta"], {"rc": 0, "err": [], "pkgs": [f"{II} alpha 1.0 amd64", f"{II} beta 2.0-1 amd64"]}),
    ("install", SALT_INSTALL + ["nosuch"], {"rc": 100, "err": ["E: Unable to locate package nosuch"],
                                            "pkgs": [f"{II} alpha 1.0 amd64", f"{II} beta 2.0-1 amd64"]}),
    ("install", SALT_INSTALL + ["alpha=9"], {"rc": 100, "err": ["E: Version '9' for 'alpha' was not found"],
                                             "pkgs": [f"{II} alpha 1.0 amd64", f"{II} beta 2.0-1 amd64"]}),
    ("install", SALT_INSTALL + ["alpha=1.0"], {"rc": 0, "err": [],
                                               "pkgs": [f"{II} alpha 1.0 amd64", f"{II} beta 2.0-1 amd64"]}),
    ("selections", "alpha hold\n", {"rc": 0, "err": []}),
    # a dpkg hold does not change apt's candidate
    ("policy", ["apt-cache", "-q", "policy", "alpha"], {"rc": 0, "err": [], "out": (
        "alpha:\n  Installed: 1.0\n  Candidate: 1.1\n  Version table:\n     1.1 500\n"
        "        500 URL/repo stable/main amd64 Packages\n *** 1.0 500\n        500 URL/repo stable/main amd64 Packages\n"
        "        100 /var/lib/dpkg/status\n")}),
    ("install", SALT_INSTALL + ["alpha=1.1"], {"rc": 100, "err": [
        "E: Held packages were changed and -y was used without --allow-change-held-packages."],
        "pkgs": ["hold ok installed alpha 1.0 amd64", f"{II} beta 2.0-1 amd64"]}),
    ("selections", "alpha install\n", {"rc": 0, "err": []}),
    ("install", SALT_INSTALL + ["alpha=1.1"], {"rc": 0, "err": [],
                                               "pkgs": [f"{II} alpha 1.1 amd64", f"{II} beta 2.0-1 amd64"]}),
    ("install", SALT_INSTALL + ["alpha=1.0"], {"rc": 100, "err": [
        "E: Packages were downgraded and -y was used without --allow-downgrades."],
        "pkgs": [f"{II} alpha 1.1 amd64", f"{II} beta 2.0-1 amd64"]}),
    ("install", SALT_DOWNGRADE + ["alpha=1.0"], {"rc": 0, "err": [
        "W: --force-yes is deprecated, use one of the options starting with --allow instead."],
        "pkgs": [f"{II} alpha 1.0 amd64", f"{II} beta 2.0-1 amd64"]}),
    ("install", SALT_INSTALL + ["gamma"], {"rc": 0, "err": [], "pkgs": [
        f"{II} alpha 1.0 amd64", f"{II} beta 2.0-1 amd64", f"{II} gamma 1:0.5-2 amd64"]}),
    # what depends on a removed package is removed with it; no conffiles: no config-files state
    ("install", ["apt-get", "-q", "-y", "remove", "alpha"], {"rc": 0, "err": [], "pkgs": [f"{II} gamma 1:0.5-2 amd64"]}),
    ("install", ["apt-get", "-q", "-y", "remove", "gamma"], {"rc": 0, "err": [], "pkgs": [
        "deinstall ok config-files gamma 1:0.5-2 amd64"]}),
    ("install", ["apt-get", "-q", "-y", "remove", "gamma"], {"rc": 0, "err": [], "pkgs": [
        "deinstall ok config-files gamma 1:0.5-2 amd64"]}),
    ("install", ["apt-get", "-q", "-y", "purge", "gamma"], {"rc": 0, "err": [], "pkgs": []}),
    ("install", ["apt-get", "-q", "-y", "remove", "nosuch"], {"rc": 100, "err": ["E: Unable to locate package nosuch"],
                                                             "pkgs": []}),
    ("install", SALT_INSTALL + ["gamma"], {"rc": 0, "err": [], "pkgs": [f"{II} gamma 1:0.5-2 amd64"]}),
    # a second keyring for the same source: apt reads no sources at all
    ("sources", "deb [signed-by={root}/etc/apt/keyrings/other.gpg] {url}/repo stable main\n", {}),
    ("update", ["apt-get", "-q", "update"], {"rc": 100, "salt": {}, "err": [
        "E: Conflicting values set for option Signed-By regarding source URL/repo/ stable: "
        "/etc/apt/keyrings/judge.gpg != /etc/apt/keyrings/other.gpg", "E: The list of sources could not be read."]}),
    ("install", SALT_INSTALL + ["alpha"], {"rc": 100, "pkgs": [f"{II} gamma 1:0.5-2 amd64"], "err": [
        "E: Conflicting values set for option Signed-By regarding source URL/repo/ stable: "
        "/etc/apt/keyrings/judge.gpg != /etc/apt/keyrings/other.gpg", "E: The list of sources could not be read."]}),
    # the keyring of a source fetched before is gone: apt warns and keeps the old indexes
    ("sources", None, {}),
    ("replace", "deb [signed-by={root}/etc/apt/keyrings/none.gpg] {url}/repo stable main\n", {}),
    ("update", ["apt-get", "-q", "update"], {"rc": 0, "salt": {"URL/repo stable InRelease": False}, "err": [
        "W: An error occurred during the signature verification. The repository is not updated and the previous "
        "index files will be used. GPG error: URL/repo stable InRelease: " + NO_KEY,
        "W: Failed to fetch URL/repo/dists/stable/InRelease  " + NO_KEY,
        "W: Some index files failed to download. They have been ignored, or old ones used instead."]}),
    ("policy", ["apt-cache", "-q", "policy", "beta"], {"rc": 0, "err": [], "out": (
        "beta:\n  Installed: (none)\n  Candidate: 2.0-1\n  Version table:\n     2.0-1 500\n"
        "        500 URL/repo stable/main amd64 Packages\n")}),
    # a source never fetched, whose keyring is missing: not signed, an error
    ("replace", "deb [signed-by={root}/etc/apt/keyrings/none.gpg] {url}/other stable main\n", {}),
    ("update", ["apt-get", "-q", "update"], {"rc": 100, "salt": {"URL/other stable InRelease": False}, "err": [
        "W: GPG error: URL/other stable InRelease: " + NO_KEY, "E: The repository 'URL/other stable InRelease' is not signed."]}),
    # a source that has no Release file (404)
    ("replace", SIGNED.replace("/repo ", "/missing "), {}),
    ("update", ["apt-get", "-q", "update"], {"rc": 100, "err": [
        "E: The repository 'URL/missing stable Release' does not have a Release file."],
        "salt": {"URL/missing stable InRelease": False, "URL/missing stable Release": False}}),
]


def salt_refresh(out):
    """aptpkg.refresh_db's reading of `apt-get -q update`."""
    ret = {}
    for line in out.splitlines():
        cols = line.split()
        if not cols:
            continue
        ident = " ".join(cols[1:])
        if "Get" in cols[0]:
            ret[re.sub(r" \[.+B\]$", "", ident)] = True
        elif "Ign" in cols[0] or "Err" in cols[0]:
            ret[ident] = False
        elif "Hit" in cols[0]:
            ret[ident] = None
    return ret


def norm(text, url, root):
    text = text.replace(url, "URL").replace(str(root), "")
    return re.sub(r"NO_PUBKEY [0-9A-F]{16}", "NO_PUBKEY KEYID", text)


def err_lines(text):
    return [line for line in text.splitlines() if line[:2] in ("E:", "W:")]


def build_repo(base):
    """The .debs, Packages, Release and InRelease (signed); returns the keyring."""
    repo = base / "srv/repo"
    pool = repo / "pool"
    pool.mkdir(parents=True)
    for name, ver, deps, conffile in PACKAGES:
        d = base / "build" / f"{name}-{ver}"
        (d / "DEBIAN").mkdir(parents=True)
        (d / "usr/share/doc" / name).mkdir(parents=True)
        (d / "usr/share/doc" / name / "README").write_text(name)
        if conffile:
            (d / "etc").mkdir()
            (d / f"etc/{name}.conf").write_text("x=1\n")
            (d / "DEBIAN/conffiles").write_text(f"/etc/{name}.conf\n")
        (d / "DEBIAN/control").write_text(
            f"Package: {name}\nVersion: {ver}\nArchitecture: amd64\nMaintainer: judge <j@judge.invalid>\n"
            + (f"Depends: {deps}\n" if deps else "") + f"Description: conformance probe {name}\n")
        res = cf.real(["dpkg-deb", "-Zgzip", "--build", d, pool / f"{name}_{ver.split(':')[-1]}_amd64.deb"])
        assert res.rc == 0, res.err
    index = repo / "dists/stable/main/binary-amd64"
    index.mkdir(parents=True)
    packages = cf.real(["dpkg-scanpackages", "--multiversion", "pool", "/dev/null"], cwd=repo).out
    (index / "Packages").write_text(packages)
    data = packages.encode()
    (repo / "dists/stable/Release").write_text(
        "Origin: judge\nLabel: judge\nSuite: stable\nCodename: stable\nArchitectures: amd64\nComponents: main\n"
        "Date: Thu, 01 Jan 2026 00:00:00 UTC\nSHA256:\n"
        f" {hashlib.sha256(data).hexdigest()} {len(data)} main/binary-amd64/Packages\n")
    home = base / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback", "--passphrase", ""]
    try:
        assert cf.real(gpg + ["--quick-gen-key", "judge <j@judge.invalid>", "rsa2048", "sign", "never"]).rc == 0
        assert cf.real(gpg + ["--clearsign", "--output", repo / "dists/stable/InRelease",
                              repo / "dists/stable/Release"]).rc == 0
        keyring = base / "judge.gpg"
        assert cf.real(gpg + ["--output", keyring, "--export"]).rc == 0
    finally:
        cf.real(["gpgconf", "--homedir", home, "--kill", "gpg-agent"])
    return keyring


@pytest.fixture(scope="module")
def apt_sides(tmp_path_factory):
    """(run, twin, real root, url): run(argv, stdin) -> (real Result or None, twin Result)."""
    base = tmp_path_factory.mktemp("apt")
    have = all(shutil.which(t) for t in ("apt-get", "dpkg-deb", "dpkg-scanpackages", "gpg"))
    keyring = build_repo(base) if have else None
    (base / "catalog").mkdir()
    (base / "catalog/judge.yaml").write_text(CATALOG)
    twin = cf.TwinNode(base / "twin", catalog=base / "catalog")
    twin.write("/etc/apt/keyrings/judge.gpg", "stand-in key")
    root = base / "real"
    for d in ("etc/apt/sources.list.d", "etc/apt/preferences.d", "etc/apt/apt.conf.d", "etc/apt/trusted.gpg.d",
              "etc/apt/keyrings", "var/lib/apt/lists/partial", "var/cache/apt/archives/partial",
              "var/lib/dpkg/updates", "var/lib/dpkg/info", "var/log/apt"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for f in ("status", "available"):
        (root / "var/lib/dpkg" / f).write_text("")
    if keyring:
        shutil.copy(keyring, root / "etc/apt/keyrings/judge.gpg")
    opts = ["-o", f"Dir={root}", "-o", f"Dir::State::status={root}/var/lib/dpkg/status", "-o",
            f"DPkg::Options::=--root={root}", "-o", "APT::Architecture=amd64", "-o", "Debug::NoLocking=1",
            "-o", "APT::Sandbox::User=root"]
    serve = base / "srv"
    serve.mkdir(exist_ok=True)
    for alias in ("other", "new"):  # the same repository, under URLs apt has never fetched
        (serve / alias).symlink_to("repo")
    with cf.http_dir(serve) as url:

        def run(argv, stdin=None):
            ref = None
            if have:
                if argv[0] in ("apt-get", "apt-cache"):
                    ref = cf.real([argv[0], *opts, *argv[1:]], stdin=stdin)
                else:
                    ref = cf.real([argv[0], f"--admindir={root}/var/lib/dpkg", *argv[1:]], stdin=stdin)
            return ref, twin.run(argv, stdin=stdin)

        yield run, twin, root if have else None, url


def write_source(twin, root, url, name, text):
    for prefix, where in (("", twin.root), (str(root) if root else None, root)):
        if where is None:
            continue
        p = where / "etc/apt/sources.list.d" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if text is None:
            p.unlink()
        else:
            p.write_text(text.format(root=prefix, url=url))


def view(kind, res, url, root, sides):
    out = {"rc": res.rc, "err": err_lines(norm(res.err, url, root))}
    if kind == "update":
        out["salt"] = salt_refresh(norm(res.out, url, root))
    elif kind == "policy":
        out["out"] = norm(res.out, url, root)
    elif kind == "install":
        out["pkgs"] = sorted(sides.out.splitlines())
    return out


def test_apt_conforms(apt_sides):
    run, twin, root, url = apt_sides
    write_source(twin, root, url, "judge.list", SIGNED)
    for i, (kind, arg, recorded) in enumerate(STEPS):
        if kind in ("sources", "replace"):
            write_source(twin, root, url, "judge.list" if kind == "replace" else "second.list", arg)
            continue
        if kind == "selections":
            ref, got = run(["dpkg", "--set-selections"], stdin=arg)
        else:
            ref, got = run(arg)
        lists = run(LIST) if kind == "install" else (None, None)
        want = dict(recorded)
        tv = view(kind, got, url, twin.root, lists[1])
        if ref is not None:
            rv = view(kind, ref, url, root, lists[0])
            assert rv == want, cf.diff_hint(f"step {i} {arg}: real apt {REAL_VERSION}? no longer as recorded", want, rv, who="real now")
        assert tv == want, cf.diff_hint(f"step {i} {arg}", want, tv)


def test_update_prints_no_notices_off_a_terminal(apt_sides):
    """Without -q too, apt prints no N: notices ("Updating from such a
    repository can't be done securely...") when stdout is not a terminal,
    as under Salt: it sets quiet level 1 itself."""
    run, twin, root, url = apt_sides
    write_source(twin, root, url, "judge.list", "deb [signed-by={root}/etc/apt/keyrings/none.gpg] {url}/new stable main\n")
    ref, got = run(["apt-get", "update"])
    for res in filter(None, (ref, got)):
        assert res.rc == 100 and "is not signed" in res.err and "N:" not in res.err, res
