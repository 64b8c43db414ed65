"""shutdown/reboot/poweroff of a twin node and the tool dispatcher, run
in-process against a scratch node directory (no twin needed)."""

import json
import os
import pathlib
import subprocess
import sys
import time

import pytest
from k8stwin import power
from k8stwin.tools import halt, poweroff, reboot, shutdown

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def node(tmp_path, monkeypatch):
    (tmp_path / "node.json").write_text(json.dumps({"id": "n", "os_key": "centos7", "time_scale": 0.05}))
    monkeypatch.setenv("K8STWIN_NODE_DIR", str(tmp_path))
    return tmp_path


def req(node):
    path = node / "power.request"
    return json.loads(path.read_text()) if path.exists() else None


def test_shutdown_now_and_scheduled(node, capsys):
    assert shutdown.main(["shutdown", "-r", "now"]) == 0
    r = req(node)
    assert r["action"] == "reboot" and r["not_before"] <= time.time() + 0.5
    assert capsys.readouterr().err == ""
    assert shutdown.main(["shutdown", "-r", "+1"]) == 0
    r = req(node)
    assert 2 < r["not_before"] - r["t"] <= 3.1  # 60 s x time_scale 0.05
    assert "Shutdown scheduled for" in capsys.readouterr().err
    assert shutdown.main(["shutdown", "-c"]) == 0
    assert req(node) is None


def test_shutdown_defaults_to_poweroff_in_a_minute(node):
    assert shutdown.main(["shutdown"]) == 0
    assert req(node)["action"] == "poweroff"
    assert shutdown.main(["shutdown", "-h", "now"]) == 0
    assert req(node)["action"] == "poweroff"
    assert shutdown.main(["shutdown", "-k", "now"]) == 0  # wall only: the request stays as it was


def test_shutdown_rejects_what_the_real_one_rejects(node, capsys):
    assert shutdown.main(["shutdown", "-x"]) == 1
    assert "invalid option -- 'x'" in capsys.readouterr().err
    assert shutdown.main(["shutdown", "--bogus"]) == 1
    assert "unrecognized option '--bogus'" in capsys.readouterr().err
    assert shutdown.main(["shutdown", "-r", "soon"]) == 1
    assert "Failed to parse time specification: soon" in capsys.readouterr().err
    assert req(node) is None


def test_reboot_poweroff_halt(node, capsys):
    assert reboot.main(["reboot", "-w"]) == 0 and req(node) is None  # wtmp record only
    assert reboot.main(["reboot"]) == 0 and req(node)["action"] == "reboot"
    assert poweroff.main(["poweroff"]) == 0 and req(node)["action"] == "poweroff"
    assert halt.main(["halt"]) == 0 and req(node)["action"] == "poweroff"
    assert reboot.main(["reboot", "-f"]) == 0 and req(node)["action"] == "reboot"
    assert reboot.main(["reboot", "--now-please"]) == 1
    assert "unrecognized option" in capsys.readouterr().err
    assert power.cancel() is True and power.pending() is None


def test_dispatcher_runs_tools_and_records_them(node, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("reboot", "no-such-tool"):
        os.symlink(ROOT / "twin" / "bin" / "_dispatch", bindir / name)
    env = dict(os.environ, K8STWIN_NODE_DIR=str(node), K8STWIN_PYTHON=sys.executable)
    missing = subprocess.run([str(bindir / "no-such-tool"), "-x"], env=env, capture_output=True, text=True)
    assert missing.returncode == 127 and missing.stderr == "no-such-tool: command not found\n"
    ok = subprocess.run([str(bindir / "reboot")], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert req(node)["action"] == "reboot"
    lines = [json.loads(x) for x in (node / "commands.jsonl").read_text().splitlines()]
    assert lines[-1]["argv"] == ["reboot"] and lines[-1]["rc"] == 0


def test_yum_is_dnf_on_el8(node, monkeypatch):
    from k8stwin import dispatch, os_profiles

    (node / "node.json").write_text(json.dumps({"id": "n", "os_key": "rocky9",
                                                "tool_aliases": os_profiles.tool_aliases("rocky9")}))
    assert dispatch.module_name("yum") == "dnf"
    assert dispatch.module_name("grub2-mkconfig") == "grub2_mkconfig"
    assert "yum" in os_profiles.tools("rocky9") and "dnf" not in os_profiles.tools("centos7")
    assert "apt-get" in os_profiles.foreign_tools("rocky9") and "yum" in os_profiles.foreign_tools("debian12")
