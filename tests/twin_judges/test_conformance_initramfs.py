"""Conformance: the twin's update-initramfs (twin/k8stwin/tools/update_initramfs.py)
against Debian 12's initramfs-tools 0.142 (apt-get installed when missing).

The real tool runs in a mount namespace the test creates: /usr and /etc are
overlays of the host's (the kernel's /lib/modules/K, the nouveau blacklist
in /etc/modprobe.d, a faster initramfs.conf: gzip -1, MODULES=list, no
busybox), /boot a scratch directory with the kernel's vmlinuz and config
(a kernel package brings both). The command line is the nouveau layer's
`update-initramfs -u -k K` (bootkernel.rebuild_initramfs); compared: exit
code, stdout, the W: warnings, and whether the image carries the blacklist
(lsinitramfs; the twin's image is a manifest of what it carries). Around
it: -u without -k, -c without a version, an unknown option, -d. Generating
costs the real tool several seconds, so it runs once; the kernel without
/lib/modules/K was observed once and is checked on the twin only."""

import json
import shutil
import sys

import pytest

from tests.twin_judges import conformance as cf

REAL_VERSION = "initramfs-tools 0.142+deb12u3"
K, K_MISSING, K_NOCONFIG = "6.1.0-99-amd64", "6.1.0-98-amd64", "6.1.0-97-amd64"
BLACKLIST = "/etc/modprobe.d/blacklist-nouveau.conf"
USAGE = ("\nUsage: update-initramfs {-c|-d|-u} [-k version] [-v] [-b directory]\n\nOptions:\n -k version\tSpecify kernel "
         "version or 'all'\n -c\t\tCreate a new initramfs\n -u\t\tUpdate an existing initramfs\n -d\t\tRemove an existing "
         "initramfs\n -b directory\tSet alternate boot directory\n -v\t\tBe verbose\n\nSee update-initramfs(8) for further "
         "details.\n\n")
GEN = f"update-initramfs: Generating /boot/initrd.img-{K}\n"
# arguments, recorded real (rc, stdout, stderr's usage/W:/E: lines or the whole usage text, image carries the blacklist)[, T]
T = "twin"
CASES = [
    ([], (2, "", "You must specify at least one of -c, -u, or -d.\n\n" + USAGE, None)),
    (["-c"], (2, "", "Create mode requires a version argument\n\n" + USAGE, None)),
    (["-x"], (2, "", "/usr/sbin/update-initramfs: invalid option -- 'x'\n" + USAGE, None)),
    (["-u"], (0, "", "", None)),  # no kernel has an image yet: nothing to do
    # a kernel with modules but no /boot/config-K (not from a package: a container's running kernel)
    (["-u", "-k", K_NOCONFIG], (1, f"update-initramfs: Generating /boot/initrd.img-{K_NOCONFIG}\n", (
        f"grep: /boot/config-{K_NOCONFIG}: No such file or directory\nE: gzip compression (CONFIG_RD_GZIP) not supported "
        f"by kernel\nupdate-initramfs: failed for /boot/initrd.img-{K_NOCONFIG} with 1.\n"), None)),
    (["-u", "-k", K], (0, GEN, [], True)),
    (["-u", "-k", K_MISSING], (0, f"update-initramfs: Generating /boot/initrd.img-{K_MISSING}\n", [
        f"W: missing /lib/modules/{K_MISSING}", "W: Ensure all necessary drivers are built into the linux image!"], None), T),
    (["-d", "-k", K_MISSING], (0, f"update-initramfs: Deleting /boot/initrd.img-{K_MISSING}\n", "", None), T),
    (["-d", "-k", K], (0, f"update-initramfs: Deleting /boot/initrd.img-{K}\n", "", False)),
]
# with Debian's own initramfs.conf (COMPRESS=zstd), observed once: zstd falls back to gzip, then fails
ZSTD_NOCONFIG = (1, f"update-initramfs: Generating /boot/initrd.img-{K_NOCONFIG}\n", (
    f"grep: /boot/config-{K_NOCONFIG}: No such file or directory\nW: zstd compression (CONFIG_RD_ZSTD) not supported by "
    f"kernel, using gzip\ngrep: /boot/config-{K_NOCONFIG}: No such file or directory\nE: gzip compression (CONFIG_RD_GZIP) "
    f"not supported by kernel\nupdate-initramfs: failed for /boot/initrd.img-{K_NOCONFIG} with 1.\n"))


def view(argv, rc, out, err, carries):
    if rc == 0 and out.startswith("update-initramfs: Generating"):
        err = [x for x in err.splitlines() if x.startswith(("W: missing", "W: Ensure", "E:"))]
    return (rc, out, err, carries)


def twin_carries(twin, image_exists):
    p = twin.path(f"/boot/initrd.img-{K}")
    if not p.exists():
        return False if image_exists is not None else None
    return BLACKLIST in json.loads(p.read_text()).get("modprobe_d", {})


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory):
    if cf.ensure_packages({"update-initramfs": "initramfs-tools", "lsinitramfs": "initramfs-tools"}) \
            or not shutil.which("unshare"):
        return None
    base = tmp_path_factory.mktemp("initramfs")
    uu, eu, boot = base / "usr-upper", base / "etc-upper", base / "boot"
    for d in (base / "uw", base / "ew", boot, uu / f"lib/modules/{K}", uu / f"lib/modules/{K_NOCONFIG}", eu / "modprobe.d",
              eu / "initramfs-tools"):
        d.mkdir(parents=True)
    (eu / "modprobe.d/blacklist-nouveau.conf").write_text("blacklist nouveau\noptions nouveau modeset=0\n")
    (eu / "initramfs-tools/initramfs.conf").write_text(fast_conf(pathlib_read("/etc/initramfs-tools/initramfs.conf")))
    (boot / f"vmlinuz-{K}").write_text("")
    (boot / f"config-{K}").write_text("CONFIG_RD_GZIP=y\nCONFIG_RD_ZSTD=y\n")
    cases = [["update-initramfs", *argv] for argv, _rec, *only in CASES if not only]
    (base / "cases.json").write_text(json.dumps(cases))
    runner = ("import json,os,subprocess,sys\nout=[]\nimg='/boot/initrd.img-" + K + "'\n"
              "for a in json.load(open(sys.argv[1])):\n"
              " p=subprocess.run(a,capture_output=True,text=True)\n"
              " c=None\n if os.path.exists(img):\n"
              "  c='" + BLACKLIST.lstrip("/") + "' in subprocess.run(['lsinitramfs',img],capture_output=True,text=True).stdout.split()\n"
              " elif a[1:2]==['-d']: c=False\n"
              " out.append([p.returncode,p.stdout,p.stderr,c])\nprint(json.dumps(out))\n")
    res = cf.in_namespace([sys.executable, "-c", runner, base / "cases.json"], net=False, timeout=300, mounts=[
        f"mount -t overlay overlay -o lowerdir=/usr,upperdir={uu},workdir={base / 'uw'} /usr",
        f"mount -t overlay overlay -o lowerdir=/etc,upperdir={eu},workdir={base / 'ew'} /etc",
        f"mount --bind {boot} /boot"])
    assert res.rc == 0, res.err
    return json.loads(res.out)


def fast_conf(conf):
    """initramfs.conf with gzip -1, MODULES=list, no busybox: seconds less per image."""
    return "\n".join("COMPRESS=gzip\nCOMPRESSLEVEL=1" if x.startswith("COMPRESS=") else "MODULES=list" if x.startswith(
        "MODULES=") else "BUSYBOX=n" if x.startswith("BUSYBOX=") else x for x in conf.splitlines()) + "\n"


def pathlib_read(path):
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def test_update_initramfs_conforms(tmp_path, real_runs):
    twin = cf.TwinNode(tmp_path / "twin", kernel=K)
    twin.write(BLACKLIST, "blacklist nouveau\noptions nouveau modeset=0\n")
    twin.path(f"/lib/modules/{K}").mkdir(parents=True)
    twin.write(f"/boot/vmlinuz-{K}", "")
    for k in (K, K_MISSING):  # the missing kernel was observed with its config in /boot
        twin.write(f"/boot/config-{k}", "CONFIG_RD_GZIP=y\nCONFIG_RD_ZSTD=y\n")
    twin.path(f"/lib/modules/{K_NOCONFIG}").mkdir(parents=True)
    twin.write("/etc/initramfs-tools/initramfs.conf", fast_conf("MODULES=most\nBUSYBOX=auto\nCOMPRESS=zstd\n"))
    real_iter = iter(real_runs) if real_runs is not None else None
    for argv, recorded, *only in CASES:
        got = twin.run(["update-initramfs", *argv])
        carries = twin_carries(twin, recorded[3]) if recorded[3] is not None else None
        tv = view(argv, *got, carries)
        if real_iter is not None and not only:
            rv = view(argv, *next(real_iter))
            assert rv == recorded, cf.diff_hint(f"{argv}: real {REAL_VERSION}? not as recorded", recorded, rv, who="real now")
        assert tv == recorded, cf.diff_hint(argv, recorded, tv)
    twin.write("/etc/initramfs-tools/initramfs.conf", "MODULES=most\nBUSYBOX=auto\nCOMPRESS=zstd\n")
    assert tuple(twin.run(["update-initramfs", "-u", "-k", K_NOCONFIG])) == ZSTD_NOCONFIG
