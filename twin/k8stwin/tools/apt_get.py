"""Emulated apt-get (update, install pkg[=ver], remove, purge, clean) and the
package index shared with apt-cache.

``apt-get update`` records which catalog repositories each configured source
serves in /var/lib/apt/lists/k8stwin-index.json; installs only see what the last
update fetched (so a source added without an update gives "Unable to locate package").
"""

import fnmatch
import os
import re

from .. import fs, pkgdb, state

KEY_FINGERPRINT = "234654DA9A296436"


class Fail(Exception):
    def __init__(self, text, rc=100):
        super().__init__(text)
        self.text = text
        self.rc = rc


def _source_label(src):
    if src["suite"].endswith("/"):
        return f"{src['uri'].rstrip('/')}/{src['suite'].rstrip('/')} " if src["suite"] != "/" else f"{src['uri'].rstrip('/')} "
    return f"{src['uri'].rstrip('/')} {src['suite']}"


def _signed(src, cat):
    if src.get("trusted") or cat.get("trusted") and not src.get("signed_by"):
        return True
    sb = src.get("signed_by")
    if sb:
        if sb == "(inline)":
            return True
        for p in sb.split(","):
            p = p.strip()
            if p.startswith("/") and fs.isfile(p) and os.path.getsize(fs.path(p)) > 0:
                return True
        return False
    return bool(fs.glob("/etc/apt/trusted.gpg.d/*.gpg") + fs.glob("/etc/apt/trusted.gpg.d/*.asc")) or fs.isfile("/etc/apt/trusted.gpg")


def sources():
    """The configured sources, or Fail as apt fails to read them: a malformed
    line, or one URI and suite given two different Signed-By keyrings (apt
    2.x debReleaseIndex::SetSignedBy)."""
    srcs = pkgdb.apt_sources()
    signed = {}
    for src in srcs:
        if src.get("error"):
            raise Fail(f"E: {src['error']}\nE: The list of sources could not be read.")
        key = (src["uri"].rstrip("/"), src["suite"])
        new = src.get("signed_by") or ""
        cur = signed.get(key)
        if not cur:
            signed[key] = new
        elif new != cur:
            raise Fail(f"E: Conflicting values set for option Signed-By regarding source {key[0]}/ {key[1]}: "
                       f"{cur} != {new}\nE: The list of sources could not be read.")
    return srcs


def _packages_label(src, component):
    if src["suite"].endswith("/"):
        return f"{_source_label(src).rstrip()} Packages"
    return f"{src['uri'].rstrip('/')} {src['suite']}/{component} amd64 Packages"


def cmd_update():
    srcs = sources()
    old = {(e["uri"], e["suite"]): e for e in pkgdb.apt_index()}
    index = []
    errors = []
    warnings = []
    fetched = []  # sources whose package indexes are downloaded after the InRelease files
    n = 0
    for src in srcs:
        n += 1
        label = _source_label(src)
        cat = pkgdb.find_catalog("deb", src["uri"], src["suite"])
        host = pkgdb.host_of(src["uri"])
        if (cat and cat.get("dead")) or pkgdb.unreachable(src["file"], src["uri"]):
            fs.out(f"Err:{n} {label} InRelease\n  Temporary failure resolving '{host}'")
            warnings.append(f"W: Failed to fetch {src['uri'].rstrip('/')}/dists/{src['suite']}/InRelease  Temporary failure resolving '{host}'")
            prev = old.get((src["uri"], src["suite"]))
            if prev:
                index.append(prev)
            continue
        if cat is None:
            fs.out(f"Ign:{n} {label} InRelease\nErr:{n + 1} {label} Release\n  404  Not Found [IP: 192.0.2.1 443]")
            errors.append(f"E: The repository '{src['uri'].rstrip('/')} {src['suite']} Release' does not have a Release file.")
            n += 1
            continue
        if not _signed(src, cat):
            why = f"The following signatures couldn't be verified because the public key is not available: NO_PUBKEY {KEY_FINGERPRINT}"
            prev = old.get((src["uri"], src["suite"]))
            if prev:
                # fetched before: apt keeps the old indexes and only warns (rc 0)
                fs.out(f"Hit:{n} {label} InRelease\nErr:{n} {label} InRelease\n  {why}")
                warnings.append("W: An error occurred during the signature verification. The repository is not updated "
                                f"and the previous index files will be used. GPG error: {label.strip()} InRelease: {why}")
                warnings.append(f"W: Failed to fetch {src['uri'].rstrip('/')}/dists/{src['suite']}/InRelease  {why}")
                index.append(prev)
                continue
            fs.out(f"Get:{n} {label} InRelease [1186 B]\nErr:{n} {label} InRelease\n  {why}")
            warnings.append(f"W: GPG error: {label.strip()} InRelease: {why}")
            errors.append(f"E: The repository '{label.strip()} InRelease' is not signed.")
            continue
        if (src["uri"], src["suite"]) in old:
            fs.out(f"Hit:{n} {label} InRelease")
        else:
            fs.out(f"Get:{n} {label} InRelease [1186 B]")
            fetched.append(src)
        index.append({"uri": src["uri"], "suite": src["suite"], "catalog": cat["name"], "file": src["file"],
                      "components": src.get("components") or []})
    for src in fetched:
        for component in (src.get("components") or ["main"]) if not src["suite"].endswith("/") else [None]:
            n += 1
            fs.out(f"Get:{n} {_packages_label(src, component)} [1295 B]")
    if fetched and not errors and not warnings:
        fs.out(f"Fetched {2481 * len(fetched)} B in 0s ({2481 * len(fetched) // 100 / 10} kB/s)")
    fs.out("Reading package lists...")
    fs.write_json(pkgdb.APT_INDEX, index)
    for w in warnings:
        fs.err(w)
    if warnings and not errors:
        fs.err("W: Some index files failed to download. They have been ignored, or old ones used instead.")
    if errors:
        fs.err("\n".join(errors))
        # no "N: Updating from such a repository can't be done securely" notice:
        # apt prints notices only at quiet level 0, and it is 1 when stdout is no terminal
        return 100
    return 0


def available():
    """Candidate objects from the fetched index (repo_id = 'uri suite').
    A catalog package with a ``component`` (Debian's archive areas:
    contrib, non-free, non-free-firmware) comes only from a source line that
    enables that component, as real apt reads only the
    Packages files of the components a line names (a flat repository,
    ``suite /``, has none)."""
    byname = {c["name"]: c for c in pkgdb.catalog() if c["type"] == "deb"}
    out = []
    for e in pkgdb.apt_index():
        cat = byname.get(e.get("catalog"))
        if not cat:
            continue
        comps = e.get("components") or []
        for c in pkgdb.candidates_from(cat, f"{e['uri'].rstrip('/')} {e['suite']}", "deb"):
            # only packages the catalog files under an area are filtered: a
            # repository's own component (Docker's "stable") needs no mark
            if comps and c.spec.get("component") and c.spec["component"] not in comps:
                continue
            out.append(c)
    return out


def versions_of(name, cands=None):
    cands = available() if cands is None else cands
    seen = {}
    for c in cands:
        if c.name == name and c.full not in seen:
            seen[c.full] = c
    import functools

    return sorted(seen.values(), key=functools.cmp_to_key(lambda a, b: pkgdb.deb_compare(a.full, b.full)), reverse=True)


def candidate(name, cands=None):
    vs = versions_of(name, cands)
    return vs[0] if vs else None


def holds():
    return list(state.read().get("holds") or [])


OPT_NOARG = {"-q", "-qq", "-y", "--yes", "--assume-yes", "--force-yes", "--no-install-recommends", "--install-recommends", "--only-upgrade", "--allow-unauthenticated", "--allow-downgrades", "--allow-change-held-packages", "--reinstall", "--download-only", "-s", "--simulate", "--just-print", "--dry-run", "--no-download", "--fix-broken", "-f", "--purge", "--auto-remove", "--autoremove", "--assume-no", "-m", "--ignore-missing", "--fix-missing", "-d", "--quiet", "--no-upgrade", "--allow-remove-essential", "-V", "--verbose-versions"}
OPT_ARG = {"-o", "--option", "-t", "--target-release", "--default-release", "-c", "--config-file", "-a", "--host-architecture"}


def parse(args, prog):
    opts = {"flags": set(), "o": [], "t": None}
    rest = []
    i = 0
    while i < len(args):
        a = args[i]
        key, val = (a.split("=", 1) + [None])[:2] if a.startswith("--") and "=" in a else (a, None)
        if key in OPT_ARG:
            if val is None:
                i += 1
                if i >= len(args):
                    raise Fail(f"E: Option {key}: Configuration item specification must have an =<val>.")
                val = args[i]
            if key in ("-o", "--option"):
                if "=" not in val:
                    raise Fail(f"E: Option {key}: Configuration item specification must have an =<val>.")
                opts["o"].append(val)
            elif key in ("-t", "--target-release", "--default-release"):
                opts["t"] = val
        elif key in OPT_NOARG:
            opts["flags"].add(key)
        elif re.match(r"^-[qyfsdm]+$", a):
            for ch in a[1:]:
                opts["flags"].add("-" + ch)
        elif a.startswith("-") and a != "-":
            raise Fail(f"E: Command line option {a!r} [from {a}] is not understood in combination with the other options." if not a.startswith("--") else f"E: Command line option --{a.lstrip('-')} is not understood in combination with the other options")
        else:
            rest.append(a)
        i += 1
    return opts, rest


def _say(opts, text):
    if "-qq" not in opts["flags"]:
        fs.out(text)


def cmd_install(opts, specs, reinstall=False):
    fl = opts["flags"]
    yes = bool(fl & {"-y", "--yes", "--assume-yes", "--force-yes"})
    sources()
    cands = available()
    inst = pkgdb.installed()
    hold = holds()
    _say(opts, "Reading package lists...\nBuilding dependency tree...\nReading state information...")
    todo, already, downgrades, held_changed = [], [], [], []
    for spec in specs:
        name, _, ver = spec.partition("=")
        name = name.split(":")[0] if ":" in name and name.split(":")[1] in ("amd64", "all") else name
        vs = versions_of(name, cands)
        if not vs:
            if name in inst and not ver:
                already.append(f"{name} is already the newest version ({inst[name]['version']}).")
                continue
            raise Fail(f"E: Unable to locate package {name}")
        if ver:
            hit = [c for c in vs if c.full == ver or (ver.endswith("*") and fnmatch.fnmatchcase(c.full, ver))]
            if not hit:
                raise Fail(f"E: Version '{ver}' for '{name}' was not found")
            c = hit[0]
        else:
            c = vs[0]
        cur = inst.get(name)
        if cur and cur["version"] == c.full and not reinstall and "--reinstall" not in fl:
            already.append(f"{name} is already the newest version ({c.full}).")
            if "--only-upgrade" not in fl:
                continue
            continue
        if cur and pkgdb.deb_compare(c.full, cur["version"]) < 0:
            downgrades.append(c)
        if cur and name in hold:
            held_changed.append(name)
        todo.append(c)
    # dependencies
    names = {c.name for c in todo}
    queue = list(todo)
    deps = []
    while queue:
        c = queue.pop(0)
        for req in c.spec.get("requires") or []:
            rname = req.split()[0]
            if rname in names or rname in inst:
                continue
            d = candidate(rname, cands)
            if d is None:
                raise Fail(f"Some packages could not be installed. This may mean that you have\nrequested an impossible situation or if you are using the unstable\ndistribution that some required packages have not yet been created\nor been moved out of Incoming.\nThe following information may help to resolve the situation:\n\nThe following packages have unmet dependencies:\n {c.name} : Depends: {rname} but it is not installable\nE: Unable to correct problems, you have held broken packages.")
            names.add(rname)
            deps.append(d)
            queue.append(d)
    for a in already:
        _say(opts, a)
    allc = deps[::-1] + todo
    new = [c for c in allc if c.name not in inst]
    upg = [c for c in allc if c.name in inst and c not in downgrades]
    # apt's order: additional (dependencies), held, NEW, upgraded, DOWNGRADED
    if deps:
        _say(opts, "The following additional packages will be installed:\n  " + " ".join(sorted(d.name for d in deps)))
    if held_changed:
        _say(opts, "The following held packages will be changed:\n  " + " ".join(held_changed))
    if new:
        _say(opts, "The following NEW packages will be installed:\n  " + " ".join(sorted(c.name for c in new)))
    if upg:
        _say(opts, "The following packages will be upgraded:\n  " + " ".join(sorted(c.name for c in upg)))
    if downgrades:
        _say(opts, "The following packages will be DOWNGRADED:\n  " + " ".join(sorted(c.name for c in downgrades)))
    down = f"{len(downgrades)} downgraded, " if downgrades else ""
    _say(opts, f"{len(upg)} upgraded, {len(new)} newly installed, {down}0 to remove and 0 not upgraded.")
    if not allc:
        return 0
    if held_changed and "--allow-change-held-packages" not in fl and "--force-yes" not in fl:
        raise Fail("E: Held packages were changed and -y was used without --allow-change-held-packages.")
    if downgrades and "--allow-downgrades" not in fl and "--force-yes" not in fl:
        raise Fail("E: Packages were downgraded and -y was used without --allow-downgrades.")
    if not yes:
        fs.out("Do you want to continue? [Y/n] Abort.")
        return 1
    if "--force-yes" in fl:
        fs.err("W: --force-yes is deprecated, use one of the options starting with --allow instead.")
    if {"-s", "--simulate", "--just-print", "--dry-run"} & fl:
        for c in allc:
            _say(opts, f"Inst {c.name} ({c.full} {c.repo_id} [{c.arch}])")
        return 0
    if "--download-only" in fl:
        _say(opts, "Download complete and in download only mode")
        return 0
    for i, c in enumerate(allc, 1):
        _say(opts, f"Get:{i} {c.repo_id} {c.name} {c.arch} {c.full} [1,024 kB]")
    for c in allc:
        _say(opts, f"Selecting previously unselected package {c.name}.\nUnpacking {c.name} ({c.full}) ...")
    for c in allc:
        pkgdb.record_install(c, "Debian", lambda t: _say(opts, t), reason="auto" if c in deps else "manual")
        with state.locked() as st:  # installed again: no longer only its config files
            (st.get("dpkg_config_files") or {}).pop(c.name, None)
        _say(opts, f"Setting up {c.name} ({c.full}) ...")
    return 0


def _dep_names(dep):
    """'a (>= 1) | b' -> ['a', 'b']."""
    return [alt.strip().split(" ")[0].split(":")[0] for alt in dep.split("|") if alt.strip()]


def _has_conffiles(entry):
    """Debian packages ship their /etc files as conffiles (debhelper marks
    them): removing such a package leaves it in state config-files."""
    return any(str(p).startswith("/etc/") for p in entry.get("files") or [])


def cmd_remove(opts, specs, purge=False):
    inst = pkgdb.installed()
    conf = dict(state.read().get("dpkg_config_files") or {})
    sources()
    _say(opts, "Reading package lists...\nBuilding dependency tree...\nReading state information...")
    gone, conf_only = [], []
    for spec in specs:
        name = spec.split("=")[0]
        if name in inst:
            if name not in gone:
                gone.append(name)
        elif purge and name in conf:
            conf_only.append(name)
        elif name in conf or (available() and candidate(name) is not None):
            _say(opts, f"Package '{name}' is not installed, so not removed")
        else:
            raise Fail(f"E: Unable to locate package {name}")
    # what depends on a removed package goes too (unless an alternative stays)
    order = list(gone)
    changed = True
    while changed:
        changed = False
        for name, entry in sorted(inst.items()):
            if name in order:
                continue
            for dep in entry.get("depends") or []:
                alts = _dep_names(dep)
                if alts and all(a in order or a not in inst for a in alts) and any(a in order for a in alts):
                    order.append(name)
                    changed = True
                    break
    listed = sorted(order + conf_only)
    if listed:
        _say(opts, "The following packages will be REMOVED:\n  " + " ".join(g + ("*" if purge else "") for g in listed))
    _say(opts, f"0 upgraded, 0 newly installed, {len(listed)} to remove and 0 not upgraded.")
    for g in reversed(order):  # dependents first, as dpkg is asked to
        _say(opts, f"Removing {g} ({inst[g]['version']}) ...")
        keep = not purge and _has_conffiles(inst[g])
        pkgdb.record_remove(g, "Debian")
        with state.locked() as st:
            if keep:
                st.setdefault("dpkg_config_files", {})[g] = inst[g]["version"]
            else:
                (st.get("dpkg_config_files") or {}).pop(g, None)
        if purge and _has_conffiles(inst[g]):
            _say(opts, f"Purging configuration files for {g} ({inst[g]['version']}) ...")
    for g in conf_only:
        _say(opts, f"Purging configuration files for {g} ({conf[g]}) ...")
        with state.locked() as st:
            (st.get("dpkg_config_files") or {}).pop(g, None)
    return 0


def main(argv):
    try:
        opts, rest = parse(argv[1:], "apt-get")
        if not rest:
            fs.err("E: Invalid operation" if False else "apt 2.4.14 (amd64)\nUsage: apt-get [options] command")
            return 100 if not rest else 0
        cmd, args = rest[0], rest[1:]
        if cmd == "update":
            return cmd_update()
        if cmd == "install":
            if "--reinstall" in opts["flags"]:
                return cmd_install(opts, args, reinstall=True)
            return cmd_install(opts, args)
        if cmd == "reinstall":
            return cmd_install(opts, args, reinstall=True)
        if cmd in ("remove", "autoremove"):
            return cmd_remove(opts, args, purge="--purge" in opts["flags"])
        if cmd == "purge":
            return cmd_remove(opts, args, purge=True)
        if cmd in ("clean", "autoclean"):
            return 0
        if cmd in ("upgrade", "dist-upgrade", "full-upgrade"):
            inst = pkgdb.installed()
            specs = [n for n in inst if n not in holds() and candidate(n) and pkgdb.deb_compare(candidate(n).full, inst[n]["version"]) > 0]
            return cmd_install(opts, specs)
        raise Fail(f"E: Invalid operation {cmd}")
    except Fail as exc:
        fs.err(exc.text)
        return exc.rc
