"""
Command-line parsing the way Go's cobra/pflag parse it (kubeadm, kubectl,
nvidia-ctk's urfave/cli is close enough for the flags used here).

pflag rules emulated: ``--name=value`` and ``--name value``; boolean flags take
no separate value (``--flag`` or ``--flag=false``); shorthands ``-o json``,
``-ojson``, ``-o=json``; flags and arguments may be mixed; ``--`` ends flags.
An unknown flag raises :class:`FlagError` with pflag's own message
(``unknown flag: --x`` / ``unknown shorthand flag: 'x' in -x``).
"""


class FlagError(Exception):
    pass


BOOL_TRUE = ("true", "1", "t", "T", "TRUE", "True")
BOOL_FALSE = ("false", "0", "f", "F", "FALSE", "False")


def parse(args, flags, short=None):
    """Parse ``args`` against ``flags`` ({name: "bool"|"str"|"list"|"int"}).

    ``short`` maps one-letter shorthands to long names. ``list`` flags collect
    repeated uses and split on commas (pflag's StringSlice). Returns
    ``(opts, positionals)``; ``opts`` holds only the flags given."""
    short = short or {}
    opts = {}
    pos = []
    i = 0

    def put(name, value):
        kind = flags[name]
        if kind == "bool":
            if value is None or value in BOOL_TRUE:
                opts[name] = True
            elif value in BOOL_FALSE:
                opts[name] = False
            else:
                raise FlagError(f'invalid argument "{value}" for "--{name}" flag: strconv.ParseBool: parsing "{value}": invalid syntax')
        elif kind == "list":
            opts.setdefault(name, [])
            opts[name].extend(v for v in value.split(",") if v != "")
        elif kind == "int":
            try:
                opts[name] = int(value)
            except ValueError:
                raise FlagError(f'invalid argument "{value}" for "--{name}" flag: strconv.ParseInt: parsing "{value}": invalid syntax') from None
        else:
            opts[name] = value

    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            pos.extend(args[i:])
            break
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            if name not in flags:
                raise FlagError(f"unknown flag: --{name}")
            if not eq:
                value = None
                if flags[name] != "bool":
                    if i >= len(args):
                        raise FlagError(f"flag needs an argument: --{name}")
                    value = args[i]
                    i += 1
            put(name, value)
        elif arg.startswith("-") and len(arg) > 1:
            letter = arg[1]
            if letter not in short:
                raise FlagError(f"unknown shorthand flag: '{letter}' in {arg}")
            name = short[letter]
            rest = arg[2:]
            if flags[name] == "bool":
                put(name, rest[1:] if rest.startswith("=") else None)
            else:
                if rest.startswith("="):
                    rest = rest[1:]
                if not rest:
                    if i >= len(args):
                        raise FlagError(f"flag needs an argument: '{letter}' in -{letter}")
                    rest = args[i]
                    i += 1
                put(name, rest)
        else:
            pos.append(arg)
    return opts, pos


def duration(text):
    """Seconds of a Go duration string (``24h0m0s``, ``15m``, ``1h30m``, ``90s``, ``0``).

    Raises ValueError as time.ParseDuration fails."""
    import re

    text = str(text).strip()
    if text in ("0", ""):
        if text == "":
            raise ValueError('time: invalid duration ""')
        return 0
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    pos = 0
    total = 0.0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f'time: invalid duration "{text}"')
    return total


def format_duration(seconds):
    """Go's Duration.String() for whole seconds: 24h0m0s, 15m0s, 30s."""
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m}m{s}s"
    if m:
        return f"{m}m{s}s"
    return f"{s}s"
