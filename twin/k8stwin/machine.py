"""
One simulated machine: a process tree in its own mount, PID and UTS
namespaces, with private overlays of what the states touch (see
docs/twin-internals.md "Machines").

Run as ``python -m k8stwin.machine SPEC_JSON`` by the supervisor
(:mod:`k8stwin.cluster`). The process unshares, forks the namespace's init
(PID 1), writes ``<run>/machines/<id>.json`` with the init's host PID and
waits for it. The init sets up the mounts, runs the boot hooks, starts the
node's salt-minion and reaps children until SIGTERM, when it stops the minion
and exits: the kernel then kills whatever is left in the PID namespace and the
mount namespace (with its /run and /tmp) goes away.
"""

import ctypes
import json
import os
import signal
import subprocess
import sys
import time

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWPID = 0x20000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)

# Directories each node gets a private overlay of: (node path, lower).
# lower "host" means the host's own directory (programs must keep running),
# "image" the per-OS image (identity, runtime essentials) or an empty dir.
LAYERS = [
    ("/usr", "host"),
    ("/usr/src", "image"),
    ("/usr/lib/modules", "image"),
    ("/etc", "image"),
    ("/var", "image"),
    ("/boot", "image"),
    ("/opt", "image"),
    ("/home", "image"),
    ("/root", "image"),
    ("/srv", "image"),
]


def _check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source, target, fstype=None, flags=0, data=None):
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {source} {target} ({fstype or 'bind'})",
    )


def unshare(flags):
    _check(_libc.unshare(flags), "unshare")


def layer_name(path):
    return path.strip("/").replace("/", "_")


def _bind_fd(fd, target, readonly=False):
    os.makedirs(target, exist_ok=True)
    mount(f"/proc/self/fd/{fd}", target, None, MS_BIND)
    if readonly:
        mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY)


def setup_mounts(spec):
    """Build the node's filesystem view (called in the new namespaces)."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    keep = {}
    # Paths to keep visible at their host path after the private layers and
    # the hidden run directory cover them: the node directories (read-only;
    # this node's own read-write), the artifact store (read-only), the shared
    # cluster directory (kube state) and the Python installation.
    # (in order: a later bind may sit on an earlier one)
    for path, ro in spec["binds"]:
        if os.path.isdir(path):
            keep[path] = (os.open(path, os.O_PATH | os.O_DIRECTORY), ro)
    # The repository (read-only), opened before anything covers it: a clone
    # under /tmp, /root, /home, /opt or /srv would otherwise vanish under the
    # node's fresh /tmp or its private layers.
    readonly = [(p, os.open(p, os.O_PATH | os.O_DIRECTORY)) for p in spec.get("readonly", []) if os.path.isdir(p)]
    disks = spec["disk_dir"]
    image = spec["image_dir"]
    for path, lower in LAYERS:
        name = layer_name(path)
        upper = os.path.join(disks, name, "upper")
        work = os.path.join(disks, name, "work")
        low = path if lower == "host" else os.path.join(image, name)
        os.makedirs(path, exist_ok=True)
        mount("overlay", path, "overlay", 0, f"lowerdir={low},upperdir={upper},workdir={work}")
    mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
    for sub in ("systemd/system", "lock", "user"):
        os.makedirs("/run/" + sub, exist_ok=True)
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    for path, fd in readonly:
        _bind_fd(fd, path, readonly=True)
        os.close(fd)
    for hide in spec["hide"]:
        if os.path.isdir(hide):
            mount("tmpfs", hide, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
    for path, (fd, ro) in keep.items():
        _bind_fd(fd, path, ro)
        os.close(fd)
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    # Kernel knobs are the host's (the node has no kernel of its own): a node
    # reads them, its emulated sysctl/modprobe keep the node's own values.
    for path in ("/proc/sys", "/proc/sysrq-trigger", "/sys"):
        if os.path.exists(path):
            mount(path, path, None, MS_BIND | MS_REC)
            mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY)


def node_env(spec, extra=None):
    node_dir = spec["node_dir"]
    env = {
        "PATH": os.path.join(node_dir, "bin") + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "K8STWIN_NODE_DIR": node_dir,
        "K8STWIN_ROOT": "/",
        "K8STWIN_PYTHON": spec["python"],
        "K8STWIN_TWIN_DIR": spec["twin_dir"],
        "K8STWIN_KERNEL": spec.get("kernel", ""),
        "PYTHONPATH": os.pathsep.join([spec["twin_dir"], os.path.join(spec["twin_dir"], "k8stwin", "site")]),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.update(spec.get("env") or {})
    for name in ("K8STWIN_CATALOG",):
        if os.environ.get(name):
            env[name] = os.environ[name]
    env.update(extra or {})
    return env


def _run_boot(spec, mode, log):
    """Run the boot step (first boot or reboot) in a child, inside the node."""
    cmd = [spec["python"], "-c", f"from k8stwin import image; image.boot_step({mode!r})"]
    return subprocess.call(cmd, env=node_env(spec), cwd="/", stdin=subprocess.DEVNULL, stdout=log, stderr=log)


def _running_kernel(spec):
    try:
        with open(os.path.join(spec["node_dir"], "state.json"), encoding="utf-8") as fh:
            return (json.load(fh).get("kernel") or {}).get("running") or spec["kernel"]
    except (OSError, ValueError):
        return spec["kernel"]


def _write_minion_config(spec, kernel):
    conf = dict(spec["minion_opts"])
    grains = dict(conf.get("grains") or {})
    grains["kernelrelease"] = kernel
    conf["grains"] = grains
    os.makedirs("/etc/salt/minion.d", exist_ok=True)
    if not os.path.exists("/etc/salt/minion"):
        with open("/etc/salt/minion", "w", encoding="utf-8") as fh:
            fh.write("# salt-minion configuration (the twin's settings are in minion.d/k8stwin.conf)\n")
    text = "# Written by the cluster twin at every boot.\n" + json.dumps(conf, indent=1, sort_keys=True) + "\n"
    path = "/etc/salt/minion.d/k8stwin.conf"
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read() == text:
                return
    except OSError:
        pass
    try:
        with open(path + ".tmp", "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(path + ".tmp", path)
    except OSError as exc:  # a full / (the disk_full fault): the minion keeps its last config
        sys.stderr.write(f"twin: could not write {path}: {exc}\n")
        try:
            os.unlink(path + ".tmp")
        except OSError:
            pass


class Init:
    """PID 1 of a node."""

    def __init__(self, spec):
        self.spec = spec
        self.minion = None
        self.tool_server = None
        self.stopping = False
        self.want_minion = False
        self.next_tick = 0.0

    def start_minion(self):
        os.makedirs("/var/log/salt", exist_ok=True)
        out = open("/var/log/salt/minion.console", "ab")  # noqa: SIM115 - owned by the child
        kernel = _running_kernel(self.spec)
        self.minion = subprocess.Popen(
            [self.spec["salt_minion"], "-c", "/etc/salt", "--log-file-level=info"],
            env=node_env(self.spec, {"K8STWIN_KERNEL": kernel}),
            cwd="/",
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        out.close()
        self._status(minion_pid=self.minion.pid, minion_started=time.time())

    def start_tool_server(self, kernel):
        """The node's tool server (k8stwin.toolserver), before the minion; the
        commands start a Python each until it listens, or without it."""
        from k8stwin import toolserver

        env = node_env(self.spec, {"K8STWIN_KERNEL": kernel})
        with open(os.path.join(self.spec["node_dir"], "toolserver.log"), "ab") as log:
            self.tool_server = toolserver.start(self.spec, env, log)

    def _status(self, **kw):
        path = os.path.join(self.spec["node_dir"], "machine.status")
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError):
            data = {}
        data.update(kw)
        with open(path + ".tmp", "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(path + ".tmp", path)

    def stop_minion(self, timeout=1):
        """Stop the minion's process group (SIGTERM, then SIGKILL); whatever
        else runs in the node dies with this init."""
        if self.minion is None:
            return
        self._killpg(signal.SIGTERM)
        try:
            self.minion.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        self._killpg(signal.SIGKILL)
        if self.minion.returncode is None:
            self.minion.wait()

    def _killpg(self, sig):
        try:
            os.killpg(self.minion.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def run(self):
        spec = self.spec
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        signal.signal(signal.SIGUSR1, self._on_usr1)
        setup_mounts(spec)
        import socket

        socket.sethostname(spec["id"])
        os.chdir("/")
        with open(os.path.join(spec["node_dir"], "boot.log"), "ab") as log:
            log.write(f"--- boot {spec['boot_mode']} {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode())
            log.flush()
            rc = _run_boot(spec, spec["boot_mode"], log)
        kernel = _running_kernel(spec)
        self.start_tool_server(kernel)  # after the boot step, which empties /run
        _write_minion_config(spec, kernel)
        # jobs the previous boot's minion did not finish (Salt drops such
        # entries itself once their PID is gone; PIDs restart at 1 here)
        proc_dir = "/var/cache/salt/minion/proc"
        for name in os.listdir(proc_dir) if os.path.isdir(proc_dir) else []:
            try:
                os.unlink(os.path.join(proc_dir, name))
            except OSError:
                pass
        self._status(booted=time.time(), boot_rc=rc, kernel=kernel, minion_pid=None)
        if spec.get("start_minion", True) and not self.stopping:
            self.start_minion()
        while not self.stopping:
            if self.want_minion and (self.minion is None or self.minion.poll() is not None):
                self.want_minion = False
                self.start_minion()
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid = 0
            if pid == 0:
                self._tick()
                time.sleep(0.25)
                continue
            if self.minion is not None and pid == self.minion.pid:
                self.minion.returncode = os.waitstatus_to_exitcode(status)
                self._status(minion_pid=None, minion_exit=self.minion.returncode)
        self.stop_minion()
        return 0

    def _tick(self):
        """About once a second: the node's kubelet stand-in
        (``k8stwin.gpuholders.tick``: pod processes started and killed as
        the cluster says). A failure there never stops the machine."""
        now = time.monotonic()
        if now < self.next_tick:
            return
        self.next_tick = now + 1.0
        try:
            if not getattr(self, "tick_env", False):
                os.environ.update(node_env(self.spec))
                self.tick_env = True
            from k8stwin import gpuholders

            gpuholders.tick()
        except (Exception, SystemExit):  # noqa: BLE001
            pass

    def _on_usr1(self, signum, frame):
        self.want_minion = True

    def _on_term(self, signum, frame):
        self.stopping = True


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0], encoding="utf-8") as fh:
        spec = json.load(fh)
    os.setsid() if os.getpid() != os.getsid(0) else None
    unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS)
    # The init waits until the machine file is written: its mounts hide the
    # run directory from this (outer) process too, which shares the mount namespace.
    rfd, wfd = os.pipe()
    child = os.fork()
    if child == 0:
        code = 1
        os.close(wfd)
        os.read(rfd, 1)
        os.close(rfd)
        try:
            code = Init(spec).run()
        except BaseException as exc:  # noqa: BLE001 - report any failure of the init
            import traceback

            with open(os.path.join(spec["node_dir"], "boot.log"), "a", encoding="utf-8") as fh:
                fh.write(f"machine init failed: {exc}\n{traceback.format_exc()}")
        finally:
            os._exit(code)
    info = {"id": spec["id"], "pid": os.getpid(), "init": child, "started": time.time(), "boot": spec["boot_mode"]}
    path = spec["machine_file"]
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(info, fh)
    os.replace(path + ".tmp", path)
    os.close(rfd)
    os.write(wfd, b"x")
    os.close(wfd)

    def forward(signum, frame):
        try:
            os.kill(child, signal.SIGTERM)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    while True:
        try:
            _pid, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
