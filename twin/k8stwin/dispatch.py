"""Run one emulated tool: ``dispatch <tool> args...`` (see twin/bin/_dispatch),
in a Python of its own or in a child of the node's tool server
(:mod:`k8stwin.toolserver`), which calls :func:`run`."""

import importlib
import json
import os
import sys

from . import state


def module_name(tool):
    """The k8stwin.tools module for a command name (aliases from node.json)."""
    aliases = {}
    path = os.path.join(os.environ.get(state.ENV, ""), "node.json")
    try:
        with open(path, encoding="utf-8") as fh:
            aliases = json.load(fh).get("tool_aliases") or {}
    except (OSError, ValueError):
        pass
    return aliases.get(tool, tool).replace("-", "_").replace(".", "_")


def run(tool, args):
    """Run ``tool`` with ``args`` as its command line; exits (SystemExit) with its status."""
    sys.argv = [tool, *args]
    name = "k8stwin.tools." + module_name(tool)
    try:
        mod = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name not in (name, "k8stwin.tools"):
            raise
        sys.stderr.write(f"{tool}: command not found\n")
        sys.exit(127)
    state.run_tool(mod.main)


def main():
    run(sys.argv[1], sys.argv[2:])


if __name__ == "__main__":
    main()
