"""Conformance: the twin's containerd (twin/k8stwin/tools/containerd.py)
loads the same configs as the real containerd 1.6, 1.7 and 2.1 do: same exit
code, same refusal message, same effective CRI settings (runtimes,
SystemdCgroup, default runtime, sandbox image, disabled plugins)."""

import pathlib
import subprocess
import sys

import pytest
import tomllib

from tests.judges import runtime_files as rf
from tests.judges import test_containerd as product

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "twin"))
from k8stwin.tools import containerd as twin_ctd  # noqa: E402

# the Debian releases the judges unpack
RELEASE = {"containerd-1.6": (1, 6, 20), "containerd-1.7": (1, 7, 24), "containerd-2.1": (2, 1, 9)}
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


def write(tmp, name):
    root_text, dropins = CONFIGS[name]
    d = tmp / "conf.d"
    d.mkdir(parents=True, exist_ok=True)
    (tmp / "config.toml").write_text(root_text.replace("{d}", str(d)))
    for fname, text in dropins.items():
        (d / fname).write_text(text)
    return tmp / "config.toml"


def key_parts(cfg, release):
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


def real_run(exe, config):
    proc = subprocess.run([str(exe), "--config", str(config), "config", "dump"], capture_output=True, text=True,
                          timeout=60)
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    return proc.returncode, proc.stdout, last


def twin_run(config, release):
    def read(p):
        try:
            return pathlib.Path(p).read_text()
        except OSError:
            return None

    def glob(pattern):
        return sorted(str(p) for p in pathlib.Path("/").glob(pattern.lstrip("/")))

    try:
        cfg, _ = twin_ctd.load(read, glob, release, str(config))
    except twin_ctd.LoadError as exc:
        return 1, None, f"containerd: {exc}"
    return 0, cfg, ""


@pytest.mark.parametrize("line", LINES)
@pytest.mark.parametrize("name", list(CONFIGS))
def test_twin_loads_like_real_containerd(real, tmp_path, name, line):
    config = write(tmp_path, name)
    rc, out, err = real_run(real(line), config)
    trc, tcfg, terr = twin_run(config, RELEASE[line])
    assert trc == (0 if rc == 0 else 1), (name, line, rc, err, trc, terr)
    if rc:
        # the real message is the last stderr line, "containerd: ..." (paths
        # and TOML parser wording aside for a syntax error)
        if name == "bad TOML":
            assert err.startswith("containerd: failed to") and terr.startswith("containerd: failed to"), (err, terr)
        else:
            assert terr == err, (name, line)
        return
    want = key_parts(tomllib.loads(out), RELEASE[line])
    got = key_parts(twin_dump(tcfg, RELEASE[line]), RELEASE[line])
    assert got == want, (name, line)


def twin_dump(cfg, release):
    """The twin's effective config with the CRI plugin's defaults filled in
    (the real dump prints each plugin's full config)."""
    cri, plugin = twin_ctd.effective_cri(cfg, release)
    out = dict(cfg)
    plugins = dict(out.get("plugins") or {})
    disabled = set(out.get("disabled_plugins") or [])
    if plugin == "io.containerd.cri.v1.runtime":
        sandbox = cri.pop("sandbox_image", None)
        plugins[plugin] = cri
        images = dict(plugins.get("io.containerd.cri.v1.images") or {})
        images["pinned_images"] = {"sandbox": sandbox}
        plugins["io.containerd.cri.v1.images"] = images
    elif not ({plugin, "io.containerd.grpc.v1.cri", "cri"} & disabled):
        plugins[plugin] = cri
    else:
        plugins.pop(plugin, None)
    out["plugins"] = plugins
    return out


@pytest.mark.parametrize("os_name,profile,cri", product.CASES)
def test_twin_loads_what_we_write_like_real_containerd(real, tmp_path_factory, os_name, profile, cri):
    """The files our states write (tests/judges/test_containerd.py applies
    them), loaded by the twin's containerd to the real one's effect."""
    for line in product.LINES.get(os_name, product.DEFAULT_LINES):
        root, results = product.applied(real, tmp_path_factory, os_name, profile, cri, line)
        assert not {k: v for k, v in results.items() if v[0] is not True}, line
        rc, out, err = product.dump(real(line), root / "containerd/config.toml")
        assert rc == 0, f"{line} refuses the config: {err}"
        cfg = tomllib.loads(out)
        # the twin's containerd loads the same files to the same effect
        trc, tcfg, terr = twin_run(root / "containerd/config.toml", RELEASE[line])
        assert trc == 0, terr
        assert key_parts(twin_dump(tcfg, RELEASE[line]), None) == key_parts(cfg, None), line
