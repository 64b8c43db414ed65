"""Emulated grubby: el8/9 BLS script (quoted --info, "The default is ..." on
--set-default) and el7's C grubby (unquoted kernel=, silent --set-default)."""

from .. import boot, fs


def _entries():
    _fam, major, _k = fs.node_os()
    if major >= 8:
        return [{"kernel": e["kernel"], "title": e.get("title", ""), "id": e["id"], "args": e.get("options", ""), "initrd": "/boot" + e.get("initrd", "").split()[0] if e.get("initrd") else "", "file": e["file"]} for e in boot.bls_entries()]
    menu = boot.parse_menu(fs.read("/boot/grub2/grub.cfg") or "")
    out = []
    for m in menu:
        if m.get("kernel"):
            out.append({"kernel": m["kernel"], "title": m["title"], "id": m.get("id"), "args": boot._cmdline(), "initrd": boot.initramfs_path(m["kernel"]), "file": None})
    return out


def _default_index(entries):
    k = boot.resolve_default()
    for i, e in enumerate(entries):
        if e["kernel"] == k:
            return i
    return 0


def _print(i, e, major):
    args = " ".join(x for x in e["args"].split() if not x.startswith("root="))
    root = next((x[5:] for x in e["args"].split() if x.startswith("root=")), "/dev/sda1")
    if major >= 8:
        fs.out(f'index={i}\nkernel="/boot/vmlinuz-{e["kernel"]}"\nargs="{args}"\nroot="{root}"\ninitrd="{e["initrd"]}"\ntitle="{e["title"]}"\nid="{e["id"]}"')
    else:
        fs.out(f'index={i}\nkernel=/boot/vmlinuz-{e["kernel"]}\nargs="{args}"\nroot={root}\ninitrd={e["initrd"]}\ntitle={e["title"]}')


def _find(entries, spec):
    if spec in ("ALL",):
        return list(range(len(entries)))
    if spec == "DEFAULT":
        return [_default_index(entries)]
    if spec.isdigit():
        return [int(spec)] if int(spec) < len(entries) else []
    return [i for i, e in enumerate(entries) if f"/boot/vmlinuz-{e['kernel']}" == spec]


def main(argv):
    _fam, major, _k = fs.node_os()
    entries = _entries()
    args = argv[1:]
    opts = {}
    i = 0
    while i < len(args):
        a = args[i]
        if "=" in a and a.startswith("--"):
            k, v = a.split("=", 1)
        else:
            k, v = a, None
            if k in ("--info", "--set-default", "--set-default-index", "--update-kernel", "--args", "--remove-args", "--remove-kernel", "--add-kernel", "--initrd", "--title") and i + 1 < len(args):
                i += 1
                v = args[i]
        if k not in ("--default-kernel", "--default-index", "--default-title", "--info", "--set-default", "--set-default-index", "--update-kernel", "--args", "--remove-args", "--remove-kernel", "--add-kernel", "--initrd", "--title", "--make-default", "--copy-default", "--bls-directory", "--grub2", "--env", "-c", "--config-file"):
            fs.err(f"grubby: bad argument {a}: unknown option")
            return 1
        opts[k] = v
        i += 1
    if "--default-kernel" in opts:
        if not entries:
            return 1
        fs.out(f"/boot/vmlinuz-{entries[_default_index(entries)]['kernel']}")
        return 0
    if "--default-index" in opts:
        fs.out(str(_default_index(entries)))
        return 0
    if "--default-title" in opts:
        fs.out(entries[_default_index(entries)]["title"] if entries else "")
        return 0
    if "--info" in opts:
        idx = _find(entries, opts["--info"] or "")
        if not idx:
            fs.err(f"The param {opts['--info']} is incorrect" if major >= 8 else "grubby: kernel not found")
            return 1
        for n in idx:
            _print(n, entries[n], major)
        return 0
    if "--set-default" in opts or "--set-default-index" in opts:
        spec = opts.get("--set-default") or opts.get("--set-default-index") or ""
        idx = _find(entries, spec)
        if not idx:
            fs.err(f"The param {spec} is incorrect" if major >= 8 else "grubby: kernel not found")
            return 1
        e = entries[idx[0]]
        env = boot.read_grubenv("/boot/grub2/grubenv")
        env["saved_entry"] = e["id"] if major >= 8 else e["title"]
        boot.write_grubenv(env, "/boot/grub2/grubenv")
        if major >= 8:
            fs.err(f"The default is {e['file']} with index {idx[0]} and kernel /boot/vmlinuz-{e['kernel']}")
        return 0
    if "--update-kernel" in opts:
        idx = _find(entries, opts["--update-kernel"] or "")
        if not idx:
            fs.err(f"The param {opts['--update-kernel']} is incorrect" if major >= 8 else "grubby: kernel not found")
            return 1
        add = (opts.get("--args") or "").split()
        rm = (opts.get("--remove-args") or "").split()
        for n in idx:
            e = entries[n]
            words = [w for w in e["args"].split() if w not in rm and w.split("=")[0] not in [r.split("=")[0] for r in rm] and w.split("=")[0] not in [a.split("=")[0] for a in add]]
            words += add
            if major >= 8 and e["file"]:
                text = fs.read(e["file"]) or ""
                lines = [f"options {' '.join(words)}" if ln.startswith("options ") else ln for ln in text.splitlines()]
                fs.write(e["file"], "\n".join(lines) + "\n")
            else:
                text = fs.read("/boot/grub2/grub.cfg") or ""
                out = []
                for ln in text.splitlines():
                    if ln.strip().startswith("linux16 ") and f"vmlinuz-{e['kernel']} " in ln + " ":
                        head = ln.split("vmlinuz-")[0] + f"vmlinuz-{e['kernel']}"
                        ln = f"{head} {' '.join(words)}"
                    out.append(ln)
                fs.write("/boot/grub2/grub.cfg", "\n".join(out) + "\n")
        return 0
    fs.err("grubby: no action specified")
    return 1
