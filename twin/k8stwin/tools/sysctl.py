"""Emulated sysctl (procps-ng): -n, -w, -p [file], --system, -a, -e, -q.

Only keys that exist have values: net.bridge.* exist while br_netfilter is loaded.
"""

from .. import fs, kmods

ERR_RC = 255


def _stat_err(key):
    fs.err(f"sysctl: cannot stat /proc/sys/{key.replace('.', '/')}: No such file or directory")


def _assign(key, value, quiet, ignore, names_only=False):
    vals = kmods.sysctl_values()
    key = key.replace("/", ".")
    if key not in vals:
        if not ignore:
            _stat_err(key)
            return ERR_RC
        return 0
    value = " ".join(value.split())
    if vals[key].strip().lstrip("-").isdigit() and not value.lstrip("-").isdigit():
        fs.err(f'sysctl: setting key "{key}": Invalid argument')
        return ERR_RC
    if key.startswith("net.bridge.") and value not in ("0", "1"):
        fs.err(f'sysctl: setting key "{key}": Invalid argument')
        return ERR_RC
    kmods.set_sysctl(key, value)
    if not quiet:
        fs.out(value if names_only else f"{key} = {value}")
    return 0


def _apply_file(p, quiet, ignore):
    if not fs.isfile(p):
        fs.err(f'sysctl: cannot open "{p}": No such file or directory')
        return ERR_RC
    rc = 0
    for k, v in kmods.parse_sysctl_file(p):
        rc = _assign(k, v, quiet, ignore) or rc
    return rc


def main(argv):
    args = argv[1:]
    names_only = quiet = ignore = write = False
    load = None
    system = all_keys = False
    pos = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-n", "--values"):
            names_only = True
        elif a in ("-q", "--quiet"):
            quiet = True
        elif a in ("-e", "--ignore"):
            ignore = True
        elif a in ("-w", "--write"):
            write = True
        elif a in ("-a", "-A", "-X", "--all"):
            all_keys = True
        elif a == "--system":
            system = True
        elif a in ("-p", "--load", "-f"):
            load = "/etc/sysctl.conf"
            if i + 1 < len(args) and not args[i + 1].startswith("-"):
                i += 1
                load = args[i]
        elif a.startswith("-p") and len(a) > 2:
            load = a[2:]
        elif a.startswith("--load="):
            load = a.split("=", 1)[1]
        elif a in ("-N", "--names", "-b", "--binary"):
            pass
        elif a.startswith("-"):
            fs.err(f"sysctl: invalid option -- '{a.lstrip('-')[:1]}'" if not a.startswith("--") else f"sysctl: unrecognized option '{a}'")
            fs.err("\nUsage:\n sysctl [options] [variable[=value] ...]")
            return 1 if not a.startswith("--") else 1
        else:
            pos.append(a)
        i += 1
    if system:
        for f in kmods.sysctl_files():
            if not quiet:
                fs.out(f"* Applying {f} ...")
            for k, v in kmods.parse_sysctl_file(f):
                _assign(k, v, quiet, True)
        return 0
    if load:
        return _apply_file(load, quiet, ignore)
    if all_keys:
        for k, v in sorted(kmods.sysctl_values().items()):
            fs.out(v if names_only else f"{k} = {v}")
        return 0
    if not pos:
        fs.err("sysctl: no variables specified\nTry `sysctl --help' for more information.")
        return 1 if True else 0
    rc = 0
    vals = kmods.sysctl_values()
    for p in pos:
        if "=" in p:
            k, v = p.split("=", 1)
            rc = _assign(k.strip(), v.strip(), quiet, ignore, names_only) or rc
        elif write:
            fs.err(f'sysctl: "{p}" must be of the form name=value')
            rc = ERR_RC
        else:
            k = p.replace("/", ".")
            if k not in vals:
                if not ignore:
                    _stat_err(k)
                    rc = ERR_RC
                continue
            fs.out(vals[k] if names_only else f"{k} = {vals[k]}")
    return rc
