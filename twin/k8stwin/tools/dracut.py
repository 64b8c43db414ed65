"""Emulated dracut [-f|--force] [IMAGE [KVER]] [--kver K] [--regenerate-all]:
writes the initramfs manifest (the /etc/modprobe.d blacklist at build time)."""

from .. import boot, fs

NOARG = {"-f", "--force", "-v", "--verbose", "-q", "--quiet", "-H", "--hostonly", "-N", "--no-hostonly", "--regenerate-all", "--no-kernel", "-M", "--show-modules", "--lzo", "--gzip", "--xz", "--zstd"}
ARG = {"--kver", "--add-drivers", "--omit-drivers", "--add", "-a", "--omit", "-o", "--install", "-I", "--drivers", "-d", "--conf", "-c", "--confdir", "--tmpdir", "--compress"}


def main(argv):
    args = argv[1:]
    force = False
    regen = False
    kver = None
    pos = []
    i = 0
    while i < len(args):
        a = args[i]
        key = a.split("=", 1)[0]
        if key in NOARG:
            force = force or a in ("-f", "--force")
            regen = regen or a == "--regenerate-all"
        elif key in ARG:
            if "=" not in a:
                i += 1
                val = args[i] if i < len(args) else ""
            else:
                val = a.split("=", 1)[1]
            if key == "--kver":
                kver = val
        elif a.startswith("-"):
            fs.err(f"dracut: Unknown option '{a}'" if False else f"dracut: invalid option '{a}'")
            fs.err("Usage: dracut [OPTION]... [<initramfs> [<kernel-version>]]")
            return 1
        else:
            pos.append(a)
        i += 1
    kernels = boot.installed_kernels() if regen else [kver or (pos[1] if len(pos) > 1 else fs.running_kernel())]
    rc = 0
    for k in kernels:
        image = pos[0] if pos and not regen else f"/boot/initramfs-{k}.img"
        if not fs.isdir(f"/lib/modules/{k}"):
            fs.err(f"dracut: Cannot find module directory /lib/modules/{k}/")
            fs.err("dracut: and --no-kernel was not specified")
            rc = 1
            continue
        if fs.exists(image) and not force:
            fs.err(f"dracut: Will not override existing initramfs ({image}) without --force")
            rc = 1
            continue
        boot.build_initramfs(k, image, tool="dracut")
    return rc
