"""
Emulated ``crictl`` (``main(argv) -> rc``): ``--version``, ``version``,
``info`` (runtime status and config as containerd's CRI reports them), and
empty ``ps``/``pods``/``images`` tables. The endpoint comes from
``-r/--runtime-endpoint``, else ``/etc/crictl.yaml``, else containerd's
socket. A stopped runtime gives crictl's real "validate service connection"
fatal line and rc 1.
"""

import json
import os
import re
import sys
import time

from k8stwin import fs, kube, state
from k8stwin.goflags import FlagError, parse

FLAGS = {"runtime-endpoint": "str", "image-endpoint": "str", "timeout": "str", "debug": "bool", "config": "str",
         "version": "bool", "help": "bool", "output": "str", "quiet": "bool", "all": "bool", "enable-tracing": "bool"}
SHORT = {"r": "runtime-endpoint", "i": "image-endpoint", "t": "timeout", "D": "debug", "c": "config",
         "v": "version", "h": "help", "o": "output", "q": "quiet", "a": "all"}


def _endpoint(opts):
    if opts.get("runtime-endpoint"):
        return opts["runtime-endpoint"]
    text = fs.read(opts.get("config") or "/etc/crictl.yaml") or ""
    m = re.search(r"^runtime-endpoint:\s*(\S+)", text, re.M)
    return m.group(1) if m else "unix:///run/containerd/containerd.sock"


def main(argv):
    st = state.read()
    ver = kube.package_version(st, "cri-tools")
    if not ver:
        sys.stderr.write(f"{os.path.basename(argv[0])}: command not found\n")
        return 127
    try:
        opts, pos = parse(argv[1:], FLAGS, SHORT)
    except FlagError as exc:
        sys.stderr.write(f"Incorrect Usage: {exc}\n")
        return 1
    if opts.get("version"):
        sys.stdout.write(f"crictl version v{ver.split('-')[0]}\n")
        return 0
    if not pos:
        sys.stdout.write("NAME:\n   crictl - client for CRI\n")
        return 0
    cmd = pos[0]
    endpoint = _endpoint(opts)
    here = kube.here_view()
    cri = kube.cri_kind(endpoint)
    ok, why = kube.runtime_running(here, cri)
    if cmd == "version" and ok:
        rt_ver = kube.package_version(st, "containerd.io", "containerd") or "1.7.27"
        sys.stdout.write(f"Version:  0.1.0\nRuntimeName:  containerd\nRuntimeVersion:  v{rt_ver.split('-')[0]}\n"
                         "RuntimeApiVersion:  v1\n")
        return 0
    if cmd not in ("info", "version", "ps", "pods", "images", "img"):
        sys.stderr.write(f"No help topic for '{cmd}'\n")
        return 3
    if not ok:
        t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        sock = endpoint.replace("unix://", "")
        if "disabled" in why:
            detail = "Unimplemented desc = unknown service runtime.v1.RuntimeService"
        else:
            detail = ('Unavailable desc = connection error: desc = \\"transport: Error while dialing: dial unix '
                      f'{sock}: connect: no such file or directory\\"')
        sys.stderr.write(f'time="{t}" level=fatal msg="validate service connection: validate CRI v1 runtime API '
                         f'for endpoint \\"{endpoint}\\": rpc error: code = {detail}"\n')
        return 1
    if cmd == "info":
        facts = here.runtime().get("containerd") or {}
        network = bool(fs.listdir("/etc/cni/net.d"))
        runtimes = {name: {"runtimeType": "io.containerd.runc.v2", "options": {"BinaryName": binary}}
                    for name, binary in (facts.get("runtimes") or {}).items()}
        info = {
            "status": {"conditions": [
                {"type": "RuntimeReady", "status": True, "reason": "", "message": ""},
                {"type": "NetworkReady", "status": network,
                 "reason": "" if network else "NetworkPluginNotReady",
                 "message": "" if network else "Network plugin returns error: cni plugin not initialized"}]},
            "config": {"containerd": {"defaultRuntimeName": facts.get("default") or "runc", "runtimes": runtimes},
                       "enableCDI": bool(facts.get("cdi"))},
        }
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
        return 0
    headers = {"ps": "CONTAINER           IMAGE               CREATED             STATE               NAME"
                     "                ATTEMPT             POD ID              POD",
               "pods": "POD ID              CREATED             STATE               NAME                NAMESPACE"
                       "           ATTEMPT             RUNTIME",
               "images": "IMAGE               TAG                 IMAGE ID            SIZE",
               "img": "IMAGE               TAG                 IMAGE ID            SIZE"}
    if not opts.get("quiet"):
        sys.stdout.write(headers[cmd] + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    state.run_tool(main)
