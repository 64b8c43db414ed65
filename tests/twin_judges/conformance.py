"""Conformance of the twin's emulated tools with the real ones (issue 10 item 3).

The same command line runs on the real tool (Debian 12's, on a scratch root,
admindir, installroot or a namespace the test creates) and on the twin's
emulation (in-process, on a scratch twin node); each test compares exit codes
and the output Salt or the product parses. Every case also carries what the
real tool printed when the table was written (`Real`, with the real tool's
version), so the twin is held to it even where the real tool is missing;
where it is present the real tool must still print the recording.

Helpers here: `TwinNode` (a twin node in a temp dir, tools run in-process),
`real()` (a real command), `ensure_packages()` (apt-get install of missing
real tools, or a reason to skip), `netns()` (run a command in a fresh
network + mount namespace), `http_dir()` (a loopback HTTP server)."""

import contextlib
import functools
import http.server
import importlib
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import threading
from typing import NamedTuple

ROOT = pathlib.Path(__file__).resolve().parents[2]
TWIN = ROOT / "twin"
if str(TWIN) not in sys.path:
    sys.path.insert(0, str(TWIN))


class Result(NamedTuple):
    rc: int
    out: str
    err: str


def real(argv, stdin=None, env=None, timeout=120, cwd=None):
    """Run a real command; a Result."""
    full_env = dict(os.environ, LC_ALL="C.UTF-8", LANG="C.UTF-8", **(env or {}))
    full_env.pop("LANGUAGE", None)
    proc = subprocess.run([str(a) for a in argv], input=stdin, capture_output=True, text=True, env=full_env,
                          timeout=timeout, cwd=cwd)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def version_of(argv, pick=None):
    """First line of a tool's version output (or `pick(text)`)."""
    res = real(argv)
    text = res.out or res.err
    return pick(text) if pick else (text.splitlines() or [""])[0]


def deb_version(package):
    res = real(["dpkg-query", "-W", "--showformat=${Version}", package])
    return res.out.strip() if res.rc == 0 else None


def ensure_packages(tools):
    """`tools` {command: Debian package}: apt-get install what is missing
    (tests/host_tools.py: waits for the dpkg lock another test worker may
    hold). Returns None when all are there, else why not (the caller skips)."""
    from tests import host_tools

    return host_tools.ensure(tools)


# ------------------------------------------------------------------ the twin

OS_KEYS = {
    "debian12": ("Debian-12", "6.1.0-25-amd64"),
    "rocky9": ("Rocky Linux-9", "5.14.0-427.13.1.el9_4.x86_64"),
}


class TwinNode:
    """A twin node in `base` (root/ and node/): node.json written, state.json
    as given; its tools run in this process, as `state.run_tool` would run
    them (argv[0] picks twin/k8stwin/tools/<argv0>.py)."""

    def __init__(self, base, os_key="debian12", state=None, catalog=None, kernel=None):
        base = pathlib.Path(base)
        self.root = base / "root"
        self.dir = base / "node"
        self.root.mkdir(parents=True, exist_ok=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        osfinger, default_kernel = OS_KEYS[os_key]
        info = {"id": f"conform-{os_key}", "os": osfinger, "os_key": os_key, "kernel": kernel or default_kernel,
                "gpus": [], "faults": {}}
        (self.dir / "node.json").write_text(json.dumps(info))
        (self.dir / "state.json").write_text(json.dumps(state or {}))
        self.catalog = str(catalog) if catalog else None

    def state(self):
        return json.loads((self.dir / "state.json").read_text())

    def set_state(self, **keys):
        st = self.state()
        st.update(keys)
        (self.dir / "state.json").write_text(json.dumps(st))

    def path(self, rel):
        return self.root / str(rel).lstrip("/")

    def write(self, rel, text):
        p = self.path(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        return p

    @contextlib.contextmanager
    def _env(self):
        keys = {"K8STWIN_ROOT": str(self.root), "K8STWIN_NODE_DIR": str(self.dir)}
        if self.catalog:
            keys["K8STWIN_CATALOG"] = self.catalog
        saved = {k: os.environ.get(k) for k in (*keys, "K8STWIN_CATALOG")}
        os.environ.pop("K8STWIN_CATALOG", None)
        os.environ.update(keys)
        from k8stwin import pkgdb

        pkgdb._CATALOG = None
        try:
            yield
        finally:
            pkgdb._CATALOG = None
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def run(self, argv, stdin=None):
        argv = [str(a) for a in argv]
        mod = importlib.import_module(f"k8stwin.tools.{argv[0].replace('-', '_')}")
        out, err = io.StringIO(), io.StringIO()
        saved_in = sys.stdin
        sys.stdin = io.StringIO(stdin or "")
        rc = 1
        try:
            with self._env(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    rc = mod.main(argv) or 0
                except SystemExit as exc:
                    rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.stdin = saved_in
        return Result(rc, out.getvalue(), err.getvalue())

    def py(self, func, *args, **kwargs):
        """Call a twin function (`k8stwin.<module>.<name>`) with this node's environment."""
        module, name = func.rsplit(".", 1)
        with self._env():
            return getattr(importlib.import_module(f"k8stwin.{module}"), name)(*args, **kwargs)


# ------------------------------------------------------------------ helpers


@contextlib.contextmanager
def http_dir(directory):
    """A loopback HTTP server for `directory`; yields its base URL."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(directory))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def in_namespace(script_argv, mounts=(), net=True, timeout=120, stdin=None):
    """Run `script_argv` under `unshare --mount [--net] --propagation private`,
    after the `mounts` (shell lines run first, in the namespace). Everything
    the namespace holds ends with the command."""
    import shlex

    pre = "".join(f"{m} && " for m in mounts)
    cmd = ["unshare", "--mount", "--propagation", "private"] + (["--net"] if net else [])
    cmd += ["sh", "-c", pre + "exec " + shlex.join(str(a) for a in script_argv)]
    return real(cmd, timeout=timeout, stdin=stdin)


def salt_selections(text):
    """dpkg --get-selections as Salt's aptpkg._parse_selections reads it."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            out.setdefault(parts[1], []).append(parts[0])
    return out


def diff_hint(what, want, got, who="twin", ref="recorded real"):
    return f"{what}\n{ref}: {want!r}\n{who}: {got!r}"


class BootedSystemd:
    """A throwaway systemd booted under systemd-nspawn: an almost empty root
    (os-release, passwd, group, an empty machine-id) with the host's /usr as
    the lower of an overlay, so the host's systemd (Debian 12's 252) runs
    as PID 1 with nothing of the host's enabled; no network (--private-
    network), not registered with machined (this host's PID 1 is not
    systemd). Vendor unit files go to `usr_upper`/lib/systemd/system before
    start(); `systemctl(*args)` runs inside; close() powers it off."""

    def __init__(self, base):
        self.base = pathlib.Path(base)
        self.root = self.base / "root"
        self.usr_upper = self.base / "usr-upper"
        self.proc = None
        self.pid = None
        for d in ("etc/systemd/system", "var", "run", "tmp", "proc", "sys", "dev", "usr", "root"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        for link in ("bin", "sbin", "lib", "lib64"):
            (self.root / link).symlink_to(f"usr/{link}")
        for f in ("/etc/os-release", "/etc/passwd", "/etc/group"):
            shutil.copy(f, self.root / "etc")
        (self.root / "etc/machine-id").write_text("")
        (self.usr_upper / "lib/systemd/system").mkdir(parents=True, exist_ok=True)

    def start(self, timeout=60):
        import time

        log = open(self.base / "nspawn.log", "wb")  # noqa: SIM115 - lives as long as the container
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "-q", "-D", str(self.root), f"--overlay=/usr:{self.usr_upper}:/usr", "-b",
             "--private-network", "--register=no", "--keep-unit", "--console=pipe",
             f"--machine=conform-{os.getpid()}"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        host_ns = os.readlink("/proc/self/ns/pid")
        while self.pid is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("systemd-nspawn did not boot: " + (self.base / "nspawn.log").read_text(errors="replace")[-2000:])
            for task in os.listdir(f"/proc/{self.proc.pid}/task"):
                for child in pathlib.Path(f"/proc/{self.proc.pid}/task/{task}/children").read_text().split():
                    with contextlib.suppress(OSError):
                        if os.readlink(f"/proc/{child}/ns/pid") != host_ns:
                            self.pid = int(child)
            time.sleep(0.1)
        while True:
            res = self.systemctl("is-system-running", "--wait")
            if res.out.strip() in ("running", "degraded"):
                return self
            if time.monotonic() > deadline:
                raise RuntimeError(f"the booted systemd is {res.out.strip() or res.err.strip()!r}")
            time.sleep(0.2)

    def systemctl(self, *args):
        return real(["nsenter", "-t", str(self.pid), "-m", "-u", "-i", "-n", "-p", "--", "systemctl", *args], timeout=60)

    def close(self):
        import signal

        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGRTMIN + 4)  # systemd: poweroff
        if self.proc:
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def fetch_unpacked(suite, package):
    """`package` of Debian `suite`, downloaded with the host's apt-get (its
    own sources, lists, cache and an empty status, so neither the host's apt
    state nor its installed version matter) and unpacked with dpkg-deb -x
    under CACHE/conformance/ (reused between runs). Returns (root, .deb
    name); raises RuntimeError when it cannot."""
    import tempfile

    from tests.judges import binaries

    dest = binaries.CACHE / "conformance" / f"{suite}-{package}"
    stamp = dest / ".complete"
    if stamp.exists():
        return dest, stamp.read_text().strip()
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise RuntimeError("apt-get and dpkg-deb are needed")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="apt-", dir=dest.parent) as tmp:
        tmp = pathlib.Path(tmp)
        (tmp / "status").write_text("")
        (tmp / "sources.list").write_text(f"deb [signed-by={binaries.KEYRING}] {binaries.MIRROR} {suite} main\n")
        for sub in ("lists/partial", "cache/archives/partial", "parts"):
            (tmp / sub).mkdir(parents=True)
        opts = ["-o", f"Dir::Etc::SourceList={tmp / 'sources.list'}", "-o", f"Dir::Etc::SourceParts={tmp / 'parts'}",
                "-o", f"Dir::State::Lists={tmp / 'lists'}", "-o", f"Dir::Cache={tmp / 'cache'}",
                "-o", f"Dir::State::status={tmp / 'status'}", "-o", "APT::Architecture=amd64"]
        for argv, where in ((["apt-get", "-q", *opts, "update"], None), (["apt-get", "-q", *opts, "download", package], tmp)):
            res = real(argv, cwd=where, timeout=600)
            if res.rc:
                raise RuntimeError(f"{' '.join(argv[:2])} ... {argv[-1]} failed: {res.err.strip()[-300:]}")
        deb = sorted(tmp.glob(f"{package}_*.deb"))[0]
        staging = pathlib.Path(tempfile.mkdtemp(prefix="unpack-", dir=dest.parent))
        res = real(["dpkg-deb", "-x", deb, staging])
        if res.rc:
            raise RuntimeError(res.err)
        (staging / ".complete").write_text(deb.name + "\n")
        shutil.rmtree(dest, ignore_errors=True)
        staging.rename(dest)
    return dest, stamp.read_text().strip()
