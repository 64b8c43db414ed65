"""Render the real state tree for a given OS through salt-call --local.

Uses etc/os/<name>/minion (static grains for that OS) with an optional
minion id and pillar directory, in a scratch config dir so tests never
share Salt caches.
"""

import json
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]



def _previews():
    """etc/os/<name>/minion's os_family for every OS preview: adding an OS
    there (with its osfinger.yaml entry) puts it in every per-OS test."""
    import yaml

    return {p.parent.name: yaml.safe_load(p.read_text())["grains"]["os_family"]
            for p in sorted((ROOT / "etc/os").glob("*/minion"))}


OS_FAMILY = _previews()
OSES = tuple(OS_FAMILY)


def minion_config(os_name, minion_id, pillar_dir=None, extra=None):
    """A minion config dict for rendering as `os_name` with id `minion_id`."""
    import yaml

    base = yaml.safe_load((ROOT / "etc/salt/minion").read_text())
    osconf = yaml.safe_load((ROOT / f"etc/os/{os_name}/minion").read_text())
    conf = dict(base)
    conf["grains"] = dict(osconf["grains"])
    conf["id"] = minion_id
    conf["file_roots"] = {"base": [str(ROOT / "salt")]}
    conf["pillar_roots"] = {"base": [str(pillar_dir or ROOT / "pillar")]}
    for key in ("module_dirs", "states_dirs", "grains_dirs", "utils_dirs"):
        conf[key] = [str(ROOT / p) for p in base[key]]
    conf.update(extra or {})
    return conf


def salt_call(os_name, *args, minion_id="node-110", pillar_dir=None, extra=None, timeout=300):
    """Run `salt-call --local --out=json <args>` as that OS; return (rc, parsed, stderr)."""
    import yaml

    with tempfile.TemporaryDirectory(prefix="k8snvidia-render-") as tmp:
        conf = minion_config(os_name, minion_id, pillar_dir, extra)
        conf["root_dir"] = tmp
        (pathlib.Path(tmp) / "minion").write_text(yaml.safe_dump(conf))
        exe = pathlib.Path(sys.executable).parent / "salt-call"
        proc = subprocess.run(
            [str(exe), "--local", "-c", tmp, "--out=json", "--log-level=quiet", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    try:
        parsed = json.loads(proc.stdout)["local"] if proc.stdout.strip() else None
    except (ValueError, KeyError):
        parsed = proc.stdout
    return proc.returncode, parsed, proc.stderr


def show_sls(os_name, sls, **kwargs):
    """The compiled high state of `sls` (comma-separated) as a dict of ID -> state."""
    rc, parsed, err = salt_call(os_name, "state.show_sls", sls, **kwargs)
    if rc != 0 or not isinstance(parsed, dict):
        raise AssertionError(f"render of {sls} as {os_name} failed (rc {rc}):\n{parsed}\n{err}")
    return parsed
