"""Real rpm/dnf/createrepo_c/gpg for the repository judges (Debian's dnf 4,
rpm 4.18, createrepo_c; `apt-get install dnf rpm createrepo-c gnupg`):
throwaway signing keys, tiny noarch packages built with rpmbuild and signed
with rpmsign, local repositories with (optionally signed) metadata, and dnf
run against a private reposdir and installroot. Nothing here touches the
host's /etc/yum.repos.d or rpm database."""

import os
import shutil
import subprocess

TOOLS = ("dnf", "rpm", "rpmbuild", "rpmsign", "createrepo_c", "gpg")
# the Debian package of each tool (installed when missing: tests/host_tools.py)
PACKAGES = {"dnf": "dnf", "rpm": "rpm", "rpmbuild": "rpm", "rpmsign": "rpm", "createrepo_c": "createrepo-c", "gpg": "gnupg"}

SPEC = """Name: {name}
Version: {version}
Release: {release}
Summary: K8sNvidia repository probe
License: MIT
BuildArch: noarch
{provides}%description
A package that only proves a repository definition works.
%install
mkdir -p %{{buildroot}}/usr/share/k8snvidia-probe
echo {name} > %{{buildroot}}/usr/share/k8snvidia-probe/{name}
%files
/usr/share/k8snvidia-probe/{name}
"""


def missing_tools():
    return [t for t in TOOLS if not shutil.which(t)]


def ensure_tools():
    """Install the missing tools; None, or why not (the judges skip)."""
    from tests import host_tools

    return host_tools.ensure(PACKAGES)


def run(args, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 300)
    return subprocess.run(args, **kw)


def check(args, **kw):
    res = run(args, **kw)
    if res.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return res


class Keyring:
    """A throwaway GnuPG home with named signing keys (RSA 2048, no passphrase)."""

    def __init__(self, home):
        self.home = str(home)
        os.makedirs(self.home, mode=0o700, exist_ok=True)
        self.keys = {}

    def gpg(self, *args):
        return check(["gpg", "--homedir", self.home, "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
                      *args])

    def new(self, name):
        uid = f"K8sNvidia judge {name} <{name}@judge.invalid>"
        self.gpg("--quick-gen-key", uid, "rsa2048", "sign", "never")
        out = self.gpg("--list-keys", "--with-colons", uid).stdout
        fpr = next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))
        self.keys[name] = {"uid": uid, "fpr": fpr}
        return fpr

    def export(self, name, path):
        text = self.gpg("--armor", "--export", self.keys[name]["fpr"]).stdout
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return path

    def sign_rpm(self, name, rpm_path):
        check(["rpmsign", "--addsign", "--define", f"_gpg_name {self.keys[name]['fpr']}",
               "--define", f"_gpg_path {self.home}", "--define", "__gpg /usr/bin/gpg", str(rpm_path)])

    def sign_file(self, name, path):
        """A detached armored signature, as repomd.xml.asc is."""
        if os.path.exists(f"{path}.asc"):
            os.remove(f"{path}.asc")
        self.gpg("--local-user", self.keys[name]["fpr"], "--armor", "--detach-sign", "--output", f"{path}.asc",
                 str(path))


def build_rpm(workdir, name, version="1.0", release="1", provides=()):
    """A noarch rpm named `name` (with `provides`, e.g. installonlypkg(kernel),
    what makes dnf keep every version side by side); returns its path."""
    top = os.path.join(str(workdir), f"rpmbuild-{name}-{version}-{release}")
    for sub in ("SPECS", "RPMS", "BUILD", "BUILDROOT", "SOURCES", "SRPMS"):
        os.makedirs(os.path.join(top, sub), exist_ok=True)
    spec = os.path.join(top, "SPECS", f"{name}.spec")
    with open(spec, "w", encoding="utf-8") as fh:
        fh.write(SPEC.format(name=name, version=version, release=release,
                             provides="".join(f"Provides: {p}\n" for p in provides)))
    check(["rpmbuild", "--define", f"_topdir {top}", "--define", "_build_id_links none", "--nodeps", "-bb", spec])
    out = os.path.join(top, "RPMS", "noarch", f"{name}-{version}-{release}.noarch.rpm")
    assert os.path.exists(out), out
    return out


def make_repo(path, rpms, keyring=None, metadata_key=None):
    """A yum repository at `path` holding `rpms`; repomd.xml signed by
    `metadata_key` of `keyring` when given (what repo_gpgcheck checks)."""
    os.makedirs(str(path), exist_ok=True)
    for rpm in rpms:
        shutil.copy(rpm, str(path))
    check(["createrepo_c", "--quiet", str(path)])
    if metadata_key:
        keyring.sign_file(metadata_key, os.path.join(str(path), "repodata", "repomd.xml"))
    return str(path)


def dnf(reposdir, installroot, *args, releasever="9"):
    """Real dnf with only the .repo files of `reposdir`, into `installroot`."""
    os.makedirs(os.path.join(str(installroot), "var/log"), exist_ok=True)
    if not os.path.isdir(os.path.join(str(installroot), "var/lib/rpm")):
        check(["rpm", "--root", str(installroot), "--initdb"])
    return run(["dnf", "-y", f"--installroot={installroot}", f"--releasever={releasever}",
                f"--setopt=reposdir={reposdir}", f"--setopt=cachedir={installroot}/var/cache/dnf",
                "--setopt=install_weak_deps=False", "--setopt=keepcache=False", "--noplugins",
                f"--setopt=logdir={installroot}/var/log", *args])
