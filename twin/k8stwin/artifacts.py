"""
The twin's artifact store: the downloads the states fetch, as files by
basename in one directory, which the twin hands to every minion as the
``k8snvidia.artifact_mirror`` option (``nvidia_driver.fetch`` looks there
before the network, by basename, and still checks the sha256).

**The driver ``.run``.** A real ``NVIDIA-Linux-x86_64-<ver>.run`` is a
makeself archive of about 400 MB. The twin's stand-in with the same name is a
short ``sh`` script that runs the emulated stub and installer of that version
(``k8stwin.tools.nvidia_installer``)::

    sh NVIDIA-Linux-x86_64-580.95.05.run --silent --dkms --kernel-name=K

Its sha256 is not NVIDIA's, so the shipped pillar's ``driver:sha256`` does
not match it. The twin therefore writes a pillar overlay with the sha256s of
its own artifacts (:func:`pillar_overlay`: ``k8snvidia:driver:sha256`` for
the pillar's driver version), layered over the chosen pillar; the checksum is
still verified on every node. A node with the ``download_checksum_mismatch``
fault gets a store whose file differs from that sha256 (:func:`corrupt`), so
``fetch`` fails as it would against a damaged mirror.
"""

import hashlib
import os
import shlex
import sys

TWIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def runfile_name(version, arch="x86_64"):
    return f"NVIDIA-Linux-{arch}-{version}.run"


def _script(module, argv0_expr, env=None, comment=""):
    lines = ["#!/bin/sh"]
    lines += [f"# {c}" for c in comment.splitlines()] if comment else []
    for key, val in (env or {}).items():
        lines.append(f"{key}={shlex.quote(val)}")
        lines.append(f"export {key}")
    lines.append(f"PYTHONPATH={shlex.quote(TWIN_DIR)}${{PYTHONPATH:+:$PYTHONPATH}}")
    lines.append("export PYTHONPATH")
    lines.append(f'exec "${{K8STWIN_PYTHON:-{sys.executable}}}" -m k8stwin.tools.{module} {argv0_expr} "$@"')
    return "\n".join(lines) + "\n"


def make_runfile(directory, version):
    """Write the twin's ``NVIDIA-Linux-x86_64-<version>.run`` into ``directory``.

    Returns ``(path, sha256)``."""
    os.makedirs(directory, exist_ok=True)
    name = runfile_name(version)
    text = _script(
        "nvidia_installer",
        '"$0"',
        env={"K8STWIN_NVIDIA_VERSION": str(version)},
        comment=(
            f"K8sNvidia cluster twin: stand-in for NVIDIA's {name} (a makeself archive).\n"
            f"It runs the twin's emulation of the stub and of nvidia-installer {version}."
        ),
    )
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o755)
    return path, sha256(path)


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def corrupt(path):
    """Change a stored artifact so that its sha256 no longer matches (the
    ``download_checksum_mismatch`` fault)."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("# corrupted by the k8stwin download_checksum_mismatch fault\n")
    return sha256(path)


def pillar_overlay(directory, driver_version):
    """The pillar data that makes the twin's driver artifact the one the
    states expect: ``{"k8snvidia": {"driver": {"version", "sha256"}}}``.
    The URL keeps its basename, so the artifact mirror finds the file."""
    path, digest = make_runfile(directory, driver_version)
    return {"k8snvidia": {"driver": {"version": str(driver_version), "sha256": digest}}}
