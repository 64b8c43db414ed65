"""Package database, repository catalog and package payloads of a twin node.

Shared by the emulated package managers (yum/dnf/rpm, apt-get/apt-cache/dpkg).

* The **catalog** (``twin/catalog/*.yaml``, or ``$K8STWIN_CATALOG``) says which
  packages exist at which repository URL (see ``twin/catalog/README.md``).
* **Repositories** are read from the real files the states write
  (``/etc/yum.repos.d/*.repo``, ``/etc/apt/sources.list(.d)``); a package is
  installable only from an enabled repository whose URL the catalog knows.
* **Installed packages** live in ``state.json`` key ``packages``
  (``{name: {"version", "release", "arch", "repo", "epoch", "installtime", "files"}}``),
  apt holds in ``holds``; tools enabled by installed packages in ``tools``.
* **Payloads**: installing a package creates the files it would (kernels,
  headers, binaries, unit files) and runs its scriptlets' effects
  (initramfs + boot entries for kernels, services on Debian).
"""

import configparser
import fnmatch
import glob
import os
import re
import time

from . import fs, state

ARCH_RPM = "x86_64"
ARCH_DEB = "amd64"
CATALOG_ENV = "K8STWIN_CATALOG"

# --------------------------------------------------------------------------
# version comparison


def _rpmvercmp(a, b):
    """rpm's rpmvercmp (lib/rpmvercmp.c), including ``~`` and ``^``."""
    if a == b:
        return 0
    i = j = 0
    while i < len(a) or j < len(b):
        while i < len(a) and not a[i].isalnum() and a[i] not in "~^":
            i += 1
        while j < len(b) and not b[j].isalnum() and b[j] not in "~^":
            j += 1
        for mark in "~^":
            ca = i < len(a) and a[i] == mark
            cb = j < len(b) and b[j] == mark
            if ca or cb:
                if ca and cb:
                    i += 1
                    j += 1
                    break
                if mark == "~":
                    return -1 if ca else 1
                # '^'
                if ca:
                    return -1 if j >= len(b) else 1
                return 1 if i >= len(a) else -1
        else:
            if not (i < len(a) and j < len(b)):
                break
            if a[i].isdigit():
                m = re.match(r"\d*", a[i:]).group()
                n = re.match(r"\d*", b[j:]).group()
                isnum = True
            else:
                m = re.match(r"[A-Za-z]*", a[i:]).group()
                n = re.match(r"[A-Za-z]*", b[j:]).group()
                isnum = False
            i += len(m)
            j += len(n)
            if not n:
                return 1 if isnum else -1
            if isnum:
                m2, n2 = m.lstrip("0"), n.lstrip("0")
                if len(m2) != len(n2):
                    return 1 if len(m2) > len(n2) else -1
                m, n = m2, n2
            if m != n:
                return 1 if m > n else -1
            continue
    if i >= len(a) and j >= len(b):
        return 0
    return -1 if i >= len(a) else 1


def split_evr(text):
    """'3:26.1.4-1.el7' -> ('3', '26.1.4', '1.el7')."""
    epoch = "0"
    if ":" in text:
        epoch, text = text.split(":", 1)
    version, _, release = text.partition("-")
    return epoch or "0", version, release


def rpm_compare(v1, v2):
    e1, ver1, r1 = split_evr(v1)
    e2, ver2, r2 = split_evr(v2)
    rc = _rpmvercmp(e1, e2) or _rpmvercmp(ver1, ver2)
    if rc or not (r1 and r2):
        return rc
    return _rpmvercmp(r1, r2)


def _deb_order(c):
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _deb_part(a, b):
    i = j = 0
    while i < len(a) or j < len(b):
        diff = 0
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _deb_order(a[i]) if i < len(a) and not a[i].isdigit() else 0
            bc = _deb_order(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ac != bc:
                return -1 if ac < bc else 1
            i += 1
            j += 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        while i < len(a) and a[i].isdigit() and j < len(b) and b[j].isdigit():
            if not diff:
                diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if diff:
            return -1 if diff < 0 else 1
    return 0


def deb_compare(v1, v2):
    """dpkg's verrevcmp over epoch, upstream version and revision."""

    def parts(v):
        epoch = 0
        if ":" in v:
            e, v = v.split(":", 1)
            epoch = int(e or 0)
        if "-" in v:
            up, rev = v.rsplit("-", 1)
        else:
            up, rev = v, ""
        return epoch, up, rev

    e1, u1, r1 = parts(v1)
    e2, u2, r2 = parts(v2)
    if e1 != e2:
        return -1 if e1 < e2 else 1
    return _deb_part(u1, u2) or _deb_part(r1, r2)


def compare(fmt, v1, v2):
    return deb_compare(v1, v2) if fmt == "deb" else rpm_compare(v1, v2)


# --------------------------------------------------------------------------
# catalog


def catalog_dir():
    return os.environ.get(CATALOG_ENV) or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "catalog")


_CATALOG = None


def catalog():
    """All catalog repositories: list of dicts (see twin/catalog/README.md)."""
    global _CATALOG
    if _CATALOG is None:
        import yaml

        repos = []
        for fname in sorted(glob.glob(os.path.join(catalog_dir(), "*.yaml"))):
            with open(fname, encoding="utf-8") as fh:
                doc = yaml.safe_load(fh) or {}
            for repo in doc.get("repositories") or []:
                repo = dict(repo)
                repo.setdefault("type", "rpm")
                repo["_file"] = os.path.basename(fname)
                pkgs = {}
                for name, spec in (repo.get("packages") or {}).items():
                    spec = dict(spec or {})
                    versions = spec.get("versions") or []
                    if isinstance(versions, str):
                        versions = [versions]
                    spec["versions"] = [str(v) for v in versions]
                    spec.setdefault("arch", ARCH_RPM if repo["type"] == "rpm" else ARCH_DEB)
                    pkgs[str(name)] = spec
                repo["packages"] = pkgs
                repos.append(repo)
        _CATALOG = repos
    return _CATALOG


def _norm_url(url):
    return (url or "").strip().rstrip("/")


def _url_match(url, patterns):
    url = _norm_url(url)
    for pat in patterns or []:
        if fnmatch.fnmatchcase(url, _norm_url(pat)):
            return True
    return False


def find_catalog(kind, url, suite=None):
    """The catalog repository serving ``url`` (and ``suite`` for deb), or None."""
    for repo in catalog():
        if repo["type"] != kind:
            continue
        if not _url_match(url, repo.get("urls")):
            continue
        if kind == "deb" and suite is not None:
            suites = repo.get("suites") or ["*"]
            if not any(fnmatch.fnmatchcase(suite, s) for s in suites):
                continue
        return repo
    return None


def host_of(url):
    m = re.match(r"^[a-z]+://([^/:]+)", url or "")
    return m.group(1) if m else (url or "")


def unreachable(repo_id, url):
    """True when the node's ``repo_unreachable`` fault names this repository.

    The fault value may be ``true`` (every repository), a repo id, a URL
    substring, or a list of those."""
    try:
        val = state.fault("repo_unreachable")
    except (OSError, ValueError, SystemExit):
        return False
    if not val:
        return False
    if val is True:
        return True
    vals = val if isinstance(val, list) else [val]
    for v in vals:
        v = str(v)
        if v == repo_id or (v and v in (url or "")):
            return True
    return False


def repository_keys():
    """{basename: text}: a stand-in of every repository key the catalog
    publishes (deb ``keys``, rpm ``gpgkeys`` over http), for the twin's
    artifact store, where the states' key downloads look first."""
    out = {}
    for repo in catalog():
        for url in list(repo.get("keys") or []) + [k for k in repo.get("gpgkeys") or [] if k.startswith("http")]:
            name = url.rstrip("/").rsplit("/", 1)[-1]
            out.setdefault(name, f"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nk8stwin stand-in for {url}\n-----END PGP PUBLIC KEY BLOCK-----\n")
    return out


# --------------------------------------------------------------------------
# yum/dnf repositories


def yum_vars(major):
    return {"basearch": ARCH_RPM, "arch": ARCH_RPM, "releasever": str(major), "infra": "stock", "rltype": "", "contentdir": "centos" if major == 7 else "rocky"}


def expand(text, variables):
    def sub(m):
        key = m.group(1) or m.group(2)
        return variables.get(key, m.group(0))

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, text or "")


def yum_main(dnf=False):
    """[main] of yum.conf/dnf.conf as a dict (lowercase keys)."""
    for cand in (["/etc/dnf/dnf.conf", "/etc/yum.conf"] if dnf else ["/etc/yum.conf", "/etc/yum/yum.conf"]):
        text = fs.read(cand)
        if text is not None:
            cp = configparser.RawConfigParser(strict=False)
            try:
                cp.read_string(text)
            except configparser.Error:
                return {}
            return dict(cp.items("main")) if cp.has_section("main") else {}
    return {}


def _truthy(val, default=False):
    if val is None:
        return default
    return str(val).strip().lower() in ("1", "yes", "true", "on")


def yum_repos(major, dnf=False):
    """Configured repositories, in file order: list of dicts with id, name,
    baseurls, mirrorlist, enabled, gpgcheck, gpgkeys, exclude, skip_if_unavailable, file."""
    main = yum_main(dnf)
    variables = yum_vars(major)
    reposdirs = (main.get("reposdir") or "").split() or ["/etc/yum.repos.d", "/etc/yum/repos.d"]
    repos = []
    seen = set()
    for d in reposdirs:
        for fname in fs.glob(d.rstrip("/") + "/*.repo"):
            cp = configparser.RawConfigParser(strict=False)
            try:
                cp.read_string(fs.read(fname) or "")
            except configparser.Error as exc:
                repos.append({"id": None, "error": f"File contains parsing errors: file://{fname}", "file": fname, "detail": str(exc)})
                continue
            for sect in cp.sections():
                if sect in seen or sect == "main":
                    continue
                seen.add(sect)
                opts = dict(cp.items(sect))
                baseurls = [expand(u, variables) for u in re.split(r"[\s,]+", opts.get("baseurl", "")) if u]
                repos.append(
                    {
                        "id": sect,
                        "name": expand(opts.get("name", sect), variables),
                        "baseurls": baseurls,
                        "mirrorlist": expand(opts.get("mirrorlist") or opts.get("metalink") or "", variables),
                        "enabled": _truthy(opts.get("enabled"), True),
                        "gpgcheck": _truthy(opts.get("gpgcheck"), _truthy(main.get("gpgcheck"), False)),
                        "gpgkeys": [expand(u, variables) for u in re.split(r"[\s,]+", opts.get("gpgkey", "")) if u],
                        "exclude": (opts.get("exclude") or opts.get("excludepkgs") or "").replace(",", " ").split(),
                        "skip_if_unavailable": _truthy(opts.get("skip_if_unavailable"), False),
                        "file": fname,
                    }
                )
    return repos


def main_excludes(dnf=False):
    main = yum_main(dnf)
    return (main.get("exclude") or main.get("excludepkgs") or "").replace(",", " ").split()


# --------------------------------------------------------------------------
# apt sources


def _parse_options(text):
    opts = {}
    for item in text.split():
        if "=" in item:
            k, v = item.split("=", 1)
            opts[k] = v
    return opts


def apt_sources():
    """Configured deb sources: list of dicts with uri, suite, components,
    signed_by, file, line (one per suite)."""
    out = []
    files = ["/etc/apt/sources.list"] + fs.glob("/etc/apt/sources.list.d/*.list")
    for fname in files:
        for lineno, line in enumerate((fs.read(fname) or "").splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            m = re.match(r"^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$", line)
            if not m:
                out.append({"error": f"Malformed entry {lineno} in list file {fname} (Component)", "file": fname})
                continue
            if m.group(1) != "deb":
                continue
            opts = _parse_options(m.group(2) or "")
            out.append(
                {
                    "uri": m.group(3).replace("$(ARCH)", ARCH_DEB),
                    "suite": m.group(4),
                    "components": m.group(5).split(),
                    "signed_by": opts.get("signed-by"),
                    "trusted": opts.get("trusted") == "yes",
                    "file": fname,
                }
            )
    for fname in fs.glob("/etc/apt/sources.list.d/*.sources"):
        for stanza in re.split(r"\n\s*\n", fs.read(fname) or ""):
            fields = {}
            key = None
            for line in stanza.splitlines():
                if line.startswith("#"):
                    continue
                if line[:1] in (" ", "\t") and key:
                    fields[key] += "\n" + line.strip()
                    continue
                if ":" in line:
                    key, val = line.split(":", 1)
                    key = key.strip().lower()
                    fields[key] = val.strip()
            if not fields or "deb" not in fields.get("types", "deb").split():
                continue
            if fields.get("enabled", "yes").lower() == "no":
                continue
            signed = fields.get("signed-by")
            if signed and "\n" in signed:
                signed = "(inline)"
            for uri in fields.get("uris", "").replace("$(ARCH)", ARCH_DEB).split():
                for suite in fields.get("suites", "").split():
                    out.append(
                        {
                            "uri": uri,
                            "suite": suite,
                            "components": fields.get("components", "").split(),
                            "signed_by": signed,
                            "trusted": fields.get("trusted", "") == "yes",
                            "file": fname,
                        }
                    )
    return out


APT_INDEX = "/var/lib/apt/lists/k8stwin-index.json"


def apt_index():
    """What the last ``apt-get update`` fetched: list of {"uri", "suite", "catalog": name}."""
    return fs.read_json(APT_INDEX, []) or []


# --------------------------------------------------------------------------
# installed database


def installed():
    return state.read().get("packages") or {}


def evr_of(entry):
    ver = entry.get("version", "")
    if entry.get("release"):
        ver += "-" + entry["release"]
    if entry.get("epoch") not in (None, "", "0", 0):
        ver = f"{entry['epoch']}:{ver}"
    return ver


def split_catalog_version(fmt, text):
    """Catalog version -> (epoch, version, release) for rpm; deb keeps the whole string."""
    if fmt == "deb":
        return "", text, ""
    return split_evr(text)


class Candidate:
    """One package version available from one repository."""

    def __init__(self, name, full, spec, repo_id, catrepo, fmt):
        self.name = name
        self.full = full  # 'E:V-R' or deb version
        self.spec = spec
        self.repo_id = repo_id
        self.catrepo = catrepo
        self.fmt = fmt
        self.epoch, self.version, self.release = split_catalog_version(fmt, full)
        self.arch = spec.get("arch")

    @property
    def vr(self):
        return f"{self.version}-{self.release}" if self.release else self.version

    @property
    def nevra(self):
        return f"{self.name}-{self.vr}.{self.arch}"

    def __repr__(self):
        return f"<{self.name} {self.full} @{self.repo_id}>"


def candidates_from(catrepo, repo_id, fmt):
    out = []
    for name, spec in catrepo["packages"].items():
        for full in spec["versions"]:
            out.append(Candidate(name, full, spec, repo_id, catrepo, fmt))
    return out


def newest(cands):
    best = None
    for c in cands:
        if best is None or compare(c.fmt, c.full, best.full) > 0:
            best = c
    return best


# --------------------------------------------------------------------------
# payloads


def _tmpl(text, cand):
    return str(text).format(
        name=cand.name, version=cand.version, release=cand.release, arch=cand.arch, epoch=cand.epoch, full=cand.full
    )


STUB = "#!/bin/sh\n# k8stwin stub installed by package {name} {full}\ncase \"$1\" in --version|-v|version) echo \"{name} {version}\";; esac\nexit 0\n"


def kernel_files(kver, family):
    """Create the files a kernel image package installs for release ``kver``."""
    created = []

    def w(p, text, mode=None):
        fs.write(p, text, mode)
        created.append(p)

    w(f"/boot/vmlinuz-{kver}", f"k8stwin kernel image {kver}\n", 0o755)
    w(f"/boot/System.map-{kver}", "")
    w(f"/boot/config-{kver}", "CONFIG_MODULES=y\nCONFIG_DRM_NOUVEAU=m\nCONFIG_BRIDGE_NETFILTER=m\nCONFIG_OVERLAY_FS=m\n"
      "CONFIG_RD_GZIP=y\nCONFIG_RD_ZSTD=y\n")  # what update-initramfs 0.142 checks
    mods = {
        "nouveau": "kernel/drivers/gpu/drm/nouveau/nouveau.ko",
        "drm": "kernel/drivers/gpu/drm/drm.ko",
        "br_netfilter": "kernel/net/bridge/br_netfilter.ko",
        "bridge": "kernel/net/bridge/bridge.ko",
        "overlay": "kernel/fs/overlayfs/overlay.ko",
        "ip_vs": "kernel/net/netfilter/ipvs/ip_vs.ko",
        "nf_conntrack": "kernel/net/netfilter/nf_conntrack.ko",
        "vfio_pci": "kernel/drivers/vfio/pci/vfio-pci.ko",
    }
    base = f"/lib/modules/{kver}"
    for mod, rel in mods.items():
        w(f"{base}/{rel}", f"k8stwin module {mod} for {kver}\n")
    deps = {"nouveau": ["drm"], "br_netfilter": ["bridge"]}
    lines = []
    for mod, rel in mods.items():
        d = " ".join(mods[x] for x in deps.get(mod, []))
        lines.append(f"{rel}: {d}".rstrip() + "\n")
    w(f"{base}/modules.dep", "".join(lines))
    w(f"{base}/modules.builtin", "kernel/drivers/char/mem.ko\n")
    w(f"{base}/modules.order", "".join(rel + "\n" for rel in mods.values()))
    if family == "RedHat":
        fs.symlink(f"/usr/src/kernels/{kver}", f"{base}/build")
        fs.symlink("build", f"{base}/source")
        created += [f"{base}/build", f"{base}/source"]
    return created


def headers_files(kver, family):
    created = []
    if family == "RedHat":
        src = f"/usr/src/kernels/{kver}"
    else:
        src = f"/usr/src/linux-headers-{kver}"
    for rel, text in (("Makefile", f"# k8stwin kernel headers {kver}\nKERNELRELEASE = {kver}\n"), (".config", "CONFIG_MODULES=y\n"), ("include/generated/utsrelease.h", f'#define UTS_RELEASE "{kver}"\n'), ("Module.symvers", "")):
        fs.write(f"{src}/{rel}", text)
        created.append(f"{src}/{rel}")
    if family == "Debian":
        fs.symlink(src, f"/lib/modules/{kver}/build")
        created.append(f"/lib/modules/{kver}/build")
    return created


def unit_dir(family):
    return "/usr/lib/systemd/system" if family == "RedHat" else "/lib/systemd/system"


def apply_payload(cand, family, log):
    """Create what ``cand`` installs; return the node paths created."""
    spec = cand.spec
    payload = spec.get("payload") or {}
    created = []
    kver = payload.get("kernel")
    if kver:
        kver = _tmpl(kver, cand)
        created += kernel_files(kver, family)
    hver = payload.get("headers")
    if hver:
        created += headers_files(_tmpl(hver, cand), family)
    for p, content in (payload.get("files") or {}).items():
        p = _tmpl(p, cand)
        if content in (None, "stub"):
            fs.write(p, STUB.format(name=cand.name, full=cand.full, version=cand.version), 0o755)
        else:
            mode = 0o755 if "/bin/" in p or "/sbin/" in p else None
            fs.write(p, _tmpl(content, cand), mode)
        created.append(p)
    for d in payload.get("dirs") or []:
        fs.makedirs(_tmpl(d, cand))
    for link, target in (payload.get("links") or {}).items():
        fs.symlink(_tmpl(target, cand), _tmpl(link, cand))
        created.append(_tmpl(link, cand))
    units = payload.get("services") or {}
    for unit, opts in units.items():
        opts = opts or {}
        p = f"{unit_dir(family)}/{unit}"
        fs.write(p, f"[Unit]\nDescription={opts.get('description', unit)}\n\n[Service]\nExecStart=/usr/bin/{unit.split('.')[0]}\n\n[Install]\nWantedBy=multi-user.target\n")
        created.append(p)
    with state.locked() as st:
        tools = st.setdefault("tools", [])
        for t in payload.get("tools") or []:
            if t not in tools:
                tools.append(t)
        svcs = st.setdefault("services", {})
        for unit, opts in units.items():
            opts = opts or {}
            deb_start = family == "Debian" and opts.get("deb_start", True)
            cur = svcs.setdefault(unit, {"enabled": False, "active": False})
            if deb_start:
                cur["enabled"] = True
                cur["active"] = True
            if opts.get("static"):
                cur["static"] = True
    if payload.get("tools"):
        sync_tool_links()
    for unit, opts in units.items():
        if family == "Debian" and (opts or {}).get("deb_start", True):
            fs.hook("daemons", "on_service", unit, True)
    if kver:
        kernel_postinst(kver, family, log)
    if payload.get("nvidia_driver"):  # an NVIDIA driver package's scripts (k8stwin.dkms)
        from . import dkms

        created += dkms.package_install({k: _tmpl(v, cand) for k, v in payload["nvidia_driver"].items()},
                                        cand.version, log)
    return created


def kernel_postinst(kver, family, log):
    """Effects of a kernel package's scriptlets: initramfs and boot entry."""
    from . import boot

    _family, major, _key = fs.node_os()
    if family == "RedHat":
        boot.build_initramfs(kver, f"/boot/initramfs-{kver}.img")
        if major >= 8:
            boot.add_bls_entry(kver)
        else:
            boot.grubby_add_el7(kver)
    else:
        boot.build_initramfs(kver, f"/boot/initrd.img-{kver}")
        log(f"update-initramfs: Generating /boot/initrd.img-{kver}")
        if fs.isdir("/boot/grub") or fs.exists("/etc/default/grub"):
            for line in boot.grub_mkconfig("/boot/grub/grub.cfg", debian=True):
                log(line)


def remove_payload(name, entry, family):
    for p in entry.get("files") or []:
        fs.remove(p)
    cat = None
    for repo in catalog():
        if name in repo["packages"]:
            cat = repo["packages"][name]
            break
    payload = (cat or {}).get("payload") or {}
    with state.locked() as st:
        tools = st.get("tools") or []
        for t in payload.get("tools") or []:
            if t in tools and not _tool_provided_elsewhere(t, name, st):
                tools.remove(t)
        for unit in payload.get("services") or {}:
            (st.get("services") or {}).pop(unit, None)


def _tool_provided_elsewhere(tool, except_name, st):
    for pname in st.get("packages") or {}:
        if pname == except_name:
            continue
        for repo in catalog():
            spec = repo["packages"].get(pname)
            if spec and tool in ((spec.get("payload") or {}).get("tools") or []):
                return True
    return False


def record_install(cand, family, log, reason="manual"):
    """Apply the payload and record ``cand`` as installed."""
    old = installed().get(cand.name)
    if old:
        remove_payload(cand.name, old, family)
    created = apply_payload(cand, family, log)
    with state.locked() as st:
        pk = st.setdefault("packages", {})
        pk[cand.name] = {
            "version": cand.version,
            "release": cand.release,
            "epoch": cand.epoch if cand.epoch not in ("", "0") else None,
            "arch": cand.arch,
            "repo": cand.repo_id,
            "installtime": int(time.time()),
            "files": created,
            "reason": reason,
            "depends": list(cand.spec.get("requires") or []),
        }


def record_remove(name, family):
    entry = installed().get(name)
    if not entry:
        return False
    remove_payload(name, entry, family)
    with state.locked() as st:
        (st.get("packages") or {}).pop(name, None)
        holds = st.get("holds") or []
        if name in holds:
            holds.remove(name)
    sync_tool_links()
    return True


# --------------------------------------------------------------------------
# tools gated by packages


def tool_package(tool):
    """Names of catalog packages whose payload enables emulated tool ``tool``."""
    names = []
    for repo in catalog():
        for name, spec in repo["packages"].items():
            if tool in ((spec.get("payload") or {}).get("tools") or []):
                names.append(name)
    return names


def gated_tools():
    """Every emulated tool some catalog package provides."""
    out = set()
    for repo in catalog():
        for spec in repo["packages"].values():
            out.update((spec.get("payload") or {}).get("tools") or [])
    return sorted(out)


def sync_tool_links():
    """Put package-provided tools on the node's PATH exactly while a package
    provides them: the dispatcher links (node bin dir, /usr/bin, /usr/sbin)
    of the others are removed, those of provided tools with an emulation
    are created. Links that are not the dispatcher's are left alone."""
    import importlib.util

    dispatch = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bin", "_dispatch")
    try:
        bindir = os.path.join(state.node_dir(), "bin")
    except SystemExit:
        return
    have = provided_tools()
    for tool in gated_tools():
        emulated = importlib.util.find_spec("k8stwin.tools." + tool.replace("-", "_").replace(".", "_")) is not None
        for d in (bindir, fs.path("/usr/bin"), fs.path("/usr/sbin")):
            if not os.path.isdir(d):
                continue
            p = os.path.join(d, tool)
            ours = os.path.islink(p) and os.readlink(p) == dispatch
            if tool in have and emulated and not os.path.lexists(p) and d != fs.path("/usr/sbin"):
                os.symlink(dispatch, p)
            elif tool not in have and ours:
                os.unlink(p)


def provided_tools():
    """Tools the installed packages provide: the recorded ``tools`` plus the
    catalog payload tools of every installed package name."""
    st = state.read()
    have = set(st.get("tools") or [])
    names = set(st.get("packages") or {})
    for repo in catalog():
        for name, spec in repo["packages"].items():
            if name in names:
                have.update((spec.get("payload") or {}).get("tools") or [])
    return have


def tool_available(tool):
    """False when ``tool`` comes from a package and no installed package provides it.

    For the dispatcher: a tool no catalog package provides (systemctl,
    modprobe, ...) is always available."""
    providers = tool_package(tool)
    if not providers:
        return True
    return tool in provided_tools()
