"""Emulated update-initramfs (initramfs-tools): -u / -c / -d [-k KVER|all].

Checked against Debian 12's initramfs-tools 0.142 (and the 0.140 source of
Debian 11): tests/twin_judges/test_conformance_initramfs.py. A kernel without
/lib/modules/K still gets an image (mkinitramfs only warns, depmod's
complaint is no failure); `-u` without -k updates the newest kernel that
already has an image, and does nothing (rc 0) when none has; usage errors
exit 2 with the usage on stderr. On 0.142 a kernel whose /boot/config-K
lacks CONFIG_RD_<compressor>=y (or that has no config: a kernel not
installed from a package) fails before anything is built.
"""

from .. import boot, fs

USAGE = """
Usage: update-initramfs {-c|-d|-u} [-k version] [-v] [-b directory]

Options:
 -k version	Specify kernel version or 'all'
 -c		Create a new initramfs
 -u		Update an existing initramfs
 -d		Remove an existing initramfs
 -b directory	Set alternate boot directory
 -v		Be verbose

See update-initramfs(8) for further details.
"""
# initramfs-tools before 0.140 (Ubuntu 18.04's 0.130) said WARNING: without the W: prefix (not verified)
OLD_WARNINGS = ("ubuntu1804",)
# 0.142 (Debian 12, Ubuntu 24.04) checks the kernel's config for the compressor (0.140 does not)
KCONFIG_CHECK = ("debian12", "debian13", "ubuntu2404")
KCONFIG_SYM = {"gzip": "GZIP", "bzip2": "BZIP2", "lzma": "LZMA", "xz": "XZ", "lzop": "LZO", "lz4": "LZ4", "zstd": "ZSTD"}


def _compressor_ok(k):
    """mkinitramfs 0.142: the kernel must support the compressor
    (CONFIG_RD_<X>=y in /boot/config-K), else gzip, else fail. A kernel
    without /boot/config-K (one not installed from a package, a container's)
    fails here."""
    conf = fs.read("/etc/initramfs-tools/initramfs.conf") or ""
    compress = "zstd"
    for line in conf.splitlines():
        if line.startswith("COMPRESS="):
            compress = line.split("=", 1)[1].strip().strip('"') or compress
    cfg = fs.read(f"/boot/config-{k}")
    while True:
        sym = f"CONFIG_RD_{KCONFIG_SYM.get(compress, 'GZIP')}"
        if cfg is None:
            fs.err(f"grep: /boot/config-{k}: No such file or directory")
        elif f"{sym}=y" in cfg.splitlines():
            return True
        if compress == "gzip":
            fs.err(f"E: gzip compression ({sym}) not supported by kernel")
            return False
        fs.err(f"W: {compress} compression ({sym}) not supported by kernel, using gzip")
        compress = "gzip"


def _usage_error(message=None):
    import sys

    if message:
        sys.stderr.write(f"{message}\n\n")
    sys.stderr.write(USAGE + "\n")
    return 2


def _generate(k):
    img = f"/boot/initrd.img-{k}"
    fs.out(f"update-initramfs: Generating {img}")
    _fam, _major, key = fs.node_os()
    if key in KCONFIG_CHECK and not _compressor_ok(k):
        fs.err(f"update-initramfs: failed for {img} with 1.")
        return 1
    if not fs.isdir(f"/lib/modules/{k}"):
        w = "WARNING: " if key in OLD_WARNINGS else "W: "
        fs.err(f"{w}missing /lib/modules/{k}\n{w}Ensure all necessary drivers are built into the linux image!")
        fs.err(f"depmod: ERROR: could not open directory /lib/modules/{k}: No such file or directory\n"
               "depmod: FATAL: could not search modules: No such file or directory")
    boot.build_initramfs(k, img, tool="update-initramfs")
    return 0


def main(argv):
    args = argv[1:]
    mode = None
    kver = None
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-u", "-c", "-d"):
            mode = a
        elif a == "-k" or (a.startswith("-k") and len(a) > 2):
            if a == "-k":
                i += 1
                if i >= len(args):
                    fs.err("/usr/sbin/update-initramfs: option requires an argument -- 'k'")
                    return _usage_error()
                kver = args[i]
            else:
                kver = a[2:]
        elif a in ("-v", "-t"):
            pass
        elif a == "-b":
            i += 1
        elif a in ("-h", "--help"):
            fs.out(USAGE)
            return 0
        elif a.startswith("-"):
            fs.err(f"/usr/sbin/update-initramfs: invalid option -- '{a[1:2]}'")
            return _usage_error()
        else:
            fs.err(f"Extra argument '{a}'\n\n")
            return _usage_error()
        i += 1
    if mode is None:
        return _usage_error("You must specify at least one of -c, -u, or -d.")
    if mode in ("-c", "-d") and not kver:
        return _usage_error(("Create" if mode == "-c" else "Delete") + " mode requires a version argument")
    with_image = [k for k in boot.installed_kernels() if fs.exists(boot.initramfs_path(k))]
    if kver == "all":
        kernels = with_image if mode in ("-u", "-d") else boot.installed_kernels()
    elif kver:
        kernels = [kver]
    else:
        # -u: the newest kernel that has an image, else the running one's if it has one
        running = fs.running_kernel()
        kernels = with_image[:1] or ([running] if fs.exists(boot.initramfs_path(running)) else [])
    for k in kernels:
        img = f"/boot/initrd.img-{k}"
        if mode == "-d":
            fs.out(f"update-initramfs: Deleting {img}")
            fs.remove(img)
            fs.remove(img + ".bak")
            continue
        if _generate(k):
            return 1
    return 0
