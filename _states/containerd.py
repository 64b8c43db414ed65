"""
containerd's config files at the installed containerd's config version:
the main ``config.toml`` made loadable without rewriting it
(``containerd.config_managed``) and drop-ins from Jinja templates
(``containerd.dropin_managed``).

.. code-block:: yaml

    k8snvidia-containerd-config:
      containerd.config_managed:
        - name: /etc/containerd/config.toml
        - imports: /etc/containerd/conf.d/*.toml
        - cri: true

    k8snvidia-containerd-cri:
      containerd.dropin_managed:
        - name: /etc/containerd/conf.d/10-k8snvidia-cri.toml
        - config: /etc/containerd/config.toml
        - source: salt://docker/files/containerd-cri.toml.jinja
"""

import re

__virtualname__ = "containerd"


def __virtual__():
    return __virtualname__


def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


# containerd reads config versions 2 (1.x), 3 (2.0-2.2) and 4 (2.3+); 1.7
# refuses a higher one ("unsupported config version"), 1.6 ignores it
# silently (the CRI settings vanish). containerd 2.0-2.2 merge the files in
# order and the last file's version decides how the merged plugins are read,
# so every file is written at one version: the installed containerd's. With
# version >= 2, disabled_plugins/required_plugins need full plugin ids
# ("invalid disabled plugin URI "cri" expect io.containerd.x.vx").

# containerd cmd/containerd/server/config/config.go v1MigratePluginName
_V1_PLUGINS = {
    "cri": "io.containerd.grpc.v1.cri",
    "cgroups": "io.containerd.monitor.v1.cgroups",
    "linux": "io.containerd.runtime.v1.linux",
    "scheduler": "io.containerd.gc.v1.scheduler",
    "bolt": "io.containerd.metadata.v1.bolt",
    "task": "io.containerd.runtime.v2.task",
    "opt": "io.containerd.internal.v1.opt",
    "restart": "io.containerd.internal.v1.restart",
    "tracing": "io.containerd.internal.v1.tracing",
    "otlp": "io.containerd.tracing.processor.v1.otlp",
    "aufs": "io.containerd.snapshotter.v1.aufs",
    "btrfs": "io.containerd.snapshotter.v1.btrfs",
    "devmapper": "io.containerd.snapshotter.v1.devmapper",
    "native": "io.containerd.snapshotter.v1.native",
    "overlayfs": "io.containerd.snapshotter.v1.overlayfs",
    "zfs": "io.containerd.snapshotter.v1.zfs",
}
# the plugins that make up the CRI, by config version
_CRI_IDS = ("cri", "io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime", "io.containerd.cri.v1.images")
_VERSION_RE = re.compile(r"(\d+)\.(\d+)")


def _full_plugin_id(name):
    if "." in name:
        return name
    if name in _V1_PLUGINS:
        return _V1_PLUGINS[name]
    if name.endswith("-service"):
        return "io.containerd.service.v1." + name
    return "io.containerd.grpc.v1." + name


def config_version_for(release):
    """The config version a containerd release reads natively: 2 for 1.x,
    3 for 2.0-2.2, 4 from 2.3 (containerd version/version.go ConfigVersion)."""
    major, minor = release
    if major < 2:
        return 2
    return 3 if (major, minor) < (2, 3) else 4


def _containerd_release(packages):
    """(major, minor) of the installed containerd, or None. The package
    database first (``pkg.version``: the list is already cached by the
    run's pkg states, so this starts no process), then ``containerd
    --version`` for a containerd installed without a package."""
    key = "containerd.release"
    if key in __context__:
        return __context__[key]
    found = None
    for pkg in packages or []:
        text = __salt__["pkg.version"](pkg) or ""
        text = text.split(":", 1)[-1]
        m = _VERSION_RE.match(text)
        if m:
            found = (int(m.group(1)), int(m.group(2)))
            break
    if found is None:
        import salt.utils.path  # pylint: disable=import-outside-toplevel

        exe = salt.utils.path.which("containerd")
        if exe:
            res = __salt__["cmd.run_all"]([exe, "--version"], python_shell=False, ignore_retcode=True)
            # "containerd github.com/containerd/containerd/v2 2.1.9 <commit>", "containerd containerd.io 1.6.33 <commit>"
            words = (res.get("stdout") or "").split()
            m = _VERSION_RE.match(words[2].lstrip("v")) if not res.get("retcode") and len(words) > 2 else None
            if m:
                found = (int(m.group(1)), int(m.group(2)))
    if found is not None:
        __context__[key] = found
    return found


def _top_level(text):
    """The lines of a TOML text before its first table header."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith("["):
            return lines[:i], lines[i:]
    return lines, []


def _string_array(lines, key):
    """(start, end, items) of a top-level ``key = [...]`` (possibly on several
    lines), or None. Items are the quoted strings in it."""
    start_re = re.compile(r"^\s*" + re.escape(key) + r"\s*=\s*\[")
    for i, line in enumerate(lines):
        if start_re.match(line):
            j = i
            body = line.split("=", 1)[1]
            while "]" not in _strip_comment(body) and j + 1 < len(lines):
                j += 1
                body += "\n" + lines[j]
            items = re.findall(r"\"((?:[^\"\\]|\\.)*)\"|'([^']*)'", _strip_comment(body))
            return i, j, [a or b for a, b in items]
    return None


def _strip_comment(text):
    return "\n".join(re.sub(r"#[^\"']*$", "", line) for line in text.split("\n"))


def _toml_list(items):
    return "[" + ", ".join('"' + i.replace("\\", "\\\\").replace('"', '\\"') + '"' for i in items) + "]"


def _plan_root(text, release, imports_glob, cri):
    """(new text, config version, notes) for containerd's main config file;
    raises ValueError when it cannot be made to load. ``text`` None: the
    file is missing. ``cri``: containerd serves the Kubernetes CRI (its CRI
    plugins must not be disabled)."""
    native = config_version_for(release)
    rel = f"{release[0]}.{release[1]}"
    top, tables = _top_level(text or "")
    notes = []
    version = None
    vline = None
    for i, line in enumerate(top):
        m = re.match(r"^\s*version\s*=\s*(\S+)", _strip_comment(line))
        if m:
            vline = i
            try:
                version = int(m.group(1))
            except ValueError:
                raise ValueError(f"its version {m.group(1)!r} is not a number") from None
    if version is not None and version > native:
        raise ValueError(
            f"it has version = {version} but the installed containerd {rel} reads config versions up to {native}"
        )
    if version is None or (version < native and not any(t.strip() for t in tables)):
        if version != native:
            notes.append(f"version = {native} (containerd {rel})")
        version = native
        if vline is None:
            top.insert(0, f"version = {version}")
            vline = 0
        else:
            top[vline] = f"version = {version}"
    elif version < 2:
        raise ValueError(f"it is a version {version} config with plugin sections; migrate it (containerd config migrate)")
    for key in ("disabled_plugins", "required_plugins"):
        found = _string_array(top, key)
        if not found:
            continue
        start, end, items = found
        new = []
        for item in items:
            full = _full_plugin_id(item)
            if key == "disabled_plugins" and cri and (item in _CRI_IDS or full in _CRI_IDS):
                notes.append(f"{key}: {item!r} removed (containerd is the Kubernetes CRI)")
                continue
            if full != item:
                notes.append(f"{key}: {item!r} -> {full!r}")
            if full not in new:
                new.append(full)
        if new != items:
            top[start : end + 1] = [f"{key} = {_toml_list(new)}"]
    found = _string_array(top, "imports")
    if found is None:
        top.insert(vline + 1, f"imports = {_toml_list([imports_glob])}")
        notes.append(f"imports {imports_glob}")
    elif imports_glob not in found[2]:
        start, end, items = found
        top[start : end + 1] = [f"imports = {_toml_list([imports_glob] + items)}"]
        notes.append(f"imports {imports_glob}")
    out = "\n".join(top + tables)
    if text is None or text.endswith("\n") or not text:
        out += "\n"
    return out, version, notes


def _read(path):
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def _release_or_ret(ret, packages, what):
    release = _containerd_release(packages)
    if release is None:
        ret["result"] = None if __opts__["test"] else False
        ret["comment"] = (
            f"{what}: the config version follows the installed containerd, which is not installed yet"
            if __opts__["test"]
            else f"{what}: containerd is not installed (no package {', '.join(packages or [])} and no containerd "
            "in PATH): its config version cannot be chosen"
        )
    return release


def config_managed(name, imports, cri=True, packages=("containerd.io", "containerd"), mode="0644"):
    """
    containerd's main config file (``name``) made loadable by the installed
    containerd, without rewriting it: ``version`` set to that containerd's
    config version (when missing, or lower and the file has no tables),
    ``imports`` gaining the drop-in glob ``imports``, and
    ``disabled_plugins``/``required_plugins`` holding full plugin ids, without
    the CRI plugins when ``cri`` is true. Comments and other settings stay.

    .. code-block:: yaml

        k8snvidia-containerd-config:
          containerd.config_managed:
            - name: /etc/containerd/config.toml
            - imports: /etc/containerd/conf.d/*.toml
            - cri: true
    """
    ret = _ret(name)
    release = _release_or_ret(ret, packages, name)
    if release is None:
        return ret
    text = _read(name)
    try:
        new, version, notes = _plan_root(text, release, imports, cri)
    except ValueError as exc:
        ret["result"] = False
        ret["comment"] = f"{name} cannot be loaded by containerd {release[0]}.{release[1]}: {exc}"
        return ret
    sub = __states__["file.managed"](name=name, contents=new, makedirs=True, mode=mode)
    sub["name"] = name
    if sub.get("changes") and notes:
        sub["changes"]["containerd"] = "; ".join(notes)
    sub["comment"] = f"{sub.get('comment', '')} (config version {version})".strip()
    return sub


def dropin_managed(name, config, source, context=None, packages=("containerd.io", "containerd"), mode="0644"):
    """
    A containerd drop-in (``name``, a Jinja template ``source``) written at
    the config version of the main file ``config`` (as
    :py:func:`config_managed` leaves it), handed to the template as
    ``version``.
    """
    ret = _ret(name)
    release = _release_or_ret(ret, packages, name)
    if release is None:
        return ret
    try:
        _, version, _ = _plan_root(_read(config), release, "", False)
    except ValueError as exc:
        ret["result"] = False
        ret["comment"] = f"{config} cannot be loaded by containerd {release[0]}.{release[1]}: {exc}"
        return ret
    ctx = dict(context or {}, version=version)
    sub = __states__["file.managed"](
        name=name, source=source, template="jinja", context=ctx, makedirs=True, mode=mode
    )
    sub["name"] = name
    sub["comment"] = f"{sub.get('comment', '')} (config version {version})".strip()
    return sub
