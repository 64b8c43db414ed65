"""
Which kernels are installed, which one boots next, and how to change it.

Salt 3008 removed the ``kernelpkg`` modules; this is K8sNvidia's own,
smaller replacement. It knows three boot tools (the map's
``kernel:boot_tool``):

``grubby``
    el8 and newer (BootLoaderSpec entries): ``grubby --default-kernel`` and
    ``grubby --set-default=/boot/vmlinuz-K``.
``grub2-mkconfig``
    el7: ``GRUB_DEFAULT`` in ``/etc/default/grub`` (``saved`` means the
    ``saved_entry`` of ``grubenv``) resolved against the menu entries of
    ``grub.cfg``; changed with ``grub2-mkconfig -o CFG`` and
    ``grub2-set-default ENTRY``.
``update-grub``
    Debian family: the same, with ``update-grub`` and ``grub-set-default``.

Initramfs images are rebuilt with ``dracut -f IMG K`` or
``update-initramfs -u -k K``, keeping a copy of the previous image as
``IMG.bak`` (as the seed did by hand).
"""

import logging
import os
import re
import shutil

import salt.utils.path
from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "bootkernel"

# Everything is read below ROOT; unit tests point it at a scratch directory.
ROOT = "/"
BOOT_TOOLS = ("grubby", "grub2-mkconfig", "update-grub")
GRUB_CONFIGS = ("/boot/grub2/grub.cfg", "/boot/grub/grub.cfg")
GRUB_DEFAULTS_FILE = "/etc/default/grub"
BLS_DIR = "/boot/loader/entries"
# tool -> (initramfs image path, command line); {k} is the kernel release.
INITRAMFS = {
    "dracut": ("/boot/initramfs-{k}.img", ["dracut", "-f", "/boot/initramfs-{k}.img", "{k}"]),
    "update-initramfs": ("/boot/initrd.img-{k}", ["update-initramfs", "-u", "-k", "{k}"]),
}
_ENTRY_RE = re.compile(r"""^\s*(menuentry|submenu)\s+(?:'((?:[^']|'\\'')*)'|"([^"]*)")(.*)$""")
_ID_RE = re.compile(r"""\$menuentry_id_option\s+'([^']*)'""")
_LINUX_RE = re.compile(r"^\s*linux(?:16|efi)?\s+(\S+)")
_SET_DEFAULT_RE = re.compile(r'^\s*set default="?([^"\n]*)"?\s*$', re.M)
_DEBIAN_IMAGE_RE = re.compile(r"^linux-image-(?:unsigned-)?(\d+\.\d+\S*)$")


def __virtual__():
    if not os.uname().sysname == "Linux":
        return (False, "bootkernel: Linux only")
    return __virtualname__


# ------------------------------------------------------------------ helpers
def _path(path):
    return os.path.join(ROOT, path.lstrip("/"))


def _read(path):
    try:
        with open(_path(path), encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def _run(cmd):
    """Run a real command line; raise with its own words when it fails."""
    res = __salt__["cmd.run_all"](cmd, python_shell=False, ignore_retcode=True)
    if res.get("retcode"):
        msg = (res.get("stderr") or res.get("stdout") or "").strip()
        raise CommandExecutionError(f"{' '.join(cmd)} failed (rc {res.get('retcode')}): {msg}")
    return res


def _version_key(release):
    """Sort key for kernel releases: numbers compare as numbers."""
    parts = re.split(r"[.\-_+~]", str(release))
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts]


def _sorted(releases):
    return sorted(set(releases), key=_version_key)


def _boot_tool(boot_tool=None):
    if boot_tool:
        if boot_tool not in BOOT_TOOLS:
            raise SaltInvocationError(f"boot_tool {boot_tool!r} is not one of {', '.join(BOOT_TOOLS)}")
        return boot_tool
    configured = __salt__["config.get"]("bootkernel:boot_tool") if "config.get" in __salt__ else None
    if configured:
        return _boot_tool(configured)
    bls = _path(BLS_DIR)
    if os.path.isdir(bls) and os.listdir(bls) and salt.utils.path.which("grubby"):
        return "grubby"
    if salt.utils.path.which("grub2-mkconfig"):
        return "grub2-mkconfig"
    if salt.utils.path.which("update-grub"):
        return "update-grub"
    raise CommandExecutionError("bootkernel: no boot tool found (grubby, grub2-mkconfig or update-grub)")


# The commands each boot tool needs to read and change the boot default.
BOOT_TOOL_COMMANDS = {
    "grubby": ("grubby",),
    "grub2-mkconfig": ("grub2-mkconfig", "grub2-set-default"),
    "update-grub": ("update-grub", "grub-set-default"),
}


def missing_tools(boot_tool=None):
    """
    The commands of the boot tool that this node lacks (an empty list when
    it has them all; every command when no boot tool is found at all): a
    node without GRUB (a container, or a systemd-boot machine whose kernel
    packages install their own boot entries) has no boot default to manage.

    CLI Example:

    .. code-block:: bash

        salt '*' bootkernel.missing_tools update-grub
    """
    try:
        tool = _boot_tool(boot_tool)
    except CommandExecutionError:
        return sorted({cmd for cmds in BOOT_TOOL_COMMANDS.values() for cmd in cmds})
    return [cmd for cmd in BOOT_TOOL_COMMANDS[tool] if not salt.utils.path.which(cmd)]


def has_modules(release):
    """
    True when kernel ``release`` has its modules installed here
    (``/lib/modules/<release>``); an initramfs can only be built for such a
    kernel (the running kernel of a container or of a machine booted from
    elsewhere may have none).

    CLI Example:

    .. code-block:: bash

        salt '*' bootkernel.has_modules 6.1.0-25-amd64
    """
    return os.path.isdir(_path(f"/lib/modules/{release}"))


def _grub_config(grub_config=None):
    if grub_config:
        return grub_config
    for cfg in GRUB_CONFIGS:
        if os.path.isfile(_path(cfg)):
            return cfg
    return GRUB_CONFIGS[0]


def _unquote(value):
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _grub_default_setting():
    """GRUB_DEFAULT from /etc/default/grub (GRUB's own default: 0)."""
    text = _read(GRUB_DEFAULTS_FILE) or ""
    value = "0"
    for line in text.splitlines():
        if line.strip().startswith("GRUB_DEFAULT="):
            value = _unquote(line.split("=", 1)[1])
    return value


def _cfg_default(text):
    """What grub.cfg sets ``default`` to when no one-time ``next_entry`` is
    set (GRUB boots by grub.cfg, whatever /etc/default/grub says now)."""
    value = None
    for match in _SET_DEFAULT_RE.finditer(text):
        if match.group(1) != "${next_entry}":
            value = match.group(1)
    return value


def _grubenv(grub_config):
    env = {}
    text = _read(os.path.join(os.path.dirname(grub_config), "grubenv")) or ""
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, val = line.split("=", 1)
            env[key.strip()] = val.strip()
    return env


def menu(grub_config=None):
    """
    The menu entries of grub.cfg: a list of ``{"title", "id", "release",
    "children"}`` (``children`` only for submenus).

    CLI Example:

    .. code-block:: bash

        salt '*' bootkernel.menu
    """
    text = _read(_grub_config(grub_config)) or ""
    top = []
    stack = []  # open blocks: an entry dict, or None for other { } blocks
    for line in text.splitlines():
        stripped = line.strip()
        match = _ENTRY_RE.match(line)
        if match and stripped.endswith("{"):
            title = match.group(2) if match.group(2) is not None else match.group(3)
            title = title.replace("'\\''", "'")
            ident = _ID_RE.search(match.group(4))
            entry = {"title": title, "id": ident.group(1) if ident else None, "release": None}
            if match.group(1) == "submenu":
                entry["children"] = []
            parents = [e for e in stack if e is not None and "children" in e]
            (parents[-1]["children"] if parents else top).append(entry)
            stack.append(entry)
            continue
        if stripped.endswith("{"):
            stack.append(None)
            continue
        if stripped == "}":
            if stack:
                stack.pop()
            continue
        linux = _LINUX_RE.match(line)
        if linux and stack and stack[-1] is not None:
            image = os.path.basename(linux.group(1))
            if image.startswith("vmlinuz-"):
                stack[-1]["release"] = image[len("vmlinuz-"):]
    return top


def _pick(entries, key):
    if key.isdigit():
        idx = int(key)
        return entries[idx] if idx < len(entries) else None
    for entry in entries:
        if key in (entry["title"], entry["id"]):
            return entry
    return None


def _resolve(entries, value):
    """The release GRUB boots for a GRUB_DEFAULT / saved_entry value."""
    node = None
    level = entries
    for part in str(value).split(">"):
        node = _pick(level, part)
        if node is None:
            return None
        level = node.get("children") or []
    while node is not None and "children" in node:
        node = node["children"][0] if node["children"] else None
    return node["release"] if node else None


def _entry_path(entries, release):
    """The grub2-set-default argument (titles, '>'-joined) for a release."""
    for entry in entries:
        if entry.get("release") == release and "children" not in entry:
            return entry["title"]
    for entry in entries:
        for child in entry.get("children") or []:
            if child.get("release") == release:
                return f"{entry['title']}>{child['title']}"
    return None


# ------------------------------------------------------------------- public
def installed(package=None):
    """
    The kernel releases installed, oldest first. With ``package``, only the
    releases that package provides (rpm; on dpkg systems the ``linux-image-*``
    packages the metapackage depends on), else every ``/boot/vmlinuz-*``.

    CLI Example:

    .. code-block:: bash

        salt '*' bootkernel.installed
        salt '*' bootkernel.installed kernel-lt
    """
    try:
        names = os.listdir(_path("/boot"))
    except OSError:
        names = []
    on_disk = [n[len("vmlinuz-"):] for n in names if n.startswith("vmlinuz-") and "rescue" not in n]
    if not package:
        return _sorted(on_disk)
    if salt.utils.path.which("rpm"):
        res = __salt__["cmd.run_all"](
            ["rpm", "-q", "--queryformat", r"%{VERSION}-%{RELEASE}.%{ARCH}\n", package],
            python_shell=False,
            ignore_retcode=True,
        )
        if res.get("retcode"):
            return []
        return _sorted(line.strip() for line in res.get("stdout", "").splitlines() if line.strip())
    if salt.utils.path.which("dpkg-query"):
        return _sorted(_debian_releases(package, on_disk))
    return _sorted(on_disk)


def _debian_releases(package, on_disk):
    direct = _DEBIAN_IMAGE_RE.match(package)
    if direct:
        return [direct.group(1)]
    found, seen, todo = [], set(), [package]
    for _ in range(4):  # metapackage -> linux-image-<flavour> -> linux-image-K
        nxt = []
        for pkg in todo:
            if pkg in seen:
                continue
            seen.add(pkg)
            res = __salt__["cmd.run_all"](
                ["dpkg-query", "-W", r"--showformat=${Status}|${Depends}\n", pkg],
                python_shell=False,
                ignore_retcode=True,
            )
            out = (res.get("stdout") or "").strip()
            status, _sep, depends = out.partition("|")
            if res.get("retcode") or "installed" not in status.split():
                if pkg == package:
                    return []  # the package itself is not installed
                continue
            for dep in re.split(r"[,|]", depends):
                name = dep.strip().split(" ")[0].split(":")[0]
                if not name:
                    continue
                match = _DEBIAN_IMAGE_RE.match(name)
                if match:
                    found.append(match.group(1))
                elif name.startswith("linux-"):
                    nxt.append(name)
        todo = nxt
    found = [r for r in found if r in on_disk] or found
    # dpkg-query could not say (or did not understand): the newest on disk
    return found or on_disk


def running():
    """
    The kernel release running now: the ``kernelrelease`` grain (taken when
    the minion starts, so it follows reboots), else ``os.uname()``.

    CLI Example:

    .. code-block:: bash

        salt '*' bootkernel.running
    """
    return __grains__.get("kernelrelease") or os.uname().release


def default(boot_tool=None, grub_config=None):
    """
    The kernel release that will boot next (None when it cannot be told).

    CLI Example:

    .. code-block:: bash

        salt '*' bootkernel.default
    """
    tool = _boot_tool(boot_tool)
    if tool == "grubby":
        res = __salt__["cmd.run_all"](["grubby", "--default-kernel"], python_shell=False, ignore_retcode=True)
        image = (res.get("stdout") or "").strip().splitlines()
        if res.get("retcode") or not image:
            return None
        name = os.path.basename(image[-1].strip())
        return name[len("vmlinuz-"):] if name.startswith("vmlinuz-") else None
    cfg = _grub_config(grub_config)
    entries = menu(cfg)
    value = _cfg_default(_read(cfg) or "")
    if value is None:
        value = _grub_default_setting()
    if value in ("saved", "${saved_entry}"):
        value = _grubenv(cfg).get("saved_entry") or "0"
    return _resolve(entries, value)


def _grub_regenerate(tool, cfg):
    if tool == "update-grub":
        _run(["update-grub"])
    else:
        _run(["grub2-mkconfig", "-o", cfg])


def _set_grub_default_saved():
    """GRUB_DEFAULT=saved in /etc/default/grub (True when it changed)."""
    path = _path(GRUB_DEFAULTS_FILE)
    text = _read(GRUB_DEFAULTS_FILE)
    if text is None:
        text = ""
    if _grub_default_setting() == "saved":
        return False
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("GRUB_DEFAULT=")]
    lines.insert(0, "GRUB_DEFAULT=saved")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return True


def set_default(release, boot_tool=None, grub_config=None):
    """
    Make ``release`` the kernel that boots next. Returns ``{"old", "new",
    "commands"}``; raises when the boot tool fails or the release has no
    boot entry.

    CLI Example:

    .. code-block:: bash

        salt '*' bootkernel.set_default 5.4.278-1.el7.elrepo.x86_64
    """
    tool = _boot_tool(boot_tool)
    cfg = _grub_config(grub_config)
    old = default(tool, cfg)
    ret = {"old": old, "new": old, "commands": []}
    if old == release:
        return ret
    if not os.path.exists(_path(f"/boot/vmlinuz-{release}")):
        raise CommandExecutionError(f"kernel {release} is not installed: /boot/vmlinuz-{release} is missing")
    if tool == "grubby":
        cmd = ["grubby", f"--set-default=/boot/vmlinuz-{release}"]
        _run(cmd)
        ret["commands"].append(cmd)
    else:
        regen = ["update-grub"] if tool == "update-grub" else ["grub2-mkconfig", "-o", cfg]
        if _entry_path(menu(cfg), release) is None:
            _grub_regenerate(tool, cfg)
            ret["commands"].append(regen)
        if default(tool, cfg) != release:
            path = _entry_path(menu(cfg), release)
            if path is None:
                raise CommandExecutionError(f"{cfg} has no boot entry for kernel {release}")
            if _set_grub_default_saved():
                _grub_regenerate(tool, cfg)
                ret["commands"].append(regen)
            cmd = ["grub-set-default" if tool == "update-grub" else "grub2-set-default", path]
            _run(cmd)
            ret["commands"].append(cmd)
    ret["new"] = default(tool, cfg)
    if ret["new"] != release:
        raise CommandExecutionError(f"the boot default is still {ret['new']} after making {release} the default")
    return ret


def initramfs_image(release, tool):
    """
    The initramfs image path of ``release`` for an initramfs tool.

    CLI Example:

    .. code-block:: bash

        salt '*' bootkernel.initramfs_image 5.4.0-150-generic update-initramfs
    """
    if tool not in INITRAMFS:
        raise SaltInvocationError(f"initramfs tool {tool!r} is not one of {', '.join(INITRAMFS)}")
    return INITRAMFS[tool][0].format(k=release)


def initramfs_older_than(release, tool, path):
    """
    True when the initramfs image of ``release`` exists and is older than the
    file ``path`` (e.g. a modprobe blacklist written after the image was
    built), so the image does not carry it yet.

    CLI Example:

    .. code-block:: bash

        salt '*' bootkernel.initramfs_older_than 5.4.0-150-generic update-initramfs /etc/modprobe.d/blacklist-nouveau.conf
    """
    try:
        image = os.stat(_path(initramfs_image(release, tool)))
        ref = os.stat(_path(path))
    except OSError:
        return False
    return image.st_mtime_ns < ref.st_mtime_ns


def rebuild_initramfs(release, tool, backup=True):
    """
    Rebuild the initramfs of ``release`` with ``dracut -f IMG K`` or
    ``update-initramfs -u -k K``, first copying the current image to
    ``IMG.bak`` when ``backup``. Returns ``{"image", "backup", "command"}``.

    CLI Example:

    .. code-block:: bash

        salt '*' bootkernel.rebuild_initramfs 3.10.0-1062.18.1.el7.x86_64 dracut
    """
    image = initramfs_image(release, tool)
    if not os.path.isdir(_path(f"/lib/modules/{release}")):
        raise CommandExecutionError(f"kernel {release} has no /lib/modules/{release}: not installed")
    saved = None
    if backup and os.path.isfile(_path(image)):
        saved = image + ".bak"
        shutil.copy2(_path(image), _path(saved))
    cmd = [part.format(k=release) for part in INITRAMFS[tool][1]]
    if tool == "update-initramfs" and saved is None and not os.path.isfile(_path(image)):
        cmd[1] = "-c"  # -u only updates an existing image
    _run(cmd)
    return {"image": image, "backup": saved, "command": cmd}
