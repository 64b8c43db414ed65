"""Conformance: the twin's ufw (twin/k8stwin/tools/ufw.py) against Debian 12's
ufw 0.36.2 (apt-get installed when missing), run in a mount + network
namespace the test creates: /etc/ufw is a scratch copy (its sysctl.conf
emptied), iptables acts on the namespace's own tables; the host's firewall
and files are never touched.

The command lines are the host layer's (salt/host/firewall.sls, clean.sls):
`ufw status` (grep -qx 'Status: active'), `ufw show added` (grep -qxF
'ufw allow P'), `ufw allow P`, `ufw delete allow P`, `ufw disable`, with
the ports the pillar opens (a range with and without a protocol), plus
enable/reload and the refusals. Compared: exit code, stdout, stderr, in
order."""

import json
import shutil
import sys

import pytest

from tests.twin_judges import conformance as cf

REAL_VERSION = "ufw 0.36.2"
UPDATED = "Rules updated\nRules updated (v6)\n"
SHOW = "Added user rules (see 'ufw status' for running firewall):\n"
HEAD = "Status: active\n\nTo                         Action      From\n--                         ------      ----\n"


def row(to, action="ALLOW"):
    return "%-26s %-12s%-26s\n" % (to, action, "Anywhere") + ""


def row6(to, action="ALLOW"):
    return "%-26s %-12s%-26s\n" % (f"{to} (v6)", action, "Anywhere (v6)")


CASES = [
    (["ufw", "status"], (0, "Status: inactive\n", "")),
    (["ufw", "show", "added"], (0, SHOW + "(None)\n", "")),
    (["ufw", "allow", "6443/tcp"], (0, UPDATED, "")),
    (["ufw", "allow", "6443/tcp"], (0, "Skipping adding existing rule\nSkipping adding existing rule (v6)\n", "")),
    (["ufw", "allow", "30000:32767/tcp"], (0, UPDATED, "")),
    (["ufw", "allow", "30000:32767"], (1, "", "ERROR: Must specify 'tcp' or 'udp' with multiple ports\n")),
    (["ufw", "allow", "10250"], (0, UPDATED, "")),
    (["ufw", "show", "added"], (0, SHOW + "ufw allow 6443/tcp\nufw allow 30000:32767/tcp\nufw allow 10250\n", "")),
    (["ufw", "delete", "allow", "6443/tcp"], (0, UPDATED, "")),
    (["ufw", "delete", "allow", "1/tcp"], (0, "Could not delete non-existent rule\nCould not delete non-existent rule (v6)\n", "")),
    (["ufw", "allow", "70000/tcp"], (1, "", "ERROR: Bad port\n")),
    (["ufw", "allow", "kubelet"], (1, "", "ERROR: Could not find a profile matching 'kubelet'\n")),
    (["ufw", "reload"], (0, "Firewall not enabled (skipping reload)\n", "")),
    (["ufw", "enable"], (0, "Firewall is active and enabled on system startup\n", "")),  # no prompt off sshd
    (["ufw", "status"], (0, HEAD + row("30000:32767/tcp") + row("10250") + row6("30000:32767/tcp") + row6("10250") + "\n", "")),
    (["ufw", "status", "verbose"], (0, "Status: active\nLogging: on (low)\nDefault: deny (incoming), allow (outgoing), "
                                       "disabled (routed)\nNew profiles: skip\n\nTo                         Action      From\n"
                                       "--                         ------      ----\n" + row("30000:32767/tcp", "ALLOW IN")
                                       + row("10250", "ALLOW IN") + row6("30000:32767/tcp", "ALLOW IN")
                                       + row6("10250", "ALLOW IN") + "\n", "")),
    (["ufw", "allow", "8472/udp"], (0, "Rule added\nRule added (v6)\n", "")),
    (["ufw", "delete", "allow", "8472/udp"], (0, "Rule deleted\nRule deleted (v6)\n", "")),
    (["ufw", "disable"], (0, "Firewall stopped and disabled on system startup\n", "")),
    (["ufw", "status"], (0, "Status: inactive\n", "")),
]
# observed on the real ufw 0.36.2 while this table was written, not re-run
# (ufw's iptables-restore makes each of these take seconds): after
# `ufw --force enable` with every rule deleted, and `ufw --version`
RECORDED_ONLY = [
    (["ufw", "--force", "enable"], (0, "Firewall is active and enabled on system startup\n", "")),
    (["ufw", "delete", "allow", "30000:32767/tcp"], (0, "Rule deleted\nRule deleted (v6)\n", "")),
    (["ufw", "delete", "allow", "10250"], (0, "Rule deleted\nRule deleted (v6)\n", "")),
    (["ufw", "status"], (0, "Status: active\n", "")),
    (["ufw", "reload"], (0, "Firewall reloaded\n", "")),
    (["ufw", "--version"], (0, "ufw 0.36.2\nCopyright 2008-2023 Canonical Ltd.\n", "")),
]
USAGE_CASES = {("ufw",): "ERROR: not enough args\n", ("ufw", "bogus"): "ERROR: Invalid syntax\n"}


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    reason = cf.ensure_packages({"ufw": "ufw", "iptables": "iptables"})
    if reason or not shutil.which("unshare"):
        return None
    base = tmp_path_factory.mktemp("ufw")
    etc = base / "etc-ufw"
    shutil.copytree("/etc/ufw", etc, symlinks=True)
    (etc / "sysctl.conf").write_text("")  # leave the namespace's sysctls alone too
    cases = [argv for argv, _ in CASES] + [list(k) for k in USAGE_CASES]
    (base / "cases.json").write_text(json.dumps(cases))
    runner = ("import json,subprocess,sys\nout=[]\nfor a in json.load(open(sys.argv[1])):\n"
              " p=subprocess.run(a,capture_output=True,text=True)\n out.append([p.returncode,p.stdout,p.stderr])\n"
              "print(json.dumps(out))\n")
    res = cf.in_namespace([sys.executable, "-c", runner, base / "cases.json"], mounts=[f"mount --bind {etc} /etc/ufw"])
    assert res.rc == 0, res.err
    return [tuple(x) for x in json.loads(res.out)]


def test_ufw_conforms(tmp_path, real_runs):
    twin = cf.TwinNode(tmp_path / "twin")
    for i, (argv, recorded) in enumerate(CASES):
        got = twin.run(argv)
        if real_runs is not None:
            assert real_runs[i] == recorded, cf.diff_hint(f"{argv}: real {REAL_VERSION}? not as recorded", recorded, real_runs[i], who="real now")
        assert tuple(got) == recorded, cf.diff_hint(argv, recorded, got)
    for argv, recorded in RECORDED_ONLY:
        assert tuple(twin.run(argv)) == recorded, argv
    for j, (argv, err) in enumerate(USAGE_CASES.items()):
        got = twin.run(list(argv))
        assert got.rc == 1 and got.err == err and got.out.startswith("\nUsage: ufw COMMAND\n"), got
        if real_runs is not None:
            assert real_runs[len(CASES) + j] == tuple(got), cf.diff_hint(argv, real_runs[len(CASES) + j], got, ref="real")
