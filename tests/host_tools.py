"""Host packages some tiers need (dnf and rpm for the repository judges,
systemd-container and debootstrap for the real-node tier): installed with
the host's apt-get when missing, so the test command works on a fresh
machine. Two test workers may install at once: apt-get waits for the dpkg
lock instead of failing on it."""

import os
import shutil
import subprocess

APT = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "-o", "APT::Get::Assume-Yes=true"]


def ensure(tools):
    """``tools``: command -> Debian package. Installs the packages of the
    commands not on PATH; returns None, or the reason it could not (for a
    skip)."""
    missing = sorted({pkg for tool, pkg in tools.items() if not shutil.which(tool)})
    if not missing:
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return f"missing {', '.join(missing)} (root and apt-get install them)"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = [*APT, "install", "--no-install-recommends", *missing]
    proc = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:  # stale package lists on a fresh machine
        subprocess.run([*APT, "update"], capture_output=True, text=True, env=env, timeout=900)
        proc = subprocess.run(install, capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        return f"could not install {' '.join(missing)}: {proc.stderr.strip()[-500:]}"
    still = [t for t in tools if not shutil.which(t)]
    return f"{', '.join(still)} still missing after installing {' '.join(missing)}" if still else None
