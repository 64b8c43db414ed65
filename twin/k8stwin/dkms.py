"""
DKMS on a twin node: the registry of modules and their builds, shared by the
emulated ``dkms`` tool, the emulated NVIDIA installer and the boot sequence
(:func:`autoinstall`, called with the kernel that has just booted).

Files, as real DKMS keeps them (so that ``nvidia_driver.built_for`` and
``ls`` see the same thing the real tools would leave):

* ``/usr/src/nvidia-<ver>/dkms.conf``                     -- the added source
* ``/var/lib/dkms/nvidia/<ver>/source`` -> ``/usr/src/nvidia-<ver>``
* ``/var/lib/dkms/nvidia/<ver>/<K>/x86_64/module/*.ko``   -- a build for K
* ``/lib/modules/<K>/updates/dkms/*.ko``                  -- installed for K

plus ``state.json`` ``dkms`` = ``{"nvidia/<ver>": {"kernels": [K], "module_type"}}``
and ``nvidia_driver.built_for`` kept in step.

The ``.ko`` files are small stand-ins whose ``.modinfo``-like strings
(``version=``, ``license=``, ``vermagic=``) are what the Salt module reads.
"""

import json
import os

from . import fs, state

ARCH = "x86_64"
NVIDIA_KOS = ("nvidia", "nvidia-uvm", "nvidia-modeset", "nvidia-drm")
LICENSES = {"proprietary": "NVIDIA", "open": "Dual MIT/GPL"}


def ko_bytes(name, version, module_type, kernel):
    """The content of a stand-in kernel module."""
    fields = [
        f"name={name.replace('-', '_')}",
        f"version={version}",
        f"license={LICENSES.get(module_type, 'NVIDIA')}",
        f"vermagic={kernel} SMP mod_unload modversions ",
        "k8stwin=stand-in module",
    ]
    return b"\x7fELF\x02\x01\x01\x00" + b"\x00" + b"\x00".join(f.encode() for f in fields) + b"\x00"


def write_kos(directory, version, module_type, kernel):
    """Write the NVIDIA module set into ``directory`` (node-absolute); returns the paths."""
    fs.makedirs(directory)
    out = []
    for name in NVIDIA_KOS:
        rel = f"{directory}/{name}.ko"
        with open(fs.path(rel), "wb") as fh:
            fh.write(ko_bytes(name, version, module_type, kernel))
        out.append(rel)
    return out


def headers_present(kernel):
    """Kernel source for ``kernel``: /lib/modules/K/{build,source} (a link into
    /usr/src/kernels/K is followed inside the root prefix) or /usr/src/kernels/K."""
    for rel in (f"/lib/modules/{kernel}/build", f"/lib/modules/{kernel}/source"):
        full = fs.path(rel)
        if os.path.islink(full):
            target = os.readlink(full)
            if not target.startswith("/"):
                target = os.path.normpath(os.path.join(os.path.dirname(rel), target))
            if fs.isdir(target):
                return True
        elif os.path.isdir(full):
            return True
    return fs.isdir(f"/usr/src/kernels/{kernel}") or fs.isdir(f"/usr/src/linux-{kernel}")


# ------------------------------------------------------------------ registry
def registered():
    """``{"nvidia/<ver>": {...}}`` from state.json."""
    return dict(state.read().get("dkms") or {})


def add(module, version, module_type="proprietary"):
    """Register ``module/version`` (the source tree appears under /usr/src)."""
    src = f"/usr/src/{module}-{version}"
    conf = {
        "PACKAGE_NAME": module,
        "PACKAGE_VERSION": version,
        "AUTOINSTALL": "yes",
        "K8STWIN_MODULE_TYPE": module_type,
    }
    fs.write(f"{src}/dkms.conf", "".join(f'{k}="{v}"\n' for k, v in conf.items()))
    fs.symlink(src, f"/var/lib/dkms/{module}/{version}/source")
    with state.locked() as st:
        reg = st.setdefault("dkms", {})
        entry = reg.setdefault(f"{module}/{version}", {"kernels": []})
        entry["module_type"] = module_type
    return src


def source_of(module, version):
    """The dkms.conf values of an added module, or None."""
    text = fs.read(f"/usr/src/{module}-{version}/dkms.conf")
    if text is None:
        return None
    conf = {}
    for line in text.splitlines():
        if "=" in line:
            key, val = line.split("=", 1)
            conf[key.strip()] = val.strip().strip('"')
    return conf


def build_install(module, version, kernel, install=True):
    """Build and install ``module/version`` for ``kernel`` (``install=False``:
    ``dkms build``, the build kept in the DKMS tree, status ``built``).

    Returns (ok, message); fails like DKMS without the kernel headers."""
    conf = source_of(module, version)
    if conf is None:
        return False, (
            f"Error! Could not find module source directory.\nDirectory: /usr/src/{module}-{version} does not exist."
        )
    if not headers_present(kernel):
        return False, (
            f"Error! Your kernel headers for kernel {kernel} cannot be found at /lib/modules/{kernel}/build "
            f"or /lib/modules/{kernel}/source.\nPlease install the linux-headers-{kernel} package or use the "
            "--kernelsourcedir option to tell DKMS where it's located."
        )
    if state.fault("dkms_build_fails"):
        # the build itself fails (a compiler or kernel API mismatch): DKMS's own text
        fs.write(f"/var/lib/dkms/{module}/{version}/build/make.log",
                 f"DKMS make.log for {module}-{version} for kernel {kernel} ({ARCH})\n"
                 "error: k8stwin fault dkms_build_fails\n")
        return False, (
            f"Error! Bad return status for module build on kernel: {kernel} ({ARCH})\n"
            f"Consult /var/lib/dkms/{module}/{version}/build/make.log for more information."
        )
    mtype = conf.get("K8STWIN_MODULE_TYPE", "proprietary")
    write_kos(f"/var/lib/dkms/{module}/{version}/{kernel}/{ARCH}/module", version, mtype, kernel)
    if not install:
        with state.locked() as st:
            entry = st.setdefault("dkms", {}).setdefault(f"{module}/{version}", {"kernels": [], "module_type": mtype})
            if kernel not in entry.setdefault("built", []) and kernel not in entry["kernels"]:
                entry["built"].append(kernel)
        return True, "\nBuilding module:\nCleaning build area...\nBuilding module(s)...\nCleaning build area..."
    write_kos(f"/lib/modules/{kernel}/updates/dkms", version, mtype, kernel)
    with state.locked() as st:
        reg = st.setdefault("dkms", {})
        entry = reg.setdefault(f"{module}/{version}", {"kernels": [], "module_type": mtype})
        if kernel not in entry["kernels"]:
            entry["kernels"].append(kernel)
        if kernel in entry.get("built", []):
            entry["built"].remove(kernel)
        drv = st.get("nvidia_driver")
        if module == "nvidia" and drv and drv.get("version") == version:
            drv["dkms"] = True
            built = drv.setdefault("built_for", [])
            if kernel not in built:
                built.append(kernel)
    return True, f"{module}.ko:\nRunning module version sanity check.\n - Installation\n   - Installing to /lib/modules/{kernel}/updates/dkms/"


def remove(module, version, kernels=None):
    """Unregister ``module/version`` (``kernels``: only those builds)."""
    key = f"{module}/{version}"
    reg = registered()
    if key not in reg:
        return False
    todo = list(reg[key].get("kernels") or []) + list(reg[key].get("built") or []) if kernels is None else list(kernels)
    for kernel in todo:
        for name in NVIDIA_KOS:
            ko = f"/lib/modules/{kernel}/updates/dkms/{name}.ko"
            text = None
            try:
                with open(fs.path(ko), "rb") as fh:
                    text = fh.read()
            except OSError:
                pass
            if text is not None and f"version={version}\x00".encode() in text:
                fs.remove(ko)
        fs.remove(f"/var/lib/dkms/{module}/{version}/{kernel}")
    with state.locked() as st:
        entry = (st.get("dkms") or {}).get(key)
        if entry is not None:
            entry["kernels"] = [k for k in entry.get("kernels", []) if k not in todo]
            entry["built"] = [k for k in entry.get("built", []) if k not in todo]
            if kernels is None:
                del st["dkms"][key]
        drv = st.get("nvidia_driver")
        if module == "nvidia" and drv and drv.get("version") == version:
            drv["built_for"] = [k for k in drv.get("built_for", []) if k not in todo]
    if kernels is None:
        fs.remove(f"/var/lib/dkms/{module}/{version}")
        fs.remove(f"/usr/src/{module}-{version}")
    return True


def status_lines(new_format=True, module=None, version=None, kernel=None):
    """``dkms status`` lines: ``nvidia/V, K, x86_64: installed`` (>= 2.8.6) or
    ``nvidia, V, K, x86_64: installed`` (older, e.g. Debian 11's 2.8.4);
    ``built`` for a build not installed; ``nvidia/V: added`` (old format
    ``nvidia, V: added``) when not built (checked against dkms 2.8.4, 3.0.10
    and 3.2.2, tests/twin_judges/test_conformance_dkms.py)."""
    lines = []
    for key, entry in sorted(registered().items()):
        mod, ver = key.split("/", 1)
        if (module and mod != module) or (version and ver != version):
            continue
        installed = set(entry.get("kernels") or [])
        kernels = sorted(k for k in installed | set(entry.get("built") or []) if not kernel or k == kernel)
        head = f"{mod}/{ver}" if new_format else f"{mod}, {ver}"
        if not kernels and not kernel:
            lines.append(f"{head}: added")
        for k in kernels:
            lines.append(f"{head}, {k}, {ARCH}: {'installed' if k in installed else 'built'}")
    return lines


def autoinstall(kernel):
    """The boot hook (``k8stwin.boot`` calls it with the kernel that has just
    booted): what DKMS's own boot service does, see :func:`build_missing`.
    A reboot also ends a module that an upgrade left loaded, so the record
    of that (``nvidia_driver.loaded_version``) goes here."""
    with state.locked() as st:
        (st.get("nvidia_driver") or {}).pop("loaded_version", None)
    return build_missing(kernel)


def build_missing(kernel):
    """Build and install every registered module not yet installed for
    ``kernel``, when its headers exist (``dkms autoinstall``).

    Returns ``{"ok": bool, "output": [lines], "built": ["nvidia"], "failed": [...]}``."""
    out, built, failed = [], [], []
    for key, entry in sorted(registered().items()):
        if kernel in (entry.get("kernels") or []):
            continue
        mod, ver = key.split("/", 1)
        out.append(f"Autoinstall of module {mod}/{ver} for kernel {kernel} ({ARCH})")
        ok, msg = build_install(mod, ver, kernel)
        if ok:
            built.append(mod)
        else:
            out.append(msg)
            failed.append(f"{mod}(bad_exit_status)")
    if built:
        out.append(f"Autoinstall on {kernel} succeeded for module(s) {' '.join(built)}.")
    if failed:
        out.append(f"Autoinstall on {kernel} failed for module(s) {' '.join(failed)}.")
    return {"ok": not failed, "output": out, "built": built, "failed": failed}


def tarball_write(path, module, version, module_type):
    """The twin's stand-in for the installer's DKMS tarball (JSON)."""
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"module": module, "version": version, "module_type": module_type}, fh)


def tarball_read(path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


# ------------------------------------------------------------------ packages
ALTERNATE_INSTALL = "/usr/lib/nvidia/alternate-install-present"


def _upstream(version):
    """'580.95.05-0ubuntu0.22.04.2' / '535.247.01-1~deb12u1' -> the driver version."""
    return str(version).split(":", 1)[-1].split("-", 1)[0]


def _kernels_with_headers():
    try:
        names = sorted(os.listdir(fs.path("/lib/modules")))
    except OSError:
        return []
    return [k for k in names if headers_present(k)]


def package_install(spec, version, log=None):
    """What a distribution's NVIDIA driver package does when it is installed
    (its maintainer scripts), by the catalog payload ``nvidia_driver``:

    * ``{kind: dkms, module: M, module_type: T}`` (nvidia-kernel-dkms,
      nvidia-dkms-580, kmod-nvidia-latest-dkms): ``dkms add``, then build
      and install for the running kernel and every installed kernel whose
      headers exist, as Debian's and Ubuntu's dkms postinst do; a kernel
      without headers is skipped (DKMS builds it at boot if they come);
    * ``{kind: precompiled, kernel: K, version: V, module_type: T}``
      (linux-modules-nvidia-580-K): the signed modules for that kernel only;
    * ``{kind: userspace, module_type: T}`` (nvidia-driver,
      nvidia-utils-580): nvidia-smi and the record that a packaged driver is
      present (``/usr/lib/nvidia/alternate-install-present``, which makes
      NVIDIA's ``.run`` installer refuse).

    Nothing is loaded: the module comes at the next boot. Returns the node
    paths created."""
    log = log or (lambda _line: None)
    kind = spec.get("kind")
    ver = _upstream(spec.get("version") or version)  # precompiled packages carry the kernel's version
    mtype = spec.get("module_type", "proprietary")
    created = []
    built = []
    if kind == "dkms":
        module = spec.get("module", "nvidia")
        add(module, ver, mtype)
        running = (state.read().get("kernel") or {}).get("running")
        for kernel in dict.fromkeys([running] + _kernels_with_headers()):
            if not kernel or not headers_present(kernel):
                continue
            ok, msg = build_install(module, ver, kernel)
            log(msg.splitlines()[0] if msg else "")
            if ok:
                built.append(kernel)
    elif kind == "precompiled":
        kernel = spec.get("kernel")
        branch = ver.split(".", 1)[0]
        created += write_kos(f"/lib/modules/{kernel}/kernel/nvidia-{branch}", ver, mtype, kernel)
        built.append(kernel)
    elif kind == "userspace":
        from .tools import nvidia_installer

        target = os.path.realpath(nvidia_installer._dispatcher())  # pylint: disable=protected-access
        fs.symlink(target, "/usr/bin/nvidia-smi")
        created.append("/usr/bin/nvidia-smi")
        fs.write(ALTERNATE_INSTALL, "packaged NVIDIA driver (k8stwin)\n")
        created.append(ALTERNATE_INSTALL)
    with state.locked() as st:
        drv = st.get("nvidia_driver") or {}
        if drv.get("version") != ver:
            drv = {"version": ver, "kernel_module_type": mtype, "dkms": False, "built_for": [], "source": "package"}
        if kind != "userspace":
            drv["kernel_module_type"] = mtype
        if kind == "dkms":
            drv["dkms"] = True
        for k in built:
            if k not in drv["built_for"]:
                drv["built_for"].append(k)
        st["nvidia_driver"] = drv
    return created
