"""The twin's disk_full fault, without a twin: the cluster file's forms and
errors, and an emulated tool hitting a full filesystem (it fails as a real
one does, naming the file and "No space left on device"). The fault on a
running twin: tests/twin/test_disk_full.py."""

import errno
import json
import sys

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "twin"))

from k8stwin import state  # noqa: E402
from k8stwin.cluster import TwinError, disk_layers, load_cluster  # noqa: E402


def _cluster(tmp_path, faults):
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps({"nodes": [{"id": "n1", "os": "ubuntu2204", "faults": faults}]}))
    return path


@pytest.mark.parametrize("value, mounts", [("/var", ["/var"]), ("/var/", ["/var"]), (True, ["/"]),
                                           (["/", "/boot", "/"], ["/", "/boot"])])
def test_disk_full_names_the_machines_filesystems(tmp_path, value, mounts):
    node = load_cluster(_cluster(tmp_path, {"disk_full": value}))["nodes"][0]
    assert node["faults"]["disk_full"] == mounts


@pytest.mark.parametrize("value, message", [
    ("/home", "disk_full: '/home' is not one of the machine's filesystems ['/', '/var', '/boot']"),
    ([], "disk_full: expected one of ['/', '/var', '/boot'] or a list of them, got []"),
    ({"path": "/"}, "disk_full: expected one of"),
])
def test_disk_full_refuses_what_is_not_a_filesystem_of_the_machine(tmp_path, value, message):
    with pytest.raises(TwinError, match="node n1: " + message.replace("[", r"\[").replace("]", r"\]")):
        load_cluster(_cluster(tmp_path, {"disk_full": value}))


def test_the_root_filesystem_holds_every_layer_but_var_and_boot():
    assert "/var" not in disk_layers("/") and "/boot" not in disk_layers("/")
    assert {"/etc", "/usr", "/opt", "/root"} <= set(disk_layers("/")) and disk_layers("/var") == ["/var"]


def test_a_tool_on_a_full_filesystem_fails_naming_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(state.ENV, str(tmp_path))
    monkeypatch.setattr(sys, "argv", ["dracut", "-f"])

    def main(argv):
        raise OSError(errno.ENOSPC, "No space left on device", "/boot/initramfs-5.4.img")

    with pytest.raises(SystemExit) as exc:
        state.run_tool(main)
    assert exc.value.code == 1
    assert capsys.readouterr().err == "dracut: /boot/initramfs-5.4.img: No space left on device\n"
    assert json.loads((tmp_path / "commands.jsonl").read_text())["rc"] == 1
