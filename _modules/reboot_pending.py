"""
"Reboot pending" bookkeeping of a node: the reasons a reboot is needed, kept
in ``/run/k8snvidia/reboot-required`` (one per line), so a reboot clears them.
States mark them (``reboot_pending.marked``, ``bootkernel``, ``nvidia_driver``
through ``host.mark_reboot``); the orchestration's reboot step reads them and
reboots only the nodes that have one.
"""

import os

__virtualname__ = "reboot_pending"

REBOOT_DIR = "/run/k8snvidia"
REBOOT_FILE = "reboot-required"


def __virtual__():
    return __virtualname__


def reasons():
    """
    The reasons this node needs a reboot (empty: none).

    CLI Example:

    .. code-block:: bash

        salt '*' reboot_pending.reasons
    """
    path = os.path.join(REBOOT_DIR, REBOOT_FILE)
    try:
        with open(path, encoding="utf-8") as fh:
            return [line.strip() for line in fh if line.strip()]
    except FileNotFoundError:
        return []


def mark(reason):
    """
    Record that a reboot is needed, with the reason (idempotent per reason:
    False when it was recorded already).

    CLI Example:

    .. code-block:: bash

        salt node-110 reboot_pending.mark "kernel 5.4.278 is the boot default"
    """
    if reason in reasons():
        return False
    os.makedirs(REBOOT_DIR, exist_ok=True)
    with open(os.path.join(REBOOT_DIR, REBOOT_FILE), "a", encoding="utf-8") as fh:
        fh.write(reason.strip() + "\n")
    return True
