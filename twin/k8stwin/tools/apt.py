"""Emulated apt (the interactive front end): update/install/remove/purge/list/policy
through the apt-get/apt-cache emulation, with apt's CLI warning on stderr."""

from .. import fs
from . import apt_cache, apt_get


def main(argv):
    args = argv[1:]
    fs.err("\nWARNING: apt does not have a stable CLI interface. Use with caution in scripts.\n")
    cmd = next((a for a in args if not a.startswith("-")), None)
    if cmd in ("policy", "show", "madison", "search"):
        return apt_cache.main(["apt-cache"] + args)
    if cmd == "list":
        rest = [a for a in args if a not in ("list", "--installed", "-a", "--all-versions", "--upgradable")]
        from .. import pkgdb

        fs.out("Listing...")
        for name, e in sorted(pkgdb.installed().items()):
            if not rest or name in rest:
                fs.out(f"{name}/now {e['version']} {e.get('arch', 'amd64')} [installed]")
        return 0
    return apt_get.main(["apt-get"] + args)
