"""The twin's service hook: what starting or stopping a unit does beyond the
unit state systemctl keeps (``state.json`` ``services``).

``systemctl start/restart/enable --now`` (and a Debian package's postinst)
call :func:`on_service` with ``active=True``, ``stop``/``disable --now`` with
``False``. It runs without the state lock held. A return value of ``False``
or a message string fails the start ("Job for X failed ..."); ``None`` is
success. :func:`on_boot` runs at the end of every boot.

The work is delegated to the components that emulate daemons:
``k8stwin.kube.on_service`` (container runtimes and kubelet: the runtime
snapshot kubectl reads on other nodes), ``k8stwin.gpuholders.on_service``
(a GPU service opens or closes /dev/nvidia*).
"""

from . import fs

DELEGATES = ("kube", "gpuholders")


def on_service(unit, active):
    for mod in DELEGATES:
        res = fs.hook(mod, "on_service", unit, active)
        if res is False or isinstance(res, str):
            return res
    return None


def on_boot():
    fs.hook("kube", "refresh_node")
