"""
A twin node's tool server: the emulated tools run in processes forked from
one Python that has imported them already, instead of each starting a
Python of its own (about 30 ms of interpreter start and 10-60 ms of imports
per command on 2 cores; an orchestration of the seed's cluster runs about a
thousand of them).

The node's init starts it (:func:`start`, ``python -m k8stwin.toolserver
SOCKET``) with the minion's environment, before the minion; it listens on
``$K8STWIN_TOOL_SOCKET`` in the node's private ``/run``. ``twin/bin/_dispatch``
hands each command to the C client (``toolclient.c``, built by
:func:`build_client` when the twin is prepared), which passes its stdin,
stdout, stderr, argv, environment, working directory and umask. For each
request the server forks; the child takes those over and runs the tool as
:mod:`k8stwin.dispatch` does. The parent tells the client the child's PID
(the client forwards the signals it gets), reaps the child and sends its
wait status; when a client goes away first (killed on a timeout), the
server kills the child. Without a server (before it is up, or after it
died) the client runs the dispatcher the old way, so a command never fails
for want of it.

What differs from a fresh Python, on purpose: nothing the tools can see but
timing; the interpreter's start-up state (``sys.flags``, the locale Python
chose) is the server's, started with the minion's environment.
"""

import errno
import importlib
import io
import os
import pathlib
import pkgutil
import selectors
import signal
import socket
import struct
import subprocess
import sys
import traceback

SOCKET_ENV = "K8STWIN_TOOL_SOCKET"
CLIENT_ENV = "K8STWIN_TOOL_CLIENT"
SOCKET_PATH = "/run/k8stwin/tools.sock"
MAGIC = "k8stwin-tool 1"
SOURCE = pathlib.Path(__file__).resolve().with_name("toolclient.c")
MAX_REQUEST = 4 * 1024 * 1024


# --------------------------------------------------------------------------
# the client binary (host side, when the twin is prepared)


def build_client(out_dir):
    """Compile the client into ``out_dir`` (kept while its source is the
    same); its path. Raises OSError/CalledProcessError when it cannot."""
    from . import cc

    return cc.build(SOURCE, out_dir, "k8stwin-tool", ["-O2", "-Wall"], what="the twin's tool client")


# --------------------------------------------------------------------------
# the server (inside a node)


def preload():
    """Import every module a tool may need, so a forked child finds them
    loaded: the twin's own modules and tools (a tool that cannot be imported
    is left to fail in its own command, as before)."""
    import k8stwin
    from k8stwin import tools

    for pkg in (k8stwin, tools):
        for info in pkgutil.iter_modules(pkg.__path__):
            if info.name in ("toolserver", "mainjob", "cli", "cluster", "machine"):
                continue
            try:
                importlib.import_module(f"{pkg.__name__}.{info.name}")
            except Exception:  # noqa: BLE001 - the tool's own command reports it
                pass


def _recv_request(conn):
    """(fds, payload fields) of one request; raises ValueError when malformed."""
    head = b""
    fds = []
    while len(head) < 4:
        msg, anc, _flags, _addr = conn.recvmsg(4 - len(head), socket.CMSG_SPACE(3 * 4))
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds += list(struct.unpack(f"{len(data) // 4}i", data[: len(data) - len(data) % 4]))
        if not msg:
            raise ValueError("the client closed the connection")
        head += msg
    (length,) = struct.unpack("=I", head)
    if length > MAX_REQUEST or len(fds) != 3:
        for fd in fds:
            os.close(fd)
        raise ValueError(f"bad request: {length} bytes, {len(fds)} descriptors")
    data = bytearray()
    while len(data) < length:
        chunk = conn.recv(min(65536, length - len(data)))
        if not chunk:
            raise ValueError("the client closed the connection")
        data += chunk
    fields = bytes(data).split(b"\0")
    if fields[0].decode() != MAGIC:
        raise ValueError(f"not a {MAGIC} request")
    return fds, fields[1:]


def _parse(fields):
    umask = int(fields[0], 8)
    cwd = os.fsdecode(fields[1])
    tool = os.fsdecode(fields[2])
    argc = int(fields[3])
    args = [os.fsdecode(a) for a in fields[4:4 + argc]]
    rest = fields[4 + argc:]
    envc = int(rest[0])
    env = {}
    for item in rest[1:1 + envc]:
        key, sep, value = item.partition(b"=")
        if sep:
            env[os.fsdecode(key)] = os.fsdecode(value)
    return umask, cwd, tool, args, env


def _streams():
    """New sys.stdin/stdout/stderr on descriptors 0-2 (taken over from the
    client), buffered as a fresh Python's are for pipes and files."""
    def text(fd, mode, errors, line):
        raw = io.FileIO(fd, mode, closefd=False)
        buf = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
        return io.TextIOWrapper(buf, encoding="utf-8", errors=errors, line_buffering=line or raw.isatty())

    sys.stdin = sys.__stdin__ = text(0, "r", "surrogateescape", False)
    sys.stdout = sys.__stdout__ = text(1, "w", "surrogateescape", False)
    sys.stderr = sys.__stderr__ = text(2, "w", "backslashreplace", True)


def _exit_code(exc):
    """The exit status a Python would give for SystemExit(exc.code)."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        sys.stderr.write(f"{code}\n")
    except Exception:  # noqa: BLE001
        pass
    return 1


def _child(fds, umask, cwd, tool, args, env):
    """In the forked child: become the command, run the tool, exit."""
    rc = 1
    try:
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as Python sets it up
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.umask(umask)
        os.environ.clear()
        os.environ.update(env)
        _streams()
        try:
            os.chdir(cwd)
        except OSError:
            os.chdir("/")
        from k8stwin import dispatch

        sys.argv = [tool, *args]
        try:
            dispatch.run(tool, args)
            rc = 0
        except SystemExit as exc:
            rc = _exit_code(exc)
        except KeyboardInterrupt:
            rc = 130
        except BaseException:  # noqa: BLE001 - as Python reports an uncaught exception
            traceback.print_exc()
            rc = 1
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                if stream is sys.stdout:
                    rc = rc or 120
    finally:
        os._exit(rc)


class Server:
    def __init__(self, path):
        self.path = path
        self.sel = selectors.DefaultSelector()
        self.running = {}  # child pid -> client connection
        self.by_conn = {}
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)

    def listen(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        tmp = self.path + ".new"
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        sock.bind(tmp)
        os.chmod(tmp, 0o600)
        sock.listen(64)
        os.replace(tmp, self.path)  # clients see the socket only once it listens
        self.sock = sock
        self.sel.register(sock, selectors.EVENT_READ, "accept")
        self.sel.register(self.wake_r, selectors.EVENT_READ, "reap")
        signal.signal(signal.SIGCHLD, lambda *a: self._wake())

    def _wake(self):
        try:
            os.write(self.wake_w, b"x")
        except OSError:
            pass

    def serve(self, stop=lambda: False):
        while not stop():
            for key, _ in self.sel.select(timeout=1.0):
                if key.data == "accept":
                    self._accept()
                elif key.data == "reap":
                    try:
                        os.read(self.wake_r, 4096)
                    except BlockingIOError:
                        pass
                else:
                    self._client_event(key.fileobj)
            self._reap()

    def _accept(self):
        try:
            conn, _ = self.sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        try:
            conn.settimeout(10)
            fds, fields = _recv_request(conn)
            request = _parse(fields)
        except (OSError, ValueError, IndexError) as exc:
            sys.stderr.write(f"k8stwin toolserver: refused a request: {exc}\n")
            conn.close()
            return
        pid = os.fork()
        if pid == 0:
            self.sock.close()
            conn.close()
            _child(fds, *request)
        for fd in fds:
            os.close(fd)
        self.running[pid] = conn
        self.by_conn[conn] = pid
        try:
            conn.sendall(f"P{pid}\n".encode())
        except OSError:
            pass
        conn.setblocking(False)
        self.sel.register(conn, selectors.EVENT_READ, "client")

    def _client_event(self, conn):
        """The client sent something or closed: it went away (it sends
        nothing after its request), so its command dies with it."""
        try:
            data = conn.recv(64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            return
        pid = self.by_conn.get(conn)
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if pid == 0:
                return
            conn = self.running.pop(pid, None)
            if conn is None:
                continue
            self.by_conn.pop(conn, None)
            try:
                self.sel.unregister(conn)
            except (KeyError, ValueError):
                pass
            try:
                conn.setblocking(True)
                conn.settimeout(5)
                conn.sendall(f"X{status}\n".encode())
            except OSError:
                pass
            conn.close()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    path = argv[0] if argv else os.environ.get(SOCKET_ENV, SOCKET_PATH)
    preload()
    server = Server(path)
    server.listen()
    stopping = []
    signal.signal(signal.SIGTERM, lambda *a: stopping.append(1))
    try:
        server.serve(stop=lambda: bool(stopping))
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
    return 0


def start(spec, env, log):
    """Start the server in a node (its init calls this): a Popen, or None when
    no client was built for this twin."""
    client = env.get(CLIENT_ENV)
    if not client or not os.access(client, os.X_OK):
        return None
    return subprocess.Popen([spec["python"], "-m", "k8stwin.toolserver", env.get(SOCKET_ENV, SOCKET_PATH)],
                            env=env, cwd="/", stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except OSError as exc:
        if exc.errno != errno.EINTR:
            raise
