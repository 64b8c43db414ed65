"""
The twin's ``containerd`` binary (``main(argv) -> rc``): ``--version`` from
the node's package database (the release the product detects), ``config
default`` and ``config dump`` from Debian's real containerd of the same line
(k8stwin.realbins: it loads config.toml and its imports, refuses what the
real release refuses, and prints the effective config). The daemon itself
runs as the ``containerd`` service (systemctl), which starts only on a config
the real binary loads.
"""

import os
import sys

from k8stwin import kube, realbins, state
from k8stwin.goflags import FlagError, parse

CONFIG = realbins.CONFIG


def effective_cri(cfg):
    """(CRI settings, plugin name) of a config as ``config dump`` prints it
    (every default filled in): version 2's grpc CRI plugin, or version 3's
    runtime plugin with the images plugin's pinned sandbox image as
    ``sandbox_image``."""
    plugins = cfg.get("plugins") or {}
    if int(cfg.get("version") or 2) >= 3:
        name = "io.containerd.cri.v1.runtime"
        sect = dict(plugins.get(name) or {})
        images = plugins.get("io.containerd.cri.v1.images") or {}
        sect["sandbox_image"] = (images.get("pinned_images") or {}).get("sandbox")
        return sect, name
    name = "io.containerd.grpc.v1.cri"
    return dict(plugins.get(name) or {}), name


def _version(st):
    text = kube.package_version(st, "containerd.io", "containerd")
    return text, kube.parse_version(text)


def main(argv):
    st = state.read()
    text, ver = _version(st)
    if ver is None:
        sys.stderr.write(f"{os.path.basename(argv[0])}: command not found\n")
        return 127
    try:
        opts, pos = parse(argv[1:], {"version": "bool", "help": "bool", "config": "str", "address": "str",
                                     "log-level": "str", "root": "str", "state": "str"},
                          {"v": "version", "h": "help", "c": "config", "a": "address", "l": "log-level"})
    except FlagError as exc:
        flag = str(exc).split(": ", 1)[-1]
        sys.stderr.write(f"Incorrect Usage: flag provided but not defined: {flag.lstrip('-').join(['-', ''])}\n")
        return 1
    if opts.get("version") or pos[:1] == ["--version"]:
        pkg = "containerd.io" if "containerd.io" in (st.get("packages") or {}) else "containerd"
        sys.stdout.write(f"containerd {pkg} {text.split('-')[0]} 05044ec0a9a75232cad458027ca83437aae3f4da\n")
        return 0
    if pos[:2] in (["config", "default"], ["config", "dump"]):
        try:
            rc, out, err = realbins.run(ver, pos[:2], kube.here_view().root, opts.get("config") or CONFIG)
        except realbins.Missing as exc:
            sys.stderr.write(f"twin: {exc}\n")
            return 1
        sys.stdout.write(out)
        sys.stderr.write(err)
        return rc
    if pos[:1] == ["config"]:
        sys.stderr.write("NAME:\n   containerd config - Information on the containerd config\n")
        return 1
    sys.stderr.write("containerd: the twin runs containerd as a service only (systemctl start containerd)\n")
    return 1


if __name__ == "__main__":  # pragma: no cover
    state.run_tool(main)
