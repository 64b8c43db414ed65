"""
Emulated ``dkms`` (dell/dkms ``dkms.in``): ``status``, ``add``, ``build``,
``install``, ``remove``, ``autoinstall``, ``ldtarball`` and ``--version``, on
the node's DKMS registry (``k8stwin.dkms``).

``dkms status`` uses the format of the node's dkms package version:
``nvidia/V, K, x86_64: installed`` from 2.8.6 (and when the version is not
known), ``nvidia, V, K, x86_64: installed`` before (commit f83b758).
Checked against Debian's dkms 3.0.10 (and the status format against 2.8.4
and 3.2.2): tests/twin_judges/test_conformance_dkms.py.
"""

import sys

from .. import dkms as reg
from .. import fs, state

ACTIONS = ("status", "add", "build", "install", "remove", "uninstall", "autoinstall", "ldtarball", "unbuild")
DEFAULT_VERSION = "3.0.11"
USAGE = """Usage: /usr/sbin/dkms [action] [options]
  [action]  = { add | remove | build | install | uninstall | match | autoinstall |
                mktarball | ldtarball | status }
  [options] = [-m module] [-v module-version] [-k kernel-version] [-a arch]
              [-c dkms.conf-location] [-q] [--force] [--force-version-override] [--all]
              [--templatekernel=kernel] [--directive='cli-directive=cli-value']
              [--config=kernel-.config-location] [--archive=tarball-location]
              [--kernelsourcedir=source-location]
              [--binaries-only] [--source-only] [--verbose]
              [--no-depmod] [--modprobe-on-install] [-j number] [--version]"""


def _dkms_version():
    pkg = (state.read().get("packages") or {}).get("dkms") or {}
    return str(pkg.get("version") or DEFAULT_VERSION)


def _new_format():
    import re

    # upstream version only: '2.8.4-3' is 2.8.4 (the Debian revision is no part of it)
    upstream = _dkms_version().split(":", 1)[-1].split("-", 1)[0]
    parts = [int(m.group(0)) if (m := re.match(r"\d+", p)) else 0 for p in upstream.split(".")[:3]]
    return tuple(parts) >= (2, 8, 6)


def _die(code, msg):
    fs.err(f"Error! {msg}")
    return code


def main(argv):
    args = list(argv[1:])
    action, module, version, kernels, extra = None, None, None, [], []
    all_kernels = force = False
    i = 0
    while i < len(args):
        arg = args[i]
        val = None
        if arg.startswith("--") and "=" in arg:
            arg, val = arg.split("=", 1)
        if arg in ("-m", "-v", "-k", "--kernelsourcedir", "-a", "--arch", "-c", "--dkmstree", "--sourcetree"):
            if val is None:
                i += 1
                if i >= len(args):
                    return _die(1, f"Option {arg} requires an argument.")
                val = args[i]
            if arg == "-m":
                module = val
            elif arg == "-v":
                version = val
            elif arg == "-k":
                kernels.append(val.split("/", 1)[0])
        elif arg in ("--all",):
            all_kernels = True
        elif arg == "--force":
            force = True
        elif arg in ("--no-depmod", "--no-initrd", "--no-prepare-kernel", "--no-clean-kernel", "-q", "--quiet",
                     "--verbose", "--binaries-only", "--source-only"):
            pass
        elif arg == "--version" or arg == "-V":
            fs.out(f"dkms-{_dkms_version()}")
            return 0
        elif arg.startswith("-"):
            fs.out(USAGE)
            fs.err(f"Error!  Unknown option: {arg}")  # (sic: two blanks)
            return 2
        elif action is None:
            action = arg
        else:
            extra.append(arg)
        i += 1
    if action is None or action not in ACTIONS:
        # dkms 3.0.10 prints its usage, names no action and exits 0
        fs.out(USAGE)
        fs.err('Error! Unknown action specified: ""')
        return 0
    if extra and action != "ldtarball":
        if "/" in extra[0]:
            module, version = extra[0].split("/", 1)
        else:
            module = extra[0]
    running = fs.running_kernel()

    if action == "status":
        for line in reg.status_lines(_new_format(), module, version, kernels[0] if kernels else None):
            fs.out(line)
        return 0
    if action == "autoinstall":
        res = reg.build_missing(kernels[0] if kernels else running)
        for line in res["output"]:
            fs.out(line)
        return 0 if res["ok"] else 11
    if action == "ldtarball":
        if not extra:
            return _die(1, "The action ldtarball requires a tarball.")
        try:
            data = reg.tarball_read(fs.path(extra[0]) if not extra[0].startswith(fs.root()) else extra[0])
        except (OSError, ValueError):
            return _die(2, f"{extra[0]} is not a valid DKMS tarball.")
        reg.add(data["module"], data["version"], data.get("module_type", "proprietary"))
        fs.out(f"Loading tarball for {data['module']}-{data['version']}")
        return 0
    if not module or not version:
        return _die(1, "Arguments <module> and <module-version> are not specified.\nUsage: add <module>/<module-version> or\n       add -m <module>/<module-version> or\n       add -m <module> -v <module-version>")
    key = f"{module}/{version}"
    if action == "add":
        if reg.source_of(module, version) is None:
            return _die(2, f"Could not find module source directory.\nDirectory: /usr/src/{module}-{version} does not exist.")
        if key in reg.registered():
            return _die(3, f"DKMS tree already contains: {module}-{version}\nYou cannot add the same module/version combo more than once.")
        conf = reg.source_of(module, version)
        reg.add(module, version, conf.get("K8STWIN_MODULE_TYPE", "proprietary"))
        fs.out(f"Creating symlink /var/lib/dkms/{module}/{version}/source -> /usr/src/{module}-{version}")
        return 0
    if action in ("build", "install"):
        if key not in reg.registered():
            if reg.source_of(module, version) is None:  # dkms adds it first, and fails as add does
                return _die(2, f"Could not find module source directory.\nDirectory: /usr/src/{module}-{version} does not exist.")
            reg.add(module, version, reg.source_of(module, version).get("K8STWIN_MODULE_TYPE", "proprietary"))
        for kernel in kernels or [running]:
            entry = reg.registered().get(key) or {}
            if action == "install" and kernel in (entry.get("kernels") or []) and not force:
                fs.out(f"Module {module}/{version} already installed on kernel {kernel} ({reg.ARCH}), skip. "
                       "You may override by specifying --force.")
                continue
            if action == "build" and kernel in (entry.get("kernels") or []) + (entry.get("built") or []) and not force:
                fs.out(f"Module {module}/{version} already built for kernel {kernel} ({reg.ARCH}), skip. "
                       "You may override by specifying --force.")
                continue
            ok, msg = reg.build_install(module, version, kernel, install=action == "install")
            if not ok:
                fs.err(msg)
                return 1
            fs.out(msg)
        return 0
    if action in ("remove", "uninstall", "unbuild"):
        if key not in reg.registered():
            return _die(3, f"There are no instances of module: {module}\n{version} located in the DKMS tree.")
        reg.remove(module, version, None if (all_kernels or action == "remove" and not kernels) else kernels)
        fs.out(f"Module {module}-{version} for kernel {', '.join(kernels) or 'all'} ({reg.ARCH}).\nDeleting module {module}-{version} completely from the DKMS tree.")
        return 0
    return _die(4, f'Unknown action specified: "{action}"')


if __name__ == "__main__":
    state.run_tool(main)
    sys.exit(0)
