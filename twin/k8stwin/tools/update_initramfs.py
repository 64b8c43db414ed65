"""Emulated update-initramfs (initramfs-tools): -u / -c / -d [-k KVER|all]."""

from .. import boot, fs

USAGE = "Usage: update-initramfs {-c|-d|-u} [-k version] [-v] [-b directory]"


def main(argv):
    args = argv[1:]
    mode = None
    kver = None
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-u", "-c", "-d"):
            mode = a
        elif a == "-k":
            i += 1
            kver = args[i] if i < len(args) else None
        elif a in ("-v", "-t", "-s"):
            pass
        elif a == "-b":
            i += 1
        else:
            fs.err(USAGE)
            return 2
        i += 1
    if mode is None or (mode in ("-c", "-d") and not kver):
        fs.err(USAGE)
        return 2
    if kver == "all":
        kernels = [k for k in boot.installed_kernels() if fs.exists(boot.initramfs_path(k))] if mode == "-u" else boot.installed_kernels()
    elif kver:
        kernels = [kver]
    else:
        kernels = [boot.installed_kernels()[0]] if boot.installed_kernels() else [fs.running_kernel()]
    for k in kernels:
        img = f"/boot/initrd.img-{k}"
        if mode == "-d":
            fs.remove(img)
            fs.out(f"update-initramfs: Deleting {img}")
            continue
        fs.out(f"update-initramfs: Generating {img}")
        if not fs.isdir(f"/lib/modules/{k}"):
            fs.err(f"WARNING: missing /lib/modules/{k}\nEnsure all necessary drivers are built into the linux image!")
            fs.err(f"depmod: ERROR: could not open directory /lib/modules/{k}: No such file or directory\ndepmod: FATAL: could not search modules: No such file or directory")
            fs.err(f"update-initramfs: failed for {img} with 1.")
            return 1
        boot.build_initramfs(k, img, tool="update-initramfs")
    return 0
