"""
The NVIDIA ``.run`` driver on this host: what is installed, fetching the
installer with a checked sha256, and running it.

Where the facts come from (no subprocess, so they are cheap and safe to call
from a state's test mode):

* **installed version** -- the installer's own record, the backup log
  ``/var/lib/nvidia/log``. ``nvidia-installer`` rewrites it at every install;
  its first line is ``1.0-<digits> (<version>)``, e.g.
  ``1.0-5809505 (580.95.05)`` (NVIDIA/nvidia-installer ``backup.c``:
  ``init_backup`` and ``create_backwards_compatible_version_string``), and an
  uninstall removes the directory. A driver from distribution packages has no
  such log and is reported as not installed by ``.run``.
* **loaded version** -- ``<procfs>/driver/nvidia/version`` (exists only while
  the module is loaded; the ``k8snvidia.procfs_root`` minion option,
  default ``/proc``, read by ``_utils/host.py``).
* **built for a kernel** -- DKMS's tree ``/var/lib/dkms/nvidia/<ver>/<K>/``
  (what ``dkms status`` itself reads), else an ``nvidia.ko`` under
  ``/lib/modules/<K>/`` whose ``.modinfo`` section gives ``version=`` and
  ``license=`` (``NVIDIA``: proprietary, ``Dual MIT/GPL``: open).

Paths are joined to the minion option ``k8snvidia.root`` (default ``/``,
``host.root``; the older ``nvidia_driver.root`` still read), which only tests
change.
"""

import hashlib
import logging
import lzma
import os
import re
import shutil
import urllib.parse
import urllib.request

import salt.utils.path
from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "nvidia_driver"

BACKUP_LOG = "/var/lib/nvidia/log"
INSTALLER_LOG = "/var/log/nvidia-installer.log"
DKMS_TREE = "/var/lib/dkms/nvidia"
MODULE_DIRS = ("kernel/drivers/video", "updates/dkms", "extra", "updates", "kernel/drivers/gpu/drm/nvidia")
KO_NAMES = ("nvidia.ko", "nvidia.ko.xz", "nvidia.ko.zst", "nvidia.ko.gz")
RUNFILE_RE = re.compile(r"NVIDIA-Linux-[A-Za-z0-9_]+-(\d+\.\d+(?:\.\d+)?)(?:-[a-z0-9-]+)?\.run$")
VERSION_RE = re.compile(r"\b(\d{3}\.\d{1,3}(?:\.\d{1,3})?)\b")
# the generic last line of every failed install (NI install-from-cwd.c)
GENERIC_FAILURE = "Installation has failed."


def __virtual__():
    if os.name != "posix":
        return (False, "nvidia_driver: the NVIDIA .run installer exists for Linux only")
    return __virtualname__


# ------------------------------------------------------------------ helpers
def _root():
    return __utils__["host.root"](__opts__)


def _path(path):
    """An absolute host path under the configured root."""
    return os.path.join(_root(), path.lstrip("/"))


def _procfs():
    return __utils__["host.procfs"](__opts__)


def version_tuple(version):
    """``'580.95.05'`` -> ``(580, 95, 5)``; unparsable parts count as 0.

    CLI Example:

    .. code-block:: bash

        salt-call nvidia_driver.version_tuple 520.56.06
    """
    return __utils__["nvidia_gpu.version_tuple"](version)


def version_from_runfile(path):
    """The driver version in a ``NVIDIA-Linux-<arch>-<version>.run`` name, or None.

    CLI Example:

    .. code-block:: bash

        salt-call nvidia_driver.version_from_runfile /var/cache/k8snvidia/NVIDIA-Linux-x86_64-580.95.05.run
    """
    match = RUNFILE_RE.search(os.path.basename(str(path or "")))
    return match.group(1) if match else None


def _modinfo(path):
    """``{"version", "license", "vermagic"}`` from a module's .modinfo strings,
    read without modinfo(8). Compressed .ko.xz is read; .zst/.gz give {}."""
    try:
        if path.endswith(".xz"):
            with lzma.open(path, "rb") as fh:
                data = fh.read(256 * 1024 * 1024)
        elif path.endswith((".zst", ".gz")):
            return {}
        else:
            with open(path, "rb") as fh:
                data = fh.read()
    except (OSError, lzma.LZMAError):
        return {}
    info = {}
    for key in ("version", "license", "vermagic"):
        match = re.search(rb"(?:^|\x00)" + key.encode() + rb"=([^\x00]*)\x00", data)
        if match:
            info[key] = match.group(1).decode("utf-8", "replace")
    return info


def _module_type(license_):
    if not license_:
        return None
    return "open" if "GPL" in license_ else "proprietary"


# ------------------------------------------------------------------ facts
def installed_version():
    """
    The version of the driver installed by a ``.run`` file (None when there
    is none), from the installer's backup log ``/var/lib/nvidia/log``.

    CLI Example:

    .. code-block:: bash

        salt '*' nvidia_driver.installed_version
    """
    try:
        with open(_path(BACKUP_LOG), encoding="utf-8", errors="replace") as fh:
            first = fh.readline().strip()
    except OSError:
        return None
    # "1.0-5809505 (580.95.05)"; very old installers wrote "1.0-9631"
    match = re.search(r"\(([^)]+)\)", first)
    if match:
        return match.group(1).strip()
    return first or None


def loaded_version():
    """
    The version of the NVIDIA kernel module that is loaded now (None when
    none is), from ``/proc/driver/nvidia/version``.

    CLI Example:

    .. code-block:: bash

        salt '*' nvidia_driver.loaded_version
    """
    # "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.95.05  Tue Sep 23 ...",
    # read as the nvidia grain reads it
    return __utils__["nvidia_gpu.read_driver_version"](_procfs())[0]


def built_for(kernel):
    """
    The NVIDIA module present for kernel release ``kernel``:
    ``{"version", "module_type", "path", "dkms"}``, or None when there is none.

    CLI Example:

    .. code-block:: bash

        salt '*' nvidia_driver.built_for 5.4.278-1.el7.elrepo.x86_64
    """
    found = None
    base = _path(f"/lib/modules/{kernel}")
    for sub in MODULE_DIRS:
        for name in KO_NAMES:
            path = os.path.join(base, sub, name)
            if os.path.isfile(path):
                found = path
                break
        if found:
            break
    dkms_ver = None
    tree = _path(DKMS_TREE)
    try:
        for ver in sorted(os.listdir(tree), key=version_tuple, reverse=True):
            if os.path.isdir(os.path.join(tree, ver, kernel)):
                dkms_ver = ver
                break
    except OSError:
        pass
    if not found and not dkms_ver:
        return None
    info = _modinfo(found) if found else {}
    return {
        "version": info.get("version") or dkms_ver,
        "module_type": _module_type(info.get("license")),
        "path": found,
        "dkms": dkms_ver is not None,
    }


def kernel_source(kernel):
    """
    The kernel source (headers) tree the installer would use for ``kernel``
    (``/lib/modules/K/source``, ``/lib/modules/K/build``, ``/usr/src/kernels/K``
    or ``/usr/src/linux-K``), or None when it is missing.

    CLI Example:

    .. code-block:: bash

        salt '*' nvidia_driver.kernel_source 5.15.0-76-generic
    """
    for cand in (
        f"/lib/modules/{kernel}/source",
        f"/lib/modules/{kernel}/build",
        f"/usr/src/kernels/{kernel}",
        f"/usr/src/linux-{kernel}",
    ):
        if os.path.isdir(_path(cand)):
            return cand
    return None


def info():
    """
    All driver facts at once: installed (``.run``) version, loaded version,
    and whether an uninstaller is present.

    CLI Example:

    .. code-block:: bash

        salt '*' nvidia_driver.info
    """
    return {
        "installed_version": installed_version(),
        "loaded_version": loaded_version(),
        "uninstaller": os.path.exists(_path("/usr/bin/nvidia-uninstall")),
    }


# ------------------------------------------------------------------ fetch
def sha256sum(path):
    """
    The sha256 of a file, in hex.

    CLI Example:

    .. code-block:: bash

        salt '*' nvidia_driver.sha256sum /var/cache/k8snvidia/NVIDIA-Linux-x86_64-580.95.05.run
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def mirror_source(url):
    """
    Where ``url``'s file is found in the artifact mirror (minion option
    ``k8snvidia.artifact_mirror``: a directory or ``file://`` URL holding files
    by basename), or None: ``host.mirror_source``, as ``k8snvidia.mirror_source``
    (the SLS files' lookup).

    CLI Example:

    .. code-block:: bash

        salt '*' nvidia_driver.mirror_source https://us.download.nvidia.com/.../NVIDIA-Linux-x86_64-580.95.05.run
    """
    return __utils__["host.artifact_source"](url, __opts__, __salt__.get("config.get"))


def cached_path(url, cache_dir):
    """
    Where ``fetch`` keeps ``url`` in ``cache_dir``.

    CLI Example:

    .. code-block:: bash

        salt '*' nvidia_driver.cached_path https://host/NVIDIA-Linux-x86_64-580.95.05.run /var/cache/k8snvidia
    """
    return os.path.join(cache_dir, __utils__["host.url_basename"](url))


def fetch(url, sha256, cache_dir="/var/cache/k8snvidia", timeout=300):
    """
    Put ``url``'s file in ``cache_dir`` and check its sha256. A cached copy
    with the right sha256 is reused; the artifact mirror
    (``k8snvidia.artifact_mirror``) is tried before the network. A mismatch
    removes the file and raises: nothing is left to install.

    Returns ``{"path", "sha256", "source", "downloaded"}``.

    CLI Example:

    .. code-block:: bash

        salt '*' nvidia_driver.fetch https://us.download.nvidia.com/XFree86/Linux-x86_64/580.95.05/NVIDIA-Linux-x86_64-580.95.05.run 849ef0ef...
    """
    want = str(sha256 or "").strip().lower()
    if not re.match(r"^[0-9a-f]{64}$", want):
        raise CommandExecutionError(f"sha256 {sha256!r} is not a 64-hex-digit sha256: every download is checked")
    dest = cached_path(url, cache_dir)
    if os.path.isfile(dest) and sha256sum(dest) == want:
        return {"path": dest, "sha256": want, "source": dest, "downloaded": False}
    os.makedirs(cache_dir, mode=0o755, exist_ok=True)
    tmp = dest + ".part"
    try:
        source = mirror_source(url)
        if source:
            shutil.copyfile(source, tmp)
        else:
            parsed = urllib.parse.urlparse(str(url))
            if parsed.scheme == "file":
                source = __utils__["host.local_path"](url)
                shutil.copyfile(source, tmp)
            elif parsed.scheme in ("http", "https"):
                source = str(url)
                with urllib.request.urlopen(source, timeout=timeout) as resp, open(tmp, "wb") as out:  # noqa: S310
                    shutil.copyfileobj(resp, out, 1024 * 1024)
            else:
                raise CommandExecutionError(f"cannot download {url!r}: only https://, http:// and file:// are supported")
    except (OSError, ValueError) as exc:
        _unlink(tmp)
        raise CommandExecutionError(f"download of {url} failed: {exc}") from exc
    got = sha256sum(tmp)
    if got != want:
        _unlink(tmp)
        _unlink(dest)
        raise CommandExecutionError(
            f"sha256 mismatch for {os.path.basename(dest)} (from {source}): expected {want}, got {got}; "
            "the file was removed and nothing was installed"
        )
    os.replace(tmp, dest)
    return {"path": dest, "sha256": want, "source": source, "downloaded": True}


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


# ------------------------------------------------------------------ install
def command_line(runfile, kernel, module_type=None, dkms=True, version=None, allow_running=False):
    """
    The installer command line ``install`` runs (a list).

    ``--kernel-module-type`` exists from 555 and is passed only there;
    ``--dkms`` is the default from 520.56, so ``dkms=False`` is
    ``--no-dkms`` there and no flag before. ``allow_running`` (an upgrade
    forced while the old module is in use) adds
    ``--allow-installation-with-running-driver``, which exists from 545.23;
    older installers refuse such an upgrade.

    CLI Example:

    .. code-block:: bash

        salt '*' nvidia_driver.command_line /var/cache/k8snvidia/NVIDIA-Linux-x86_64-580.95.05.run 5.4.278-1.el7.elrepo.x86_64 proprietary
    """
    version = version or version_from_runfile(runfile)
    vt = version_tuple(version)
    cmd = ["sh", str(runfile), "--silent"]
    if dkms:
        cmd.append("--dkms")
    elif vt >= (520, 56):
        cmd.append("--no-dkms")
    cmd.append(f"--kernel-name={kernel}")
    if module_type in ("open", "proprietary") and vt >= (555,):
        cmd.append(f"--kernel-module-type={module_type}")
    if allow_running and vt >= (545, 23):
        cmd.append("--allow-installation-with-running-driver")
    return cmd


def _messages(text):
    """ERROR/WARNING paragraphs from installer output (wrapped lines joined)."""
    out = []
    current = None
    for raw in (text or "").splitlines():
        line = raw.strip()
        match = re.match(r"^(ERROR|WARNING):\s*(.*)$", line)
        if match:
            current = [match.group(1), match.group(2)]
            out.append(current)
        elif current is not None and line:
            current[1] += " " + line
        else:
            current = None
    return [(kind, " ".join(msg.split())) for kind, msg in out]


def _hint(message, kernel):
    if "kernel source tree" in message:
        return (
            f"install the kernel headers/devel package for {kernel} "
            "(k8snvidia:kernel:devel_package, applied by the `kernel` SLS) and apply nvidia.driver again"
        )
    if "Nouveau" in message or "nouveau" in message:
        return "apply the `nouveau` SLS (blacklist + initramfs), reboot, then apply nvidia.driver again"
    if "development tool" in message or "system utility" in message:
        return "install the prerequisites in k8snvidia:driver:prerequisites (gcc, make, ...)"
    if "already loaded" in message or "already be loaded" in message:
        return "stop the processes using the GPU and unload the nvidia modules, or reboot first"
    if "dkms" in message.lower():
        return "install dkms (k8snvidia:driver:prerequisites) or set k8snvidia:driver:dkms: false"
    return None


def explain_failure(stdout, stderr, log_text="", kernel=None):
    """
    One clear sentence from a failed install's output and log: the first real
    ERROR (not the generic "Installation has failed"), with what to do.

    CLI Example:

    .. code-block:: bash

        salt '*' nvidia_driver.explain_failure "" "ERROR: Unable to find the kernel source tree ..."
    """
    msgs = _messages(stderr) + _messages(stdout) + _messages(log_text)
    errors = [m for kind, m in msgs if kind == "ERROR" and GENERIC_FAILURE not in m]
    warnings = [m for kind, m in msgs if kind == "WARNING"]
    main = errors[0] if errors else (warnings[0] if warnings else None)
    if not main:
        last = [ln for ln in (stderr or stdout or "").splitlines() if ln.strip()]
        main = last[-1].strip() if last else "no message"
    hint = _hint(main, kernel)
    return main + (f" -> {hint}" if hint else "")


def install(runfile, kernel, module_type=None, dkms=True, version=None, allow_running=False, timeout=1800):
    """
    Run the ``.run`` installer silently for kernel release ``kernel`` (which
    need not be the running one):
    ``sh <runfile> --silent --dkms --kernel-name=<K> [--kernel-module-type=<T>]``.

    Raises with the installer's own first error and what to do about it on
    failure; returns ``{"retcode", "command", "stdout", "stderr", "warnings"}``.

    CLI Example:

    .. code-block:: bash

        salt '*' nvidia_driver.install /var/cache/k8snvidia/NVIDIA-Linux-x86_64-580.95.05.run 5.4.278-1.el7.elrepo.x86_64 proprietary
    """
    cmd = command_line(runfile, kernel, module_type, dkms, version, allow_running)
    res = __salt__["cmd.run_all"](
        cmd,
        python_shell=False,
        cwd=os.path.dirname(str(runfile)) or "/",
        timeout=timeout,
        ignore_retcode=True,
        output_loglevel="debug",
    )
    stdout, stderr = res.get("stdout", ""), res.get("stderr", "")
    warnings = [m for kind, m in _messages(stderr) + _messages(stdout) if kind == "WARNING"]
    if res.get("retcode") != 0:
        log_text = ""
        try:
            with open(_path(INSTALLER_LOG), encoding="utf-8", errors="replace") as fh:
                log_text = fh.read(1024 * 1024)
        except OSError:
            pass
        reason = explain_failure(stdout, stderr, log_text, kernel)
        raise CommandExecutionError(
            f"NVIDIA installer {os.path.basename(str(runfile))} failed (rc {res.get('retcode')}): {reason}. "
            f"Command: {' '.join(cmd)}; details in {INSTALLER_LOG}"
        )
    return {"retcode": 0, "command": cmd, "stdout": stdout, "stderr": stderr, "warnings": warnings}


def uninstall(timeout=600):
    """
    Remove the ``.run`` driver with its own ``nvidia-uninstall --silent``
    (nothing to do when none is installed). Note that the real uninstaller
    exits 0 even when it fails, so the result is checked against the backup
    log afterwards.

    CLI Example:

    .. code-block:: bash

        salt '*' nvidia_driver.uninstall
    """
    before = installed_version()
    if before is None:
        return {"removed": None}
    exe = _path("/usr/bin/nvidia-uninstall")
    if not os.path.exists(exe):
        raise CommandExecutionError(
            f"driver {before} is recorded in {BACKUP_LOG} but /usr/bin/nvidia-uninstall is missing"
        )
    res = __salt__["cmd.run_all"]([exe, "--silent"], python_shell=False, timeout=timeout, ignore_retcode=True)
    after = installed_version()
    if after is not None or res.get("retcode") != 0:
        reason = explain_failure(res.get("stdout"), res.get("stderr"))
        raise CommandExecutionError(f"nvidia-uninstall did not remove driver {before}: {reason}")
    return {"removed": before}


# ------------------------------------------------------------------ DKMS
DKMS_LINE_RE = re.compile(
    r"^(?P<module>[^/,\s]+)(?:/|,\s*)(?P<version>[^,:\s]+)(?:,\s*(?P<kernel>[^,:\s]+)(?:,\s*(?P<arch>[^:\s]+))?)?"
    r":\s*(?P<status>[a-z-]+)"
)


def parse_dkms_status(text):
    """
    ``dkms status`` output as a list of ``{"module", "version", "kernel",
    "arch", "status"}`` (``kernel`` None for a module only added). Reads
    both formats: ``nvidia/580.95.05, 5.15.0-76-generic, x86_64: installed``
    (dkms 2.8.6 and later) and ``nvidia, 580.95.05, 5.15.0-76-generic,
    x86_64: installed`` (older); a trailing ``(Original modules exist)`` or
    WARNING line is ignored.

    CLI Example:

    .. code-block:: bash

        salt-call nvidia_driver.parse_dkms_status "nvidia/580.95.05, 6.1.0-25-amd64, x86_64: installed"
    """
    out = []
    for line in (text or "").splitlines():
        match = DKMS_LINE_RE.match(line.strip())
        if match:
            out.append(match.groupdict())
    return out


def dkms_status():
    """
    What DKMS has registered and built (``dkms status``, parsed by
    ``parse_dkms_status``); None when dkms is not installed. Raises when
    dkms fails.

    CLI Example:

    .. code-block:: bash

        salt '*' nvidia_driver.dkms_status
    """
    exe = salt.utils.path.which("dkms")
    if not exe:
        return None
    res = __salt__["cmd.run_all"]([exe, "status"], python_shell=False, ignore_retcode=True, output_loglevel="debug")
    if res.get("retcode") != 0:
        raise CommandExecutionError(
            f"dkms status failed (rc {res.get('retcode')}): {(res.get('stderr') or res.get('stdout') or '').strip()}"
        )
    return parse_dkms_status(res.get("stdout", ""))


def dkms_install(module, version, kernel, timeout=1800):
    """
    Build and install DKMS module ``module/version`` for ``kernel`` (``dkms
    install -m M -v V -k K``); raises with DKMS's message on failure.

    CLI Example:

    .. code-block:: bash

        salt '*' nvidia_driver.dkms_install nvidia 580.178.04 6.1.0-25-amd64
    """
    exe = salt.utils.path.which("dkms")
    if not exe:
        raise CommandExecutionError("dkms is not installed (k8snvidia:driver:prerequisites)")
    cmd = [exe, "install", "-m", str(module), "-v", str(version), "-k", str(kernel)]
    res = __salt__["cmd.run_all"](cmd, python_shell=False, ignore_retcode=True, timeout=timeout)
    if res.get("retcode") != 0:
        text = (res.get("stderr") or res.get("stdout") or "").strip().splitlines()
        raise CommandExecutionError(f"{' '.join(cmd)} failed (rc {res.get('retcode')}): {' '.join(text[-3:])}")
    return {"module": module, "version": version, "kernel": kernel}


def upstream_version(package_version):
    """
    The driver version in a distribution package version: epoch and
    packaging revision dropped (``535.247.01-1~deb12u1`` -> ``535.247.01``,
    ``3:580.105.08-1.el9`` -> ``580.105.08``, ``580.95.05-0ubuntu0.24.04.2``
    -> ``580.95.05``); None for an empty value.

    CLI Example:

    .. code-block:: bash

        salt-call nvidia_driver.upstream_version 535.247.01-1~deb12u1
    """
    text = str(package_version or "").strip()
    if not text:
        return None
    text = text.split(":", 1)[-1]
    match = VERSION_RE.search(text)
    return match.group(1) if match else text.split("-", 1)[0]


def enable_stream(stream, timeout=600):
    """
    Enable a dnf module stream (``dnf -y module enable <stream>``, e.g.
    ``nvidia-driver:580-dkms``), as NVIDIA's CUDA repository on EL needs
    before its driver packages install; raises with dnf's message.

    CLI Example:

    .. code-block:: bash

        salt '*' nvidia_driver.enable_stream nvidia-driver:580-dkms
    """
    exe = salt.utils.path.which("dnf")
    if not exe:
        raise CommandExecutionError(f"cannot enable module stream {stream}: dnf is not installed")
    res = __salt__["cmd.run_all"]([exe, "-y", "module", "enable", str(stream)], python_shell=False,
                                  ignore_retcode=True, timeout=timeout)
    if res.get("retcode") != 0:
        raise CommandExecutionError(
            f"dnf module enable {stream} failed (rc {res.get('retcode')}): "
            f"{(res.get('stderr') or res.get('stdout') or '').strip()}"
        )
    return True
