"""bin/twin end to end: up, run, status, exec, reboot, records, down."""

import json
import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def cli():
    if os.geteuid() != 0:
        pytest.skip("the cluster twin needs root")
    base = tempfile.mkdtemp(prefix="k8stwin-cli-", dir="/tmp")
    cluster = os.path.join(base, "c.yaml")
    with open(cluster, "w", encoding="utf-8") as fh:
        fh.write("nodes:\n  - {id: cli-1, os: ubuntu2404, gpus: [NVIDIA GeForce GTX 1080 Ti]}\n")
    run = os.path.join(base, "run")

    def twin(*args, **kw):
        return subprocess.run([str(ROOT / "bin" / "twin"), "--run", run, *args], capture_output=True, text=True,
                              timeout=kw.pop("timeout", 300), **kw)

    twin.cluster = cluster
    twin.run = run
    yield twin
    twin("down")
    shutil.rmtree(base, ignore_errors=True)


def test_cli_round_trip(cli):
    up = cli("up", "--cluster", cli.cluster, "--pillar", str(ROOT / "pillar"))
    assert up.returncode == 0, up.stderr
    assert "cli-1" in up.stdout and "minion=up" in up.stdout
    ping = cli("run", "--", "salt", "cli-1", "test.ping", "--out=json")
    assert ping.returncode == 0 and json.loads(ping.stdout) == {"cli-1": True}
    bad = cli("run", "--", "salt-call", "test.ping")
    assert bad.returncode == 1 and "not salt-call" in bad.stderr
    st = json.loads(cli("status", "--json").stdout)
    assert st["up"] and st["nodes"]["cli-1"]["reboots"] == 0
    ex = cli("exec", "cli-1", "--", "sh", "-c", "hostname; grep VERSION_ID /etc/os-release; exit 4")
    assert ex.returncode == 4 and ex.stdout.split() == ["cli-1", 'VERSION_ID="24.04"']
    assert cli("reboot", "cli-1").returncode == 0
    assert json.loads(cli("status", "--json").stdout)["nodes"]["cli-1"]["reboots"] == 1
    path = cli("records").stdout.strip()
    rec = json.loads(pathlib.Path(path).read_text())
    assert rec["nodes"]["cli-1"]["reboots"] == 1
    assert [r["argv"][:2] for r in rec["runs"]] == [["salt", "cli-1"]]
    down = cli("down")
    assert down.returncode == 0 and "forced" not in down.stderr
    assert cli("status").returncode == 3
    assert cli("down").returncode == 0
    assert cli("run", "--", "salt", "*", "test.ping").returncode == 1
