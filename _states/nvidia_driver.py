"""
The NVIDIA driver, from NVIDIA's ``.run`` installer or from distribution
packages, built (with DKMS) for the kernel that boots next.

.. code-block:: yaml

    nvidia-driver:
      nvidia_driver.installed:
        - name: 580.178.04
        - url: https://us.download.nvidia.com/XFree86/Linux-x86_64/580.178.04/NVIDIA-Linux-x86_64-580.178.04.run
        - sha256: 5975a86ee45bffcb626f51ae33d1169b108186a2ea47ad651e72f13fa4b6d6f9
        - kernel_module_type: auto

Three steps, each on its own (docs/driver.md):

1. **facts** (:func:`_facts`): the installed driver, the kernel that boots
   next and the running one, the GPUs' branch and module rules
   (``nvidia.recommended``), nouveau, what holds the GPU
   (``nvidia.holders``), the kernel headers, the packages. A called module
   that is missing or fails stops the state with its message: no fact is
   guessed.
2. **plan** (:func:`decide`, pure): refusals, branch and module type, what
   to download or install, which kernel to build for, the DKMS kernels to
   verify, the services to stop, whether the node must be drained and
   whether a reboot is needed.
3. **act** on that plan: ``test=True`` returns the plan as the predicted
   changes; a real run does it (runfile: download with sha256, stop the GPU
   services, run the installer; package: enable the module stream, install
   the packages), then verifies the result, DKMS included (the installer
   only *warns* when DKMS registration fails and exits 0), and marks the
   reboot pending. Every failure says what failed and what to do.
"""

import logging
import os

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "nvidia_driver"

BLACKLIST_DIRS = ("/etc/modprobe.d", "/usr/lib/modprobe.d", "/lib/modprobe.d")
# the process each GPU service runs (what nvidia.holders shows for it)
SERVICE_COMMANDS = {
    "nvidia-persistenced": "nvidia-persistenced",
    "nvidia-dcgm": "nv-hostengine",
    "dcgm": "nv-hostengine",
    "nvidia-fabricmanager": "nv-fabricmanager",
}
# test=True on a node without GRUB that has no kernel installed yet (an
# earlier state of the run installs it): the plan names the kernel thus
BOOT_PENDING = "(the newest kernel installed by the time this runs)"


def __virtual__():
    if "nvidia_driver.installed_version" in __salt__:
        return __virtualname__
    return (False, "nvidia_driver state: the nvidia_driver execution module is not loaded")


class FactError(Exception):
    """A fact could not be read: the state stops with this message."""


# ------------------------------------------------------------------ facts
def _fact(fun, *args, **kwargs):
    """Call ``fun``; a missing module or a failure becomes a FactError that
    names the function and its message (never a silent default)."""
    func = __salt__.get(fun)
    if func is None:
        raise FactError(f"{fun} is not available (run saltutil.sync_all so the custom modules are on the minion)")
    try:
        return func(*args, **kwargs)
    except Exception as exc:  # pylint: disable=broad-except
        raise FactError(f"{fun} failed: {exc}") from exc


def _candidate(name):
    """The version apt/dnf would install of ``name`` ('' when no repository
    has it). Salt 3008's aptpkg.latest_version returns ``{name: ''}``, not
    ``''``, for one name no repository has (it drops the name while looking
    for foreign-architecture variants), so the answer is read by name."""
    got = _fact("pkg.latest_version", name, refresh=False)
    if isinstance(got, dict):
        got = got.get(name, "")
    return got or ""


def _loaded_modules():
    """Names of the loaded kernel modules (``host.kernel_modules``: a kernel
    without loadable module support has none); a procfs that cannot be read
    is a FactError."""
    procfs = __utils__["host.procfs"](__opts__)
    try:
        return list(__utils__["host.kernel_modules"](procfs))
    except OSError as exc:
        raise FactError(f"cannot read the loaded kernel modules ({procfs}/modules): {exc}") from exc


def _nouveau_blacklisted():
    """A modprobe.d file that blacklists nouveau, or None."""
    root = __utils__["host.root"](__opts__)
    for d in BLACKLIST_DIRS:
        full = os.path.join(root, d.lstrip("/"))
        try:
            names = sorted(os.listdir(full))
        except OSError:
            continue
        for name in names:
            if not name.endswith(".conf"):
                continue
            try:
                with open(os.path.join(full, name), encoding="utf-8", errors="replace") as fh:
                    if any(line.split()[:2] == ["blacklist", "nouveau"] for line in fh if line.strip()):
                        return os.path.join(d, name)
            except OSError:
                continue
    return None


def _fmt(template, **values):
    return str(template).format(**values)


def _names(want, field, branch, module_type, boot):
    key = "open" if module_type == "open" else "proprietary"
    return [_fmt(p, branch=branch, kernel=boot) for p in ((want.get(field) or {}).get(key) or [])]


def _package_names(want, branch, module_type, boot):
    """(packages, precompiled candidates, DKMS packages) of the package
    method, templates filled."""
    return tuple(_names(want, f, branch, module_type, boot) for f in ("packages", "precompiled", "dkms_packages"))


def _dkms_module(want, module_type):
    """The DKMS module name the packages register for ``module_type``: one
    name, or ``{proprietary: ..., open: ...}`` (Debian: nvidia-current and
    nvidia-current-open)."""
    name = want.get("dkms_module")
    if isinstance(name, dict):
        name = name.get("open" if module_type == "open" else "proprietary")
    return name or "nvidia"


def _boot_kernel(want):
    """The kernel that boots next: ``kernel``; the boot loader's default;
    on a node without GRUB's commands (a container, a systemd-boot machine)
    the newest installed kernel, as the kernel layer takes it. None when no
    kernel is installed yet."""
    if want.get("kernel"):
        return want["kernel"]
    if _fact("bootkernel.missing_tools", want.get("boot_tool")):
        return (_fact("bootkernel.installed") or [None])[-1]
    kw = {k: want[k] for k in ("boot_tool", "grub_config") if want.get(k)}
    return _fact("bootkernel.default", **kw)


def _enabled_components(codename):
    """The apt archive areas the node's sources enable for suite
    ``codename`` (``{"components": set, "files": [...]}``), or None when no
    source names that suite (a local mirror with other suite names: nothing
    is checked)."""
    comps, files = set(), []
    for entries in (_fact("pkg.list_repos") or {}).values():
        for entry in entries or []:
            if entry.get("disabled") or entry.get("type", "deb") != "deb" or entry.get("dist") != codename:
                continue
            comps.update(entry.get("comps") or [])
            if entry.get("file") and entry["file"] not in files:
                files.append(entry["file"])
    return {"components": comps, "files": files} if files or comps else None


def _pillar_recommendation(names):
    """nvidia.recommended's answer for the pillar's GPU names (the node
    shows none): the same rules, from _utils/nvidia_gpu.py."""
    archs = [__utils__["nvidia_gpu.architecture_of_name"](n) for n in names]
    rec = __utils__["nvidia_gpu.recommend"]([a for a in archs if a])
    rec["gpus"] = []
    return rec


def _facts(want):
    """Everything the plan needs, read once. Raises FactError."""
    facts = {}
    facts["boot"] = _boot_kernel(want)
    if not facts["boot"]:
        if want.get("test") and not want.get("kernel") and not _fact("bootkernel.installed"):
            facts["boot"] = BOOT_PENDING
        else:
            raise FactError("bootkernel.default found no boot-default kernel: check k8snvidia:kernel:boot_tool")
    facts["running"] = _fact("bootkernel.running") if "bootkernel.running" in __salt__ else (
        __grains__.get("kernelrelease") or os.uname().release)
    rec = _fact("nvidia.recommended")
    rec = rec if isinstance(rec, dict) else {}
    # no GPU on this node's PCI bus (nor a driver that lists one): a node the
    # pillar lists with GPUs is planned for those (docs/driver.md)
    facts["gpus_visible"] = bool(rec.get("gpus"))
    if not facts["gpus_visible"] and want.get("gpus"):
        try:
            rec = _pillar_recommendation(want["gpus"])
        except (KeyError, NameError) as exc:
            raise FactError(f"the nvidia_gpu utils are not loaded (run saltutil.sync_all): {exc}") from exc
    facts["recommended"] = rec
    modules = _loaded_modules()
    facts["nouveau_loaded"] = "nouveau" in modules
    facts["nouveau_blacklist"] = _nouveau_blacklisted() if facts["nouveau_loaded"] else None
    facts["nvidia_loaded"] = any(m.startswith("nvidia") for m in modules)
    facts["loaded"] = _fact("nvidia_driver.loaded_version")
    facts["installed"] = _fact("nvidia_driver.installed_version")
    facts["built"] = _fact("nvidia_driver.built_for", facts["boot"])
    facts["headers_boot"] = _fact("nvidia_driver.kernel_source", facts["boot"])
    facts["headers_running"] = (
        facts["headers_boot"] if facts["running"] == facts["boot"]
        else _fact("nvidia_driver.kernel_source", facts["running"])
    )
    if want["method"] == "runfile":
        facts["url_version"] = _fact("nvidia_driver.version_from_runfile", want["url"])
    else:
        branch = want.get("branch")
        mtype = __utils__["nvidia_gpu.chosen_module_type"](want.get("kernel_module_type"), facts["recommended"])
        pkgs, pre, dkms_pkgs = _package_names(want, branch, mtype, facts["boot"])
        facts["packages"] = {p: (_fact("pkg.version", p) or "") for p in pkgs + pre + dkms_pkgs}
        facts["precompiled_available"] = {}
        for p in pre:
            # the package lists as they are (no refresh: the kernel layer refreshed them)
            facts["precompiled_available"][p] = bool(facts["packages"][p] or _candidate(p))
        facts["dkms"] = _fact("nvidia_driver.dkms_status") if want.get("dkms") else None
        if want.get("components"):
            facts["codename"] = __grains__.get("oscodename")
            facts["components"] = _enabled_components(facts["codename"]) if facts["codename"] else None
    return facts


def _gpu_facts(want):
    """What holds the GPU, read only when a change is planned while an
    NVIDIA module is loaded (nvidia-smi and systemctl are not run for a
    node that is in place)."""
    facts = {"holders": _fact("nvidia.holders"), "services": {}}
    for svc in want.get("stop_services") or []:
        if "service.available" in __salt__ and not _fact("service.available", svc):
            continue
        facts["services"][svc] = bool(_fact("service.status", svc))
    return facts


# ------------------------------------------------------------------ plan
def _vt(version):
    return __utils__["nvidia_gpu.version_tuple"](version)


def _branch_problems(branch, rec, what):
    """Refusals for a driver branch given the node's GPUs (the rules:
    ``nvidia_gpu.violations``)."""
    out = []
    archs = ", ".join(rec.get("architectures") or []) or "its GPUs"
    for v in __utils__["nvidia_gpu.violations"](rec, branch, None):
        if v["rule"] == "conflict":
            out.append(f"no single NVIDIA driver serves this node's GPUs: {v['text']}")
        elif v["rule"] == "max_branch":
            out.append(
                f"{what} is newer than this node's GPUs support ({archs}: branch R{v['limit']} is the last one "
                f"for them); set k8snvidia:driver:version to an R{v['limit']} release"
            )
        elif v["rule"] == "min_branch":
            out.append(f"{what} is older than this node's GPUs need ({archs}: branch R{v['limit']} or newer)")
    return out


def _module_type(requested, version, rec, method):
    """(type or None, refusals). None: the installer chooses (no
    --kernel-module-type before 555). The GPU rules are
    ``nvidia_gpu.violations``; the installer's option is this state's."""
    vt = _vt(version)
    old_installer = method == "runfile" and vt < (555,)
    if requested in (None, "", "auto"):
        if old_installer:
            return None, []
        return __utils__["nvidia_gpu.chosen_module_type"](requested, rec), []
    if requested not in ("open", "proprietary"):
        return None, [f"kernel_module_type {requested!r} is not one of auto, open, proprietary"]
    refuse = []
    for v in __utils__["nvidia_gpu.violations"](rec, vt[0] or None, requested):
        if v["rule"] == "open_unsupported":
            refuse.append("the open kernel module does not support this node's GPUs (Turing and newer only); "
                          "use kernel_module_type: proprietary or auto")
        elif v["rule"] == "open_required":
            archs = ", ".join(rec.get("architectures") or []) or "its GPUs"
            refuse.append(f"this node's GPUs ({archs}) need the open kernel module; use kernel_module_type: open "
                          "or auto")
        elif v["rule"] == "open_min_branch":
            refuse.append(f"driver {version} has no open kernel module (it exists from R{v['limit']} on); use "
                          "kernel_module_type: proprietary or auto")
    if refuse:
        return None, refuse
    if old_installer:
        if requested == "open":
            return None, [f"the open kernel module cannot be chosen with driver {version}: the installer's "
                          "--kernel-module-type exists from 555; use a newer driver or 'proprietary'"]
        return None, []
    return requested, []


def _describe(procs):
    def one(p):
        where = [f"pid {p.get('pid', '?')}"] + ([f"unit {p['unit']}.service"] if p.get("unit") else []) + (
            ["in a pod"] if p.get("pod") else [])
        return f"{p.get('command') or p.get('name') or '?'} ({', '.join(where + list(p.get('devices') or ['?']))})"

    return ", ".join(one(p) for p in procs)


def _freed(proc, services):
    """Whether stopping ``services`` ends this holder: its systemd unit (from
    its cgroup) is one of them, or its command is the one a service runs
    (``comm`` may be cut to 15 characters)."""
    names = {s[: -len(".service")] if s.endswith(".service") else s for s in services}
    if proc.get("unit") in names:
        return True
    command = proc.get("command") or proc.get("name") or ""
    for svc in names:
        run = SERVICE_COMMANDS.get(svc, svc)
        if command in (run, run[:15]):
            return True
    return False


def _dkms_installed(entries, module, kernel, version=None, branch=None):
    """The version DKMS lists as installed for ``kernel``, or None."""
    for e in entries or []:
        if e.get("module") != module or e.get("kernel") != kernel or e.get("status") != "installed":
            continue
        if version and e.get("version") != version:
            continue
        if branch and not str(e.get("version", "")).startswith(f"{branch}."):
            continue
        return e.get("version")
    return None


def decide(facts, want):
    """
    The plan, from the facts and the wanted driver; pure (no Salt call, no
    I/O), so every branch of it is a unit test.

    Returns ``{"action": "none"|"install"|"upgrade"|"rebuild", "refusals",
    "notes", "method", "version", "branch", "module_type", "kernel",
    "running", "download", "packages", "stream", "dkms_kernels",
    "stop_services", "allow_running", "drain", "reboot"}``. ``refusals``
    non-empty: nothing may change.
    """
    method = want["method"]
    rec = facts.get("recommended") or {}
    boot, running = facts["boot"], facts["running"]
    plan = {
        "action": "none", "refusals": [], "notes": [], "method": method, "kernel": boot, "running": running,
        "download": None, "packages": [], "stream": None, "dkms_kernels": [], "stop_services": [],
        "allow_running": False, "drain": False, "reboot": None,
    }
    refuse = plan["refusals"]
    if method not in METHODS:
        refuse.append(f"k8snvidia:driver:method {method!r} is not one of {', '.join(METHODS)}")
        return plan
    if method == "runfile":
        version = str(want["version"])
        branch = _vt(version)[0] or None
        if facts.get("url_version") and facts["url_version"] != version:
            refuse.append(f"{want['url']} is driver {facts['url_version']}, not {version}: check k8snvidia:driver:url")
        refuse += _branch_problems(branch, rec, f"driver {version}")
    else:
        branch = int(want.get("branch") or 0) or None
        version = f"R{branch}" if branch else None
        if not branch:
            refuse.append("k8snvidia:driver:package:branch is not set: the map names the branch this OS's "
                          "repositories ship; set it or use driver:method: runfile")
        else:
            refuse += [f"{p}: use k8snvidia:driver:method: runfile with a suitable driver" for p in
                       _branch_problems(branch, rec, f"the distribution's driver branch R{branch}")]
    mtype, problems = _module_type(want.get("kernel_module_type"), version if method == "runfile" else str(branch or ""),
                                   rec, method)
    refuse += problems
    plan.update(version=version, branch=branch, module_type=mtype)
    if refuse:
        return plan

    loaded = facts.get("loaded")
    if method == "runfile":
        built = facts.get("built") or {}
        installed = facts.get("installed")
        type_ok = mtype is None or built.get("module_type") in (None, mtype)
        dkms_ok = not want.get("dkms") or built.get("dkms")
        in_place = installed == version and built.get("version") == version and type_ok and dkms_ok
        if not in_place:
            plan["action"] = "upgrade" if installed and installed != version else (
                "rebuild" if installed == version else "install")
            plan["why"] = {
                "install": "not installed",
                "upgrade": f"{installed} is installed",
                "rebuild": (f"installed but not built for kernel {boot}" if built.get("version") != version
                            else f"installed with the {built.get('module_type')} module" if not type_ok
                            else "installed but not registered with DKMS"),
            }[plan["action"]]
            plan["download"] = {"url": want["url"], "sha256": want["sha256"], "cache_dir": want["cache_dir"]}
    else:
        pkgs, pre, dkms_pkgs = _package_names(want, branch, mtype, boot)
        use_pre = bool(pre) and all((facts.get("precompiled_available") or {}).get(p) for p in pre)
        chosen = pkgs + (pre if use_pre else dkms_pkgs)
        if pre and not use_pre:
            plan["notes"].append(f"no precompiled module package for kernel {boot} ({', '.join(pre)}): "
                                 "the DKMS packages build it")
        plan["packages"] = chosen
        plan["precompiled"] = use_pre
        stream = (want.get("module_stream") or {}).get("open" if mtype == "open" else "proprietary")
        plan["stream"] = _fmt(stream, branch=branch) if stream else None
        missing = [p for p in chosen if not (facts.get("packages") or {}).get(p)]
        plan["dkms_module"] = module = _dkms_module(want, mtype)
        dkms_ok = use_pre or not want.get("dkms") or _dkms_installed(facts.get("dkms"), module, boot, branch=branch)
        if missing or not dkms_ok:
            plan["action"] = "install" if missing else "rebuild"
            plan["missing"] = missing
            plan["why"] = (f"{', '.join(missing)} not installed" if missing
                           else f"DKMS lists no {module}/{branch}.* for kernel {boot}")
        if missing:
            refuse += _component_problems(facts, want)
            if refuse:
                return plan

    if plan["action"] == "none":
        if loaded and (loaded != version if method == "runfile" else not str(loaded).startswith(f"{branch}.")):
            plan["reboot"] = f"NVIDIA driver {version} is installed but module {loaded} is still loaded"
        return plan

    # ---- refusals: nothing has been changed yet
    if method == "runfile" and facts.get("nouveau_loaded"):
        if facts.get("nouveau_blacklist"):
            todo = (f"nouveau is blacklisted in {facts['nouveau_blacklist']} but the node has not rebooted since: "
                    "reboot it (the `nouveau` SLS rebuilt the initramfs), then apply nvidia.driver again")
        else:
            todo = "apply the `nouveau` SLS (blacklist + initramfs rebuild), reboot, then apply nvidia.driver again"
        refuse.append(f"the nouveau kernel module is loaded and the NVIDIA installer cannot replace it; {todo}")
        return plan
    needs_headers = method == "runfile" or (want.get("dkms") and not plan.get("precompiled"))
    if needs_headers and not facts.get("headers_boot"):
        msg = (f"the kernel headers for {boot} (the kernel that boots next) are missing: the module cannot be "
               f"built; install them (k8snvidia:kernel:devel_package, or the headers package for {boot})")
        if not want.get("test"):
            refuse.append(msg)
            return plan
        plan["notes"].append(f"note: {msg} -- an earlier state in this run must install them")
    if want.get("dkms") and not plan.get("precompiled"):
        plan["dkms_kernels"] = [boot] + ([running] if running != boot and facts.get("headers_running") else [])

    # ---- what holds the GPU (an NVIDIA module is loaded)
    if facts.get("nvidia_loaded"):
        plan["drain"] = True  # GPU pods would lose the driver (runfile) or its libraries (package)
        services = [s for s, up in (facts.get("services") or {}).items() if up]
        plan["stop_services"] = services
        if method == "runfile":
            holders = facts.get("holders") or {}
            procs = holders.get("processes") or []
            left = [p for p in procs if not _freed(p, services)]
            pods = [p for p in left if p.get("pod")]
            others = [p for p in left if not p.get("pod")]
            plan["holders"] = left
            force = want.get("force")
            if others or (holders.get("busy") and not procs):
                if others:
                    what = (f"held by {_describe(others)}, outside Kubernetes (a drain does not move "
                            f"{'them' if len(others) > 1 else 'it'}) and not among k8snvidia:driver:stop_services "
                            "(the services the state stops for the install and starts again)")
                else:
                    what = "in use: the kernel counts users of the nvidia module, but no process has a device open"
                if not force:
                    refuse.append(
                        f"the NVIDIA driver in use cannot be replaced while the GPU is {what}. Stop "
                        f"{'them' if len(others) > 1 else 'it'} (a systemd service can be added to "
                        "k8snvidia:driver:stop_services), then apply nvidia.driver again or re-run the orchestration; "
                        "or set k8snvidia:driver:force: true (the old module then stays loaded until a reboot)"
                    )
                    return plan
            elif pods and not force and not want.get("test"):
                refuse.append(
                    f"the NVIDIA driver in use cannot be replaced while Kubernetes pods hold the GPU: "
                    f"{_describe(pods)}. Drain the node first: the orchestration does it (`salt-run state.orchestrate "
                    "cluster`), or by hand `salt-run driver_upgrade.drain <node>`, apply nvidia.driver, then "
                    "`salt-run driver_upgrade.uncordon <node>`"
                )
                return plan
            elif pods and not force:
                plan["notes"].append(f"the GPU pods must leave first (a drain: the orchestration does it): "
                                     f"{_describe(pods)}")
            if left and force:
                plan["allow_running"] = True
                plan["notes"].append(f"forced while the GPU is held: {_describe(left)}")
            elif holders.get("busy") and not procs and force:
                plan["allow_running"] = True
                plan["notes"].append("forced while the kernel reports users of the nvidia module")
        if loaded and (plan["allow_running"] or method == "package"):
            plan["reboot"] = f"NVIDIA driver {version} replaces module {loaded}, which stays loaded until a reboot"
    if boot != running:
        plan["reboot"] = f"NVIDIA driver {version} is built for kernel {boot}, which is not running yet"
    elif method == "package" and not plan["reboot"]:
        if facts.get("gpus_visible") is False:
            # the module is loaded for a GPU it finds: a reboot would not load it
            plan["notes"].append("no NVIDIA GPU is visible on this node: the module loads once one is, no "
                                 "reboot is marked for it")
        elif not loaded and not facts.get("nouveau_loaded"):
            # built for the running kernel, no GPU module loaded: modprobe it
            # after the install instead of a reboot (one reboot per node at most)
            plan["load"] = True
        else:
            plan["reboot"] = f"NVIDIA driver {version} from packages is loaded at the next boot"
    if facts.get("gpus_visible") is False:
        plan["notes"].append("no NVIDIA GPU is visible on this node (PCI bus, driver): "
                             + (f"planned for the pillar's GPUs ({', '.join(want['gpus'])})" if want.get("gpus")
                                else "planned without GPUs (the pillar lists none)"))
    return plan


def _component_problems(facts, want):
    """A refusal when the node's apt sources lack an archive area the
    packages come from (Debian: contrib, non-free, non-free-firmware)."""
    need = list(want.get("components") or [])
    got = facts.get("components")
    if not need or got is None:
        return []
    lacking = [c for c in need if c not in got["components"]]
    if not lacking:
        return []
    have = ", ".join(sorted(got["components"])) or "none"
    where = ", ".join(got["files"]) or "the system's sources"
    return [f"the driver packages come from the archive areas {', '.join(need)}, and the node's sources for "
            f"{facts.get('codename')} enable {have} ({where}): add {' '.join(lacking)} to that entry's "
            "components (the state does not edit the system's own sources), then apply nvidia.driver again"]


def _changes(plan, facts):
    out = {
        "method": plan["method"],
        "action": plan["action"],
        "version": {"old": facts.get("installed") if plan["method"] == "runfile" else None, "new": plan["version"]},
        "kernel": plan["kernel"],
        "kernel_module_type": plan["module_type"] or "default",
        "dkms": bool(plan["dkms_kernels"]) or bool(plan.get("dkms")),
    }
    for key in ("packages", "stream", "stop_services", "drain", "dkms_kernels"):
        if plan.get(key):
            out[key] = plan[key]
    if plan.get("reboot"):
        out["reboot_pending"] = plan["reboot"]
    return out


def _summary(plan, want):
    mdesc = f"{plan['module_type']} kernel module" if plan["module_type"] else "the installer's default kernel module"
    what = f"NVIDIA driver {plan['version']}" if plan["method"] == "runfile" else (
        f"NVIDIA driver branch {plan['branch']} from packages ({', '.join(plan['packages'])})")
    return (f"{plan['action']} {what} ({plan.get('why')}) for kernel {plan['kernel']} with {mdesc}"
            + (", registered with DKMS" if plan["dkms_kernels"] else "")
            + ("" if want.get("dkms") or plan["method"] == "package" else ", without DKMS"))


# ------------------------------------------------------------------ act
def _mark_reboot(reason, test=False):
    """Mark the reboot pending (``host.mark_reboot``: already pending, would
    be marked under test, marked, or failed with the module's message, never
    dropped)."""
    return __utils__["host.mark_reboot"](__salt__, reason, test)


def _verify_dkms(plan, module, version=None):
    """Check ``dkms status`` lists the module installed for every plan
    kernel, building it for a non-boot kernel that lacks it. Returns
    (built versions by kernel, error or None)."""
    try:
        entries = _fact("nvidia_driver.dkms_status")
    except FactError as exc:
        return {}, str(exc)
    if entries is None:
        return {}, ("dkms is not installed, so the driver was not registered with DKMS (the installer skips that "
                    "without a word) and a new kernel will have no NVIDIA module: install dkms "
                    "(k8snvidia:driver:prerequisites) and apply nvidia.driver again, or set k8snvidia:driver:dkms: false")
    found = {}
    for kernel in plan["dkms_kernels"]:
        got = _dkms_installed(entries, module, kernel, version=version, branch=None if version else plan["branch"])
        if not got and kernel != plan["kernel"]:
            src = version or next((e.get("version") for e in entries if e.get("module") == module
                                   and str(e.get("version", "")).startswith(f"{plan['branch']}.")), None)
            if src:
                try:
                    _fact("nvidia_driver.dkms_install", module, src, kernel)
                    entries = _fact("nvidia_driver.dkms_status") or []
                    got = _dkms_installed(entries, module, kernel, version=src)
                except FactError as exc:
                    return found, f"DKMS could not build {module}/{src} for the running kernel {kernel}: {exc}"
        if not got:
            listed = "; ".join(f"{e['module']}/{e['version']}, {e.get('kernel')}: {e['status']}" for e in entries
                               if e.get("module") == module) or "nothing for " + module
            want = f"{module}/{version}" if version else f"{module}/{plan['branch']}.*"
            return found, (
                f"DKMS does not list {want} as installed for kernel {kernel} (dkms status: {listed}); the NVIDIA "
                "installer only warns when DKMS registration fails and exits 0. See /var/log/nvidia-installer.log "
                f"and /var/lib/dkms/{module}/*/build/make.log, fix the cause (kernel headers for {kernel}, gcc, "
                f"dkms), then apply nvidia.driver again (or `dkms install -m {module} -v <version> -k {kernel}`)"
            )
        found[kernel] = got
    return found, None


def _services(action, names):
    errors = []
    for name in names:
        try:
            _fact(f"service.{action}", name)
        except FactError as exc:
            errors.append(str(exc))
    return errors


def _act_runfile(plan, want, ret):
    changes = ret["changes"]
    stopped = plan["stop_services"]
    errors = _services("stop", stopped)
    if errors:
        _services("start", stopped)
        ret["comment"] = "could not stop the GPU services before the install: " + "; ".join(errors)
        return False
    if stopped:
        changes["stopped_services"] = stopped
    if plan["drain"] and not plan["allow_running"]:
        # what holds the GPU now (the services stopped, the pods drained); the installer would abort
        left = [p for p in _fact("nvidia.holders").get("processes") or [] if not _freed(p, stopped)]
        if left:
            if stopped:
                _services("start", stopped)
            ret["changes"] = {}
            ret["comment"] = ("the NVIDIA driver in use cannot be replaced: the GPU is still held"
                              + (f" after stopping {', '.join(stopped)}" if stopped else "")
                              + f" by {_describe(left)}; nothing was installed"
                              + (" (services started again)" if stopped else "")
                              + ". Stop it (or drain the node for pods), then apply nvidia.driver again")
            return False
    try:
        got = _fact("nvidia_driver.fetch", want["url"], want["sha256"], want["cache_dir"])
        runfile_ver = _fact("nvidia_driver.version_from_runfile", got["path"])
        if runfile_ver and runfile_ver != plan["version"]:
            raise FactError(f"{want['url']} is driver {runfile_ver}, not {plan['version']}: check k8snvidia:driver:url")
        res = _fact("nvidia_driver.install", got["path"], plan["kernel"], plan["module_type"], bool(want.get("dkms")),
                    plan["version"], plan["allow_running"])
    except FactError as exc:
        _services("start", stopped)
        ret["comment"] = f"{exc}. Nothing was installed" + (" (GPU services started again)" if stopped else "")
        return False
    changes["source"] = got["source"]
    if res.get("warnings"):
        changes["warnings"] = res["warnings"]
    now_installed = _fact("nvidia_driver.installed_version")
    now_built = _fact("nvidia_driver.built_for", plan["kernel"])
    if now_installed != plan["version"] or not now_built:
        ret["comment"] = (f"the NVIDIA installer exited 0 but driver {plan['version']} is not in place (installed: "
                          f"{now_installed}, module for {plan['kernel']}: {now_built}); see /var/log/nvidia-installer.log")
        return False
    if plan["dkms_kernels"]:
        found, err = _verify_dkms(plan, "nvidia", plan["version"])
        if err:
            ret["comment"] = f"NVIDIA driver {plan['version']} was installed, but {err}"
            return False
        changes["dkms"] = found
    now_loaded = _fact("nvidia_driver.loaded_version")
    if plan["kernel"] == plan["running"]:
        plan["reboot"] = None if now_loaded == plan["version"] else (
            f"NVIDIA driver {plan['version']} is installed but "
            + (f"module {now_loaded} is still loaded" if now_loaded else "its module is not loaded"))
    if stopped and now_loaded == plan["version"]:
        errors = _services("start", stopped)
        if errors:
            ret["comment"] = "the driver is installed but the GPU services did not start again: " + "; ".join(errors)
            return False
    return True


def _act_package(plan, want, ret):
    changes = ret["changes"]
    try:
        if plan["stream"]:
            _fact("nvidia_driver.enable_stream", plan["stream"])
        if plan.get("missing"):
            changes["installed"] = _fact("pkg.install", pkgs=list(plan["packages"]))
    except FactError as exc:
        ret["comment"] = f"{exc}. The NVIDIA driver packages are not (all) installed"
        return False
    still = [p for p in plan["packages"] if not _fact("pkg.version", p)]
    if still:
        ret["comment"] = f"the package manager reported success but {', '.join(still)} is not installed"
        return False
    if plan["dkms_kernels"]:
        found, err = _verify_dkms(plan, plan.get("dkms_module") or _dkms_module(want, plan["module_type"]))
        if err:
            ret["comment"] = f"the NVIDIA driver packages were installed, but {err}"
            return False
        changes["dkms"] = found
    if plan.get("load"):
        loaded, why = _load_now()
        if loaded:
            changes["loaded"] = loaded
        else:
            plan["reboot"] = f"NVIDIA driver {plan['version']} from packages is loaded at the next boot ({why})"
    return True


def _load_now():
    """modprobe nvidia after a package install on the running kernel:
    (loaded version, None), or (None, why not) and a reboot loads it."""
    try:
        _fact("kmod.load", "nvidia")
        now = _fact("nvidia_driver.loaded_version")
    except FactError as exc:
        return None, f"modprobe nvidia: {exc}"
    return (now, None) if now else (None, "modprobe nvidia loaded no NVIDIA module")


# the install methods and how each acts on the plan (the pillar's choices
# are pillar_schema.DRIVER_METHODS; a test checks they are these)
ACTS = {"runfile": _act_runfile, "package": _act_package}
METHODS = tuple(ACTS)


def installed(
    name,
    url=None,
    sha256=None,
    kernel_module_type="auto",
    force=False,
    cache_dir="/var/cache/k8snvidia",
    dkms=True,
    kernel=None,
    boot_tool=None,
    grub_config=None,
    method="runfile",
    branch=None,
    packages=None,
    precompiled=None,
    dkms_packages=None,
    dkms_module="nvidia",
    module_stream=None,
    stop_services=None,
    gpus=None,
    components=None,
):
    """
    Make the NVIDIA driver ``name`` installed, built for the kernel that
    boots next, by ``method``.

    name
        runfile: the driver version (e.g. ``580.178.04``); package: a label
        (the branch comes from ``branch``).
    method
        ``runfile`` (NVIDIA's ``.run``) or ``package`` (distribution or
        NVIDIA repository packages).
    url, sha256
        runfile: where the ``.run`` is (https://, http://, file://; the
        minion option ``k8snvidia.artifact_mirror`` is looked in first) and
        its required sha256.
    kernel_module_type
        ``auto`` (``nvidia.recommended``'s choice), ``open`` or ``proprietary``.
    force
        runfile: replace a driver even while the GPU is held (the old module
        stays loaded until a reboot).
    cache_dir
        Where the ``.run`` file is kept.
    dkms
        Register with DKMS and verify ``dkms status`` lists the module
        installed for the boot kernel (and the running kernel, if different
        and its headers exist).
    kernel, boot_tool, grub_config
        The kernel to build for (default ``bootkernel.default`` with these).
    branch, packages, precompiled, dkms_packages, dkms_module, module_stream
        package: the branch the repositories ship; then, each as
        ``{proprietary: [...], open: [...]}`` with ``{branch}`` and
        ``{kernel}`` (the boot kernel) filled in: the driver packages, the
        precompiled module packages (used when all exist for the boot
        kernel), the DKMS packages (used otherwise); the DKMS module name
        the packages register (one, or ``{proprietary: ..., open: ...}``);
        ``{proprietary: stream, open: stream}``, a dnf module stream enabled
        first.
    gpus
        The GPU names the pillar lists for this node: the plan's GPUs when
        the node shows none (no PCI device, no driver), noted in the comment.
    components
        package: the apt archive areas the packages come from (Debian:
        contrib, non-free, non-free-firmware); a node whose sources for its
        suite lack one is refused before anything is installed.
    stop_services
        GPU services (nvidia-persistenced, nvidia-dcgm) stopped for the
        install while an NVIDIA module is loaded, started again after.
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    test = bool(__opts__.get("test"))
    want = {
        "method": method, "version": str(name), "url": url, "sha256": sha256,
        "kernel_module_type": kernel_module_type, "force": bool(force), "cache_dir": cache_dir, "dkms": bool(dkms),
        "kernel": kernel, "boot_tool": boot_tool, "grub_config": grub_config, "branch": branch,
        "packages": packages or {}, "precompiled": precompiled or {}, "dkms_packages": dkms_packages or {},
        "dkms_module": dkms_module,
        "module_stream": module_stream, "stop_services": list(stop_services or []), "test": test,
        "gpus": [str(g) for g in gpus or []], "components": list(components or []),
    }
    if method == "runfile" and (not url or not sha256):
        ret["comment"] = "method runfile needs url and sha256 (k8snvidia:driver:url, k8snvidia:driver:sha256)"
        return ret
    try:
        facts = _facts(want)
        plan = decide(facts, want)
        if plan["action"] != "none" and not plan["refusals"] and facts["nvidia_loaded"]:
            facts.update(_gpu_facts(want))
            plan = decide(facts, want)
    except FactError as exc:
        ret["comment"] = f"Cannot plan the NVIDIA driver: {exc}. Nothing was changed."
        return ret
    if plan["refusals"]:
        ret["comment"] = f"Refusing to install NVIDIA driver {plan.get('version') or name}: " + "; ".join(
            plan["refusals"]) + ". Nothing was installed."
        return ret

    if plan["action"] == "none":
        return _unchanged(plan, want, ret)
    if test:
        return _predict(plan, want, facts, ret)
    return _apply(plan, want, facts, ret)


def _unchanged(plan, want, ret):
    """The driver the plan wants is there: say so; mark (or predict) the
    reboot the plan still needs (a boot kernel that is not running)."""
    ret["result"] = True
    ret["comment"] = (f"NVIDIA driver {plan['version']} is installed and built for kernel {plan['kernel']}"
                      if want["method"] == "runfile" else
                      f"NVIDIA driver branch {plan['branch']} packages are installed for kernel {plan['kernel']}")
    if plan["reboot"]:
        got = _mark_reboot(plan["reboot"], want["test"])
        ret["result"] = got["result"]
        ret["changes"] = got["changes"]
        ret["comment"] += f"; {got['comment']}"
    return ret


def _predict(plan, want, facts, ret):
    """``test=True``: what the real run would do with this plan, acting on nothing."""
    changes = _changes(plan, facts)
    summary = _summary(plan, want)
    ret["result"] = None
    ret["changes"] = changes
    if want["method"] == "runfile":
        url, cache_dir = want["url"], want["cache_dir"]
        cached = _fact("nvidia_driver.cached_path", url, cache_dir)
        mirror = _fact("nvidia_driver.mirror_source", url)
        where = (f"use cached {cached} if its sha256 matches, else " if os.path.isfile(cached) else "") + (
            f"copy {mirror} (artifact mirror)" if mirror else f"download {url}")
        lines = [f"Would {where}, check sha256 {want['sha256']}, then {summary}"]
    else:
        lines = [f"Would {'enable module stream ' + plan['stream'] + ', then ' if plan['stream'] else ''}{summary}"]
    if plan["stop_services"]:
        lines.append(f"would stop {', '.join(plan['stop_services'])} for the install")
    if plan["dkms_kernels"]:
        lines.append(f"would verify DKMS lists the module for {', '.join(plan['dkms_kernels'])}")
    if plan["reboot"]:
        got = _mark_reboot(plan["reboot"], test=True)
        if got["status"] == "failed":
            ret["result"] = False
        elif got["status"] == "pending":
            changes.pop("reboot_pending", None)
        lines.append("would mark reboot pending: " + plan["reboot"] if got["status"] == "predicted"
                     else got["comment"])
    ret["comment"] = "; ".join(lines + plan["notes"])
    return ret


def _apply(plan, want, facts, ret):
    """The real run: the method's act on the plan, then the reboot mark."""
    changes = _changes(plan, facts)
    summary = _summary(plan, want)
    ret["changes"] = changes
    if not ACTS[want["method"]](plan, want, ret):
        return ret
    lines = [f"Done: {summary}"]
    if plan["reboot"]:
        changes["reboot_pending"] = plan["reboot"]
        got = _mark_reboot(plan["reboot"])
        if got["status"] == "failed":
            ret["comment"] = "; ".join(lines + [got["comment"]])
            return ret
        if got["status"] == "pending":
            changes.pop("reboot_pending")
        lines.append(f"reboot pending: {plan['reboot']}")
    else:
        changes.pop("reboot_pending", None)
    ret["result"] = True
    ret["comment"] = "; ".join(lines + plan["notes"])
    return ret


def removed(name="nvidia", force=False, method="runfile", packages=None, dkms_packages=None, precompiled=None,
            branch=None):
    """
    Remove the driver: the ``.run`` driver with ``nvidia-uninstall`` (DKMS
    registrations included; refused while processes use the GPUs unless
    ``force``), or the ``packages`` of the package method.

    .. code-block:: yaml

        nvidia-driver-removed:
          nvidia_driver.removed: []
    """
    ret = {"name": name, "result": False, "changes": {}, "comment": ""}
    test = bool(__opts__.get("test"))
    try:
        if method == "package":
            names = sorted({p.format(branch=branch, kernel=__grains__.get("kernelrelease", ""))
                            for field in (packages, dkms_packages, precompiled) for group in (field or {}).values()
                            for p in group})
            present = [p for p in names if _fact("pkg.version", p)]
            if not present:
                ret["result"] = True
                ret["comment"] = "No NVIDIA driver packages installed"
                return ret
            if test:
                ret["result"] = None
                ret["changes"] = {"removed": present}
                ret["comment"] = f"Would remove {', '.join(present)}"
                return ret
            ret["changes"] = {"removed": _fact("pkg.remove", pkgs=present)}
            ret["result"] = True
            ret["comment"] = f"Removed {', '.join(present)}"
            return ret
        current = _fact("nvidia_driver.installed_version")
        if current is None:
            ret["result"] = True
            ret["comment"] = "No NVIDIA driver installed by a .run file"
            return ret
        holders = _fact("nvidia.holders")
        if holders.get("processes") and not force:
            ret["comment"] = (f"Refusing to remove NVIDIA driver {current}: the GPU is held by "
                              f"{_describe(holders['processes'])}")
            return ret
        if test:
            ret["result"] = None
            ret["changes"] = {"version": {"old": current, "new": None}}
            ret["comment"] = f"Would remove NVIDIA driver {current} with nvidia-uninstall --silent"
            return ret
        _fact("nvidia_driver.uninstall")
        ret["result"] = True
        ret["changes"] = {"version": {"old": current, "new": None}}
        ret["comment"] = f"Removed NVIDIA driver {current}"
        if _fact("nvidia_driver.loaded_version"):
            reason = f"NVIDIA driver {current} was removed but its module is still loaded"
            got = _mark_reboot(reason)
            if got["status"] == "failed":
                ret["result"] = False
                ret["comment"] += f"; {got['comment']}"
            else:
                ret["changes"].update(got["changes"])
                ret["comment"] += f"; reboot pending: {reason}"
    except (FactError, CommandExecutionError) as exc:
        ret["result"] = False
        ret["comment"] = str(exc)
    return ret
