"""Conformance: the twin's sysctl (twin/k8stwin/tools/sysctl.py) against
Debian 12's procps-ng 4.0.2 sysctl, run in a network namespace the test
creates (net.* keys are per namespace: nothing of the host changes).

The command lines are Salt's linux_sysctl ones (`sysctl -n KEY` for get,
`sysctl -w KEY=VALUE` for assign, whose echo Salt matches against the value
it passed) and the failures around them (a key that does not exist, a value
the kernel refuses, a file with bad lines for -p). The twin node has
br_netfilter loaded, as the host kernel here has it built in. Compared:
exit code, stdout, stderr, in order (later reads see earlier writes)."""

import shutil

import pytest

from tests.twin_judges import conformance as cf

REAL_VERSION = "sysctl from procps-ng 4.0.2"
CONF = "/etc/sysctl.d/99-conformance.conf"
CONF_TEXT = ("net.ipv4.ip_forward = 1\n# comment\n; other\nno.such.key = 1\n-no.such.other = 2\n"
             "net.core.somaxconn=1024\nnot a setting\n  net.ipv4.conf.all.forwarding = 1  \n"
             "net.ipv4.ip_local_port_range = 32768   61000\n")
NOSTAT = "sysctl: cannot stat /proc/sys/no/such/key: No such file or directory\n"
# argv, recorded real (rc, stdout, stderr)
CASES = [
    (["sysctl", "-n", "net.ipv4.ip_forward"], (0, "0\n", "")),
    (["sysctl", "-w", "net.ipv4.ip_forward=1"], (0, "net.ipv4.ip_forward = 1\n", "")),
    (["sysctl", "-n", "net.ipv4.ip_forward"], (0, "1\n", "")),
    (["sysctl", "net.ipv4.ip_forward"], (0, "net.ipv4.ip_forward = 1\n", "")),
    (["sysctl", "-n", "net/ipv4/ip_forward"], (0, "1\n", "")),
    (["sysctl", "-n", "net.ipv4.ip_local_port_range"], (0, "32768\t60999\n", "")),
    (["sysctl", "-w", "net.ipv4.ip_local_port_range=32768  61000"], (0, "net.ipv4.ip_local_port_range = 32768  61000\n", "")),
    (["sysctl", "-n", "net.ipv4.ip_local_port_range"], (0, "32768\t61000\n", "")),
    (["sysctl", "-n", "no.such.key"], (1, "", NOSTAT)),
    (["sysctl", "-n", "no.such.key", "no.such.key"], (2, "", NOSTAT * 2)),
    (["sysctl", "-e", "-n", "no.such.key"], (0, "", "")),
    (["sysctl", "-w", "no.such.key=1"], (1, "", NOSTAT)),
    (["sysctl", "-w", "net.ipv4.ip_forward=abc"], (1, "", 'sysctl: setting key "net.ipv4.ip_forward": Invalid argument\n')),
    (["sysctl", "-w", "net.ipv4.ip_forward"], (1, "", "sysctl: command line(0): invalid syntax, continuing...\n")),
    (["sysctl", "-w", "net.ipv4.ip_forward=2"], (0, "net.ipv4.ip_forward = 2\n", "")),
    (["sysctl", "-n", "net.ipv4.ip_forward"], (0, "2\n", "")),
    (["sysctl", "-w", "net.bridge.bridge-nf-call-iptables=2"], (0, "net.bridge.bridge-nf-call-iptables = 2\n", "")),
    (["sysctl", "-n", "net.bridge.bridge-nf-call-iptables"], (0, "1\n", "")),
    (["sysctl", "-w", "net.bridge.bridge-nf-call-iptables=0"], (0, "net.bridge.bridge-nf-call-iptables = 0\n", "")),
    (["sysctl", "-n", "net.bridge.bridge-nf-call-iptables"], (0, "0\n", "")),
    (["sysctl", "-w", "net.bridge.bridge-nf-call-iptables=1"], (0, "net.bridge.bridge-nf-call-iptables = 1\n", "")),
    (["sysctl", "-n", "net.ipv4.ip_forward", "net.core.somaxconn"], (0, "2\n4096\n", "")),
    (["sysctl", "-w", "net.ipv4.ip_forward=1", "net.core.somaxconn=4096"], (0, "net.ipv4.ip_forward = 1\nnet.core.somaxconn = 4096\n", "")),
    (["sysctl", "-q", "-w", "net.ipv4.ip_forward=0"], (0, "", "")),
    (["sysctl", "-w", "net.ipv4.ip_forward= 1"], (0, "net.ipv4.ip_forward = 1\n", "")),
    (["sysctl", "-p", CONF], (1, "net.ipv4.ip_forward = 1\nnet.core.somaxconn = 1024\nnet.ipv4.conf.all.forwarding = 1\n"
                                 "net.ipv4.ip_local_port_range = 32768   61000\n",
                              f"sysctl: {CONF}(7): invalid syntax, continuing...\n" + NOSTAT
                              + "sysctl: cannot stat /proc/sys/no/such/other: No such file or directory\n")),
    (["sysctl", "-e", "-p", CONF], (0, "net.ipv4.ip_forward = 1\nnet.core.somaxconn = 1024\nnet.ipv4.conf.all.forwarding = 1\n"
                                       "net.ipv4.ip_local_port_range = 32768   61000\n",
                                    f"sysctl: {CONF}(7): invalid syntax, continuing...\n")),
    (["sysctl", "-p", "/etc/sysctl.d/none.conf"], (1, "", 'sysctl: cannot open "/etc/sysctl.d/none.conf": No such file or directory\n')),
    (["sysctl", "-x"], (1, "", "sysctl: no variables specified\nTry `sysctl --help' for more information.\n")),
]
USAGE_CASES = {("sysctl",): 1, ("sysctl", "--bogus"): 0}  # usage printed; recorded rc


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    """Every case run in order by the real sysctl in one fresh network namespace."""
    if not shutil.which("sysctl") or not shutil.which("unshare"):
        return None
    import json
    import sys

    base = tmp_path_factory.mktemp("sysctl")
    conf = base / "99-conformance.conf"
    conf.write_text(CONF_TEXT)
    cases = [[str(conf) if a == CONF else a for a in argv] for argv, _ in CASES] + [list(k) for k in USAGE_CASES]
    (base / "cases.json").write_text(json.dumps(cases))
    runner = ("import json,subprocess,sys\nout=[]\nfor a in json.load(open(sys.argv[1])):\n"
              " p=subprocess.run(a,capture_output=True,text=True)\n out.append([p.returncode,p.stdout,p.stderr])\n"
              "print(json.dumps(out))\n")
    res = cf.real(["unshare", "--net", sys.executable, "-c", runner, base / "cases.json"])
    assert res.rc == 0, res.err
    out = [tuple(x[i].replace(str(conf), CONF) if i else x[i] for i in range(3)) for x in json.loads(res.out)]
    return out


def test_sysctl_conforms(tmp_path, real_runs):
    twin = cf.TwinNode(tmp_path / "twin")
    twin.py("kmods.add_loaded", "br_netfilter")
    twin.write(CONF, CONF_TEXT)
    for i, (argv, recorded) in enumerate(CASES):
        got = twin.run(argv)
        if real_runs is not None:
            assert real_runs[i] == recorded, cf.diff_hint(f"{argv}: real {REAL_VERSION}? not as recorded", recorded, real_runs[i], who="real now")
        assert tuple(got) == recorded, cf.diff_hint(argv, recorded, got)
    for j, (argv, rc) in enumerate(USAGE_CASES.items()):
        got = twin.run(list(argv))
        where = (got.out + got.err)
        assert got.rc == rc and "Usage:\n sysctl [options] [variable[=value] ...]" in where, got
        if real_runs is not None:
            ref = real_runs[len(CASES) + j]
            assert ref[0] == rc and (ref[1], ref[2]) == (got.out, got.err), cf.diff_hint(argv, ref, got, ref="real")


def test_salt_assign_reads_the_echo(tmp_path):
    """Salt's linux_sysctl.assign matches `KEY = VALUE` as it passed VALUE:
    a multi-field value comes back verbatim, and `sysctl -n` gives the
    kernel's tab-joined form."""
    import re

    twin = cf.TwinNode(tmp_path / "twin")
    value = "32768 61000"
    out = twin.run(["sysctl", "-w", f"net.ipv4.ip_local_port_range={value}"]).out
    assert re.match(rf"^net\.ipv4\.ip_local_port_range\s+=\s+{re.escape(value)}$", out.strip())
    assert twin.run(["sysctl", "-n", "net.ipv4.ip_local_port_range"]).out == "32768\t61000\n"


def test_procps3_exit_codes(tmp_path):
    """procps-ng 3.3.x (el7/8/9, Ubuntu 18.04/22.04) adds -1 per failed key
    (sysctl.c of 3.3.17): 255 for one, 254 for two; 'must be of the form'."""
    twin = cf.TwinNode(tmp_path / "twin", os_key="rocky9")
    assert twin.run(["sysctl", "-n", "no.such.key"]).rc == 255
    assert twin.run(["sysctl", "-n", "no.such.key", "no.such.key"]).rc == 254
    got = twin.run(["sysctl", "-w", "net.ipv4.ip_forward"])
    assert got == (255, "", 'sysctl: "net.ipv4.ip_forward" must be of the form name=value\n')
