"""Conformance: the twin's dkms (twin/k8stwin/tools/dkms.py, k8stwin/dkms.py)
against Debian 12's dkms 3.0.10 (apt-get installed when missing), and its
`dkms status` format against Debian 11's 2.8.4 and Debian 13's 3.2.2 too
(unpacked from the archive, cached).

The real dkms runs in a mount namespace the test creates: /usr is an
overlay of the host's (so /usr/src and /lib/modules take the test's module
source and kernels), /var/lib/dkms a scratch directory. The module is a
stand-in: its dkms.conf's MAKE copies a prepared .ko, so `dkms build`
really runs, in no time; kernel 6.1.0-99-amd64 has headers (an include/
directory under /lib/modules/K/build), 6.1.0-98-amd64 has none. The twin
gets the same source tree and kernels.

The command lines are the product's (nvidia_driver.dkms_status: `dkms
status`, parsed by parse_dkms_status; dkms_install: `dkms install -m M -v V
-k K`, its exit code and last lines) and the steps around them (add, build,
remove). Compared per step: exit code, stderr, what parse_dkms_status reads
from stdout (and the "already installed, skip" notice)."""

import json
import shutil
import sys

import pytest

from tests.conftest import load_source
from tests.twin_judges import conformance as cf

REAL_VERSION = "dkms-3.0.10"
K, K_NOHEADERS = "6.1.0-99-amd64", "6.1.0-98-amd64"
DKMS_CONF = ('PACKAGE_NAME="nvidia"\nPACKAGE_VERSION="{v}"\nBUILT_MODULE_NAME[0]="nvidia"\n'
             'DEST_MODULE_LOCATION[0]="/updates/dkms"\nMAKE[0]="cp stub.ko nvidia.ko"\nCLEAN="true"\nSTRIP[0]="no"\n'
             'AUTOINSTALL="yes"\n')
STUB_KO = b"\x7fELF\x02\x01\x01\x00\x00name=nvidia\x00version=580.1\x00license=NVIDIA\x00"
NO_HEADERS = (f"Error! Your kernel headers for kernel {K_NOHEADERS} cannot be found at /lib/modules/{K_NOHEADERS}/build "
              f"or /lib/modules/{K_NOHEADERS}/source.\nPlease install the linux-headers-{K_NOHEADERS} package or use the "
              "--kernelsourcedir option to tell DKMS where it's located.\n")
NO_SOURCE = "Error! Could not find module source directory.\nDirectory: /usr/src/nosuch-1 does not exist.\n"


def st(module, version, kernel, arch, status):
    return {"module": module, "version": version, "kernel": kernel, "arch": arch, "status": status}


# dkms arguments, recorded real (rc, parsed status or notice lines, stderr)[, T]
T = "twin"  # observed on the real dkms when written; checked on the twin only (each dkms call costs ~1 s)
CASES = [
    (["status"], (0, [], ""), T),
    (["add", "-m", "nvidia", "-v", "580.1"], (0, [], "")),
    (["status"], (0, [st("nvidia", "580.1", None, None, "added")], "")),
    (["add", "-m", "nvidia", "-v", "580.1"], (3, [], "Error! DKMS tree already contains: nvidia-580.1\n"
                                                     "You cannot add the same module/version combo more than once.\n"), T),
    (["add", "-m", "nosuch", "-v", "1"], (2, [], NO_SOURCE), T),
    (["build", "-m", "nvidia", "-v", "580.1", "-k", K], (0, [], "")),
    (["status"], (0, [st("nvidia", "580.1", K, "x86_64", "built")], "")),
    (["install", "-m", "nvidia", "-v", "580.1", "-k", K], (0, [], "")),
    (["status"], (0, [st("nvidia", "580.1", K, "x86_64", "installed")], "")),
    (["install", "-m", "nvidia", "-v", "580.1", "-k", K], (0, [
        f"Module nvidia/580.1 already installed on kernel {K} (x86_64), skip. You may override by specifying --force."], ""), T),
    (["install", "-m", "nvidia", "-v", "580.1", "-k", K_NOHEADERS], (1, [], NO_HEADERS)),
    (["install", "-m", "nosuch", "-v", "1", "-k", K], (2, [], NO_SOURCE)),
    (["status", "-k", K], (0, [st("nvidia", "580.1", K, "x86_64", "installed")], ""), T),
    (["status", "nvidia/580.1"], (0, [st("nvidia", "580.1", K, "x86_64", "installed")], ""), T),
    (["add", "-m", "nvidia", "-v", "580.2"], (0, [], "")),
    (["build", "-m", "nvidia", "-v", "580.2", "-k", K], (0, [], "")),
    (["status"], (0, [st("nvidia", "580.1", K, "x86_64", "installed"), st("nvidia", "580.2", K, "x86_64", "built")], "")),
    (["status", "--bogus"], (2, [], "Error!  Unknown option: --bogus\n"), T),
    (["bogus"], (0, [], 'Error! Unknown action specified: ""\n'), T),
]
# after the cases: the same tree's `dkms status` from other dkms releases
OTHER_RELEASES = {
    # suite: (recorded .deb, status lines)
    "bullseye": ("dkms_2.8.4-3_all.deb", [f"nvidia, 580.1, {K}, x86_64: installed", f"nvidia, 580.2, {K}, x86_64: built"]),
    "trixie": ("dkms_3.2.2-1~deb13u1_all.deb", [f"nvidia/580.1, {K}, x86_64: installed", f"nvidia/580.2, {K}, x86_64: built"]),
}
DEB_VERSION = {"bullseye": "2.8.4-3", "trixie": "3.2.2-1~deb13u1"}
RUNNER = ("import json,subprocess,sys\nout=[]\nfor a in json.load(open(sys.argv[1])):\n"
          " p=subprocess.run(a,capture_output=True,text=True)\n out.append([p.returncode,p.stdout,p.stderr])\n"
          "print(json.dumps(out))\n")


@pytest.fixture(scope="module")
def parse():
    return load_source("_modules/nvidia_driver.py").parse_dkms_status


def view(res, parse):
    notices = [x for x in res.out.splitlines() if "already installed" in x or "already built" in x]
    return (res.rc, parse(res.out) or notices, res.err)


def sources(root):
    for v in ("580.1", "580.2"):
        d = root / f"usr/src/nvidia-{v}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "dkms.conf").write_text(DKMS_CONF.format(v=v))
        (d / "stub.ko").write_bytes(STUB_KO)
    (root / f"lib/modules/{K}/build/include").mkdir(parents=True, exist_ok=True)
    (root / f"lib/modules/{K}/build/.config").write_text("")  # dkms copies it into the build's log
    (root / f"lib/modules/{K_NOHEADERS}").mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    """(results of the real cases, {suite: status output}) or None."""
    if cf.ensure_packages({"dkms": "dkms"}) or not shutil.which("unshare"):
        return None
    base = tmp_path_factory.mktemp("dkms")
    upper, work, tree = base / "upper", base / "work", base / "dkms-tree"
    for d in (work, tree):
        d.mkdir()
    stage = base / "stage"
    sources(stage)
    shutil.copytree(stage / "usr", upper, dirs_exist_ok=True)  # /usr/src
    shutil.copytree(stage / "lib", upper / "lib", dirs_exist_ok=True)  # /usr/lib/modules (= /lib/modules)
    others = {}
    for suite in OTHER_RELEASES:
        try:
            others[suite] = cf.fetch_unpacked(suite, "dkms")[0] / "usr/sbin/dkms"
        except RuntimeError:
            pass
    cases = [["dkms", *argv] for argv, _rec, *only in CASES if not only]
    cases += [["bash", str(exe), "status"] for exe in others.values()]
    (base / "cases.json").write_text(json.dumps(cases))
    res = cf.in_namespace([sys.executable, "-c", RUNNER, base / "cases.json"], net=False, mounts=[
        f"mount -t overlay overlay -o lowerdir=/usr,upperdir={upper},workdir={work} /usr",
        f"mount --bind {tree} /var/lib/dkms"], timeout=300)
    assert res.rc == 0, res.err
    out = [cf.Result(*x) for x in json.loads(res.out)]
    n = len(out) - len(others)
    return out[:n], dict(zip(others, out[n:]))


def test_dkms_conforms(tmp_path, real_runs, parse):
    twin = cf.TwinNode(tmp_path / "twin", state={"packages": {"dkms": {"version": "3.0.10-8+deb12u1", "arch": "all"}}})
    sources(twin.root)
    real_iter = iter(real_runs[0]) if real_runs else None
    for argv, recorded, *only in CASES:
        got = view(twin.run(["dkms", *argv]), parse)
        if real_iter is not None and not only:
            ref = view(next(real_iter), parse)
            assert ref == recorded, cf.diff_hint(f"{argv}: real {REAL_VERSION}? not as recorded", recorded, ref, who="real now")
        assert got == recorded, cf.diff_hint(argv, recorded, got)
    # the status format of the other releases, for the same tree
    for suite, (deb, lines) in OTHER_RELEASES.items():
        st_ = twin.state()
        st_["packages"]["dkms"]["version"] = DEB_VERSION[suite]
        twin.set_state(**st_)
        assert twin.run(["dkms", "status"]).out.splitlines() == lines, suite
        if real_runs and suite in real_runs[1]:
            assert real_runs[1][suite].out.splitlines() == lines, (suite, deb, real_runs[1][suite])
        assert [p["status"] for p in parse("\n".join(lines))] == ["installed", "built"]
