"""
Minimal TOML for the twin: ``loads`` (the standard library's tomllib, or the
tomli/toml packages) and ``dumps`` in the style containerd and nvidia-ctk
write (scalars of a table first, then ``[a."b.c".d]`` sub-tables, 2-space
indent per level as go-toml does for containerd's ``config default``).
"""

import json
import re

try:  # Python 3.11+
    import tomllib as _reader
except ImportError:  # pragma: no cover - older Pythons
    try:
        import tomli as _reader
    except ImportError:
        _reader = None

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def loads(text):
    if _reader is not None:
        return _reader.loads(text)
    import toml  # pragma: no cover

    return toml.loads(text)


def _key(k):
    return k if _BARE.match(k) else json.dumps(k)


def _value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def dumps(data, indent=True):
    """TOML text of a nested dict (tables after the scalars of each level)."""
    out = []

    def table(path, d, depth):
        scalars = [(k, v) for k, v in d.items() if not isinstance(v, dict)]
        tables = [(k, v) for k, v in d.items() if isinstance(v, dict)]
        pad = "  " * max(depth - 1, 0) if indent else ""
        if path and (scalars or not tables):
            out.append("")
            out.append(f"{pad}[{'.'.join(_key(p) for p in path)}]")
        for k, v in scalars:
            out.append(f"{pad}{'  ' if path and indent else ''}{_key(k)} = {_value(v)}")
        for k, v in tables:
            table(path + [k], v, depth + 1)

    table([], data, 0)
    text = "\n".join(out).lstrip("\n")
    return text + "\n"


def merge(base, over):
    """containerd's import merge: tables merged key by key, later files win."""
    result = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(result.get(k), dict):
            result[k] = merge(result[k], v)
        else:
            result[k] = v
    return result
