"""
The twin's artifact store: the downloads the states fetch, as files by
basename in one directory, which the twin hands to every minion as the
``k8snvidia.artifact_mirror`` option (``nvidia_driver.fetch`` looks there
before the network, by basename, and still checks the sha256).

**The driver ``.run``.** A real ``NVIDIA-Linux-x86_64-<ver>.run`` is a
makeself archive of about 400 MB. The twin's stand-in with the same name is a
short ``sh`` script that runs the emulated stub and installer
(``k8stwin.tools.nvidia_installer``), which takes the driver version from the
file's name::

    sh NVIDIA-Linux-x86_64-580.95.05.run --silent --dkms --kernel-name=K

The script is the same for every version and names no path of the host (it
runs ``$K8STWIN_PYTHON`` with the node's ``PYTHONPATH``), so every stand-in
has one sha256, :data:`RUNFILE_SHA256`. It is not NVIDIA's, so the shipped
pillar's ``driver:sha256`` does not match it: the twin layers the pillar
overlay of :func:`populate` (``k8snvidia:driver:sha256`` = that sha256) over
the chosen pillar, and the checksum is still verified on every node. Since
the value is the same for every version, per-node driver versions need no
overlay of their own. A store file changed by :func:`corrupt` no longer
matches (the ``download_checksum_mismatch`` fault).
"""

import hashlib
import os
import re

RUNFILE_SCRIPT = """\
#!/bin/sh
# K8sNvidia cluster twin: stand-in for NVIDIA's NVIDIA-Linux-x86_64-<version>.run
# (a makeself archive). It runs the twin's emulation of the makeself stub and of
# nvidia-installer; the version is taken from this file's name.
exec "${K8STWIN_PYTHON:-python3}" -m k8stwin.tools.nvidia_installer "$0" "$@"
"""
RUNFILE_SHA256 = hashlib.sha256(RUNFILE_SCRIPT.encode()).hexdigest()
# Driver releases the store always holds (the shipped profiles' and a few
# per branch for tests); populate() adds the ones a pillar names.
DEFAULT_VERSIONS = ("440.100", "535.183.01", "550.127.05", "570.195.03", "580.95.05", "590.44.01")
_PILLAR_VERSION_RE = re.compile(r"""^\s*version:\s*['"]?(\d{3}\.\d{1,3}(?:\.\d{1,3})?)['"]?\s*(?:#.*)?$""", re.M)


def runfile_name(version, arch="x86_64"):
    return f"NVIDIA-Linux-{arch}-{version}.run"


def make_runfile(directory, version):
    """Write the twin's ``NVIDIA-Linux-x86_64-<version>.run`` into ``directory``.

    Returns ``(path, sha256)``; the sha256 is :data:`RUNFILE_SHA256`."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, runfile_name(version))
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(RUNFILE_SCRIPT)
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
    ``download_checksum_mismatch`` fault). Returns the new sha256."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("# corrupted by the k8stwin download_checksum_mismatch fault\n")
    return sha256(path)


def pillar_versions(pillar_dir):
    """Driver versions a pillar directory names (``version: NNN.NN[.NN]`` in
    any .sls; Kubernetes versions are 1.x and never match)."""
    found = []
    for base, _dirs, files in os.walk(pillar_dir or ""):
        for name in sorted(files):
            if not name.endswith(".sls"):
                continue
            try:
                with open(os.path.join(base, name), encoding="utf-8") as fh:
                    text = fh.read()
            except OSError:
                continue
            for ver in _PILLAR_VERSION_RE.findall(text):
                if ver not in found:
                    found.append(ver)
    return found


def pillar_overlay():
    """The pillar data that makes the twin's driver artifacts the ones the
    states expect."""
    return {"k8snvidia": {"driver": {"sha256": RUNFILE_SHA256}}}


def populate(directory, pillar_dir=None, versions=None):
    """Fill the store (called by the twin at ``up``): a ``.run`` stand-in for
    every default version, every driver version ``pillar_dir`` names and
    ``versions``. Returns the pillar overlay (:func:`pillar_overlay`)."""
    wanted = list(DEFAULT_VERSIONS) + pillar_versions(pillar_dir) + list(versions or [])
    for ver in dict.fromkeys(wanted):
        make_runfile(directory, ver)
    try:  # repository keys the apt states download (k8stwin.pkgdb, the OS tools' part)
        from . import pkgdb

        for name, text in pkgdb.repository_keys().items():
            if not os.path.exists(os.path.join(directory, name)):
                with open(os.path.join(directory, name), "w", encoding="utf-8") as fh:
                    fh.write(text)
    except ImportError:
        pass
    return pillar_overlay()


def node_mirror(store, dest, faults=None):
    """The ``k8snvidia.artifact_mirror`` of one node: the shared ``store``,
    or, for a node with the ``download_checksum_mismatch`` fault, a copy of
    it in ``dest`` whose files no longer match their sha256."""
    if not (faults or {}).get("download_checksum_mismatch"):
        return store
    os.makedirs(dest, exist_ok=True)
    for name in sorted(os.listdir(store)):
        src = os.path.join(store, name)
        if os.path.isfile(src):
            with open(src, "rb") as fh, open(os.path.join(dest, name), "wb") as out:
                out.write(fh.read())
            corrupt(os.path.join(dest, name))
    return dest
