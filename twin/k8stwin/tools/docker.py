"""
Emulated ``docker`` CLI, the minimum states ask of it (``main(argv) -> rc``):
``--version``, ``version``, ``info`` (text, or ``--format``/``-f`` with
``{{json .Runtimes}}``, ``{{.DefaultRuntime}}``, ``{{.CgroupDriver}}``,
``{{json .}}``) built from ``/etc/docker/daemon.json`` and the docker
service's state. A stopped daemon gives the real "Cannot connect" error.
"""

import json
import os
import sys

from k8stwin import kube, state
from k8stwin.goflags import FlagError, parse

DOWN = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"


def _info(st):
    facts = kube.here_view().runtime().get("docker") or {}
    runtimes = {"io.containerd.runc.v2": {"path": "runc"}, "runc": {"path": "runc"}}
    runtimes.update({k: {"path": v} for k, v in (facts.get("runtimes") or {}).items()})
    return {"ServerVersion": (kube.package_version(st, "docker-ce", "docker.io") or "").split(":")[-1].split("-")[0],
            "Runtimes": runtimes, "DefaultRuntime": facts.get("default") or "runc",
            "CgroupDriver": "systemd" if facts.get("cgroup_driver") == "systemd" else "cgroupfs",
            "Driver": "overlay2", "OperatingSystem": state.node().get("os") or ""}


def _format(tmpl, info):
    out = tmpl
    for key, val in info.items():
        out = out.replace("{{json .%s}}" % key, json.dumps(val, separators=(",", ":")))
        out = out.replace("{{.%s}}" % key, val if isinstance(val, str) else json.dumps(val))
    return out.replace("{{json .}}", json.dumps(info, separators=(",", ":")))


def main(argv):
    st = state.read()
    ver = kube.package_version(st, "docker-ce", "docker.io", "docker")
    if not ver:
        sys.stderr.write(f"{os.path.basename(argv[0])}: command not found\n")
        return 127
    plain = ver.split(":")[-1].split("-")[0]
    try:
        opts, pos = parse(argv[1:], {"version": "bool", "format": "str", "help": "bool", "host": "str",
                                     "debug": "bool", "log-level": "str", "config": "str"},
                          {"v": "version", "f": "format", "H": "host", "D": "debug", "l": "log-level"})
    except FlagError as exc:
        sys.stderr.write(f"{exc}\nSee 'docker --help'.\n")
        return 125
    if opts.get("version") and not pos:
        sys.stdout.write(f"Docker version {plain}, build 0000000\n")
        return 0
    up = kube.service_active(st, "docker")
    cmd = pos[0] if pos else ""
    if cmd == "version":
        sys.stdout.write(f"Client: Docker Engine - Community\n Version:           {plain}\n")
        if not up:
            sys.stderr.write(DOWN + "\n")
            return 1
        sys.stdout.write(f"\nServer: Docker Engine - Community\n Engine:\n  Version:          {plain}\n")
        return 0
    if cmd == "info":
        if not up:
            if opts.get("format"):
                sys.stderr.write(DOWN + "\n")
                return 1
            sys.stdout.write("Client: Docker Engine - Community\n Version:    " + plain + "\n\nServer:\n")
            sys.stderr.write("ERROR: " + DOWN + "\nerrors pretty printing info\n")
            return 1
        info = _info(st)
        if opts.get("format"):
            sys.stdout.write(_format(opts["format"], info) + "\n")
            return 0
        sys.stdout.write(
            "Client: Docker Engine - Community\n"
            f" Version:    {plain}\n Context:    default\n Debug Mode: false\n\n"
            "Server:\n"
            f" Server Version: {info['ServerVersion']}\n"
            f" Storage Driver: {info['Driver']}\n"
            f" Cgroup Driver: {info['CgroupDriver']}\n"
            f" Runtimes: {' '.join(sorted(info['Runtimes']))}\n"
            f" Default Runtime: {info['DefaultRuntime']}\n"
            f" Operating System: {info['OperatingSystem']}\n")
        return 0
    if not cmd:
        sys.stdout.write("Usage:  docker [OPTIONS] COMMAND\n")
        return 0
    if not up:
        sys.stderr.write(DOWN + "\n")
        return 1
    sys.stderr.write(f"docker: '{cmd}' is not a docker command (in the twin).\nSee 'docker --help'\n")
    return 1


if __name__ == "__main__":  # pragma: no cover
    state.run_tool(main)
