"""Boot loader files, initramfs manifests and the boot sequence of a twin node.

Files are the real ones (``/etc/default/grub``, ``/boot/grub2/grub.cfg``,
``/boot/grub2/grubenv``, ``/boot/loader/entries/*.conf``, ``/boot/grub/grub.cfg``),
written by the emulated grub tools and read back here to find the kernel that
boots (:func:`resolve_default`). :func:`on_boot` performs boot steps 2-5 of
docs/twin-internals.md after step 1.
"""

import json
import os
import re
import time

from . import fs, kmods, pkgdb, state

GRUBENV_SIZE = 1024


# --------------------------------------------------------------------------
# OS naming


def os_release():
    out = {}
    for line in (fs.read("/etc/os-release") or fs.read("/usr/lib/os-release") or "").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip().strip('"')
    return out


def family_major():
    fam, major, _key = fs.node_os()
    return fam, major


def machine_id():
    mid = (fs.read("/etc/machine-id") or "").strip()
    if not mid:
        import hashlib

        try:
            seed = state.node().get("id", "twin")
        except (OSError, ValueError, SystemExit):
            seed = "twin"
        mid = hashlib.md5(seed.encode()).hexdigest()
        fs.write("/etc/machine-id", mid + "\n")
    return mid


def grub_dir():
    fam, _major = family_major()
    return "/boot/grub" if fam == "Debian" else "/boot/grub2"


def grubenv_path():
    return grub_dir() + "/grubenv"


# --------------------------------------------------------------------------
# /etc/default/grub and grubenv


def default_grub():
    out = {}
    for line in (fs.read("/etc/default/grub") or "").splitlines():
        m = re.match(r"^\s*([A-Z_]+)=(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip().strip('"').strip("'")
    return out


def read_grubenv(p=None):
    out = {}
    for line in (fs.read(p or grubenv_path()) or "").splitlines():
        if line.startswith("#") or "=" not in line:
            continue
        k, v = line.split("=", 1)
        out[k] = v
    return out


def write_grubenv(env, p=None):
    body = "# GRUB Environment Block\n" + "".join(f"{k}={v}\n" for k, v in env.items())
    if len(body) < GRUBENV_SIZE:
        body += "#" * (GRUBENV_SIZE - len(body))
    fs.write(p or grubenv_path(), body)


# --------------------------------------------------------------------------
# kernels and initramfs


def installed_kernels():
    """Kernel releases with an image in /boot, newest first."""
    fam, _major = family_major()
    fmt = "deb" if fam == "Debian" else "rpm"
    kers = []
    for p in fs.glob("/boot/vmlinuz-*"):
        k = os.path.basename(p)[len("vmlinuz-"):]
        if k.startswith("0-rescue") or k.endswith(".old"):
            continue
        kers.append(k)
    import functools

    return sorted(kers, key=functools.cmp_to_key(lambda a, b: pkgdb.compare(fmt, _kv(a), _kv(b))), reverse=True)


def _kv(k):
    # compare kernel releases as versions: '5.4.278-1.el7.elrepo.x86_64'
    return re.sub(r"\.(x86_64|aarch64)$", "", k)


def initramfs_path(kver):
    fam, _major = family_major()
    return f"/boot/initrd.img-{kver}" if fam == "Debian" else f"/boot/initramfs-{kver}.img"


def build_initramfs(kver, image, tool="dracut"):
    """Write the initramfs manifest for ``kver``: the modprobe.d blacklist it carries."""
    black, install = kmods.modprobe_conf()
    files = {}
    for d in ("/etc/modprobe.d", "/lib/modprobe.d", "/usr/lib/modprobe.d"):
        for f in fs.glob(d + "/*.conf"):
            files[f] = fs.read(f) or ""
    mods = []
    for m in ("drm", "nouveau", "nvidia", "nvidia_modeset", "nvidia_uvm", "nvidia_drm"):
        if kmods.module_path(m, kver) and m not in black:
            mods.append(m)
    manifest = {
        "k8stwin_initramfs": 1,
        "kernel": kver,
        "tool": tool,
        "built": round(time.time(), 3),
        "blacklist": sorted(black),
        "install_cmds": install,
        "modprobe_d": files,
        "modules": mods,
    }
    fs.write(image, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def read_initramfs(kver):
    text = fs.read(initramfs_path(kver))
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return {}


# --------------------------------------------------------------------------
# grub.cfg


def _title_rh(kver):
    rel = os_release()
    return f"{rel.get('NAME', 'CentOS Linux')} ({kver}) {rel.get('VERSION', '7 (Core)')}"


def _distributor():
    dg = default_grub()
    dist = dg.get("GRUB_DISTRIBUTOR", "")
    if not dist or "$" in dist or "`" in dist:
        rel = os_release()
        dist = rel.get("NAME", "Ubuntu").replace(" GNU/Linux", "")
        if rel.get("ID") == "debian":
            dist = "Debian GNU/Linux"
    return dist


def _cmdline():
    dg = default_grub()
    return " ".join(x for x in (dg.get("GRUB_CMDLINE_LINUX", ""), dg.get("GRUB_CMDLINE_LINUX_DEFAULT", "")) if x)


def _default_line():
    val = default_grub().get("GRUB_DEFAULT", "0")
    if val == "saved":
        return "${saved_entry}"
    return val


def grub_mkconfig(output, debian=None):
    """Regenerate grub.cfg at ``output``; returns the progress lines (stderr)."""
    fam, major = family_major()
    debian = fam == "Debian" if debian is None else debian
    lines = []
    if debian:
        lines.append("Sourcing file `/etc/default/grub'")
    lines.append("Generating grub configuration file ...")
    kernels = installed_kernels()
    cfg = [
        "#",
        "# DO NOT EDIT THIS FILE",
        "#",
        f"# It is automatically generated by {'grub-mkconfig' if debian else 'grub2-mkconfig'} using templates",
        "# from /etc/grub.d and settings from /etc/default/grub",
        "#",
        "",
        "### BEGIN /etc/grub.d/00_header ###",
        "if [ -s $prefix/grubenv ]; then",
        "  load_env",
        "fi",
        'if [ "${next_entry}" ] ; then',
        '   set default="${next_entry}"',
        "   set next_entry=",
        "   save_env next_entry",
        "   set boot_once=true",
        "else",
        f'   set default="{_default_line()}"',
        "fi",
        f"set timeout={default_grub().get('GRUB_TIMEOUT', '5')}",
        "### END /etc/grub.d/00_header ###",
        "",
        "### BEGIN /etc/grub.d/10_linux ###",
    ]
    cmd = _cmdline()
    if not debian and major >= 8 and default_grub().get("GRUB_ENABLE_BLSCFG", "true") == "true":
        cfg += ["insmod blscfg", "blscfg"]
        for k in kernels:
            lines.append(f"Found linux image: /boot/vmlinuz-{k}")
    elif debian:
        dist = _distributor()
        for i, k in enumerate(kernels):
            lines.append(f"Found linux image: /boot/vmlinuz-{k}")
            if fs.exists(initramfs_path(k)):
                lines.append(f"Found initrd image: {initramfs_path(k)}")
            if i == 0:
                cfg += _entry(dist, f"gnulinux-simple-{machine_id()}", k, cmd, "linux", "initrd", "/boot")
                cfg.append(f"submenu 'Advanced options for {dist}' $menuentry_id_option 'gnulinux-advanced-{machine_id()}' {{")
            cfg += ["\t" + x for x in _entry(f"{dist}, with Linux {k}", f"gnulinux-{k}-advanced-{machine_id()}", k, cmd, "linux", "initrd", "/boot")]
            cfg += ["\t" + x for x in _entry(f"{dist}, with Linux {k} (recovery mode)", f"gnulinux-{k}-recovery-{machine_id()}", k, "single", "linux", "initrd", "/boot")]
        if kernels:
            cfg.append("}")
    else:
        for k in kernels:
            lines.append(f"Found linux image: /boot/vmlinuz-{k}")
            if fs.exists(initramfs_path(k)):
                lines.append(f"Found initrd image: {initramfs_path(k)}")
            cfg += _entry(_title_rh(k), f"gnulinux-{k}-advanced-{machine_id()}", k, cmd, "linux16", "initrd16", "")
    cfg += ["### END /etc/grub.d/10_linux ###", ""]
    lines.append("done")
    fs.write(output + ".new", "\n".join(cfg) + "\n")
    os.replace(fs.path(output + ".new"), fs.path(output))
    if not debian and output != "/boot/grub2/grub.cfg" and not fs.exists("/etc/grub2.cfg"):
        pass
    return lines


def _entry(title, eid, k, args, linux, initrd, prefix):
    ir = initramfs_path(k)
    ir_name = os.path.basename(ir)
    return [
        f"menuentry '{title}' --class gnu-linux --class gnu --class os $menuentry_id_option '{eid}' {{",
        f"\t{linux} {prefix}/vmlinuz-{k} root=/dev/sda1 ro {args}".rstrip(),
        f"\t{initrd} {prefix}/{ir_name}",
        "}",
    ]


def grubby_add_el7(kver, make_default=False):
    """What el7's new-kernel-pkg/grubby does on a kernel install: a new
    menuentry at the top of grub.cfg; the saved default is left alone."""
    cfgp = "/boot/grub2/grub.cfg"
    text = fs.read(cfgp)
    if text is None:
        grub_mkconfig(cfgp)
        return
    entry = _entry(_title_rh(kver), f"gnulinux-{kver}-advanced-{machine_id()}", kver, _cmdline(), "linux16", "initrd16", "")
    marker = "### BEGIN /etc/grub.d/10_linux ###\n"
    if marker in text and f"vmlinuz-{kver} " not in text:
        text = text.replace(marker, marker + "\n".join(entry) + "\n", 1)
        fs.write(cfgp, text)
    if make_default:
        env = read_grubenv("/boot/grub2/grubenv")
        env["saved_entry"] = _title_rh(kver)
        write_grubenv(env, "/boot/grub2/grubenv")


def parse_menu(text):
    """Top-level menu of a grub.cfg: list of {title, id, kernel, children}."""
    menu = []
    stack = [menu]
    cur = None
    for raw in (text or "").splitlines():
        line = raw.strip()
        m = re.match(r"^(menuentry|submenu)\s+'([^']*)'.*?(?:\$menuentry_id_option\s+'([^']*)')?.*\{$", line)
        if m:
            node = {"title": m.group(2), "id": m.group(3), "kernel": None, "children": []}
            stack[-1].append(node)
            if m.group(1) == "submenu":
                stack.append(node["children"])
                cur = None
            else:
                cur = node
            continue
        m = re.match(r"^(linux16|linux|linuxefi)\s+(\S+)", line)
        if m and cur is not None:
            cur["kernel"] = os.path.basename(m.group(2))[len("vmlinuz-"):]
            continue
        if line == "}":
            if cur is not None:
                cur = None
            elif len(stack) > 1:
                stack.pop()
    return menu


def default_setting(text):
    """The value grub.cfg sets `default` to in the normal (no next_entry) branch."""
    val = "0"
    for m in re.finditer(r'^\s*set default="?([^"\n]*)"?\s*$', text or "", re.M):
        if m.group(1) != "${next_entry}":
            val = m.group(1)
    return val


def bls_entries():
    """BLS entries newest first: list of dicts (id, title, version, linux, initrd, options, file)."""
    out = []
    for f in fs.glob("/boot/loader/entries/*.conf"):
        e = {"id": os.path.basename(f)[:-5], "file": f}
        for line in (fs.read(f) or "").splitlines():
            parts = line.strip().split(None, 1)
            if len(parts) == 2:
                e[parts[0]] = parts[1]
            elif len(parts) == 1:
                e[parts[0]] = ""
        e["kernel"] = os.path.basename(e.get("linux", ""))[len("vmlinuz-"):]
        out.append(e)
    import functools

    return sorted(out, key=functools.cmp_to_key(lambda a, b: pkgdb.rpm_compare(_kv(a.get("version", a["kernel"])), _kv(b.get("version", b["kernel"])))), reverse=True)


def add_bls_entry(kver, options=None):
    mid = machine_id()
    if options is None:
        existing = bls_entries()
        options = existing[0].get("options", "") if existing else ("root=/dev/mapper/rl-root ro " + _cmdline()).strip()
    rel = os_release()
    title = f"{rel.get('NAME', 'Rocky Linux')} ({kver}) {rel.get('VERSION', '9')}"
    fs.write(
        f"/boot/loader/entries/{mid}-{kver}.conf",
        f"title {title}\nversion {kver}\nlinux /vmlinuz-{kver}\ninitrd /initramfs-{kver}.img $tuned_initrd\noptions {options}\ngrub_users $grub_users\ngrub_arg --unrestricted\ngrub_class kernel\n",
    )


def _resolve_in(menu, val):
    """Kernel of the menu item grub picks for default ``val`` (else entry 0)."""

    def first_kernel(node):
        if node.get("kernel"):
            return node["kernel"]
        for c in node.get("children") or []:
            k = first_kernel(c)
            if k:
                return k
        return None

    def lookup(items, key):
        if re.match(r"^\d+$", key):
            i = int(key)
            return items[i] if i < len(items) else None
        for it in items:
            if it.get("title") == key or it.get("id") == key:
                return it
        return None

    node = None
    items = menu
    for part in (val or "0").split(">"):
        node = lookup(items, part)
        if node is None:
            break
        items = node.get("children") or []
    if node is None:
        node = menu[0] if menu else None
    return first_kernel(node) if node else None


def resolve_default():
    """The kernel release that boots next, from the boot loader's files."""
    fam, major = family_major()
    if fam == "Debian":
        cfgp = "/boot/grub/grub.cfg"
    else:
        cfgp = "/boot/grub2/grub.cfg"
    text = fs.read(cfgp)
    env = read_grubenv()
    if fam == "RedHat" and major >= 8:
        entries = bls_entries()
        val = default_setting(text) if text else "${saved_entry}"
        if env.get("next_entry"):
            val = env["next_entry"]
        if val == "${saved_entry}":
            val = env.get("saved_entry", "0")
        menu = [{"title": e.get("title"), "id": e["id"], "kernel": e["kernel"], "children": []} for e in entries]
        k = _resolve_in(menu, val)
    else:
        if text is None:
            kers = installed_kernels()
            return kers[0] if kers else fs.running_kernel()
        val = default_setting(text)
        if env.get("next_entry"):
            val = env["next_entry"]
        if val == "${saved_entry}":
            val = env.get("saved_entry", "0")
        k = _resolve_in(parse_menu(text), val)
    return k or fs.running_kernel()


# --------------------------------------------------------------------------
# the boot sequence


def on_boot(running=None):
    """Boot steps after the kernel is chosen (docs/twin-internals.md, Boot).

    ``running`` defaults to :func:`resolve_default`. Returns a dict of what
    happened (kernel, modules loaded, notes)."""
    notes = []
    if running is None:
        running = resolve_default()
    if not fs.exists(f"/boot/vmlinuz-{running}"):
        notes.append(f"error: file '/boot/vmlinuz-{running}' not found; booting the previous kernel")
        running = fs.running_kernel()
    # 2. fresh runtime state
    keep = [x for x in os.environ.get("K8STWIN_RUN_KEEP", "systemd,salt,lock,user,k8stwin-keep").split(",") if x]
    kmods.clear_dir("/run", keep=keep)
    fs.makedirs("/run/systemd/system")
    with state.locked() as st:
        st["kernel"] = dict(st.get("kernel") or {}, running=running)
        st["modules"] = []
        st["sysctl"] = {}
        sel = "enforcing"
        cfg = fs.read("/etc/selinux/config")
        if cfg is None:
            sel = "disabled"
        else:
            m = re.search(r"^\s*SELINUX=(\w+)", cfg, re.M)
            if m:
                sel = m.group(1).lower()
        if "selinux" in st or cfg is not None:
            st["selinux"] = {"mode": sel}
        st["swap"] = {"active": kmods.fstab_swap() is not None}
        from .tools.systemctl import config_problem

        for unit, svc in (st.get("services") or {}).items():
            svc.pop("failed", None)
            svc["active"] = bool(svc.get("enabled")) and not svc.get("masked")
            if svc["active"] and config_problem(unit):
                svc["active"] = False
                svc["failed"] = True
        fw = st.get("firewall")
        if fw is not None:
            svc = (st.get("services") or {}).get("firewalld.service")
            if svc is not None:
                fw["running"] = bool(svc.get("enabled"))
            if "ufw" in fw or fw.get("backend") == "ufw":
                fw["running"] = bool(fw.get("ufw_enabled"))
            fw["runtime_ports"] = list(fw.get("ports") or [])
    # 3. DKMS
    try:
        from . import dkms  # noqa: F401  (written by another component)

        try:
            dkms.autoinstall(running)
        except Exception as exc:  # noqa: BLE001 - a failed rebuild is a boot note, not a crash
            notes.append(f"dkms autoinstall failed: {exc}")
    except ImportError:
        pass
    # 4. modules
    try:
        gpus = state.node().get("gpus") or []
    except (OSError, ValueError):
        gpus = []
    loaded = []
    init = read_initramfs(running)
    black_now, _install = kmods.modprobe_conf()
    if init is not None:
        early_black = set(init.get("blacklist") or [])
    else:
        early_black = black_now
    if gpus and "nouveau" not in early_black and kmods.module_path("nouveau", running):
        kmods.add_loaded("nouveau")
        loaded.append("nouveau")
    if gpus and "nouveau" not in loaded and "nvidia" not in black_now and kmods.module_path("nvidia", running):
        for m in ("nvidia", "nvidia_modeset", "nvidia_uvm", "nvidia_drm"):
            if kmods.module_path(m, running):
                kmods.add_loaded(m)
                loaded.append(m)
    for m in kmods.modules_load_entries():
        if kmods.norm(m) in loaded:
            continue
        if kmods.module_path(m, running) or kmods.builtin(m, running):
            kmods.add_loaded(m)
            loaded.append(kmods.norm(m))
        else:
            notes.append(f"systemd-modules-load: Failed to find module '{m}'")
    # sysctl after modules (systemd-sysctl runs after systemd-modules-load)
    existing = kmods.sysctl_values()
    for f in kmods.sysctl_files():
        for k, v in kmods.parse_sysctl_file(f):
            if k in existing:
                kmods.set_sysctl(k, v)
    if (state.read().get("swap") or {}).get("active") is False:
        pass
    kmods.sync_proc_sys()
    kmods.sync_proc_swaps()
    pkgdb.sync_tool_links()  # tools of packages not installed are not on PATH
    # 5. hardware view, counters
    try:
        from . import hw

        hw.sync()
    except ImportError:
        pass
    with state.locked() as st:
        st["reboots"] = int(st.get("reboots") or 0) + 1
        if notes:
            st["boot_notes"] = notes
    fs.hook("daemons", "on_boot")
    return {"kernel": running, "modules": loaded, "notes": notes}
