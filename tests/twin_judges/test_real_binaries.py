"""The twin's containerd and dockerd are Debian's real ones
(twin/k8stwin/realbins.py). Containerd: a
node's config, under the node's own root, loads through the real binary of
its release line (the root's /etc bound on /etc) to the same dump and the
same refusal as the real binary gives for the same files at a host path;
each distinct load runs the binary once (the content-keyed cache), and the
runtime facts kubelet and kubectl see come from that dump. Dockerd: docker
starts only on a daemon.json that ``dockerd --validate`` accepts, with its
message."""

import pathlib
import subprocess
import sys

import pytest
import tomllib

from tests.judges import runtime_files as rf

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "twin"))
from k8stwin import kube, realbins  # noqa: E402

# a release of each line, as a node's package database names it
RELEASE = {"containerd-1.6": (1, 6, 33), "containerd-1.7": (1, 7, 28), "containerd-2.1": (2, 1, 5)}
LINES = tuple(RELEASE)

V2_CRI = '''
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "example.com/pause:9"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = true
'''
V2_NVIDIA = '''version = 2
[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "nvidia"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.nvidia.options]
      BinaryName = "/usr/bin/nvidia-container-runtime"
'''
V3_CRI = '''version = 3
[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
  SystemdCgroup = true
[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "example.com/pause:9"
'''

# name -> (config.toml, {drop-in name: text})
CONFIGS = {
    "containerd.io stock": (rf.CONTAINERD_IO_CONFIG, {}),
    "seed2020 before the fix: version 2 + short cri": ("version = 2\n" + rf.CONTAINERD_IO_CONFIG, {}),
    "short id in required_plugins": ('version = 2\nrequired_plugins = ["cri"]\n', {}),
    "full ids": ('version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n', {}),
    "v2 root with CRI": ("version = 2\n" + V2_CRI, {}),
    "v2 root + v2 nvidia drop-in (1.x replaces the CRI section)": (
        'version = 2\nimports = ["{d}/*.toml"]\n' + V2_CRI, {"99-nvidia.toml": V2_NVIDIA}),
    "v3 root": (V3_CRI, {}),
    "v2 root + v3 drop-in": ('version = 2\nimports = ["{d}/*.toml"]\n' + V2_CRI, {"99-nvidia.toml": V3_CRI}),
    "version 4": ("version = 4\n", {}),
    "short plugin key": ('version = 2\n[plugins.cri]\n  sandbox_image = "x"\n', {}),
    "bad TOML": ("version = 2\n[plugins\n", {}),
    "no version (v1 names)": ('[plugins.cri]\n  sandbox_image = "example.com/pause:1"\n', {}),
}


def write(base, name, imports_dir):
    """The config ``name`` as base/config.toml + base/conf.d/*, its imports naming ``imports_dir``."""
    root_text, dropins = CONFIGS[name]
    d = base / "conf.d"
    d.mkdir(parents=True, exist_ok=True)
    (base / "config.toml").write_text(root_text.replace("{d}", imports_dir))
    for fname, text in dropins.items():
        (d / fname).write_text(text)


def key_parts(cfg):
    """The parts of a dump compared: version, disabled plugins, CRI runtimes,
    default runtime, sandbox image."""
    version = cfg.get("version") or 1
    plugins = cfg.get("plugins") or {}
    if version >= 3:
        cri = plugins.get("io.containerd.cri.v1.runtime")
        sandbox = ((plugins.get("io.containerd.cri.v1.images") or {}).get("pinned_images") or {}).get("sandbox")
    else:
        cri = plugins.get("io.containerd.grpc.v1.cri") or plugins.get("cri")
        sandbox = (cri or {}).get("sandbox_image")
    ctr = (cri or {}).get("containerd") or {}
    runtimes = {n: ((r.get("options") or {}).get("BinaryName", ""), (r.get("options") or {}).get("SystemdCgroup"))
                for n, r in (ctr.get("runtimes") or {}).items()}
    return {"version": version, "disabled": cfg.get("disabled_plugins") or [], "runtimes": runtimes,
            "default": ctr.get("default_runtime_name"), "sandbox": sandbox}


@pytest.fixture
def dumps(tmp_path, monkeypatch):
    """A private load cache, so that each test runs the real binary itself."""
    d = tmp_path / "dumps"
    monkeypatch.setattr(realbins, "dumps_dir", lambda: str(d))
    return d


@pytest.mark.parametrize("line", LINES)
@pytest.mark.parametrize("name", list(CONFIGS))
def test_a_node_root_loads_as_the_real_binary_loads_the_same_files(real, tmp_path, dumps, name, line):
    exe = real(line)
    host = tmp_path / "host"
    write(host, name, str(host / "conf.d"))
    proc = subprocess.run([str(exe), "--config", str(host / "config.toml"), "config", "dump"],
                          capture_output=True, text=True, timeout=60)
    root = tmp_path / "root"
    write(root / "etc/containerd", name, "/etc/containerd/conf.d")
    rc, out, err = realbins.run(RELEASE[line], ["config", "dump"], str(root))
    assert rc == proc.returncode, (name, line, proc.stderr[-500:], err[-500:])
    if rc:
        assert realbins.error_of(err) == realbins.error_of(proc.stderr).replace(str(host), "/etc/containerd")
        assert realbins.load(RELEASE[line], str(root))[1] == realbins.error_of(err)
        return
    got = tomllib.loads(out)
    # it read the node's files, not the host's
    assert all(i.startswith("/etc/containerd/") for i in got.get("imports") or []), got.get("imports")
    assert key_parts(got) == key_parts(tomllib.loads(proc.stdout)), (name, line)


def test_each_distinct_load_runs_the_binary_once(real, tmp_path, dumps, monkeypatch):
    real("containerd-1.7")
    root = tmp_path / "root"
    write(root / "etc/containerd", "v2 root + v2 nvidia drop-in (1.x replaces the CRI section)", "/etc/containerd/conf.d")
    first = realbins.load((1, 7, 28), str(root))
    assert first[1] is None and len(list(dumps.iterdir())) == 1

    def no_run(*a, **k):
        raise AssertionError("the binary ran again for the same files")

    monkeypatch.setattr(realbins.subprocess, "run", no_run)
    assert realbins.load((1, 7, 28), str(root)) == first
    # a changed drop-in is a new load
    (root / "etc/containerd/conf.d/99-nvidia.toml").write_text("version = 2\n")
    with pytest.raises(AssertionError, match="ran again"):
        realbins.load((1, 7, 28), str(root))


def test_a_missing_line_names_the_command_that_fetches_it(tmp_path, monkeypatch):
    monkeypatch.setenv(realbins.CACHE_ENV, str(tmp_path / "empty"))
    with pytest.raises(realbins.Missing, match="bin/debian_binaries.py containerd-1.6"):
        realbins.load((1, 4, 13), str(tmp_path))


@pytest.mark.parametrize("line,systemd_cgroup", [("containerd-1.7", False), ("containerd-2.1", True)])
def test_runtime_facts_come_from_the_real_dump(real, tmp_path, dumps, line, systemd_cgroup):
    """1.x replaces the CRI section with the drop-in's (the root's SystemdCgroup
    is lost), 2.x merges them: the facts kubelet sees follow the real binary."""
    real(line)
    root = tmp_path / "root"
    write(root / "etc/containerd", "v2 root + v2 nvidia drop-in (1.x replaces the CRI section)", "/etc/containerd/conf.d")
    v = kube.NodeView("n1", None, str(root))
    v.state = {"packages": {"containerd.io": {"version": ".".join(map(str, RELEASE[line])) + "-1"}}}
    facts = kube.runtime_facts(v)["containerd"]
    assert facts["error"] is None, facts
    assert facts["default"] == "nvidia" and facts["runtimes"]["nvidia"] == "/usr/bin/nvidia-container-runtime"
    assert facts["systemd_cgroup"] is systemd_cgroup, facts


@pytest.mark.parametrize("text,problem", [
    ('{"runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}}, "default-runtime": "nvidia",'
     ' "exec-opts": ["native.cgroupdriver=systemd"]}', None),
    ("{bad", "invalid JSON"),
    ('{"runtime": {"nvidia": {"path": "nvidia-container-runtime"}}}', "don't match any configuration option"),
])
def test_docker_starts_only_on_a_daemon_json_the_real_dockerd_accepts(real, tmp_path, dumps, text, problem):
    real("dockerd")
    root = tmp_path / "root"
    (root / "etc/docker").mkdir(parents=True)
    (root / "etc/docker/daemon.json").write_text(text)
    got = realbins.docker_problem(str(root))
    if problem is None:
        assert got is None
    else:
        assert problem in got and "/etc/docker/daemon.json" in got and str(root) not in got, got
    assert realbins.docker_problem(str(tmp_path / "none")) is None  # no daemon.json: dockerd's defaults
