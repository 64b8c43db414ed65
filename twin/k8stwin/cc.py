"""The twin's small C programs (the stand-in NVML library, the nodes' tool
client), compiled with the host's C compiler and kept by the hash of source
and flags: :func:`build`."""

import hashlib
import os
import pathlib
import shutil
import subprocess
import tempfile


def compiler():
    for cand in ("/usr/bin/cc", "/usr/bin/gcc"):
        if os.access(cand, os.X_OK):
            return cand
    return shutil.which("cc") or shutil.which("gcc")


def build(source, out_dir, stem, flags, suffix="", what="it"):
    """Path of ``source`` compiled with ``flags`` into ``out_dir`` as
    ``<stem>-<hash><suffix>`` (reused while source and flags are the same).
    Raises OSError (no compiler: ``what`` names the program) or
    CalledProcessError when it cannot be built."""
    source = pathlib.Path(source)
    key = hashlib.sha256(source.read_bytes() + " ".join(flags).encode()).hexdigest()[:16]
    out = pathlib.Path(out_dir) / f"{stem}-{key}{suffix}"
    if out.exists():
        return out
    cc = compiler()
    if cc is None:
        raise OSError(f"no C compiler (cc, gcc) to build {what}")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}-", suffix=suffix, dir=out.parent)
    os.close(fd)
    try:
        subprocess.run([cc, *flags, "-o", tmp, str(source)], check=True, capture_output=True, timeout=120,
                       stdin=subprocess.DEVNULL)
        os.chmod(tmp, 0o755)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
