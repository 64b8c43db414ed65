"""
The host as K8sNvidia's custom code reads it, each fact in one place:

* :func:`procfs`, :func:`sysfs`, :func:`root` -- where ``/proc``, ``/sys``
  and the file system the driver's files are looked for in are: the minion
  options ``k8snvidia.procfs_root``, ``k8snvidia.sysfs_root`` and
  ``k8snvidia.root`` (tests and the cluster twin point them at a fake tree),
  default ``/proc``, ``/sys`` and ``/``. The older names
  ``nvidia.procfs_root``, ``nvidia.sysfs_root`` and ``nvidia_driver.root``
  are read when the new ones are unset (deprecated).
* :func:`kernel_modules` -- the loaded kernel modules, one read of
  ``<procfs>/modules``.
* :func:`mirror_source` -- where a download is found in the artifact mirror
  (the minion option ``k8snvidia.artifact_mirror``: a directory, or a
  ``file://`` URL of one, holding files by basename).
* :func:`mark_reboot` -- "reboot pending" marked for a state: already
  pending, predicted under ``test``, or marked, through the ``k8snvidia``
  execution module.

Plain functions of their arguments (no dunders), so the grain, the execution
modules, the states and the tests share them; under Salt they are
``__utils__["host.<name>"]``.
"""

import logging
import os
import urllib.parse

log = logging.getLogger(__name__)

PROCFS_OPTION = "k8snvidia.procfs_root"
SYSFS_OPTION = "k8snvidia.sysfs_root"
ROOT_OPTION = "k8snvidia.root"
# deprecated names of the same options (read when the new one is unset)
OLD_OPTIONS = {PROCFS_OPTION: "nvidia.procfs_root", SYSFS_OPTION: "nvidia.sysfs_root",
               ROOT_OPTION: "nvidia_driver.root"}
MIRROR_OPTION = "k8snvidia.artifact_mirror"

_warned = set()


def _root(opts, option, default):
    # never `opts or {}`: the truth value of Salt's opts dict counts its keys
    # through every layer (the grain reads this at every refresh)
    if opts is None:
        return default
    value = opts.get(option)
    if not value:
        old = OLD_OPTIONS[option]
        value = opts.get(old)
        if value and old not in _warned:
            _warned.add(old)
            log.warning("the minion option %s is deprecated: set %s instead", old, option)
    return str(value) if value else default


def procfs(opts):
    """The procfs root: ``k8snvidia.procfs_root`` (else the deprecated
    ``nvidia.procfs_root``), default ``/proc``."""
    return _root(opts, PROCFS_OPTION, "/proc")


def sysfs(opts):
    """The sysfs root: ``k8snvidia.sysfs_root`` (else the deprecated
    ``nvidia.sysfs_root``), default ``/sys``."""
    return _root(opts, SYSFS_OPTION, "/sys")


def root(opts):
    """The root the host's files (the driver's logs, ``/lib/modules``, DKMS's
    tree, ``modprobe.d``) are read under: ``k8snvidia.root`` (else the
    deprecated ``nvidia_driver.root``), default ``/``."""
    return _root(opts, ROOT_OPTION, "/")


# ------------------------------------------------------------ kernel modules
def parse_modules(text):
    """``/proc/modules`` text as ``{name: {"size", "refcount", "used_by",
    "state", "taint"}}`` in the file's order. A line is ``name size refcount
    users state address [(taint)]``; ``users`` is ``-`` or ``a,b,``;
    ``taint`` is the flags in parentheses ('POE' for the proprietary nvidia
    module, 'OE' or 'O' for the open one), '' without any."""
    out = {}
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        try:
            count = int(fields[2]) if len(fields) > 2 else 0
        except ValueError:
            count = 0
        users = [u for u in fields[3].split(",") if u and u != "-"] if len(fields) > 3 else []
        last = fields[-1]
        taint = last[1:-1] if len(fields) > 1 and last.startswith("(") and last.endswith(")") else ""
        out[fields[0]] = {
            "size": fields[1] if len(fields) > 1 else None,
            "refcount": count,
            "used_by": users,
            "state": fields[4] if len(fields) > 4 else None,
            "taint": taint,
        }
    return out


def kernel_modules(procfs_root):
    """The loaded kernel modules, from one read of ``<procfs_root>/modules``
    (see :func:`parse_modules`). A kernel built without loadable module
    support (``CONFIG_MODULES=n``) has no such file while procfs itself is
    there (``self``): nothing is loaded, ``{}``. Raises OSError when the file
    cannot be read otherwise: the caller says so (or has another source)."""
    path = os.path.join(procfs_root, "modules")
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except FileNotFoundError:
        if os.path.isdir(os.path.join(procfs_root, "self")):
            return {}
        raise
    return parse_modules(text)


# ------------------------------------------------------------ artifact mirror
def local_path(value):
    """The local path a path or ``file://`` URL names (``file:///srv/m``,
    ``file://localhost/srv/m``; percent-escapes decoded), or None when it
    is empty. Raises ValueError for a ``file://`` URL naming another host."""
    if not value:
        return None
    value = str(value)
    if value.startswith("file:"):
        parsed = urllib.parse.urlparse(value)
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"{value!r}: a file:// URL names a local path (no host but localhost)")
        value = urllib.parse.unquote(parsed.path)
    return value or None


def mirror_dir(mirror):
    """The local directory an artifact mirror option names (see
    :func:`local_path`), or None when it is unset."""
    try:
        return local_path(mirror)
    except ValueError as exc:
        raise ValueError(f"{MIRROR_OPTION}: {exc}") from None


def url_basename(url):
    """The file name a download URL ends with (query and trailing slash
    dropped): what the mirror holds it as."""
    return os.path.basename(urllib.parse.urlparse(str(url or "")).path.rstrip("/"))


def mirror_source(mirror, url):
    """Where ``url``'s file is in the artifact mirror ``mirror`` (the option's
    value, see :func:`mirror_dir`), or None when there is no mirror or it
    lacks the file."""
    base = mirror_dir(mirror)
    name = url_basename(url)
    if not base or not name:
        return None
    path = os.path.join(base, name)
    return path if os.path.isfile(path) else None


def mirror_option(opts, config_get=None):
    """The value of ``k8snvidia.artifact_mirror``: through ``config.get``
    when given (minion options, grains, pillar), else from ``opts``."""
    if config_get is not None:
        return config_get(MIRROR_OPTION)
    return opts.get(MIRROR_OPTION) if opts is not None else None


def artifact_source(url, opts, config_get=None):
    """:func:`mirror_source` of the configured mirror (:func:`mirror_option`):
    the lookup ``k8snvidia.mirror_source`` (the SLS files) and
    ``nvidia_driver.mirror_source`` (its ``fetch``) share."""
    return mirror_source(mirror_option(opts, config_get), url)


# ------------------------------------------------------------ reboot pending
def mark_reboot(salt, reason, test):
    """Mark "reboot pending" with ``reason`` for a state, through the
    ``k8snvidia`` execution module in ``salt`` (``__salt__``). Returns
    ``{"result", "changes", "comment", "status"}``; status ``pending`` (the
    reason is already recorded: no change), ``predicted`` (``test``: it
    would be marked, result None), ``marked`` or ``failed`` (result False,
    the module's message in the comment: never dropped)."""
    missing = [f for f in ("reboot_pending.reasons", "reboot_pending.mark") if f not in salt]
    if missing:
        err = f"{', '.join(missing)} is not available (run saltutil.sync_all so the custom modules are on the minion)"
    else:
        try:
            if reason in (salt["reboot_pending.reasons"]() or []):
                return {"result": True, "changes": {}, "status": "pending",
                        "comment": f"Reboot already pending: {reason}"}
            if test:
                return {"result": None, "changes": {"reboot_pending": reason}, "status": "predicted",
                        "comment": f"A reboot would be marked pending: {reason}"}
            salt["reboot_pending.mark"](reason)
            return {"result": True, "changes": {"reboot_pending": reason}, "status": "marked",
                    "comment": f"Reboot marked pending: {reason}"}
        except Exception as exc:  # pylint: disable=broad-except
            err = str(exc) or exc.__class__.__name__
    return {"result": False, "changes": {}, "status": "failed",
            "comment": f"could not mark the reboot pending ({reason}): {err}; reboot the node by hand"}
