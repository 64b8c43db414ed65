#!/usr/bin/env python3
"""Real containerd and dockerd binaries from Debian's archive, unpacked once.

Each judge line is one Debian suite's package: containerd 1.6 (bookworm),
1.7 (trixie), 2.1 (sid), and dockerd from sid's docker.io. The .debs are
fetched with the host's own apt-get (a private sources list, lists and
cache, so the host's apt state is not touched), unpacked with
``dpkg-deb -x`` under CACHE (outside the repo, reused between runs; a
missing or incomplete line is fetched again).

The mirror is http://deb.debian.org/debian unless K8SNVIDIA_DEBIAN_MIRROR
names another one.

Two users, neither importing the other: the real judges (tests/judges, through
tests/judges/binaries.py) and the twin, whose containerd *is* these binaries
(twin/k8stwin/realctd.py; the twin fetches the lines when a cluster comes up).
Standard library only, loadable by path. As a command:
``bin/debian_binaries.py [LINE...]`` fetches the lines (all when none are
named) and prints each line, its binary and the package it came from.
"""

import contextlib
import fcntl
import os
import pathlib
import shutil
import subprocess
import tempfile

CACHE = pathlib.Path(os.environ.get("K8SNVIDIA_JUDGE_CACHE", "/var/cache/k8snvidia-tests"))
MIRROR = os.environ.get("K8SNVIDIA_DEBIAN_MIRROR", "http://deb.debian.org/debian")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"

# line -> (suite, package, binary inside the package, expected version prefix)
LINES = {
    "containerd-1.6": ("bookworm", "containerd", "usr/bin/containerd", "1.6."),
    "containerd-1.7": ("trixie", "containerd", "usr/bin/containerd", "1.7."),
    "containerd-2.1": ("sid", "containerd", "usr/bin/containerd", "2.1."),
    "dockerd": ("sid", "docker.io", "usr/sbin/dockerd", ""),
}


class Unavailable(Exception):
    """The binary could not be fetched (no apt-get, no archive)."""


def _apt(tmp, suite):
    src = tmp / "sources.list"
    src.write_text(f"deb [signed-by={KEYRING}] {MIRROR} {suite} main\n")
    for sub in ("lists/partial", "cache/archives/partial", "parts"):
        (tmp / sub).mkdir(parents=True, exist_ok=True)
    return [
        "-o", f"Dir::Etc::SourceList={src}",
        "-o", f"Dir::Etc::SourceParts={tmp / 'parts'}",
        "-o", f"Dir::State::Lists={tmp / 'lists'}",
        "-o", f"Dir::Cache={tmp / 'cache'}",
        "-o", "APT::Architecture=amd64",
    ]  # fmt: skip


def _run(cmd, cwd=None):
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    if proc.returncode:
        raise Unavailable(f"{' '.join(cmd[:2])}... failed (rc {proc.returncode}): {proc.stderr.strip()[-400:]}")
    return proc.stdout


def fetch(line):
    """Unpack `line` into CACHE/<line> (if not there yet); return the
    path of its binary. Raises Unavailable when it cannot be fetched."""
    suite, package, binary, _ = LINES[line]
    root = CACHE / line
    exe = root / binary
    stamp = root / ".complete"
    if stamp.exists() and exe.exists():
        return exe
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise Unavailable("apt-get and dpkg-deb are needed to fetch the real binaries")
    CACHE.mkdir(parents=True, exist_ok=True)
    with _locked(CACHE / f".{line}.lock"):  # two test workers may want the same line
        if stamp.exists() and exe.exists():
            return exe
        _fetch(line, suite, package, root)
    return exe


@contextlib.contextmanager
def _locked(path):
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _fetch(line, suite, package, root):
    with tempfile.TemporaryDirectory(prefix="apt-", dir=CACHE) as tmp:
        tmp = pathlib.Path(tmp)
        opts = _apt(tmp, suite)
        _run(["apt-get", "-q", *opts, "update"])
        _run(["apt-get", "-q", *opts, "download", package], cwd=tmp)
        debs = sorted(tmp.glob(f"{package}_*.deb"))
        if not debs:
            raise Unavailable(f"apt-get download {package} ({suite}) gave no .deb")
        staging = pathlib.Path(tempfile.mkdtemp(prefix=line + "-", dir=CACHE))
        _run(["dpkg-deb", "-x", str(debs[0]), str(staging)])
        (staging / ".complete").write_text(debs[0].name + "\n")
        shutil.rmtree(root, ignore_errors=True)
        staging.rename(root)


def version(line):
    """The Debian package file name the line was unpacked from."""
    fetch(line)
    return (CACHE / line / ".complete").read_text().strip()


if __name__ == "__main__":
    import sys

    for name in sys.argv[1:] or LINES:
        if name not in LINES:
            sys.exit(f"unknown line {name!r}: expected one of {', '.join(LINES)}")
        try:
            print(name, fetch(name), version(name))
        except Unavailable as exc:
            sys.exit(f"{name}: {exc}")
