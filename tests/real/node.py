"""A real Debian node for the real-node tier: rootfs, local signed apt
repository, systemd-nspawn, a veth pair, an HTTP server and a Salt master.

Cold path (no cache): ``debootstrap --variant=minbase`` of the suite with the
base packages the node needs before Salt (systemd, python3, kmod, ...); in
that fresh rootfs, ``apt-get install --download-only`` of every package the
state tree will install (Debian's docker.io, containerd, runc, the kernel
metapackages, and the NVIDIA driver packages the map's package method names
for that release, with their dependencies and recommends, from main, contrib,
non-free and non-free-firmware): those .debs become the local archive the
node installs from. Salt 3008.4 goes into /opt/salt (a venv inside the
rootfs) from wheels fetched with ``pip download`` for the rootfs's Python.
Everything lands in $K8SNVIDIA_REAL_CACHE/<suite>/ (default
/var/cache/k8snvidia-tests; rebuilt from scratch when missing or when the
recipe changes). Nothing else is written outside the per-run directory
(/tmp/k8sr-*) and the run records (/run/k8snvidia-real).

Per run: an overlay over the cached rootfs (the cache is never changed), a
throwaway GPG key that signs the archive's Release (InRelease; one component
per Debian archive area, split by the packages' Section) and two flat
repositories of stub packages (kubeadm/kubelet/kubectl and the NVIDIA
Container Toolkit, which Debian does not package), a network namespace with
one end of a veth pair, ``python -m http.server`` and a salt-master bound to
the host end. Nothing else is reachable from the node.
"""

import contextlib
import gzip
import hashlib
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
VENV_BIN = pathlib.Path(sys.executable).parent
CACHE = pathlib.Path(os.environ.get("K8SNVIDIA_REAL_CACHE", "/var/cache/k8snvidia-tests"))
STATE_DIR = pathlib.Path("/run/k8snvidia-real")
MIRROR = os.environ.get("K8SNVIDIA_REAL_MIRROR", "http://deb.debian.org/debian")
SALT_VERSION = "3008.4"

SUITES = {
    # suite: (Debian release, Python minor of its python3)
    "bookworm": {"release": "12", "python": "3.11"},
    "trixie": {"release": "13", "python": "3.13"},
}

# In the rootfs before Salt runs: what a minimal Debian server has.
BASE_PACKAGES = [
    "systemd", "systemd-sysv", "dbus", "python3", "python3-venv", "kmod", "procps",
    "iproute2", "initramfs-tools", "apt-utils",
]
# Installed by the state tree from the local archive (downloaded with their
# dependencies and recommends, as apt would install them); the NVIDIA
# driver's packages are added from the map (driver_packages).
NODE_PACKAGES = ["docker.io", "containerd", "runc", "linux-image-amd64", "linux-headers-amd64"]
# Debian's archive areas: the driver is in non-free (nvidia-kernel-dkms,
# libcuda1, nvidia-smi), contrib (nvidia-support, nvidia-persistenced, the
# open module) and non-free-firmware (firmware-nvidia-gsp). The local
# archive serves each as its own component, split by the packages' Section.
COMPONENTS = ["main", "contrib", "non-free", "non-free-firmware"]
# What a fresh Debian 12/13 install enables (the installer adds
# non-free-firmware since Debian 12): the node starts with these.
STOCK_COMPONENTS = ["main", "non-free-firmware"]
# Salt's runtime dependencies as wheels (salt itself is installed with
# --no-deps: some of its declared dependencies, timelib among them, have no
# wheel, and a minion does not import them).
SALT_DEPS = [
    "msgpack", "pyyaml", "jinja2", "markupsafe", "tornado", "looseversion", "jmespath",
    "distro", "packaging", "psutil", "pyzmq", "requests", "cryptography",
]
RECIPE = 4  # bump when the build changes: old caches are rebuilt

# Packages that have no real counterpart installable here. Each is a stub
# .deb built by the test with dpkg-deb: a package with the real name and the
# version the pillar pins, whose binaries print that they are stubs.
STUBS = {
    "kubernetes": {
        "kubeadm": ["/usr/bin/kubeadm"],
        "kubelet": ["/usr/bin/kubelet"],
        "kubectl": ["/usr/bin/kubectl"],
    },
    "nvidia": {
        "nvidia-container-toolkit": ["/usr/bin/nvidia-ctk", "/usr/bin/nvidia-container-runtime"],
    },
}


class NodeError(RuntimeError):
    pass


def log(msg):
    sys.stderr.write(f"[real-node] {msg}\n")
    sys.stderr.flush()


def run(cmd, check=True, timeout=1800, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise NodeError(f"{cmd!r} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


# ---------------------------------------------------------------- host tools


HOST_TOOLS = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "dpkg-scanpackages": "dpkg-dev",
    "dpkg-deb": "dpkg",
    "gpg": "gnupg",
    "nsenter": "util-linux",
    "ip": "iproute2",
}


def ensure_host_tools():
    """Install what the tier needs on the host with apt-get (tests/host_tools:
    it waits for the dpkg lock a parallel test worker may hold); returns a
    reason string when that is impossible (the caller skips)."""
    if os.geteuid() != 0:
        return "the real-node tier needs root (debootstrap, systemd-nspawn, mounts, veth)"
    from tests import host_tools

    return host_tools.ensure(HOST_TOOLS)


# ---------------------------------------------------------------- the cache


def driver_packages(suite, module_type="proprietary"):
    """The packages the product's package method installs on this Debian
    release (salt/parameters: the Debian family's driver:package, the
    release's branch), for ``module_type``: what the archive must hold."""
    import yaml

    params = ROOT / "salt" / "parameters"
    family = yaml.safe_load((params / "os_family.yaml").read_text())["Debian"]["driver"]["package"]
    finger = yaml.safe_load((params / "osfinger.yaml").read_text()).get(f"Debian-{SUITES[suite]['release']}") or {}
    package = dict(family, **((finger.get("driver") or {}).get("package") or {}))
    names = []
    for field in ("packages", "dkms_packages"):
        names += [str(n).format(branch=package["branch"]) for n in (package.get(field) or {}).get(module_type) or []]
    return names


def node_packages(suite):
    return NODE_PACKAGES + driver_packages(suite)


def recipe_key(suite):
    text = json.dumps([RECIPE, suite, MIRROR, BASE_PACKAGES, node_packages(suite), COMPONENTS, SALT_DEPS,
                       SALT_VERSION])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_dir(suite):
    return CACHE / suite


def ensure_cache(suite):
    """The cached rootfs + archive of ``suite``, built when missing; returns
    (dir, seconds spent building: 0 when it was warm)."""
    base = cache_dir(suite)
    stamp = base / "stamp.json"
    key = recipe_key(suite)
    if stamp.is_file() and json.loads(stamp.read_text()).get("key") == key:
        return base, 0.0
    start = time.monotonic()
    CACHE.mkdir(parents=True, exist_ok=True)
    work = CACHE / f".{suite}.build-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        _build(suite, work)
        (work / "stamp.json").write_text(json.dumps({"key": key, "built": time.time()}))
        if base.exists():
            shutil.rmtree(base)
        work.rename(base)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return base, time.monotonic() - start


def _chroot(rootfs, *cmd, env=None, timeout=1800):
    full_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
    full_env.update(env or {})
    return run(["chroot", str(rootfs), *cmd], env=full_env, timeout=timeout)


def _build(suite, work):
    rootfs = work / "rootfs"
    pool = work / "pool"
    pool.mkdir()
    log(f"{suite}: debootstrap --variant=minbase (cold cache)")
    run(["debootstrap", "--variant=minbase", "--include=" + ",".join(BASE_PACKAGES), suite, str(rootfs), MIRROR],
        timeout=1800)
    # The node's packages: resolved and downloaded by the rootfs's own apt, so
    # the archive holds exactly what an install on this system pulls in.
    shutil.copy("/etc/resolv.conf", rootfs / "etc/resolv.conf")
    (rootfs / "etc/apt/sources.list").write_text(f"deb {MIRROR} {suite} {' '.join(COMPONENTS)}\n")
    for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    packages = node_packages(suite)
    log(f"{suite}: downloading the node's packages: {' '.join(packages)}")
    _chroot(rootfs, "apt-get", "-q", "update")
    _chroot(rootfs, "apt-get", "-q", "-y", "--download-only", "install", *packages)
    for deb in (rootfs / "var/cache/apt/archives").glob("*.deb"):
        shutil.move(str(deb), pool / deb.name)
    # Salt in a venv inside the rootfs, from wheels for its Python.
    py = SUITES[suite]["python"]
    wheels = work / "wheels"
    wheels.mkdir()
    log(f"{suite}: pip download salt=={SALT_VERSION} + deps for Python {py}")
    pip = [str(VENV_BIN / "python"), "-m", "pip"]
    run([*pip, "wheel", "-q", "--no-deps", "-w", str(wheels), f"salt=={SALT_VERSION}"])
    tag = "cp" + py.replace(".", "")
    plat = []
    for p in ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64", "linux_x86_64"):
        plat += ["--platform", p]
    run([*pip, "download", "-q", "-d", str(wheels), "--only-binary=:all:", "--python-version", py,
         "--implementation", "cp", "--abi", tag, "--abi", "abi3", *plat, *SALT_DEPS])
    shutil.copytree(wheels, rootfs / "tmp/wheels")
    _chroot(rootfs, "python3", "-m", "venv", "/opt/salt")
    _chroot(rootfs, "/opt/salt/bin/pip", "install", "-q", "--no-index", "--find-links", "/tmp/wheels",
            *[w.name.split("-")[0] for w in wheels.glob("*.whl") if not w.name.startswith("salt-")],
            env={"PIP_CONFIG_FILE": "/dev/null"})
    _chroot(rootfs, "/opt/salt/bin/pip", "install", "-q", "--no-index", "--no-deps",
            f"/tmp/wheels/salt-{SALT_VERSION}-py3-none-any.whl", env={"PIP_CONFIG_FILE": "/dev/null"})
    shutil.rmtree(rootfs / "tmp/wheels")
    for tool in ("salt-minion", "salt-call"):
        link = rootfs / "usr/bin" / tool
        link.unlink(missing_ok=True)
        link.symlink_to(f"/opt/salt/bin/{tool}")
    (rootfs / "etc/systemd/system/salt-minion.service").write_text(textwrap.dedent("""\
        [Unit]
        Description=Salt minion (real-node test, /opt/salt venv)
        After=network.target

        [Service]
        ExecStart=/opt/salt/bin/salt-minion -l info
        KillMode=process
        Restart=on-failure
        """))
    # The node's own archive is the test's local repository (sources written
    # per run): nothing from the build-time network stays.
    (rootfs / "etc/apt/sources.list").unlink()
    shutil.rmtree(rootfs / "var/lib/apt/lists")
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True)
    (rootfs / "etc/resolv.conf").write_text("")
    (rootfs / "etc/hostname").write_text("realnode\n")
    # Release metadata of the archive (signed per run with a throwaway key).
    _index(pool, work / "Packages")


def _index(pool, packages):
    proc = run(["dpkg-scanpackages", "--multiversion", pool.name], cwd=pool.parent)
    packages.write_text(proc.stdout)


def split_components(text):
    """The archive's Packages split by Debian archive area: a stanza whose
    Section is ``non-free/kernel`` belongs to non-free, one without an area
    prefix to main (as in Debian's own archive)."""
    out = {c: [] for c in COMPONENTS}
    for stanza in text.strip().split("\n\n"):
        if not stanza.strip():
            continue
        section = next((ln.split(":", 1)[1].strip() for ln in stanza.splitlines() if ln.startswith("Section:")), "")
        area = section.split("/", 1)[0] if "/" in section else "main"
        out.setdefault(area, []).append(stanza)
    return {c: ("\n\n".join(v) + "\n") if v else "" for c, v in out.items()}


# ---------------------------------------------------------------- repository


def _release(files, suite, codename, components="main", flat=False):
    lines = ["Origin: K8sNvidia real-node test", "Label: K8sNvidia real-node test"]
    if not flat:
        lines += [f"Suite: {suite}", f"Codename: {codename}", f"Components: {components}"]
    lines += ["Architectures: amd64 all", time.strftime("Date: %a, %d %b %Y %H:%M:%S UTC", time.gmtime()),
              "SHA256:"]
    for rel, data in files:
        lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data)} {rel}")
    return "\n".join(lines) + "\n"


class Keyring:
    """A throwaway GPG key (no passphrase) in its own GNUPGHOME."""

    def __init__(self, home):
        self.home = pathlib.Path(home)
        self.home.mkdir(mode=0o700, parents=True)
        self.env = dict(os.environ, GNUPGHOME=str(self.home))
        run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key",
             "K8sNvidia real-node test <real-node@k8snvidia.invalid>", "ed25519", "sign", "1d"], env=self.env)

    def export(self, armor):
        return subprocess.run(["gpg", "--batch", "--export", *(["--armor"] if armor else [])],
                              env=self.env, capture_output=True, check=True).stdout

    def sign(self, release_path):
        run(["gpg", "--batch", "--yes", "--clearsign", "-o", str(release_path.with_name("InRelease")),
             str(release_path)], env=self.env)
        run(["gpg", "--batch", "--yes", "--detach-sign", "--armor", "-o", str(release_path) + ".gpg",
             str(release_path)], env=self.env)


def build_stub(outdir, name, version, paths):
    """A stub .deb: the real package name and version, binaries that say they
    are stubs (kubelet also gets a unit so `systemctl enable kubelet` is
    real)."""
    tree = outdir / f"stub-{name}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(textwrap.dedent(f"""\
        Package: {name}
        Version: {version}
        Architecture: amd64
        Maintainer: K8sNvidia real-node test <real-node@k8snvidia.invalid>
        Description: STUB of {name} built by tests/real (no real package exists here)
        """))
    for path in paths:
        target = tree / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"#!/bin/sh\necho 'STUB {name} {version} (tests/real): not the real tool' >&2\nexit 0\n")
        target.chmod(0o755)
    if name == "kubelet":
        unit = tree / "lib/systemd/system/kubelet.service"
        unit.parent.mkdir(parents=True)
        unit.write_text("[Unit]\nDescription=STUB kubelet (tests/real)\n\n[Service]\nExecStart=/usr/bin/kubelet\n\n"
                        "[Install]\nWantedBy=multi-user.target\n")
    deb = outdir / f"{name}_{version}_amd64.deb"
    run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(deb)])
    shutil.rmtree(tree)
    return deb


def make_www(www, cache, suite, keyring, stub_versions):
    """The served tree: /debian (the cached archive, Release signed now),
    /kubernetes and /nvidia (flat stub repositories with Release.key)."""
    deb = www / "debian"
    (deb / "dists" / suite).mkdir(parents=True)
    os.symlink(cache / "pool", deb / "pool")
    files = []
    for comp, text in split_components((cache / "Packages").read_text()).items():
        bdir = deb / "dists" / suite / comp / "binary-amd64"
        bdir.mkdir(parents=True)
        packages = text.encode()
        (bdir / "Packages").write_bytes(packages)
        (bdir / "Packages.gz").write_bytes(gzip.compress(packages, mtime=0))
        files += [(f"{comp}/binary-amd64/Packages", packages),
                  (f"{comp}/binary-amd64/Packages.gz", (bdir / "Packages.gz").read_bytes())]
    rel = _release(files, suite, suite, components=" ".join(COMPONENTS))
    (deb / "dists" / suite / "Release").write_text(rel)
    keyring.sign(deb / "dists" / suite / "Release")
    for repo, pkgs in STUBS.items():
        flat = www / repo
        flat.mkdir()
        for name, paths in pkgs.items():
            build_stub(flat, name, stub_versions[name], paths)
        proc = run(["dpkg-scanpackages", "--multiversion", "."], cwd=flat)
        (flat / "Packages").write_text(proc.stdout)
        (flat / "Packages.gz").write_bytes(gzip.compress(proc.stdout.encode(), mtime=0))
        (flat / "Release").write_text(_release([("Packages", proc.stdout.encode()),
                                                ("Packages.gz", (flat / "Packages.gz").read_bytes())],
                                               None, None, flat=True))
        keyring.sign(flat / "Release")
        (flat / "Release.key").write_bytes(keyring.export(armor=True))
        (flat / "gpgkey").write_bytes(keyring.export(armor=True))


# ---------------------------------------------------------------- bookkeeping


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale():
    """Safety net: undo what an earlier run left behind (its owner died
    without cleaning up): processes, mounts, links, run directories."""
    if not STATE_DIR.is_dir():
        return
    for entry in STATE_DIR.glob("*.json"):
        try:
            rec = json.loads(entry.read_text())
        except (OSError, ValueError):
            entry.unlink(missing_ok=True)
            continue
        if _alive(rec.get("owner", 0)):
            continue
        log(f"reaping leftovers of run {entry.stem}")
        Node.teardown_record(rec)
        entry.unlink(missing_ok=True)


def free_port(addr):
    with contextlib.closing(socket.socket()) as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- the node


class Node:
    """One booted node. ``start()`` brings everything up; ``close()`` (also
    run on failure) takes it all down."""

    def __init__(self, suite, cache):
        self.suite = suite
        self.cache = cache
        self.release = SUITES[suite]["release"]
        self.minion_id = f"realnode-debian{self.release}"
        self.run_dir = pathlib.Path(tempfile.mkdtemp(prefix="k8sr-", dir="/tmp"))
        # one node per suite and test process at a time; two processes (the
        # test command's workers) run the suites side by side: the suite
        # keeps their links and networks apart
        index = list(SUITES).index(suite)
        tag = f"{os.getpid() % 10000}{suite[0]}"
        self.net = 20 + 2 * (os.getpid() % 100) + index
        self.host_ip = f"10.213.{self.net}.1"
        self.node_ip = f"10.213.{self.net}.2"
        self.veth_host = f"krh{tag}"
        self.veth_node = f"krn{tag}"
        self.netns = f"k8sr-{tag}"
        self.merged = self.run_dir / "root"
        self.record = {
            "owner": os.getpid(), "run_dir": str(self.run_dir), "merged": str(self.merged),
            "links": [self.veth_host], "netns": self.netns, "pids": [], "pgids": [],
        }
        self.procs = []
        self.init_pid = None
        self.http_port = None
        self.timings = {}

    # bookkeeping
    def _save(self):
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        (STATE_DIR / f"{os.getpid()}-{self.run_dir.name}.json").write_text(json.dumps(self.record))

    def _spawn(self, cmd, logname, **kw):
        out = open(self.run_dir / logname, "wb")
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, **kw)
        out.close()
        self.procs.append(proc)
        self.record["pgids"].append(proc.pid)
        self._save()
        return proc

    # lifecycle
    def start(self, pillar, stub_versions):
        t0 = time.monotonic()
        self._save()
        self._overlay()
        self.keyring = Keyring(self.run_dir / "gnupg")
        self.www = self.run_dir / "www"
        self.www.mkdir()
        make_www(self.www, self.cache, self.suite, self.keyring, stub_versions)
        self._network()
        self.http_port = free_port(self.host_ip)
        self._spawn([sys.executable, "-m", "http.server", "--bind", self.host_ip, str(self.http_port),
                     "--directory", str(self.www)], "http.log")
        self.base_url = f"http://{self.host_ip}:{self.http_port}"
        self._node_files()
        self._master(pillar(self))
        self._boot()
        self.timings["start"] = time.monotonic() - t0
        return self

    def _overlay(self):
        for sub in ("upper", "work", "root"):
            (self.run_dir / sub).mkdir()
        run(["mount", "-t", "overlay", "overlay", "-o",
             f"lowerdir={self.cache / 'rootfs'},upperdir={self.run_dir / 'upper'},workdir={self.run_dir / 'work'}",
             str(self.merged)])

    def _network(self):
        """A network namespace for the node holding one end of a veth pair;
        the other end, on the host, is where the master and the HTTP server
        listen. (``--network-interface=`` would move the end itself, but
        nspawn then waits for udev to initialise it, and this host runs no
        udev.)"""
        run(["ip", "netns", "add", self.netns])
        run(["ip", "link", "add", self.veth_host, "type", "veth", "peer", "name", self.veth_node,
             "netns", self.netns])
        run(["ip", "addr", "add", f"{self.host_ip}/30", "dev", self.veth_host])
        run(["ip", "link", "set", self.veth_host, "up"])
        run(["ip", "-n", self.netns, "addr", "add", f"{self.node_ip}/30", "dev", self.veth_node])
        run(["ip", "-n", self.netns, "link", "set", self.veth_node, "up"])
        run(["ip", "-n", self.netns, "link", "set", "lo", "up"])

    def _node_files(self):
        root = self.merged
        key = root / "usr/share/keyrings/k8snvidia-real-archive.gpg"
        key.write_bytes(self.keyring.export(armor=False))
        self.set_components(STOCK_COMPONENTS)
        # a test node is thrown away: dpkg need not fsync every file (the
        # kernel packages alone are thousands)
        (root / "etc/dpkg/dpkg.cfg.d/k8snvidia-real-unsafe-io").write_text("force-unsafe-io\n")
        (root / "etc/salt/minion.d").mkdir(parents=True, exist_ok=True)
        (root / "etc/salt/minion.d/real.conf").write_text(json.dumps({
            "id": self.minion_id, "master": self.host_ip, "master_port": self.ret_port,
            "publish_port": self.pub_port, "acceptance_wait_time": 1, "random_reauth_delay": 0,
            "recon_default": 200, "recon_max": 1000, "auth_timeout": 10,
        }))
        wants = root / "etc/systemd/system/multi-user.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        for unit in ("salt-minion.service",):
            (wants / unit).unlink(missing_ok=True)
            (wants / unit).symlink_to(f"/etc/systemd/system/{unit}")

    def set_components(self, components):
        """The node's own Debian source (deb822, as Debian 12 and 13 write
        it), with these archive areas: what the administrator sets."""
        (self.merged / "etc/apt/sources.list.d/debian.sources").write_text(textwrap.dedent(f"""\
            Types: deb
            URIs: {self.base_url}/debian
            Suites: {self.suite}
            Components: {' '.join(components)}
            Signed-By: /usr/share/keyrings/k8snvidia-real-archive.gpg
            """))

    @property
    def ret_port(self):
        if not hasattr(self, "_ports"):
            self._ports = (free_port(self.host_ip), free_port(self.host_ip))
        return self._ports[0]

    @property
    def pub_port(self):
        self.ret_port  # noqa: B018 (allocates both)
        return self._ports[1]

    def _master(self, pillar_data):
        import yaml

        etc = self.run_dir / "etc"
        etc.mkdir()
        pdir = self.run_dir / "pillar"
        pdir.mkdir()
        (pdir / "top.sls").write_text("base:\n  '*':\n    - real\n")
        (pdir / "real.sls").write_text(yaml.safe_dump(pillar_data))
        salt_root = self.run_dir / "salt"
        (etc / "master").write_text(yaml.safe_dump({
            "root_dir": str(salt_root), "user": "root", "interface": self.host_ip,
            "ret_port": self.ret_port, "publish_port": self.pub_port, "auto_accept": True,
            "file_roots": {"base": [str(ROOT / "salt")]}, "pillar_roots": {"base": [str(pdir)]},
            "runner_dirs": [str(ROOT / "_runners")], "module_dirs": [str(ROOT / "_modules")],
            "utils_dirs": [str(ROOT / "_utils")], "hide_pillar": False, "log_level_logfile": "info",
            "sock_dir": str(salt_root / "sock"), "state_output": "mixed", "timeout": 60,
        }))
        self._spawn([str(VENV_BIN / "salt-master"), "-c", str(etc), "-l", "warning"], "master.log")

    def _boot(self):
        self.nspawn = self._spawn(
            ["systemd-nspawn", "-D", str(self.merged), "-b", "--private-network",
             f"--network-namespace-path=/run/netns/{self.netns}",
             # what --private-network grants (the namespace path does not):
             # the node's own iptables, for dockerd and kube-proxy
             "--capability=CAP_NET_ADMIN",
             "--register=no", "--keep-unit", "--console=pipe",
             f"--machine=realnode{self.release}-{os.getpid()}"], "nspawn.log")
        deadline = time.monotonic() + 120
        while self.init_pid is None:
            if self.nspawn.poll() is not None:
                raise NodeError(f"systemd-nspawn exited {self.nspawn.returncode}:\n{self.nspawn_log()}")
            if time.monotonic() > deadline:
                raise NodeError("the node's init never appeared:\n" + self.nspawn_log())
            self.init_pid = self._find_init()
            time.sleep(0.3)
        self.record["pids"].append(self.init_pid)
        self._save()
        # systemd's bus appears a moment after PID 1 does
        while True:
            proc = self.exec(["systemctl", "is-system-running", "--wait"], check=False, timeout=180)
            # "offline": PID 1 is not systemd yet (nsenter came before its exec)
            if proc.stdout.strip() not in ("", "offline") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if proc.stdout.strip() not in ("running", "degraded"):
            raise NodeError(f"the node did not boot: {proc.stdout} {proc.stderr}\n{self.nspawn_log()}")
        deadline = time.monotonic() + 120
        while True:
            got = self.salt(self.minion_id, "test.ping", check=False, timeout=20)
            if got.get(self.minion_id) is True:
                break
            if time.monotonic() > deadline:
                raise NodeError(f"the minion never answered: {got}\n"
                                + self.exec(["journalctl", "-u", "salt-minion", "--no-pager", "-n", "50"],
                                            check=False).stdout)
            time.sleep(1)

    def _find_init(self):
        """The container's PID 1: a descendant of systemd-nspawn in another
        PID namespace."""
        host_ns = os.readlink("/proc/self/ns/pid")
        todo = [self.nspawn.pid]
        while todo:
            pid = todo.pop()
            try:
                for task in os.listdir(f"/proc/{pid}/task"):
                    children = pathlib.Path(f"/proc/{pid}/task/{task}/children").read_text().split()
                    todo.extend(int(c) for c in children)
                if pid != self.nspawn.pid and os.readlink(f"/proc/{pid}/ns/pid") != host_ns:
                    return pid
            except (FileNotFoundError, ProcessLookupError):
                continue
        return None

    def nspawn_log(self):
        try:
            return (self.run_dir / "nspawn.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    # acting on the node
    def exec(self, cmd, check=True, timeout=300):
        if isinstance(cmd, str):
            cmd = ["sh", "-c", cmd]
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8"}
        return run(["nsenter", "-t", str(self.init_pid), "-a", "--", *cmd], check=check, timeout=timeout,
                   env=env)

    def salt(self, *args, check=True, timeout=1800):
        proc = run([str(VENV_BIN / "salt"), "-c", str(self.run_dir / "etc"), "--out=json", "--static",
                    f"--timeout={timeout}", *args], check=False, timeout=timeout + 60)
        try:
            data = json.loads(proc.stdout) if proc.stdout.strip() else {}
        except ValueError as exc:
            if check:
                raise NodeError(f"salt {args}: not JSON ({exc}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}") from exc
            data = {}
        return data

    def apply(self, sls, test=False, pillar=None, timeout=1800):
        args = [self.minion_id, "state.apply", sls]
        if test:
            args.append("test=True")
        if pillar:
            args.append("pillar=" + json.dumps(pillar))
        t0 = time.monotonic()
        data = self.salt(*args, timeout=timeout)
        self.timings.setdefault("apply", []).append((sls, test, round(time.monotonic() - t0, 1)))
        ret = data.get(self.minion_id)
        if not isinstance(ret, dict):
            raise NodeError(f"state.apply {sls}: {ret!r}")
        return ret

    # teardown
    def close(self):
        rec = self.record
        if self.init_pid:
            # orderly: poweroff through systemd, then force
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.init_pid, signal.SIGRTMIN + 4)
            with contextlib.suppress(Exception):
                self.nspawn.wait(timeout=30)
        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        self.teardown_record(rec)
        (STATE_DIR / f"{os.getpid()}-{self.run_dir.name}.json").unlink(missing_ok=True)

    @staticmethod
    def teardown_record(rec):
        for pid in rec.get("pids", []):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        for pgid in rec.get("pgids", []):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        merged = rec.get("merged")
        if merged:
            # anything mounted below the node's root, deepest first, then it
            mounts = [line.split()[1] for line in pathlib.Path("/proc/self/mounts").read_text().splitlines()]
            for mnt in sorted((m for m in mounts if m == merged or m.startswith(merged + "/")), key=len,
                              reverse=True):
                if subprocess.run(["umount", mnt], capture_output=True).returncode != 0:
                    subprocess.run(["umount", "-l", mnt], capture_output=True)
        for link in rec.get("links", []):
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        if rec.get("netns"):
            subprocess.run(["ip", "netns", "del", rec["netns"]], capture_output=True)
        run_dir = rec.get("run_dir")
        if run_dir and run_dir.startswith("/tmp/k8sr-"):
            shutil.rmtree(run_dir, ignore_errors=True)
