"""Real components inside the twin: Debian's containerd loads a node's
containerd config, Debian's dockerd validates its daemon.json.

A twin node's containerd (``containerd config dump``, ``config default``, the
``containerd`` service refusing its config, the runtime facts kubelet and
kubectl see) is the real binary of the same major line, unpacked from
Debian's archive by ``bin/debian_binaries.py`` (the judges' fetcher, loaded
by path): containerd 1.6.20 (bookworm) stands in for the 1.4 and 1.6
releases, 1.7.24 (trixie) for 1.7, 2.1 (sid) for every 2.x. The node's
package database still decides which release is installed and what
``containerd --version`` prints; only the loading is real.

The twin fetches the lines when a cluster is prepared
(:func:`fetch_all`) and binds the cache read-only into the nodes at its host
path. A node's own files are read where it runs (its mount namespace is its
root); any other root (``/proc/<pid>/root`` of a node seen from the host, a
unit test's directory) is given to the binary by binding that root's /etc on
/etc in a private mount namespace (``unshare --mount``, root only).

Results are kept by content (the binary's package, the command, every file
the config imports) under ``<cache>/twin-dumps``, shared by all nodes and
runs: the same config is loaded once per machine.

``docker.service`` starts only on a daemon.json that sid's dockerd accepts
(``dockerd --validate --config-file``; the message is the one dockerd exits
with), kept by content the same way.
"""

import glob
import hashlib
import importlib.util
import json
import os
import subprocess
import tempfile

try:  # Python 3.11+
    import tomllib
except ImportError:  # pragma: no cover - older Pythons
    import tomli as tomllib

CACHE_ENV = "K8SNVIDIA_JUDGE_CACHE"  # the judges' cache (bin/debian_binaries.py)
DEFAULT_CACHE = "/var/cache/k8snvidia-tests"
CONFIG = "/etc/containerd/config.toml"
DAEMON_JSON = "/etc/docker/daemon.json"
LINES = ("containerd-1.6", "containerd-1.7", "containerd-2.1", "dockerd")
BINARY = {"dockerd": "usr/sbin/dockerd"}  # else usr/bin/containerd
FETCHER = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                       "bin", "debian_binaries.py")


class Missing(Exception):
    """The real binary of a line is not in the cache."""


def cache_dir():
    return os.environ.get(CACHE_ENV) or DEFAULT_CACHE


def dumps_dir():
    return os.path.join(cache_dir(), "twin-dumps")


def line_of(ver):
    """The real line that stands in for containerd release ``ver``."""
    if ver[0] >= 2:
        return "containerd-2.1"
    return "containerd-1.6" if tuple(ver[:2]) <= (1, 6) else "containerd-1.7"


def binary(line):
    root = os.path.join(cache_dir(), line)
    exe = os.path.join(root, BINARY.get(line, "usr/bin/containerd"))
    try:
        with open(os.path.join(root, ".complete"), encoding="utf-8") as fh:
            package = fh.read().strip()
    except OSError:
        package = None
    if not package or not os.access(exe, os.X_OK):
        raise Missing(f"the twin's {line.split('-')[0]} is Debian's real {line}, which is not in {cache_dir()}: "
                      f"run bin/debian_binaries.py {line} (needs apt-get and Debian's archive)")
    return exe, package


def fetch_all():
    """Fetch every line into the cache (host side, before nodes start).
    Returns None, or why a line could not be fetched."""
    spec = importlib.util.spec_from_file_location("k8stwin_debian_binaries", FETCHER)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for line in LINES:
        try:
            mod.fetch(line)
        except mod.Unavailable as exc:
            return f"{line}: {exc}"
    return None


def _read(root, path):
    try:
        with open(os.path.join(root, path.lstrip("/")), encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def inputs(root, path=CONFIG):
    """[path, text] of the config and everything it imports, recursively (the
    key of a cached load; the real binary decides what they mean)."""
    out, seen, pending = [], set(), [path]
    while pending:
        p = pending.pop(0)
        if p in seen:
            continue
        seen.add(p)
        text = _read(root, p)
        out.append([p, text])
        try:
            imports = tomllib.loads(text or "").get("imports") or []
        except (tomllib.TOMLDecodeError, AttributeError):
            imports = []
        for imp in imports if isinstance(imports, list) else []:
            if not isinstance(imp, str):
                continue
            imp = imp if imp.startswith("/") else os.path.join(os.path.dirname(p), imp)
            if any(c in imp for c in "*?["):
                base = os.path.abspath(root)
                pending += sorted("/" + os.path.relpath(f, base) for f in glob.glob(os.path.join(base, imp.lstrip("/"))))
            else:
                pending.append(imp)
    return out


def _cached(key_data, cmd, env=None, clean=None):
    """(rc, stdout, stderr) of ``cmd``, from the load cache when the same
    ``key_data`` ran before (``clean(text)`` applied to the outputs kept);
    a read-only cache keeps nothing."""
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()
    cached = os.path.join(dumps_dir(), key + ".json")
    try:
        with open(cached, encoding="utf-8") as fh:
            rc, out, err = json.load(fh)
        return rc, out, err
    except (OSError, ValueError):
        pass
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=env)
    result = [proc.returncode, proc.stdout, proc.stderr]
    if clean is not None:
        result[1:] = [clean(x) for x in result[1:]]
    try:
        os.makedirs(dumps_dir(), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dumps_dir(), prefix=".dump-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(result, fh)
        os.replace(tmp, cached)
    except OSError:
        pass
    return tuple(result)


def run(ver, args, root="/", path=CONFIG):
    """(rc, stdout, stderr) of the real containerd standing in for ``ver``,
    run as ``containerd --config path ARGS`` over the files under ``root``."""
    exe, package = binary(line_of(ver))
    key_data = [package, list(args), path, inputs(root, path) if args[:2] == ["config", "dump"] else []]
    cmd = [exe, "--config", path, *args]
    real_root = os.path.abspath(root)
    if real_root != "/" and args[:2] == ["config", "dump"]:
        if path.startswith("/etc/"):
            cmd = ["unshare", "--mount", "--", "sh", "-c", 'mount --bind "$0/etc" /etc && exec "$@"',
                   real_root, *cmd]
        else:
            cmd[2] = os.path.join(real_root, path.lstrip("/"))
    return _cached(key_data, cmd)


def docker_problem(root="/"):
    """None when dockerd accepts the node's daemon.json (or there is none),
    else the message it exits with."""
    full = os.path.join(os.path.abspath(root), DAEMON_JSON.lstrip("/"))
    text = _read(root, DAEMON_JSON)
    if text is None:
        return None
    exe, package = binary("dockerd")
    # docker-proxy (the userland proxy dockerd checks for) sits beside dockerd
    env = {"PATH": os.path.dirname(exe) + ":/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    rc, out, err = _cached([package, "--validate", text], [exe, "--validate", "--config-file", full], env,
                           clean=lambda s: s.replace(full, DAEMON_JSON))
    if rc == 0:
        return None
    lines = [ln.strip() for ln in (err or out).splitlines() if ln.strip()]
    return lines[-1] if lines else f"dockerd --validate exited {rc}"


def error_of(stderr):
    """The message containerd exits with (its last ``containerd: ...`` line, prefix dropped)."""
    lines = [ln.strip() for ln in (stderr or "").splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith("containerd: "):
            return ln[len("containerd: "):]
    return lines[-1] if lines else "containerd exited with an error"


def load(ver, root="/", path=CONFIG):
    """(effective config, error): what ``containerd config dump`` prints,
    parsed, or ({}, the message it refuses the config with)."""
    rc, out, err = run(ver, ["config", "dump"], root, path)
    if rc:
        return {}, error_of(err)
    return tomllib.loads(out), None
