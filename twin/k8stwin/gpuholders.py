"""
What holds a twin node's ``/dev/nvidia*`` open, and the ``/proc`` view of it.

On a real node the NVIDIA kernel modules cannot be unloaded (and the
``.run`` installer aborts an upgrade) while any process has a device open:
the device plugin pod (NVML keeps ``/dev/nvidiactl`` and ``/dev/nvidiaN``
open for its health checks), ``nvidia-persistenced``, DCGM's
``nv-hostengine``, CUDA jobs in pods or outside Kubernetes. The twin has no
such processes, so this module says which ones a real node would have and
writes them where the node's readers look:

* :func:`holders` -- the list, from the node's state and the cluster:
  ``gpu_processes`` (nvidia-smi's compute processes) and ``device_holders``
  (any other process: ``{"pid", "command", "devices"?, "cgroup"?}``, set by
  tests and faults), the GPU services while active (``SERVICES``), and the
  pods running on the node: the device plugin while it serves the GPUs and
  every running pod that was given a GPU. Nothing holds a device while the
  ``nvidia`` module is not loaded.
* :func:`write_procfs` -- ``<proc>/<pid>/{comm,cmdline,cgroup,fd/N}`` as the
  kernel shows them: ``comm`` cut to 15 characters (TASK_COMM_LEN),
  ``cmdline`` NUL-separated, ``cgroup`` the unit's or the pod's cgroup
  (``/system.slice/X.service``, ``/kubepods.slice/...``; cgroup v1 lines on
  the OSes that boot with v1), ``fd/N`` symlinks to the devices. Entries are
  changed in place, never removed and written again, so a reader never sees
  a holder vanish for a moment.
* :func:`sync` -- both, for the node (``$K8STWIN_NODE_DIR/proc``), plus the
  use counts in ``proc/modules`` (an open device counts, as it does for the
  kernel). :func:`k8stwin.hw.sync` calls it; so does the GPU service hook
  (:func:`on_service`) and :func:`tick`, the node's kubelet stand-in, which
  the machine's init calls every second: it follows the cluster (a pod
  deleted by a drain, a DaemonSet pod gone after a label change, pods back
  after an uncordon) the way the kubelet starts and kills containers.
"""

import json
import os
import pathlib
import shutil
import time
import zlib

COMM_LEN = 15  # TASK_COMM_LEN - 1
# GPU services: unit -> the process it runs (its ExecStart, as NVIDIA's and
# the distributions' units write it)
SERVICES = {
    "nvidia-persistenced": ["/usr/bin/nvidia-persistenced", "--user", "nvidia-persistenced", "--no-persistence-mode",
                            "--verbose"],
    "nvidia-dcgm": ["/usr/bin/nv-hostengine", "-n", "--service-account", "nvidia-dcgm"],
    "dcgm": ["/usr/bin/nv-hostengine", "-n", "--service-account", "nvidia-dcgm"],
    "nvidia-fabricmanager": ["/usr/bin/nv-fabricmanager", "-c", "/usr/share/nvidia/nvswitch/fabricmanager.cfg"],
}
# OSes whose systemd boots with cgroup v1 (what /proc/<pid>/cgroup looks like)
CGROUP_V1 = ("centos7", "rocky8", "alma8", "ubuntu1804", "ubuntu2004")
PLUGIN_IMAGE = "k8s-device-plugin"


def _pid(seed, base, span):
    return base + zlib.crc32(seed.encode()) % span


def _gpu_devices(count):
    return ["/dev/nvidiactl"] + [f"/dev/nvidia{i}" for i in range(count)]


def _active(services, unit):
    return any((services.get(k) or {}).get("active") for k in (unit, unit + ".service"))


def _v1(node):
    return (node or {}).get("os_key") in CGROUP_V1


def _cgroup(node, path):
    if _v1(node):
        return "".join(f"{i}:{c}:{path}\n" for i, c in ((11, "devices"), (4, "memory"), (2, "cpu,cpuacct"),
                                                         (1, "name=systemd")))
    return f"0::{path}\n"


def _pod_cgroup(pod):
    uid = zlib.crc32(pod.encode())
    uid_text = f"{uid:08x}-0000-4000-8000-{uid:012x}"
    cid = f"{uid:016x}" * 4
    qos = "besteffort"
    return (f"/kubepods.slice/kubepods-{qos}.slice/kubepods-{qos}-pod{uid_text.replace('-', '_')}.slice/"
            f"cri-containerd-{cid}.scope")


def _pods_here(node_id, gpus):
    """Holders among the pods the cluster runs on this node (this node's
    pods only: the device plugin's and the bare pods bound here)."""
    from . import kube, state

    if not os.environ.get(kube.ENV) and not os.environ.get(state.ENV):
        return []  # not in a twin node: no cluster to ask
    try:
        from .tools import kubectl

        cluster = kube.read()
        name = next((n for n, v in (cluster.get("nodes") or {}).items() if v.get("node_id") == node_id), None)
        if name is None or not kubectl._node_up(cluster, name):
            return []
        node = cluster["nodes"][name]
        found = []
        for ds in kube.objects(cluster, "DaemonSet"):
            dname = ds["metadata"]["name"]
            if PLUGIN_IMAGE not in " ".join(kube._images(ds)) and "nvidia-device-plugin" not in dname:
                continue
            spec = kube._pod_spec(ds)
            if not kube.selects(spec, kube.full_labels(name, node), name) or not kube.tolerates(
                    node.get("taints"), kube.daemon_tolerations(spec))[0]:
                continue
            gs = kube.gpu_status(cluster, name)
            if not gs.get("allocatable"):
                continue  # not serving the GPUs (no driver, no NVIDIA runtime, a config it refuses)
            ns = ds["metadata"].get("namespace") or "default"
            pod = f"{ns}/{dname}-{kubectl._suffix(dname, name)}"
            found.append({"kind": "pod", "pod": pod, "pid": _pid(pod, 20000, 20000),
                          "cgroup_path": _pod_cgroup(pod),
                          "argv": ["nvidia-device-plugin", "--config-file=/etc/nvidia-device-plugin/config.yaml"],
                          "devices": _gpu_devices(gpus)})
        for o in kube.objects(cluster, "Pod"):
            st = o.get("status") or {}
            spec = o.get("spec") or {}
            want = kube._requests(spec)
            if st.get("node") != name or st.get("phase") != "Running" or st.get("reason") or not want:
                continue  # not bound here, not running (a crash-looping container mostly is not), no GPU
            meta = o["metadata"]
            pod = f"{meta.get('namespace') or 'default'}/{meta['name']}"
            ctr = (spec.get("containers") or [{}])[0]
            argv = [str(a) for a in (ctr.get("command") or []) + (ctr.get("args") or [])] or [
                ctr.get("name") or meta["name"]]
            found.append({"kind": "pod", "pod": pod, "pid": _pid(pod, 20000, 20000), "cgroup_path": _pod_cgroup(pod),
                          "argv": argv, "devices": ["/dev/nvidiactl", "/dev/nvidia-uvm"] + [
                              f"/dev/nvidia{i}" for i in range(min(want, max(gpus, 1)))]})
        return found
    except (Exception, SystemExit):  # noqa: BLE001 - no cluster (or none yet): no pods
        return []


def holders(node, st, pods=True):
    """Everything holding the node's NVIDIA devices: ``[{"pid", "argv",
    "command", "devices", "cgroup", "kind": "process"|"service"|"pod",
    "unit"|"pod"}]`` sorted by pid. ``node``: node.json, ``st``:
    state.json."""
    mods = st.get("modules") or []
    if "nvidia" not in mods:
        return []
    gpus = len((node or {}).get("gpus") or [])
    found = {}
    for p in st.get("gpu_processes") or []:
        pid = int(p["pid"])
        found[pid] = {"kind": "process", "pid": pid, "argv": [str(p.get("name") or "?")],
                      "devices": ["/dev/nvidiactl", "/dev/nvidia-uvm", f"/dev/nvidia{int(p.get('gpu') or 0)}"],
                      "cgroup_path": "/user.slice/user-0.slice/session-1.scope"}
    for p in st.get("device_holders") or []:
        pid = int(p["pid"])
        found[pid] = {"kind": "process", "pid": pid,
                      "argv": list(p.get("argv") or [str(p.get("command") or "?")]),
                      "devices": list(p.get("devices") or _gpu_devices(gpus)),
                      "cgroup_path": p.get("cgroup") or "/user.slice/user-0.slice/session-1.scope"}
    services = st.get("services") or {}
    for unit, argv in SERVICES.items():
        if _active(services, unit):
            pid = _pid(unit, 700, 300)
            found[pid] = {"kind": "service", "unit": unit, "pid": pid, "argv": list(argv),
                          "devices": _gpu_devices(gpus), "cgroup_path": f"/system.slice/{unit}.service"}
    if pods:
        for p in _pods_here((node or {}).get("id"), gpus):
            found[p["pid"]] = p
    out = []
    for pid in sorted(found):
        h = found[pid]
        h["command"] = os.path.basename(h["argv"][0])
        h["cgroup"] = _cgroup(node, h.pop("cgroup_path"))
        out.append(h)
    return out


def describe(h):
    """How the twin's rmmod names a holder."""
    if h["kind"] == "service":
        return f"{h['unit']}.service"
    if h["kind"] == "pod":
        return f"{h['command']} (pid {h['pid']}, pod {h['pod']})"
    return f"{h['command']} (pid {h['pid']})"


def extra_refs(found):
    """Module use counts the open devices add (``/proc/modules``)."""
    refs = {}
    for h in found:
        for dev in h["devices"]:
            mod = "nvidia_uvm" if dev.startswith("/dev/nvidia-uvm") else (
                "nvidia_modeset" if dev == "/dev/nvidia-modeset" else "nvidia")
            refs[mod] = refs.get(mod, 0) + 1
    return refs


def _put(path, text):
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read() == text:
                return
    except OSError:
        pass
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def write_procfs(proc, found):
    """``<proc>/<pid>/...`` for the holders; pid directories of holders that
    are gone are removed, the others changed in place."""
    proc = pathlib.Path(proc)
    proc.mkdir(parents=True, exist_ok=True)
    want = {str(h["pid"]): h for h in found}
    for name in os.listdir(proc):
        if name.isdigit() and name not in want:
            shutil.rmtree(proc / name, ignore_errors=True)
    for pid, h in want.items():
        d = proc / pid
        (d / "fd").mkdir(parents=True, exist_ok=True)
        _put(d / "comm", h["command"][:COMM_LEN] + "\n")
        _put(d / "cmdline", "\0".join(h["argv"]) + "\0")
        _put(d / "cgroup", h["cgroup"])
        links = {"0": "/dev/null", "1": "/dev/null", "2": "/dev/null"}
        links.update({str(3 + i): dev for i, dev in enumerate(h["devices"])})
        for fd in os.listdir(d / "fd"):
            if fd not in links:
                os.unlink(d / "fd" / fd)
        for fd, target in links.items():
            link = d / "fd" / fd
            try:
                if os.readlink(link) == target:
                    continue
                os.unlink(link)
            except OSError:
                pass
            os.symlink(target, link)


def _load(base):
    node = json.loads((base / "node.json").read_text(encoding="utf-8"))
    try:
        st = json.loads((base / "state.json").read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        st = {}
    return node, st


def _mtime(path):
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def sync(node_dir=None, unless_changed=False):
    """Write the node's holders into ``<node dir>/proc`` (pid entries and the
    module use counts); returns them. ``unless_changed``: write nothing when
    state.json changed meanwhile (a tool changed the modules: its own
    ``hw.sync`` writes the newer view, this one would be stale)."""
    from . import hw, state

    base = pathlib.Path(node_dir or state.node_dir())
    before = _mtime(base / "state.json")
    node, st = _load(base)
    found = holders(node, st)
    if unless_changed and _mtime(base / "state.json") != before:
        return found
    write_procfs(base / "proc", found)
    drv = st.get("nvidia_driver") or {}
    hw.write_modules(base / "proc", st.get("modules") or [], open_module=drv.get("kernel_module_type") == "open",
                     extra_refs=extra_refs(found))
    return found


def on_service(unit, active):  # noqa: ARG001 - the service hook's signature
    """The service hook: a GPU service started or stopped opens or closes
    the devices."""
    if unit.replace(".service", "") in SERVICES:
        try:
            sync()
        except (Exception, SystemExit):  # noqa: BLE001 - a view refresh must never fail a start
            pass
    return None


_last = {"sig": None, "at": 0.0}


def tick(every=5.0):
    """The node's kubelet stand-in (called by the machine's init about once
    a second): refresh the view when the cluster or the node changed, and at
    least every ``every`` seconds."""
    from . import kube, state

    base = pathlib.Path(state.node_dir())
    sig = []
    for p in (os.environ.get(kube.ENV) or "", str(base / "state.json")):
        try:
            sig.append(os.stat(p).st_mtime_ns)
        except OSError:
            sig.append(None)
    now = time.monotonic()
    if sig == _last["sig"] and now - _last["at"] < every:
        return
    _last["sig"], _last["at"] = sig, now
    sync(base, unless_changed=True)
