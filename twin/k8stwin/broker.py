"""
The broker of the twin's shared cluster state (``<run>/cluster``).

Nodes see the cluster directory read-only: a product bug on one node (a
state writing where it should not, a stray ``rm``) cannot corrupt what the
other nodes see. The emulated kubeadm and kubectl, which stand for the API
server and etcd, change the state through this broker instead: a unix
socket (``$K8STWIN_CLUSTER_BROKER``, in a directory every node sees
read-only) served by the twin's supervisor, outside the nodes' mount
namespaces, as the API server is outside them on a real cluster.

One transaction per connection, newline-delimited JSON::

    client: {"op": "lock"}
    broker: {"ok": true, "data": {...}}        (the state, under the flock of <file>.lock)
    client: {"op": "commit", "data": {...}}    (or closes the connection: nothing changes)
    broker: {"ok": true} | {"ok": false, "error": "..."}

The broker knows which node speaks from the kernel (``SO_PEERCRED``: the
peer's PID namespace is that of one machine's init), not from anything the
node says, and refuses a change that is not a JSON object, is larger than
:data:`MAX_BYTES`, drops a known key or gives one the wrong type, or
touches another node's registration (``node_dirs``). Every write is logged
(node and changed keys, no values) in ``<run>/broker.jsonl``.

:func:`kube.locked` uses :func:`transaction` when ``$K8STWIN_CLUSTER_BROKER``
is set (inside the twin's nodes); elsewhere (the twin core on the host, the
unit tests) it writes the file itself.
"""

import contextlib
import fcntl
import json
import os
import socket
import socketserver
import struct
import sys
import threading
import time

ENV = "K8STWIN_CLUSTER_BROKER"
MAX_BYTES = 64 * 1024 * 1024
# the known keys of the cluster state and their types (k8stwin.kube)
TYPES = {"node_dirs": dict, "tokens": list, "nodes": dict, "objects": dict, "warnings": list,
         "control_plane": (dict, type(None))}


class Refused(Exception):
    pass


# --------------------------------------------------------------------------
# client side (inside a node)


def _send(sock, msg):
    sock.sendall(json.dumps(msg, sort_keys=True).encode() + b"\n")


def _recv(fh):
    line = fh.readline()
    if not line:
        raise Refused("the twin's cluster broker closed the connection")
    return json.loads(line)


@contextlib.contextmanager
def transaction(sock_path=None):
    """Read-modify-write the shared cluster state through the broker (the
    state is yielded; the change is committed when the block ends without
    an exception)."""
    sock_path = sock_path or os.environ[ENV]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            sock.connect(sock_path)
        except OSError as exc:
            sys.stderr.write(f"k8stwin: the twin's cluster broker ({sock_path}) does not answer: {exc}\n")
            raise SystemExit(70) from None
        fh = sock.makefile("rb")
        _send(sock, {"op": "lock"})
        reply = _recv(fh)
        if not reply.get("ok"):
            raise Refused(reply.get("error") or "refused")
        data = reply["data"]
        yield data
        _send(sock, {"op": "commit", "data": data})
        reply = _recv(fh)
        if not reply.get("ok"):
            sys.stderr.write(f"k8stwin: the twin's cluster broker refused the change: {reply.get('error')}\n")
            raise SystemExit(70)
    finally:
        sock.close()


# --------------------------------------------------------------------------
# server side (in the supervisor, outside the nodes)


def check(old, new, node, node_dir=None):
    """Why ``node`` may not replace the state ``old`` with ``new`` (None: it may)."""
    if not isinstance(new, dict):
        return f"the cluster state must be a JSON object, not {type(new).__name__}"
    for key, typ in TYPES.items():
        if key in old and key not in new:
            return f"the change drops the key {key!r}"
        if key in new and not isinstance(new[key], typ):
            return f"{key!r} must be a {getattr(typ, '__name__', 'object or null')}, not {type(new[key]).__name__}"
    if node is None:
        return None
    before, after = old.get("node_dirs") or {}, new.get("node_dirs") or {}
    for nid in set(before) | set(after):
        if before.get(nid) == after.get(nid):
            continue
        if nid != node:
            return f"node {node} may not change the registration of node {nid}"
        if after.get(nid) is None or (node_dir and (after[nid] or {}).get("dir") != node_dir):
            return f"node {node} may only register itself at its own directory {node_dir}"
    return None


class Broker:
    """Serves :func:`transaction` for the nodes of one twin.

    ``state_path``: the cluster state file; ``node_of(pid)``: the twin node
    a host PID belongs to (None: not in a node); ``node_dir(node)``."""

    def __init__(self, sock_path, state_path, node_of, node_dir=None, log_path=None):
        self.sock_path = sock_path
        self.state_path = state_path
        self.node_of = node_of
        self.node_dir = node_dir or (lambda node: None)
        self.log_path = log_path
        self.server = None
        self.thread = None
        self._log_lock = threading.Lock()

    def start(self):
        try:
            os.unlink(self.sock_path)
        except FileNotFoundError:
            pass
        os.makedirs(os.path.dirname(self.sock_path), exist_ok=True)
        broker = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                broker.serve(self.request, self.rfile)

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(self.sock_path, Handler)
        os.chmod(self.sock_path, 0o666)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.5},
                                       name="k8stwin-broker", daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        try:
            os.unlink(self.sock_path)
        except FileNotFoundError:
            pass

    def _peer(self, sock):
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, _uid, _gid = struct.unpack("3i", creds)
        return self.node_of(pid)

    def _read(self):
        try:
            with open(self.state_path, encoding="utf-8") as fh:
                return json.load(fh)
        except FileNotFoundError:
            return {}

    def _write(self, data):
        tmp = self.state_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(tmp, self.state_path)

    def _log(self, entry):
        if not self.log_path:
            return
        with self._log_lock, open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")

    def serve(self, sock, rfile):
        node = self._peer(sock)
        try:
            msg = _recv(rfile)
        except (Refused, ValueError):
            return
        if msg.get("op") != "lock":
            _send(sock, {"ok": False, "error": f"unknown operation {msg.get('op')!r}"})
            return
        with open(self.state_path + ".lock", "a+", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            old = self._read()
            _send(sock, {"ok": True, "data": old})
            line = rfile.readline(MAX_BYTES + 1)
            if not line:
                return  # the client gave up: nothing changes
            if len(line) > MAX_BYTES:
                _send(sock, {"ok": False, "error": f"the change is larger than {MAX_BYTES} bytes"})
                return
            try:
                msg = json.loads(line)
            except ValueError:
                _send(sock, {"ok": False, "error": "the change is not JSON"})
                return
            new = msg.get("data") if isinstance(msg, dict) and msg.get("op") == "commit" else None
            why = check(old, new, node, self.node_dir(node) if node else None) if new is not None else \
                "expected {'op': 'commit', 'data': {...}}"
            if why:
                self._log({"t": round(time.time(), 3), "node": node, "refused": why})
                _send(sock, {"ok": False, "error": why})
                return
            if new != old:
                self._write(new)
                changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                self._log({"t": round(time.time(), 3), "node": node, "changed": changed})
            _send(sock, {"ok": True})


def pid_namespace(pid):
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None
