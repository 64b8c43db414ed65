"""
Per-node state of a twin machine, shared by every emulated tool.

Each twin node has a directory (``$K8STWIN_NODE_DIR``; inside the node's mount
namespace it is also where the node's own files live) holding:

* ``node.json``   -- static description: id, os (osfinger), hardware (GPUs by
                     model), faults declared for this node. Written by the twin.
* ``state.json``  -- mutable machine state the emulated tools read and change
                     (packages, services, loaded modules, kernels, boot default,
                     driver, ...). Use :func:`locked` to change it.
* ``commands.jsonl`` -- one JSON line per emulated command run: argv, rc, time.

Files that a real tool would write (``/etc/...``, ``/boot/...``) are written to
the node's real (namespaced) filesystem instead of state.json wherever a
state or test may read them.
"""

import contextlib
import errno
import fcntl
import json
import os
import sys
import time

ENV = "K8STWIN_NODE_DIR"


def node_dir():
    path = os.environ.get(ENV)
    if not path:
        sys.stderr.write(f"k8stwin: {ENV} is not set: this tool only runs inside a twin node\n")
        sys.exit(127)
    return path


def node():
    """The static node description (node.json)."""
    with open(os.path.join(node_dir(), "node.json"), encoding="utf-8") as fh:
        return json.load(fh)


def fault(name):
    """The fault declared for this node under ``name`` (None when absent)."""
    return (node().get("faults") or {}).get(name)


def read():
    path = os.path.join(node_dir(), "state.json")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return {}


@contextlib.contextmanager
def locked():
    """Read-modify-write state.json under an exclusive lock."""
    base = node_dir()
    with open(os.path.join(base, "state.lock"), "a+", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = read()
        yield data
        tmp = os.path.join(base, "state.json.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(tmp, os.path.join(base, "state.json"))


def record(argv, rc):
    """Append one emulated command to commands.jsonl."""
    line = json.dumps({"t": round(time.time(), 3), "argv": list(argv), "rc": rc})
    with open(os.path.join(node_dir(), "commands.jsonl"), "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def run_tool(main):
    """Entry point wrapper for an emulated tool: runs main(argv) -> rc,
    records the command and exits with rc."""
    argv = [os.path.basename(sys.argv[0])] + sys.argv[1:]
    rc = 1
    try:
        rc = main(argv) or 0
    except OSError as exc:
        # a full (or read-only) filesystem: the tool fails as a real one
        # does, naming the file and strerror ("No space left on device")
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        sys.stderr.write(f"{argv[0]}: {where}{os.strerror(exc.errno)}\n")
        rc = 1
    finally:
        record(argv, rc)
    sys.exit(rc)
