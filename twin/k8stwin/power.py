"""Power requests from inside a twin node (reboot, poweroff), acted on by the
twin's supervisor once the minion has returned (docs/twin-internals.md)."""

import json
import os
import time

from . import state

REQUEST = "power.request"


def request(action="reboot", delay_s=0, by=None):
    """Ask the supervisor to ``reboot`` or ``poweroff`` this node in ``delay_s`` s."""
    if action not in ("reboot", "poweroff"):
        raise ValueError(action)
    data = {"action": action, "t": time.time(), "not_before": time.time() + max(0, delay_s), "by": by}
    path = os.path.join(state.node_dir(), REQUEST)
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(path + ".tmp", path)
    return data


def pending():
    try:
        with open(os.path.join(state.node_dir(), REQUEST), encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def cancel():
    """Cancel a pending request (``shutdown -c``); True when there was one."""
    try:
        os.unlink(os.path.join(state.node_dir(), REQUEST))
        return True
    except FileNotFoundError:
        return False
