"""Emulated sysctl (procps-ng): -n, -w, -p [file], --system, -a, -e, -q.

Only keys that exist have values: net.bridge.* exist while br_netfilter is loaded.

Exit codes follow the node's procps-ng (checked against Debian 12's 4.0.2,
tests/twin_judges/test_conformance_sysctl.py, and the 3.3.17 source): 3.3.x adds
-1 per failed key (one failure: 255, two: 254; -p: 255); 4.x returns 1
(reads add 1 per missing key). A written value is echoed as given (leading
and trailing blanks stripped) and stored as the kernel keeps it (fields
joined by a tab; the bridge-nf-call switches store 0 or 1).
"""

from .. import fs, kmods

# procps-ng per OS (the distributions' packages)
PROCPS = {"centos7": (3, 3, 10), "rocky8": (3, 3, 15), "alma8": (3, 3, 15), "rocky9": (3, 3, 17),
          "alma9": (3, 3, 17), "ubuntu1804": (3, 3, 12), "ubuntu2004": (3, 3, 16), "ubuntu2204": (3, 3, 17),
          "ubuntu2404": (4, 0, 4), "debian12": (4, 0, 2), "debian13": (4, 0, 4)}
ERR_RC = 255  # procps-ng 3.3.x, one failed key
USAGE = """
Usage:
 sysctl [options] [variable[=value] ...]

Options:
  -a, --all            display all variables
  -A                   alias of -a
  -X                   alias of -a
      --deprecated     include deprecated parameters to listing
      --dry-run        Print the key and values but do not write
  -b, --binary         print value without new line
  -e, --ignore         ignore unknown variables errors
  -N, --names          print variable names without values
  -n, --values         print only values of the given variable(s)
  -p, --load[=<file>]  read values from file
  -f                   alias of -p
      --system         read values from all system directories
  -r, --pattern <expression>
                       select setting that match expression
  -q, --quiet          do not echo variable set
  -w, --write          enable writing a value to variable
  -o                   does nothing
  -x                   does nothing
  -d                   alias of -h

 -h, --help     display this help and exit
 -V, --version  output version information and exit

For more details see sysctl(8)."""


def _v4():
    _fam, _major, key = fs.node_os()
    return PROCPS.get(key, (4, 0, 2)) >= (4,)


def _stat_err(key):
    fs.err(f"sysctl: cannot stat /proc/sys/{key.replace('.', '/')}: No such file or directory")


def _stored(key, value):
    """What reading the key back gives, as the kernel stores a write."""
    fields = value.split()
    if key.startswith("net.bridge.bridge-nf-call-") and fields and fields[0].lstrip("-").isdigit():
        return "1" if int(fields[0]) else "0"
    return "\t".join(fields)


def _assign(key, value, quiet, ignore, names_only=False):
    """Write one key; 0, or 1 when it failed."""
    vals = kmods.sysctl_values()
    key = key.replace("/", ".")
    if key not in vals:
        if not ignore:
            _stat_err(key)
            return 1
        return 0
    value = value.strip()
    numeric = vals[key].split("\t")[0].lstrip("-").isdigit()
    if numeric and not all(f.lstrip("-").isdigit() for f in value.split()):
        fs.err(f'sysctl: setting key "{key}": Invalid argument')
        return 1
    kmods.set_sysctl(key, _stored(key, value))
    if not quiet:
        fs.out(key if names_only == "names" else (value if names_only else f"{key} = {value}"))
    return 0


def _apply_file(p, quiet, ignore):
    if not fs.isfile(p):
        fs.err(f'sysctl: cannot open "{p}": No such file or directory')
        return 1
    rc = 0
    for lineno, line in enumerate((fs.read(p) or "").splitlines(), 1):
        text = line.strip()
        if len(text) < 2 or text[0] in "#;":
            continue
        if "=" not in text:
            if not text.startswith("-"):  # '-key' alone excludes a glob match
                fs.err(f"sysctl: {p}({lineno}): invalid syntax, continuing...")
            continue
    for k, v in kmods.parse_sysctl_file(p):
        rc |= _assign(k, v, quiet, ignore)
    return rc


def main(argv):
    args = argv[1:]
    names_only = quiet = ignore = write = False
    load = None
    system = all_keys = False
    pos = []
    v4 = _v4()
    if not args:
        fs.err(USAGE)
        return 1
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-n", "--values"):
            names_only = True
        elif a in ("-N", "--names"):
            names_only = "names"
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
        elif a in ("-b", "--binary", "-o", "-x", "--deprecated"):
            pass
        elif a.startswith("-"):
            # getopt's complaint, then the usage on stdout (exit 0), as procps-ng does
            fs.err(f"sysctl: invalid option -- '{a.lstrip('-')[:1]}'" if not a.startswith("--") else f"sysctl: unrecognized option '{a}'")
            fs.out(USAGE)
            return 0
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
        return (1 if v4 else ERR_RC) if _apply_file(load, quiet, ignore) else 0
    if all_keys:
        for k, v in sorted(kmods.sysctl_values().items()):
            fs.out(v if names_only else f"{k} = {v}")
        return 0
    if not pos:
        fs.err("sysctl: no variables specified\nTry `sysctl --help' for more information.")
        return 1
    rc = 0
    vals = kmods.sysctl_values()
    for p in pos:
        if "=" in p or write:
            if "=" not in p:
                if v4:
                    fs.err("sysctl: command line(0): invalid syntax, continuing...")
                    rc |= 1
                else:
                    fs.err(f'sysctl: "{p}" must be of the form name=value')
                    rc -= 1
                continue
            k, v = p.split("=", 1)
            if _assign(k.strip(), v, quiet, ignore, names_only):
                rc = (rc | 1) if v4 else rc - 1
        else:
            k = p.replace("/", ".")
            if k not in vals:
                if not ignore:
                    _stat_err(k)
                    rc += 1 if v4 else -1
                continue
            fs.out(k if names_only == "names" else (vals[k] if names_only else f"{k} = {vals[k]}"))
    return rc & 0xFF
