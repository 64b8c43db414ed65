"""
The cluster twin: a real salt-master and one real salt-minion per simulated
machine (:mod:`k8stwin.machine`), driven by a supervisor process.

Run directory (default ``<repo>/.run/twin``)::

    twin.json            what is up: cluster, pillar, ports, nodes, pids
    supervisor.pid/.log  the supervisor (python -m k8stwin.cluster supervise RUN)
    etc/salt/master      master config (``salt -c RUN/etc/salt``)
    master/              master root_dir (pki, cache, logs, sockets)
    pillar-twin/         overlay pillar (pillar env ``twin``)
    artifacts/           artifact store (``k8snvidia.artifact_mirror``)
    images/<os>/         per-OS lower layers
    disks/<id>/          a node's overlay upper/work dirs
    nodes/<id>/          $K8STWIN_NODE_DIR (node.json, state.json, commands.jsonl, ...)
    machines/<id>.json   the node's machine process and its namespace init
    events.jsonl         supervisor's record (boots, reboots, power requests)
    runs.jsonl           salt commands run through the twin, with their results
    records.json         the summary tests read (:meth:`Twin.records`)
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

from . import image, os_profiles

TWIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(TWIN_DIR)
DEFAULT_RUN = os.path.join(REPO, ".run", "twin")
DEFAULT_CLUSTER = os.path.join(TWIN_DIR, "clusters", "seed.yaml")
DEFAULT_PILLAR = os.path.join(REPO, "pillar")
VENV_BIN = os.path.join(REPO, ".venv", "bin")
FAULTS = {
    "download_checksum_mismatch",
    "repo_unreachable",
    "never_returns_from_reboot",
    "minion_down_at_start",
    "kubeadm_join_fails",
    "returns_late_from_reboot",
    "joined_to_another_cluster",
    "dkms_build_fails",
    "disk_full",
}
# The disk_full fault: a machine's filesystems are "/" (every private layer
# but /var and /boot), "/var" and "/boot". A full one is a tmpfs of its own
# (DISK_CAP at most, in memory only what is written) that the twin shrinks to
# what it holds once the machine is up: every write that needs a block fails
# with ENOSPC, in the node's tools and its salt-minion alike.
DISK_MOUNTS = ("/", "/var", "/boot")
DISK_CAP = 1 << 30
NODE_KEYS = {"id", "os", "kernel", "gpus", "faults", "ip", "role", "cpus", "memory_mib"}


class TwinError(Exception):
    pass


# --------------------------------------------------------------------------
# cluster description


def load_cluster(path):
    """Read and check a cluster description file; returns {"name", "nodes": [...]}."""
    import yaml

    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    nodes = data.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise TwinError(f"{path}: 'nodes' must be a non-empty list")
    out, seen = [], set()
    for i, raw in enumerate(nodes):
        if not isinstance(raw, dict) or not raw.get("id"):
            raise TwinError(f"{path}: nodes[{i}] needs an 'id'")
        unknown = set(raw) - NODE_KEYS
        if unknown:
            raise TwinError(f"{path}: node {raw['id']}: unknown keys {sorted(unknown)}")
        nid = str(raw["id"])
        if nid in seen:
            raise TwinError(f"{path}: node {nid} listed twice")
        seen.add(nid)
        try:
            os_key = os_profiles.key(str(raw.get("os", "centos7")))
        except KeyError as exc:
            raise TwinError(f"{path}: node {nid}: {exc.args[0]}") from None
        faults = raw.get("faults") or {}
        if isinstance(faults, list):
            faults = {f: True for f in faults}
        bad = set(faults) - FAULTS
        if bad:
            raise TwinError(f"{path}: node {nid}: unknown faults {sorted(bad)}; known: {sorted(FAULTS)}")
        if "disk_full" in faults:
            faults = dict(faults, disk_full=_disk_full_mounts(faults["disk_full"], f"{path}: node {nid}"))
        gpus = raw.get("gpus") or []
        if isinstance(gpus, dict):  # {model: count}
            gpus = [m for m, n in gpus.items() for _ in range(int(n))]
        out.append({
            "id": nid,
            "os_key": os_key,
            "kernel": str(raw.get("kernel") or os_profiles.profile(os_key)["kernel"]),
            "gpus": [str(g) for g in gpus],
            "faults": faults,
            "ip": raw.get("ip"),
            "role": raw.get("role"),
            # hardware kubeadm's preflight checks (NumCPU, Mem); defaults 8 / 32768
            "cpus": int(raw.get("cpus") or 8),
            "memory_mib": int(raw.get("memory_mib") or 32768),
        })
    return {"name": data.get("name") or os.path.splitext(os.path.basename(path))[0], "nodes": out,
            "time_scale": float(data.get("time_scale", 0.05))}


def _disk_full_mounts(value, where):
    """The filesystems a disk_full fault names: a mount point, a list of
    them, or true ("/")."""
    if value is True:
        return ["/"]
    if value is False or value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise TwinError(f"{where}: disk_full: expected one of {list(DISK_MOUNTS)} or a list of them, got {value!r}")
    out = []
    for item in items:
        mnt = str(item).rstrip("/") or "/"
        if mnt not in DISK_MOUNTS:
            raise TwinError(f"{where}: disk_full: {item!r} is not one of the machine's filesystems {list(DISK_MOUNTS)}")
        if mnt not in out:
            out.append(mnt)
    return out


def disk_layers(mount):
    """The private layers (machine.LAYERS paths) on filesystem ``mount``."""
    from .machine import LAYERS

    if mount == "/":
        return [p for p, _ in LAYERS if p not in DISK_MOUNTS]
    return [mount]


def disk_name(mount):
    return "root" if mount == "/" else mount.strip("/")


# --------------------------------------------------------------------------
# helpers


def _free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def _write_json(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
    os.replace(path + ".tmp", path)


def _read_json(path, default=None):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return default


def _append_jsonl(path, data):
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(data, sort_keys=True) + "\n")


def _alive(pid):
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _python_prefixes():
    """Directories the venv's Python needs (its base installation)."""
    paths = {os.path.realpath(sys.base_prefix)}
    return sorted(paths)


def _private_roots():
    from .machine import LAYERS

    return [p for p, _ in LAYERS] + ["/run", "/tmp"]


# --------------------------------------------------------------------------
# the twin (used by the CLI and by tests)


class Twin:
    def __init__(self, run_dir=None):
        self.run = os.path.abspath(run_dir or os.environ.get("K8STWIN_RUN") or DEFAULT_RUN)

    # paths
    def path(self, *parts):
        return os.path.join(self.run, *parts)

    @property
    def config_dir(self):
        return self.path("etc", "salt")

    def node_dir(self, node):
        return self.path("nodes", node)

    def info(self):
        return _read_json(self.path("twin.json"), {}) or {}

    def supervisor_pid(self):
        try:
            with open(self.path("supervisor.pid"), encoding="utf-8") as fh:
                pid = int(fh.read().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) and self.run in _cmdline(pid) else None

    def is_up(self):
        return self.supervisor_pid() is not None

    # ---------------------------------------------------------------- up
    def prepare(self, cluster_file=None, pillar_dir=None):
        """Write the run directory for a cluster (nothing is started)."""
        cluster_file = os.path.abspath(cluster_file or DEFAULT_CLUSTER)
        pillar_dir = os.path.abspath(pillar_dir or DEFAULT_PILLAR)
        cluster = load_cluster(cluster_file)
        if not os.path.isdir(pillar_dir):
            raise TwinError(f"pillar directory {pillar_dir} does not exist")
        if len(self.run) > 60:
            raise TwinError(f"run directory path too long for Salt's unix sockets: {self.run}")
        if os.path.exists(self.run):
            shutil.rmtree(self.run)
        os.makedirs(self.run)
        pub, ret = _free_ports(2)
        for sub in ("master", "machines", "nodes", "disks", "images", "artifacts", "pillar-twin", "etc/salt",
                    "cluster", "broker", "tools"):
            os.makedirs(self.path(sub), exist_ok=True)
        # the nodes' tool client (k8stwin.toolserver); without a C compiler
        # the tools start a Python each, as the dispatcher falls back to
        from . import toolserver

        try:
            toolserver.build_client(self.path("tools"))
        except (OSError, subprocess.SubprocessError) as exc:
            sys.stderr.write(f"twin: no tool client ({exc}); each emulated command starts its own Python\n")
        # the nodes' containerd and dockerd judge their configs with Debian's real binaries
        from . import realbins

        problem = realbins.fetch_all()
        if problem:
            raise TwinError(f"the twin's containerd and dockerd are Debian's real ones, which could not be fetched "
                            f"({problem}); fetch them where Debian's archive is reachable: bin/debian_binaries.py")
        os.makedirs(realbins.dumps_dir(), exist_ok=True)
        # overlay pillar and artifact store
        overlay = {}
        try:
            from . import artifacts  # provided by the NVIDIA part of the twin

            populate = getattr(artifacts, "populate", None)
            if populate is not None:
                overlay = populate(self.path("artifacts"), pillar_dir=pillar_dir) or {}
        except ModuleNotFoundError as exc:
            if exc.name != "k8stwin.artifacts":
                raise
        import yaml

        with open(self.path("pillar-twin", "top.sls"), "w", encoding="utf-8") as fh:
            fh.write("twin:\n  '*':\n    - twin\n")
        with open(self.path("pillar-twin", "twin.sls"), "w", encoding="utf-8") as fh:
            fh.write("# Written by the cluster twin at up.\n")
            if overlay:
                yaml.safe_dump(overlay, fh, default_flow_style=False)
        master_conf = {
            "root_dir": self.path("master"),
            "interface": "127.0.0.1",
            "publish_port": pub,
            "ret_port": ret,
            "auto_accept": True,
            "user": "root",
            "file_roots": {"base": [os.path.join(REPO, "salt")]},
            "pillar_roots": {"base": [pillar_dir], "twin": [self.path("pillar-twin")]},
            "top_file_merging_strategy": "merge",
            "runner_dirs": [os.path.join(REPO, "_runners")],
            "states_dirs": [os.path.join(REPO, "_states")],
            "module_dirs": [os.path.join(REPO, "_modules")],
            "utils_dirs": [os.path.join(REPO, "_utils")],
            "worker_threads": 3,
            "timeout": 30,
            "gather_job_timeout": 20,
            "hide_pillar": False,
            "log_level_logfile": "info",
            "enable_legacy_startup_events": True,
        }
        with open(os.path.join(self.config_dir, "master"), "w", encoding="utf-8") as fh:
            fh.write("# Written by the cluster twin (bin/twin up).\n")
            yaml.safe_dump(master_conf, fh, default_flow_style=False)
        for sub in ("var/cache/salt/master", "var/log/salt", "var/run/salt/master", "etc/salt/pki/master"):
            os.makedirs(self.path("master", sub), exist_ok=True)
        nodes = {}
        for node in cluster["nodes"]:
            nid = node["id"]
            image.build(self.path("images", node["os_key"]), node["os_key"])
            ndir = self.node_dir(nid)
            os.makedirs(os.path.join(ndir, "bin"))
            for sub in ("proc", "sys"):
                os.makedirs(os.path.join(ndir, sub))
            from .machine import LAYERS, layer_name

            for mnt in (node["faults"].get("disk_full") or []):
                self._small_disk(nid, mnt)
            for p, _lower in LAYERS:
                for sub in ("upper", "work"):
                    os.makedirs(self.path("disks", nid, layer_name(p), sub), exist_ok=True)
            prof = os_profiles.profile(node["os_key"])
            node_json = {
                "id": nid,
                "os": prof["osfinger"],
                "os_key": node["os_key"],
                "family": prof["family"],
                "major": prof["major"],
                "kernel": node["kernel"],
                "gpus": node["gpus"],
                "faults": node["faults"],
                "ip": node["ip"],
                "role": node["role"],
                "cpus": node["cpus"],
                "memory_mib": node["memory_mib"],
                "tools": os_profiles.tools(node["os_key"]),
                "tool_aliases": os_profiles.tool_aliases(node["os_key"]),
                "time_scale": cluster["time_scale"],
                "cluster_dir": self.path("cluster"),
            }
            _write_json(os.path.join(ndir, "node.json"), node_json)
            if node["faults"].get("joined_to_another_cluster"):
                self._join_elsewhere(nid)
            _write_json(os.path.join(ndir, "state.json"),
                        {"kernel": {"running": node["kernel"]}, "reboots": 0, "modules": [], "services": {}})
            open(os.path.join(ndir, "commands.jsonl"), "w").close()
            for tool in node_json["tools"] + os_profiles.BLOCKED_TOOLS:
                os.symlink(image.DISPATCH, os.path.join(ndir, "bin", tool))
            nodes[nid] = node_json
        os.makedirs(self.path("cluster"), exist_ok=True)
        self._register_kube_nodes(nodes)
        info = {
            "run_dir": self.run,
            "cluster_file": cluster_file,
            "cluster": cluster["name"],
            "pillar_dir": pillar_dir,
            "ports": {"publish": pub, "ret": ret},
            "nodes": list(nodes),
            "node_info": nodes,
            "created": time.time(),
        }
        _write_json(self.path("twin.json"), info)
        open(self.path("events.jsonl"), "w").close()
        open(self.path("runs.jsonl"), "w").close()
        return info

    def _join_elsewhere(self, nid):
        """The joined_to_another_cluster fault: the node comes with what
        ``kubeadm join`` to another cluster leaves (kubelet.conf, the CA of
        that cluster), as a machine moved from another room would."""
        from . import kube
        from .machine import layer_name

        ca_pem, ca_hash = kube.new_ca()
        other = {"control_plane": {"ca_pem": ca_pem, "ca_hash": ca_hash, "endpoint": "10.99.0.10:6443",
                                   "cluster_name": "kubernetes"}}
        etc = self.path("disks", nid, layer_name("/etc"), "upper", "kubernetes")
        os.makedirs(os.path.join(etc, "pki"), exist_ok=True)
        with open(os.path.join(etc, "kubelet.conf"), "w", encoding="utf-8") as fh:
            fh.write(kube.kubeconfig_text(other, f"system:node:{nid}"))
        os.chmod(os.path.join(etc, "kubelet.conf"), 0o600)
        with open(os.path.join(etc, "pki", "ca.crt"), "w", encoding="utf-8") as fh:
            fh.write(ca_pem)

    # ---------------------------------------------------------- disk_full
    def _disk_dir(self, nid, mount):
        return self.path("disks", nid, ".disk-" + disk_name(mount))

    def _small_disk(self, nid, mount):
        """A filesystem of its own for ``mount`` of node ``nid`` (a tmpfs on
        the host side, so the twin reads the node's files as before): its
        layers' upper and work dirs live there, linked from disks/<id>/."""
        from .machine import layer_name
        from .machine import mount as sys_mount

        disk = self._disk_dir(nid, mount)
        os.makedirs(disk)
        sys_mount("tmpfs", disk, "tmpfs", 0, f"size={DISK_CAP},mode=0755")
        for layer in disk_layers(mount):
            for sub in ("upper", "work"):
                os.makedirs(os.path.join(disk, layer_name(layer), sub))
            os.makedirs(self.path("disks", nid), exist_ok=True)
            os.symlink(os.path.join(disk, layer_name(layer)), self.path("disks", nid, layer_name(layer)))

    def _disk_full_mounts(self, node):
        ni = (self.info().get("node_info") or {}).get(node)
        if ni is None:
            raise TwinError(f"no node {node} in this twin")
        mounts = ni["faults"].get("disk_full") or []
        if not mounts:
            raise TwinError(f"node {node} has no disk_full fault in the cluster file (its disks are the host's)")
        return mounts

    def fill_disk(self, node):
        """Fill the filesystems the node's disk_full fault names: each is
        shrunk to what it holds (and the last page taken), so any write
        that needs a block fails with ENOSPC ("No space left on device")."""
        from .machine import MS_REMOUNT
        from .machine import mount as sys_mount

        mounts = self._disk_full_mounts(node)
        for mnt in mounts:
            disk = self._disk_dir(node, mnt)
            for _ in range(50):
                st = os.statvfs(disk)
                used = (st.f_blocks - st.f_bfree) * st.f_frsize
                try:
                    sys_mount(None, disk, None, MS_REMOUNT, f"size={max(used, st.f_frsize)}")
                    break
                except OSError:  # it grew meanwhile (EINVAL: below what it holds)
                    time.sleep(0.05)
            else:
                raise TwinError(f"could not fill {mnt} of {node}")
            # what the rounding left: a file outside the node's view
            fd = os.open(os.path.join(disk, "ballast"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                while os.write(fd, b"\0" * st.f_frsize) > 0:
                    pass
            except OSError:
                pass
            finally:
                os.close(fd)
        _append_jsonl(self.path("events.jsonl"), {"t": round(time.time(), 3), "node": node, "event": "disk_full",
                                                  "mounts": mounts})

    def clear_disk_full(self, node):
        """Clear the disk_full fault: the filesystems get their room back
        (as an admin who deleted what filled them)."""
        from .machine import MS_REMOUNT
        from .machine import mount as sys_mount

        mounts = self._disk_full_mounts(node)
        for mnt in mounts:
            disk = self._disk_dir(node, mnt)
            try:
                os.unlink(os.path.join(disk, "ballast"))
            except FileNotFoundError:
                pass
            sys_mount(None, disk, None, MS_REMOUNT, f"size={DISK_CAP}")
        _append_jsonl(self.path("events.jsonl"), {"t": round(time.time(), 3), "node": node, "event": "disk_freed",
                                                  "mounts": mounts})

    def disk_usage(self, node):
        """{mount: {"size", "used", "free"}} (bytes) of the node's disk_full filesystems."""
        out = {}
        for mnt in self._disk_full_mounts(node):
            st = os.statvfs(self._disk_dir(node, mnt))
            out[mnt] = {"size": st.f_blocks * st.f_frsize, "used": (st.f_blocks - st.f_bfree) * st.f_frsize,
                        "free": st.f_bavail * st.f_frsize}
        return out

    def restart_master(self, wait=True, timeout=120):
        """Restart the salt-master (the supervisor does it), as a master
        host's reboot or a package upgrade would; minions reconnect."""
        before = len(self._events(None, "master_up"))
        open(self.path("master.restart"), "w").close()
        if not wait:
            return
        deadline = time.time() + timeout
        while time.time() < deadline:
            if len(self._events(None, "master_up")) > before:
                return
            time.sleep(0.5)
        raise TwinError(f"the salt-master did not restart within {timeout}s")

    def _register_kube_nodes(self, nodes):
        """Tell the twin's Kubernetes emulation (k8stwin.kube, if there) where
        each node's directory is; its state file is shared by all nodes."""
        try:
            from . import kube
        except ModuleNotFoundError as exc:
            if exc.name != "k8stwin.kube":
                raise
            return
        old = os.environ.get("K8STWIN_CLUSTER_STATE")
        os.environ["K8STWIN_CLUSTER_STATE"] = self.path("cluster", "kube-cluster.json")
        try:
            for nid in nodes:
                kube.register_node(nid, self.node_dir(nid))
        finally:
            if old is None:
                os.environ.pop("K8STWIN_CLUSTER_STATE", None)
            else:
                os.environ["K8STWIN_CLUSTER_STATE"] = old

    def up(self, cluster_file=None, pillar_dir=None, timeout=300, log=None, owner_pid=None):
        """Bring the twin up and wait until every node that should answer does.

        ``owner_pid``: the twin takes itself down when that process is gone
        (tests pass their own PID, so a killed test run leaves nothing behind)."""
        log = log or (lambda msg: None)
        if self.is_up():
            raise TwinError(f"the twin is already up in {self.run} (bin/twin down first)")
        self.down(quiet=True)
        try:
            info = self.prepare(cluster_file, pillar_dir)
        except BaseException:
            self.down(quiet=True)  # a disk_full fault's disks may be mounted already
            raise
        log(f"twin: {len(info['nodes'])} nodes from {info['cluster_file']}, pillar {info['pillar_dir']}")
        with open(self.path("supervisor.log"), "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "k8stwin.cluster", "supervise", self.run],
                cwd=self.run,
                env=dict(os.environ, PYTHONPATH=TWIN_DIR, K8STWIN_OWNER_PID=str(owner_pid or "")),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )
        try:
            self.wait_ready(timeout=timeout, proc=proc, log=log)
            # disks fill once the machines are up (their first boot wrote them)
            for nid, ni in info["node_info"].items():
                if ni["faults"].get("disk_full"):
                    self.fill_disk(nid)
                    log(f"twin: {nid}: {', '.join(ni['faults']['disk_full'])} full")
        except BaseException:
            self.down(quiet=True)
            raise
        return self.status()

    def expected_up(self):
        info = self.info()
        return [n for n, ni in info.get("node_info", {}).items() if not ni["faults"].get("minion_down_at_start")]

    def wait_ready(self, timeout=300, proc=None, log=None, nodes=None):
        """Wait until the master answers and the nodes respond to test.ping."""
        log = log or (lambda msg: None)
        want = set(nodes if nodes is not None else self.expected_up())
        deadline = time.time() + timeout
        seen = set()
        while True:
            if proc is not None and proc.poll() is not None:
                raise TwinError(f"the twin supervisor exited ({proc.returncode}); see {self.path('supervisor.log')}")
            missing = sorted(want - seen)
            if not missing:
                log(f"twin: up, {len(want)} minions answer")
                return True
            if os.path.exists(self.path("master.ready")):
                # ping the minions that logged they are ready (all of them
                # after a while, in case a log cannot be read)
                late = time.time() > deadline - timeout + 60
                ready = [n for n in missing if late or self.minion_ready(n)]
                if ready:
                    ret = self.salt_api_ping(ready)
                    seen |= {k for k, v in ret.items() if v is True}
                    if seen >= want:
                        continue
            if time.time() > deadline:
                tails = {n: self._tail(self.path("nodes", n, "boot.log")) for n in sorted(want - seen)}
                raise TwinError(f"timed out after {timeout}s waiting for minions {sorted(want - seen)}: {tails}")
            time.sleep(0.5)

    def minion_ready(self, node):
        """Whether the node's current minion logged "ready to receive
        requests" (read from the node's /var overlay on the host side)."""
        status = _read_json(os.path.join(self.node_dir(node), "machine.status"), {}) or {}
        started = status.get("minion_started")
        if not status.get("minion_pid") or not started:
            return False
        log = self.path("disks", node, "var", "upper", "log", "salt", "minion")
        try:
            with open(log, "rb") as fh:
                fh.seek(max(0, os.path.getsize(log) - 65536))
                lines = fh.read().decode(errors="replace").splitlines()
        except OSError:
            return False
        for line in reversed(lines):
            if "ready to receive requests" in line:
                try:
                    stamp = time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
                except ValueError:
                    return False
                return stamp >= int(started) - 1
        return False

    def salt_api_ping(self, nodes, timeout=4):
        """{node: True} for the nodes whose minion answers test.ping. Uses
        Salt's LocalClient with a short find_job timeout, in a child process
        (Salt's logging and sockets stay out of the caller)."""
        code = (
            "import json, sys, salt.client, salt.config\n"
            "opts = salt.config.client_config(sys.argv[1])\n"
            "opts['gather_job_timeout'] = 2\n"
            "opts['timeout'] = int(sys.argv[2])\n"
            "c = salt.client.LocalClient(mopts=opts)\n"
            "try:\n"
            "    ret = c.cmd(sys.argv[3].split(','), 'test.ping', tgt_type='list', timeout=int(sys.argv[2]))\n"
            "finally:\n"
            "    c.destroy()\n"
            "print(json.dumps(ret if isinstance(ret, dict) else {}))\n"
        )
        try:
            proc = subprocess.run(
                [os.path.join(VENV_BIN, "python"), "-c", code, os.path.join(self.config_dir, "master"),
                 str(timeout), ",".join(nodes)],
                cwd=self.run, capture_output=True, text=True, timeout=timeout + 30,
                env=dict(os.environ, PYTHONPATH=""),
            )
            return json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
        except (subprocess.TimeoutExpired, ValueError, IndexError):
            return {}

    @staticmethod
    def _tail(path, n=8):
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                return "".join(fh.readlines()[-n:])
        except OSError:
            return ""

    # ---------------------------------------------------------------- salt
    def salt_cmd(self, tool, *args):
        return [os.path.join(VENV_BIN, tool), "-c", self.config_dir, *args]

    def command(self, argv, record=True, capture=True, timeout=None):
        """Run a salt/salt-run/salt-key/salt-cp command against the twin master.

        Returns the CompletedProcess; records it in runs.jsonl."""
        if not argv:
            raise TwinError("nothing to run")
        tool = os.path.basename(argv[0])
        if tool not in ("salt", "salt-run", "salt-key", "salt-cp"):
            raise TwinError(f"bin/twin run runs salt, salt-run, salt-key or salt-cp, not {argv[0]}")
        if not os.path.exists(os.path.join(self.config_dir, "master")) or not self.is_up():
            raise TwinError(f"the twin is not up ({self.run}): bin/twin up first")
        cmd = self.salt_cmd(tool, *argv[1:])
        started = time.time()
        proc = subprocess.run(cmd, cwd=self.run, capture_output=capture, text=True, timeout=timeout,
                              env=dict(os.environ, PYTHONPATH=""))
        if record:
            entry = {"t": round(started, 3), "duration_s": round(time.time() - started, 3), "argv": argv, "rc": proc.returncode}
            if capture:
                try:
                    entry["result"] = json.loads(proc.stdout)
                except ValueError:
                    entry["output"] = proc.stdout[-20000:]
            _append_jsonl(self.path("runs.jsonl"), entry)
        return proc

    def salt(self, *args, tool="salt", record=True, check=True, timeout=None):
        """Run ``salt --out=json --static <args>``; returns the parsed JSON."""
        proc = self.command([tool, "--out=json", "--static", *args] if tool == "salt"
                        else [tool, "--out=json", *args], record=record, timeout=timeout)
        try:
            data = json.loads(proc.stdout) if proc.stdout.strip() else {}
        except ValueError:
            if check:
                raise TwinError(f"{tool} {' '.join(args)}: rc {proc.returncode}: {proc.stdout[-2000:]} {proc.stderr[-2000:]}") from None
            return {}
        return data

    # ---------------------------------------------------------------- nodes
    def machine(self, node):
        return _read_json(self.path("machines", f"{node}.json"), {}) or {}

    def init_pid(self, node):
        pid = self.machine(node).get("init")
        return pid if _alive(pid) else None

    def node_env(self, node, extra=None):
        from .machine import node_env

        spec = _read_json(self.path("machines", f"{node}.spec.json"))
        if not spec:
            raise TwinError(f"node {node} was never started")
        kernel = (_read_json(os.path.join(self.node_dir(node), "state.json"), {}).get("kernel") or {}).get("running")
        return node_env(spec, dict({"K8STWIN_KERNEL": kernel or spec["kernel"]}, **(extra or {})))

    def node_exec(self, node, cmd, check=False, timeout=120, input=None, capture=True):
        """Run ``cmd`` (a list, or a string for sh -c) inside the node's
        namespaces with the node's environment; returns CompletedProcess
        (``capture=False``: stdin/stdout/stderr are the caller's, for a shell)."""
        pid = self.init_pid(node)
        if pid is None:
            raise TwinError(f"node {node} is not running")
        if isinstance(cmd, str):
            cmd = ["/bin/sh", "-c", cmd]
        env = self.node_env(node)
        envargs = [f"{k}={v}" for k, v in sorted(env.items())]
        full = ["nsenter", "-t", str(pid), "-m", "-u", "-p", "--", "/usr/bin/env", "-i", "-C", "/", *envargs, *cmd]
        if not capture:
            return subprocess.run(full, check=check, timeout=timeout)
        return subprocess.run(full, capture_output=True, text=True, check=check, timeout=timeout, input=input)

    def reboot(self, node, wait=True, timeout=240):
        """Reboot a node as if it ran ``reboot`` (the supervisor acts on it)."""
        before = self.node_state(node).get("reboots", 0)
        _write_json(os.path.join(self.node_dir(node), "power.request"),
                    {"action": "reboot", "t": time.time(), "not_before": time.time(), "by": "twin"})
        if wait:
            self.wait_rebooted(node, before, timeout=timeout)

    def wait_rebooted(self, node, before, timeout=240):
        """Wait until node has booted past ``before`` reboots and its minion answers."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            st = self.node_status(node)
            if st.get("reboots", 0) > before and st.get("state") == "up" and self.minion_ready(node):
                if self.salt_api_ping([node]).get(node) is True:
                    return True
            if st.get("state") == "down" and st.get("reboots", 0) >= before:
                fault = self.info()["node_info"][node]["faults"].get("never_returns_from_reboot")
                if fault and self._events(node, "stays_down"):
                    raise TwinError(f"node {node} did not come back from reboot (fault never_returns_from_reboot)")
            time.sleep(0.5)
        raise TwinError(f"node {node} did not come back within {timeout}s")

    def start_minion(self, node):
        """Start the salt-minion of a running machine (e.g. after minion_down_at_start)."""
        pid = self.init_pid(node)
        if pid is None:
            raise TwinError(f"node {node} is not running")
        os.kill(pid, signal.SIGUSR1)

    def node_state(self, node):
        return _read_json(os.path.join(self.node_dir(node), "state.json"), {}) or {}

    def _events(self, node=None, kind=None):
        out = []
        try:
            with open(self.path("events.jsonl"), encoding="utf-8") as fh:
                for line in fh:
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        continue
                    if (node is None or ev.get("node") == node) and (kind is None or ev.get("event") == kind):
                        out.append(ev)
        except OSError:
            pass
        return out

    def node_status(self, node):
        st = self.node_state(node)
        status = _read_json(os.path.join(self.node_dir(node), "machine.status"), {}) or {}
        running = self.init_pid(node) is not None
        minion = status.get("minion_pid") is not None and running
        sup = _read_json(self.path("machines", f"{node}.state"), {}) or {}
        state = sup.get("state") or ("up" if running else "down")
        return {
            "state": state,
            "machine": running,
            "minion": minion,
            "kernel": (st.get("kernel") or {}).get("running"),
            "reboots": st.get("reboots", 0),
        }

    def status(self):
        info = self.info()
        return {
            "run_dir": self.run,
            "up": self.is_up(),
            "cluster": info.get("cluster_file"),
            "pillar": info.get("pillar_dir"),
            "ports": info.get("ports"),
            "nodes": {n: self.node_status(n) for n in info.get("nodes", [])},
        }

    # ---------------------------------------------------------------- records
    def records(self, write=True):
        """The run's records: per node commands and reboots, salt runs, events."""
        info = self.info()
        nodes = {}
        for nid in info.get("nodes", []):
            cmds = []
            try:
                with open(os.path.join(self.node_dir(nid), "commands.jsonl"), encoding="utf-8") as fh:
                    for line in fh:
                        try:
                            cmds.append(json.loads(line))
                        except ValueError:
                            continue
            except OSError:
                pass
            st = self.node_state(nid)
            nodes[nid] = {
                "os": info["node_info"][nid]["os"],
                "kernel": (st.get("kernel") or {}).get("running"),
                "reboots": st.get("reboots", 0),
                "reboot_events": self._events(nid, "reboot"),
                "commands": cmds,
            }
        runs = []
        try:
            with open(self.path("runs.jsonl"), encoding="utf-8") as fh:
                for line in fh:
                    try:
                        runs.append(json.loads(line))
                    except ValueError:
                        continue
        except OSError:
            pass
        data = {"run_dir": self.run, "cluster": info.get("cluster_file"), "pillar": info.get("pillar_dir"),
                "nodes": nodes, "runs": runs, "events": self._events()}
        if write and os.path.isdir(self.run):
            _write_json(self.path("records.json"), data)
        return data

    # ---------------------------------------------------------------- down
    def down(self, quiet=False, timeout=60):
        """Stop everything of this run directory; idempotent. Returns a list
        of what had to be forced (empty when the supervisor cleaned up)."""
        forced = []
        pid = self.supervisor_pid()
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.time() + timeout
            while _alive(pid) and time.time() < deadline:
                time.sleep(0.2)
        if os.path.isdir(self.run) and os.path.exists(self.path("twin.json")):
            try:
                self.records(write=True)
            except Exception:  # noqa: BLE001 - records are best effort at teardown
                pass
        # processes of a stopped machine or master may take a moment to exit
        grace = time.time() + (5 if pid else 0)
        while time.time() < grace and self.leftover_processes():
            time.sleep(0.2)
        for _ in range(3):
            left = self.leftover_processes()
            if not left:
                break
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                    forced.append(f"process {p}")
                except ProcessLookupError:
                    pass
            time.sleep(0.3)
        for mnt in self.leftover_mounts():
            subprocess.run(["umount", "-l", mnt], capture_output=True)
            if not os.path.basename(mnt).startswith(".disk-"):  # a disk_full fault's own disk
                forced.append(f"mount {mnt}")
        for name in ("supervisor.pid", "master.ready"):
            try:
                os.unlink(self.path(name))
            except FileNotFoundError:
                pass
        return forced

    def leftover_processes(self):
        """PIDs of processes this run started: the supervisor, the master,
        the machines (by command line) and anything in a node (by its
        K8STWIN_NODE_DIR)."""
        out = []
        skip = _ancestors()
        marks = (
            f"k8stwin.cluster supervise {self.run} ",
            f" -c {self.config_dir} ",
            f"k8stwin.machine {self.path('machines')}/",
        )
        nodes_prefix = self.path("nodes") + "/"
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in skip:
                continue
            pid = int(entry)
            if not _alive(pid):  # zombies are gone already
                continue
            cmd = _cmdline(pid) + " "
            if any(m in cmd for m in marks) or nodes_prefix in _environ_node_dir(pid):
                out.append(pid)
        return out

    def leftover_mounts(self):
        mounts = []
        try:
            with open("/proc/self/mountinfo", encoding="utf-8") as fh:
                for line in fh:
                    target = line.split()[4].replace("\\040", " ")
                    if target == self.run or target.startswith(self.run + "/"):
                        mounts.append(target)
        except OSError:
            pass
        return sorted(mounts, key=len, reverse=True)


def _ancestors():
    """This process and its parents (never killed as leftovers)."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
                pid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _environ_node_dir(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            for item in fh.read().split(b"\0"):
                if item.startswith(b"K8STWIN_NODE_DIR="):
                    return item.split(b"=", 1)[1].decode(errors="replace") + "/"
    except OSError:
        pass
    return ""


# --------------------------------------------------------------------------
# the supervisor process


class Supervisor:
    REBOOT_JOB_WAIT = 60

    def __init__(self, run_dir):
        self.twin = Twin(run_dir)
        self.info = self.twin.info()
        self.stopping = False
        self.master = None
        self.broker = None
        self._pidns = {}  # PID namespace -> node (the broker's peers)
        self.machines = {}  # id -> Popen
        self.boots = {}  # id -> number of boots started
        self.pending = {}  # id -> (request, first seen)
        self.late = {}  # id -> when a node with returns_late_from_reboot boots again
        self.late_done = set()
        owner = os.environ.get("K8STWIN_OWNER_PID", "")
        self.owner = int(owner) if owner.isdigit() else None

    def event(self, node, event, **kw):
        _append_jsonl(self.twin.path("events.jsonl"), dict({"t": round(time.time(), 3), "node": node, "event": event}, **kw))

    def set_state(self, node, state):
        _write_json(self.twin.path("machines", f"{node}.state"), {"state": state, "t": time.time()})

    def start_broker(self):
        """The cluster-state broker (k8stwin.broker): the nodes' only way to
        change the shared cluster state, which they see read-only."""
        from . import broker

        self.broker = broker.Broker(self.twin.path("broker", "kube.sock"),
                                    self.twin.path("cluster", "kube-cluster.json"),
                                    self.node_of_pid, self.twin.node_dir, self.twin.path("broker.jsonl")).start()

    def node_of_pid(self, pid):
        """The node whose PID namespace holds host PID ``pid`` (None: none)."""
        from .broker import pid_namespace

        ns = pid_namespace(pid)
        if ns is None:
            return None
        if ns not in self._pidns or pid_namespace(self.twin.machine(self._pidns[ns]).get("init")) != ns:
            self._pidns = {}
            for node in self.info["nodes"]:
                init = self.twin.machine(node).get("init")
                node_ns = pid_namespace(init) if init else None
                if node_ns:
                    self._pidns[node_ns] = node
        return self._pidns.get(ns)

    def start_master(self):
        out = open(self.twin.path("master", "var", "log", "salt", "master.console"), "ab")  # noqa: SIM115
        self.master = subprocess.Popen(
            [os.path.join(VENV_BIN, "salt-master"), "-c", self.twin.config_dir, "--log-file-level=info"],
            cwd=self.twin.run, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
            env=dict(os.environ, PYTHONPATH=""),
        )
        out.close()
        port = self.info["ports"]["ret"]
        deadline = time.time() + 120
        while time.time() < deadline and self.master.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.3)
        else:
            raise TwinError("salt-master did not start; see master/var/log/salt")
        # the master's request server answers once its workers are up
        time.sleep(1)
        open(self.twin.path("master.ready"), "w").close()
        self.event(None, "master_up", pid=self.master.pid)

    def restart_master(self):
        os.unlink(self.twin.path("master.restart"))
        self.event(None, "master_restart", pid=self.master.pid)
        try:
            os.unlink(self.twin.path("master.ready"))
        except FileNotFoundError:
            pass
        try:
            os.killpg(self.master.pid, signal.SIGTERM)
            self.master.wait(30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.master.pid, signal.SIGKILL)
            self.master.wait()
        self.start_master()

    def tool_env(self):
        """The tool server's variables for the nodes (k8stwin.toolserver):
        none when no client was built, or with K8STWIN_TOOL_SERVER=0."""
        from . import toolserver

        tools = self.twin.path("tools")
        clients = sorted(n for n in os.listdir(tools) if n.startswith("k8stwin-tool-")) if os.path.isdir(tools) else []
        if not clients or os.environ.get("K8STWIN_TOOL_SERVER") == "0":
            return {}
        return {toolserver.CLIENT_ENV: os.path.join(tools, clients[-1]), toolserver.SOCKET_ENV: toolserver.SOCKET_PATH}

    def spec(self, node, mode, start_minion):
        ni = self.info["node_info"][node]
        run = self.twin.run
        repo_run = os.path.join(REPO, ".run")
        hide = [repo_run] if os.path.isdir(repo_run) else []
        if not run.startswith(repo_run + "/"):
            hide.append(run)
        # paths under a node's private layers are hidden by them already,
        # unless they lie inside the repository, which is bound back in
        hide = [h for h in hide if h.startswith(REPO + "/")
                or not any(h == p or h.startswith(p + "/") for p in _private_roots())]
        ndir = self.twin.node_dir(node)
        pub, ret = self.info["ports"]["publish"], self.info["ports"]["ret"]
        # a node with the download_checksum_mismatch fault reads a corrupted
        # copy of the artifact store (its own, inside its node directory)
        from . import artifacts, realbins

        mirror = artifacts.node_mirror(self.twin.path("artifacts"), os.path.join(ndir, "artifacts"), ni.get("faults"))
        return {
            "id": node,
            "node_dir": ndir,
            "disk_dir": self.twin.path("disks", node),
            "image_dir": self.twin.path("images", ni["os_key"]),
            "artifacts": self.twin.path("artifacts"),
            # the shared cluster state is read-only in nodes: kubeadm/kubectl
            # change it through the broker (k8stwin.broker), whose socket
            # directory is read-only too
            "binds": [[self.twin.path("nodes"), True], [ndir, False], [self.twin.path("artifacts"), True],
                      [self.twin.path("cluster"), True], [self.twin.path("broker"), True],
                      [self.twin.path("tools"), True],
                      # the real containerd binaries, and the loads they made (k8stwin.realbins)
                      [realbins.cache_dir(), True], [realbins.dumps_dir(), False]]
                     + [[p, True] for p in _python_prefixes()],
            "env": {"K8STWIN_CLUSTER_STATE": self.twin.path("cluster", "kube-cluster.json"),
                    "K8STWIN_CLUSTER_BROKER": self.twin.path("broker", "kube.sock"),
                    realbins.CACHE_ENV: realbins.cache_dir(), **self.tool_env()},
            "hide": hide,
            "readonly": [REPO],
            "python": os.path.join(VENV_BIN, "python"),
            "salt_minion": os.path.join(VENV_BIN, "salt-minion"),
            "twin_dir": TWIN_DIR,
            "kernel": ni["kernel"],
            "boot_mode": mode,
            "start_minion": start_minion,
            "machine_file": self.twin.path("machines", f"{node}.json"),
            "minion_opts": {
                "id": node,
                "master": "127.0.0.1",
                "master_port": ret,
                "publish_port": pub,
                "ipv6": False,
                "systemd.scope": False,
                "k8snvidia.sysfs_root": os.path.join(ndir, "sys"),
                "k8snvidia.procfs_root": os.path.join(ndir, "proc"),
                "k8snvidia.artifact_mirror": mirror,
                "enable_legacy_startup_events": True,
                "multiprocessing": False,
                "acceptance_wait_time": 1,
                "acceptance_wait_time_max": 5,
                "random_reauth_delay": 0,
                "recon_default": 500,
                "recon_max": 3000,
                "master_tries": -1,
                "auth_tries": 20,
                "log_level_logfile": "info",
                "grains": {"k8stwin": True},
            },
        }

    def boot(self, node, mode, start_minion=True):
        spec = self.spec(node, mode, start_minion)
        path = self.twin.path("machines", f"{node}.spec.json")
        _write_json(path, spec)
        try:
            os.unlink(spec["machine_file"])
        except FileNotFoundError:
            pass
        with open(os.path.join(spec["node_dir"], "machine.log"), "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "k8stwin.machine", path],
                cwd="/", stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                env=dict(os.environ, PYTHONPATH=TWIN_DIR), start_new_session=True,
            )
        self.machines[node] = proc
        self.boots[node] = self.boots.get(node, 0) + 1
        self.set_state(node, "up")
        self.event(node, "boot", mode=mode, minion=start_minion, pid=proc.pid)
        return proc

    def stop_machine(self, node, timeout=30):
        proc = self.machines.get(node)
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                init = self.twin.machine(node).get("init")
                for pid in (init, proc.pid):
                    if pid:
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                proc.wait()
        self.machines.pop(node, None)

    def minion_busy(self, node):
        proc_dir = self.twin.path("disks", node, "var", "upper", "cache", "salt", "minion", "proc")
        try:
            return bool(os.listdir(proc_dir))
        except OSError:
            return False

    def handle_power(self, node):
        req_path = os.path.join(self.twin.node_dir(node), "power.request")
        req = _read_json(req_path)
        if not req:
            self.pending.pop(node, None)
            return
        now = time.time()
        if node not in self.pending:
            self.pending[node] = now
            self.event(node, "power_request", **{k: req.get(k) for k in ("action", "by", "not_before")})
        if now < max(req.get("not_before", now), self.pending[node] + 1.0):
            return
        if self.minion_busy(node) and now - self.pending[node] < self.REBOOT_JOB_WAIT:
            return
        try:
            os.unlink(req_path)
        except FileNotFoundError:
            pass
        self.pending.pop(node, None)
        self.set_state(node, "rebooting" if req.get("action") == "reboot" else "stopping")
        self.stop_machine(node)
        if req.get("action") != "reboot":
            self.set_state(node, "down")
            self.event(node, "poweroff")
            return
        self.event(node, "reboot", by=req.get("by"))
        late = self.info["node_info"][node]["faults"].get("returns_late_from_reboot")
        if late and node not in self.late_done:
            # once: down for `late` seconds (true time), then it boots
            self.late_done.add(node)
            self.late[node] = now + float(late if not isinstance(late, bool) else 120)
            self.set_state(node, "down")
            self.event(node, "returns_late", after=round(self.late[node] - now, 1))
            return
        if self.info["node_info"][node]["faults"].get("never_returns_from_reboot"):
            self.set_state(node, "down")
            self.event(node, "stays_down")
            return
        self.boot(node, "reboot")

    def on_term(self, signum, frame):
        self.stopping = True

    def run(self):
        signal.signal(signal.SIGTERM, self.on_term)
        signal.signal(signal.SIGINT, self.on_term)
        with open(self.twin.path("supervisor.pid"), "w", encoding="utf-8") as fh:
            fh.write(str(os.getpid()))
        try:
            self.start_broker()
            self.start_master()
            for node in self.info["nodes"]:
                if self.stopping:
                    break
                faults = self.info["node_info"][node]["faults"]
                self.boot(node, "first", start_minion=not faults.get("minion_down_at_start"))
            while not self.stopping:
                for node in list(self.info["nodes"]):
                    proc = self.machines.get(node)
                    if proc is not None and proc.poll() is not None:
                        self.machines.pop(node, None)
                        self.set_state(node, "down")
                        self.event(node, "machine_exited", rc=proc.returncode)
                    if proc is not None or os.path.exists(os.path.join(self.twin.node_dir(node), "power.request")):
                        self.handle_power(node)
                    if node in self.late and time.time() >= self.late[node]:
                        self.late.pop(node)
                        self.boot(node, "reboot")
                if os.path.exists(self.twin.path("master.restart")):
                    self.restart_master()
                if self.master.poll() is not None:
                    self.event(None, "master_exited", rc=self.master.returncode)
                    break
                if self.owner and not _alive(self.owner):
                    self.event(None, "owner_gone", pid=self.owner)
                    break
                time.sleep(0.5)
        finally:
            self.shutdown()

    def shutdown(self):
        for node in list(self.machines):
            proc = self.machines[node]
            if proc.poll() is None:
                proc.terminate()
        for node in list(self.machines):
            self.stop_machine(node)
            self.set_state(node, "down")
        if self.master is not None and self.master.poll() is None:
            try:
                os.killpg(self.master.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.master.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.master.pid, signal.SIGKILL)
                self.master.wait()
        if self.master is not None:
            try:
                os.killpg(self.master.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.broker is not None:
            self.broker.stop()
        # the disk_full fault's disks (mounted at prepare) go with the machines
        for mnt in self.twin.leftover_mounts():
            if os.path.basename(mnt).startswith(".disk-"):
                subprocess.run(["umount", "-l", mnt], capture_output=True)
        self.event(None, "down")
        for name in ("master.ready", "supervisor.pid"):
            try:
                os.unlink(self.twin.path(name))
            except FileNotFoundError:
                pass


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["supervise"]:
        Supervisor(argv[1]).run()
        return 0
    from . import cli

    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
