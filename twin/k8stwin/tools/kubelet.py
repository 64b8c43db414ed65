"""
Emulated ``kubelet`` binary (``main(argv) -> rc``): only what tools and states
ask of it outside systemd -- ``--version`` (``Kubernetes vX.Y.Z``, the
KubeletVersion preflight check parses it) and ``--help``. The version is the
installed ``kubelet`` package's. Running it in the foreground is not emulated.
"""

import os
import sys

from k8stwin import kube, state


def main(argv):
    args = argv[1:]
    ver = kube.parse_version(kube.package_version(state.read(), "kubelet"))
    if ver is None:
        sys.stderr.write(f"{os.path.basename(argv[0])}: command not found\n")
        return 127
    for a in args:
        if a in ("--version", "--version=true"):
            sys.stdout.write(f"Kubernetes {kube.vstr(ver)}\n")
            return 0
        if a in ("-h", "--help"):
            sys.stdout.write("The kubelet is the primary \"node agent\" that runs on each node.\n\nUsage:\n"
                             "  kubelet [flags]\n")
            return 0
        if a.startswith("-") and not a.startswith(("--config", "--kubeconfig", "--bootstrap-kubeconfig",
                                                     "--container-runtime-endpoint", "--v", "--node-ip")):
            sys.stderr.write(f"Error: unknown flag: {a.split('=')[0]}\n")
            return 1
    sys.stderr.write("E0000 00:00:00.000000 run.go:72] \"command failed\" err=\"the twin runs the kubelet as a "
                     "service only (systemctl start kubelet)\"\n")
    return 1


if __name__ == "__main__":  # pragma: no cover
    state.run_tool(main)
