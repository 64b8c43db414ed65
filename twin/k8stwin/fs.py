"""Filesystem and small helpers shared by the twin's emulated tools.

Every path a tool touches goes through :func:`path`, which puts it under the
root prefix ``$K8STWIN_ROOT`` (default ``/``: inside a twin node the node's
own mount namespace already is the root; unit tests point it at a temp dir).
"""

import glob as _glob
import importlib
import json
import os
import sys

ROOT_ENV = "K8STWIN_ROOT"


def root():
    return os.environ.get(ROOT_ENV) or "/"


def path(*parts):
    """Absolute path of ``parts`` (joined, leading ``/`` ignored) under the root prefix."""
    rel = os.path.join(*[str(p) for p in parts]) if parts else ""
    rel = rel.lstrip("/")
    return os.path.join(root(), rel) if rel else root()


def unroot(full):
    """Inverse of :func:`path`: the node-absolute path of a prefixed path."""
    base = root().rstrip("/")
    if base and full.startswith(base + "/"):
        return full[len(base):]
    return full


def exists(*parts):
    return os.path.lexists(path(*parts))


def read(p, default=None):
    try:
        with open(path(p), encoding="utf-8") as fh:
            return fh.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return default


def write(p, text, mode=None):
    full = path(p)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    if os.path.islink(full):
        os.unlink(full)
    with open(full, "w", encoding="utf-8") as fh:
        fh.write(text)
    if mode is not None:
        os.chmod(full, mode)


def write_json(p, data):
    write(p, json.dumps(data, indent=1, sort_keys=True) + "\n")


def read_json(p, default=None):
    text = read(p)
    if text is None:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def makedirs(p):
    os.makedirs(path(p), exist_ok=True)


def symlink(target, p):
    """Create (or replace) the link ``p`` -> ``target`` (target kept as given)."""
    full = path(p)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    if os.path.lexists(full):
        if os.path.isdir(full) and not os.path.islink(full):
            return
        os.unlink(full)
    os.symlink(target, full)


def remove(p):
    full = path(p)
    if os.path.islink(full) or os.path.isfile(full):
        os.unlink(full)
    elif os.path.isdir(full):
        import shutil

        shutil.rmtree(full)


def listdir(p):
    try:
        return sorted(os.listdir(path(p)))
    except (FileNotFoundError, NotADirectoryError):
        return []


def glob(pattern):
    """Node-absolute paths matching ``pattern`` (a node-absolute glob)."""
    return sorted(unroot(x) for x in _glob.glob(path(pattern)))


def isdir(p):
    return os.path.isdir(path(p))


def isfile(p):
    return os.path.isfile(path(p))


def out(text=""):
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def err(text=""):
    sys.stderr.write(text if text.endswith("\n") else text + "\n")


def hook(module, func, *args, **kwargs):
    """Call ``k8stwin.<module>.<func>(*args)`` if another component provides it.

    Returns the call's result, or None when the module or function is absent."""
    try:
        mod = importlib.import_module("k8stwin." + module)
    except ImportError:
        return None
    fn = getattr(mod, func, None)
    if fn is None:
        return None
    return fn(*args, **kwargs)


def node_os():
    """(family, major, os_key) of this node: family 'RedHat' or 'Debian'."""
    from . import state

    try:
        info = state.node()
    except (OSError, ValueError):
        info = {}
    key = info.get("os_key") or ""
    family = "Debian" if key.startswith(("ubuntu", "debian")) else "RedHat"
    digits = "".join(c for c in key if c.isdigit())
    if key.startswith("ubuntu"):
        major = int(digits[:2] or 0)
    else:
        major = int(digits or 0)
    return family, major, key


def running_kernel():
    """The node's running kernel release (state ``kernel.running``, else node.json)."""
    from . import state

    kern = (state.read().get("kernel") or {}).get("running")
    if kern:
        return kern
    try:
        return state.node().get("kernel") or os.uname().release
    except (OSError, ValueError):
        return os.uname().release
