"""Emulated yum (el7, yum 3.4.3) and dnf (el8/9; ``yum`` is dnf there).

Commands Salt's yumpkg runs: install/downgrade/reinstall/remove with
-y/--quiet/--assumeyes/--disablerepo/--enablerepo/--setopt/--nogpgcheck/
--disableexcludes/--best/--allowerasing, ``list [available|installed|updates]``,
``--showduplicates repository-packages R list``, ``clean expire-cache``,
``check-update`` (rc 100 when updates exist), ``versionlock add|delete|list``,
``makecache``, ``repolist``, ``--version``.
"""

import fnmatch
import re
import sys

from .. import fs, pkgdb, state
from . import rpm as rpmtool

INSTALLONLY = re.compile(r"^kernel(-lt|-ml)?(-core|-devel|-modules|-modules-extra)?$")
VERSIONLOCK_FILE = {"yum": "/etc/yum/pluginconf.d/versionlock.list", "dnf": "/etc/dnf/plugins/versionlock.list"}


class Fail(Exception):
    def __init__(self, text, rc=1):
        super().__init__(text)
        self.text = text
        self.rc = rc


class Ctx:
    def __init__(self, prog, major):
        self.prog = prog
        self.major = major
        self.dnf = prog in ("dnf", "dnf-3", "dnf5") or major >= 8
        self.kind = "dnf" if self.dnf else "yum"
        self.assumeyes = False
        self.quiet = False
        self.nogpgcheck = False
        self.repo_ops = []
        self.disableexcludes = []
        self.showdup = False
        self.setopt = {}
        self.cacheonly = False
        self.downloadonly = False
        self.exclude = []
        self.excluded = []  # candidates an exclude= filter hid

    def say(self, text=""):
        if not self.quiet:
            fs.out(text)


# --------------------------------------------------------------------------
# repositories and candidates


def _plugin_pkg(ctx):
    return "python3-dnf-plugin-versionlock" if ctx.dnf else "yum-plugin-versionlock"


def enabled_repos(ctx):
    repos = pkgdb.yum_repos(ctx.major, ctx.dnf)
    for r in repos:
        if r.get("error"):
            raise Fail(r["error"] + "\n" + r.get("detail", ""))
    for op, pats in ctx.repo_ops:
        for pat in pats.split(","):
            hit = False
            for r in repos:
                if fnmatch.fnmatchcase(r["id"], pat):
                    r["enabled"] = op == "enable"
                    hit = True
            if not hit and op == "enable" and not any(c in pat for c in "*?["):
                if ctx.dnf:
                    raise Fail(f"Error: Unknown repo: '{pat}'")
                raise Fail(f"Error getting repository data for {pat}, repository not found")
    for key, val in ctx.setopt.items():
        if "." in key:
            rid, opt = key.rsplit(".", 1)
            for r in repos:
                if fnmatch.fnmatchcase(r["id"], rid) and opt in ("enabled", "gpgcheck", "skip_if_unavailable"):
                    r[opt] = pkgdb._truthy(val)
    return [r for r in repos if r["enabled"]]


def _repo_error(ctx, r, why):
    url = (r["baseurls"] or [r["mirrorlist"]])[0]
    host = pkgdb.host_of(url)
    if why == "dead":
        curl = f'curl#6 - "Could not resolve host: {host}; Unknown error"'
        dcurl = f"Curl error (6): Couldn't resolve host name for {url.rstrip('/')}/repodata/repomd.xml [Could not resolve host: {host}]"
    else:
        curl = '[Errno 14] HTTPS Error 404 - Not Found'
        dcurl = f"Status code: 404 for {url.rstrip('/')}/repodata/repomd.xml (IP: 192.0.2.1)"
    if ctx.dnf:
        return (
            f"Errors during downloading metadata for repository '{r['id']}':\n  - {dcurl}\n"
            f"Error: Failed to download metadata for repo '{r['id']}': Cannot download repomd.xml: Cannot download repodata/repomd.xml: All mirrors were tried"
        )
    if r["mirrorlist"] and not r["baseurls"]:
        return (
            f"Could not retrieve mirrorlist {r['mirrorlist']} error was\n14: {curl}\n\n\n"
            f" One of the configured repositories failed (Unknown),\n and yum doesn't have enough cached data to continue. At this point the only\n"
            f" safe thing yum can do is fail. There are a few ways to work \"fix\" this:\n\n"
            f"Cannot find a valid baseurl for repo: {r['id']}/7/x86_64"
        )
    return (
        f"\n\n One of the configured repositories failed ({r['name']}),\n and yum doesn't have enough cached data to continue. At this point the only\n"
        f" safe thing yum can do is fail.\n\nfailure: repodata/repomd.xml from {r['id']}: [Errno 256] No more mirrors to try.\n"
        f"{url.rstrip('/')}/repodata/repomd.xml: {curl if why == 'dead' else '[Errno 14] HTTPS Error 404 - Not Found'}"
    )


def load_metadata(ctx):
    """[(repo, catalog repo)] of the enabled repositories; raises Fail like the real tool."""
    out = []
    warnings = []
    for r in enabled_repos(ctx):
        urls = r["baseurls"] or ([r["mirrorlist"]] if r["mirrorlist"] else [])
        if not urls:
            if ctx.dnf:
                raise Fail(f"Error: Cannot find a valid baseurl for repo: {r['id']}")
            raise Fail(f"Error: Cannot find a valid baseurl for repo: {r['id']}")
        cat = None
        why = "404"
        for u in urls:
            cat = pkgdb.find_catalog("rpm", u)
            if cat:
                break
        if cat and (cat.get("dead") or pkgdb.unreachable(r["id"], urls[0])):
            why = "dead"
            cat = None
        elif cat is None and pkgdb.unreachable(r["id"], urls[0]):
            why = "dead"
        if cat is None:
            if r["skip_if_unavailable"]:
                warnings.append(f"Ignoring repositories: {r['id']}" if ctx.dnf else f"Skipping unavailable repo '{r['id']}'")
                continue
            raise Fail(_repo_error(ctx, r, why))
        out.append((r, cat))
    for w in warnings:
        fs.err(w)
    return out


def versionlocks(ctx):
    if _plugin_pkg(ctx) not in pkgdb.installed():
        return None
    locks = []
    for line in (fs.read(VERSIONLOCK_FILE[ctx.kind]) or "").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            locks.append(line)
    return locks


def _lock_name_ver(line, dnf):
    # yum: '0:kubelet-1.34.2-150500.1.1.*' ; dnf: 'kubelet-0:1.34.2-150500.1.1.*'
    line = line.lstrip("!")
    if not dnf:
        line = re.sub(r"^\d+:", "", line)
    else:
        line = re.sub(r"-\d+:", "-", line)
    m = re.match(r"^(.+)-([^-]+)-([^-]+?)(\.\*|\.\w+)?$", line)
    if not m:
        return line, None
    return m.group(1), f"{m.group(2)}-{m.group(3)}"


def candidates(ctx, meta):
    excl_main = [] if ("all" in ctx.disableexcludes or "main" in ctx.disableexcludes) else pkgdb.main_excludes(ctx.dnf)
    excl_main += ctx.exclude
    locks = versionlocks(ctx) or []
    locked = {}
    for line in locks:
        n, v = _lock_name_ver(line, ctx.dnf)
        if v:
            locked.setdefault(n, []).append(v)
    out = []
    for r, cat in meta:
        excl = list(excl_main)
        if "all" not in ctx.disableexcludes and r["id"] not in ctx.disableexcludes:
            excl += r["exclude"]
        for c in pkgdb.candidates_from(cat, r["id"], "rpm"):
            if any(fnmatch.fnmatchcase(c.name, p) for p in excl):
                ctx.excluded.append(c)
                continue
            if c.name in locked and c.vr not in locked[c.name]:
                continue
            c.repo = r
            out.append(c)
    return out


def match_spec(c, spec):
    forms = {
        c.name,
        f"{c.name}.{c.arch}",
        f"{c.name}-{c.version}",
        f"{c.name}-{c.vr}",
        f"{c.name}-{c.vr}.{c.arch}",
        f"{c.name}-{c.epoch}:{c.vr}",
        f"{c.name}-{c.epoch}:{c.vr}.{c.arch}",
        f"{c.epoch}:{c.name}-{c.vr}",
        f"{c.epoch}:{c.name}-{c.vr}.{c.arch}",
    }
    if spec in forms:
        return True
    if any(ch in spec for ch in "*?["):
        return any(fnmatch.fnmatchcase(f, spec) for f in forms)
    return False


def installed_matches(spec):
    out = []
    for name, e in pkgdb.installed().items():
        c = pkgdb.Candidate(name, pkgdb.evr_of(e), {"arch": e.get("arch", "x86_64")}, e.get("repo"), None, "rpm")
        if match_spec(c, spec):
            out.append((name, e))
    return out


# --------------------------------------------------------------------------
# gpg


def gpg_ok(ctx, c):
    """Check (and import, under -y) the key for candidate ``c``; raise Fail."""
    r = c.repo
    if ctx.nogpgcheck or not r["gpgcheck"]:
        return
    allowed = c.catrepo.get("gpgkeys") or []
    keys = state.read().get("rpm_keys") or []
    have = {k["url"] for k in keys}
    if not r["gpgkeys"]:
        if ctx.dnf:
            raise Fail(f"warning: /var/cache/dnf/{r['id']}/packages/{c.nevra}.rpm: Header V4 RSA/SHA512 Signature, key ID 9a296436: NOKEY\nPublic key for {c.nevra}.rpm is not installed. Failing package is: {c.nevra}\n GPG Keys are configured as: \nThe downloaded packages were saved in cache until the next successful transaction.\nYou can remove cached packages by executing 'dnf clean packages'.\nError: GPG check FAILED")
        raise Fail(f"warning: /var/cache/yum/x86_64/7/{r['id']}/packages/{c.nevra}.rpm: Header V4 RSA/SHA512 Signature, key ID 9a296436: NOKEY\nPublic key for {c.nevra}.rpm is not installed\n\n\nPublic key for {c.nevra}.rpm is not installed")
    good = False
    for url in r["gpgkeys"]:
        base_ok = any(url.rstrip("/") == k.rstrip("/") for k in allowed) or (url.startswith("file://") and any(url.rsplit("/", 1)[-1] == k.rsplit("/", 1)[-1] for k in allowed))
        if url not in have:
            if not ctx.dnf:
                fs.out(f"Retrieving key from {url}")
            ok, msg = rpmtool.import_key(url)
            if not ok:
                host = pkgdb.host_of(url)
                if url.startswith("file://"):
                    detail = f'[Errno 14] curl#37 - "Couldn\'t open file {url[7:]}"'
                else:
                    detail = f'[Errno 14] curl#6 - "Could not resolve host: {host}; Unknown error"'
                if ctx.dnf:
                    raise Fail(f"Curl error (37): Couldn't read a file:// file for {url}\nError: GPG check FAILED" if url.startswith("file://") else f"Curl error (6): Couldn't resolve host name for {url} [Could not resolve host: {host}]\nError: GPG check FAILED")
                raise Fail(f"\n\nGPG key retrieval failed: {detail}")
            text = (f"Importing GPG key 0x{_keyid(url)}:\n Userid     : \"{r['name']} <packages@example>\"\n"
                    f" Fingerprint: {_keyid(url)} \n From       : ")
            if ctx.dnf:  # dnf 4 prints it on stderr, a file:// key as its path
                fs.err(text + (url[len("file://"):] if url.startswith("file://") else url))
                fs.out("Key imported successfully")
            else:
                fs.out(text + url)
            have.add(url)
        if base_ok:
            good = True
    if not good:
        raise Fail(f"\n\nThe GPG keys listed for the \"{r['name']}\" repository are already installed but they are not correct for this package.\nCheck that the correct key URLs are configured for this repository.\n\n\n Failing package is: {c.nevra}\n GPG Keys are configured as: {', '.join(r['gpgkeys'])}\n")


def _keyid(url):
    for k in state.read().get("rpm_keys") or []:
        if k["url"] == url:
            return k["id"].upper()
    return "00000000"


# --------------------------------------------------------------------------
# transactions


def _table(ctx, rows, verb):
    if not rows:
        return
    ctx.say("=" * 80)
    ctx.say(" Package                Arch       Version                      Repository    Size")
    ctx.say("=" * 80)
    ctx.say(f"{verb}:")
    for c, why in rows:
        ctx.say(f" {c.name:<22} {c.arch:<10} {c.full:<28} {c.repo_id:<13} 10 M")
        if why:
            ctx.say(f"{why}")
    ctx.say("")
    ctx.say("Transaction Summary")
    ctx.say("=" * 80)


def transact(ctx, chosen, verb="Installing"):
    """Install the candidate list (deps resolved before); prints like yum/dnf."""
    if not ctx.assumeyes:
        _table(ctx, [(c, "") for c in chosen], verb)
        fs.out("Is this ok [y/d/N]: " if not ctx.dnf else "Is this ok [y/N]: ")
        fs.out("Exiting on user command" if not ctx.dnf else "Operation aborted.")
        return 1
    for c in chosen:
        gpg_ok(ctx, c)
    if ctx.downloadonly:
        ctx.say("exiting because \"Download Only\" specified" if not ctx.dnf else "Complete!\nThe downloaded packages were saved in cache until the next successful transaction.")
        return 0
    if not ctx.dnf:
        ctx.say("Resolving Dependencies\n--> Running transaction check")
        for c in chosen:
            ctx.say(f"---> Package {c.name}.{c.arch} {c.epoch}:{c.vr} will be {'installed' if verb == 'Installing' else 'an update'}")
        ctx.say("--> Finished Dependency Resolution\n\nDependencies Resolved\n")
    else:
        ctx.say("Dependencies resolved.")
    _table(ctx, [(c, "") for c in chosen], verb)
    ctx.say(f"Install  {len(chosen)} Package{'s' if len(chosen) > 1 else ''}\n")
    ctx.say("Downloading packages:\nRunning transaction check\nRunning transaction test\nTransaction test succeeded\nRunning transaction")
    n = len(chosen)
    for i, c in enumerate(chosen, 1):
        ctx.say(f"  {verb:<11}: {c.name}-{c.vr}.{c.arch}".ljust(70) + f"{i}/{n}")
        record(c, ctx)
    ctx.say("\nInstalled:" if verb == "Installing" else "\nUpdated:")
    for c in chosen:
        ctx.say(f"  {c.name}.{c.arch} {c.epoch}:{c.vr}" if not ctx.dnf else f"  {c.nevra}")
    ctx.say("\nComplete!")
    return 0


def record(c, ctx):
    inst = pkgdb.installed()
    if INSTALLONLY.match(c.name) and c.name in inst:
        # install-only packages (kernels) keep every version side by side
        old = dict(inst[c.name])
        created = pkgdb.apply_payload(c, "RedHat", ctx.say)
        with state.locked() as st:
            e = st["packages"][c.name]
            others = list(e.get("instances") or [])
            keep = {k: old.get(k) for k in ("version", "release", "epoch", "arch", "repo", "installtime", "files")}
            others.append(keep)
            import time as _t

            st["packages"][c.name] = {
                "version": c.version, "release": c.release, "epoch": c.epoch if c.epoch not in ("", "0") else None,
                "arch": c.arch, "repo": c.repo_id, "installtime": int(_t.time()), "files": created, "instances": others,
            }
        return
    pkgdb.record_install(c, "RedHat", ctx.say)


def resolve_targets(ctx, specs, meta, allow_installed=True):
    """-> (to_install [Candidate], already [msg], missing [spec])."""
    cands = candidates(ctx, meta)
    inst = pkgdb.installed()
    chosen, already, missing = [], [], []
    for spec in specs:
        hits = [c for c in cands if match_spec(c, spec)]
        if not hits:
            im = installed_matches(spec)
            if im:
                name, e = im[0]
                already.append(f"Package {name}-{pkgdb.evr_of(e)}.{e.get('arch')} already installed and latest version" if not ctx.dnf else f"Package {name}-{pkgdb.evr_of(e)}.{e.get('arch')} is already installed.")
            else:
                missing.append(spec)
            continue
        best = pkgdb.newest(hits)
        cur = inst.get(best.name)
        if cur:
            vers = [pkgdb.evr_of(cur)] + [pkgdb.evr_of(x) for x in cur.get("instances") or []]
            cmpv = [pkgdb.rpm_compare(best.full if ":" in best.full else best.full, v if ":" in best.full else v.split(":", 1)[-1]) for v in vers]
            if any(x == 0 for x in cmpv):
                already.append(f"Package {best.name}-{pkgdb.evr_of(cur)}.{cur.get('arch')} already installed and latest version" if not ctx.dnf else f"Package {best.name}-{pkgdb.evr_of(cur)}.{cur.get('arch')} is already installed.")
                continue
            if all(x < 0 for x in cmpv) and not INSTALLONLY.match(best.name):
                if ctx.dnf and spec != best.name:
                    # dnf 4: `install NAME-OLDER-VERSION` downgrades (yum 3 does nothing)
                    if not any(x.name == best.name for x in chosen):
                        chosen.append(best)
                    continue
                already.append(f"Package matching {best.name}-{best.vr}.{best.arch} already installed. Checking for update." if not ctx.dnf else f"Package {best.name}-{pkgdb.evr_of(cur)}.{cur.get('arch')} is already installed.")
                continue
        if not any(x.name == best.name for x in chosen):
            chosen.append(best)
    # dependencies
    names = {c.name for c in chosen}
    queue = list(chosen)
    deps = []
    while queue:
        c = queue.pop(0)
        for req in c.spec.get("requires") or []:
            rname = req.split()[0]
            if rname in names or rname in inst:
                continue
            hits = [x for x in cands if x.name == rname]
            if not hits:
                if ctx.dnf:
                    raise Fail(f"Error: \n Problem: conflicting requests\n  - nothing provides {rname} needed by {c.nevra}\n(try to add '--skip-broken' to skip uninstallable packages or '--nobest' to use not only best candidate packages)")
                raise Fail(f"Error: Package: {c.name}-{c.vr}.{c.arch} ({c.repo_id})\n           Requires: {rname}\n You could try using --skip-broken to work around the problem\n You could try running: rpm -Va --nofiles --nodigest")
            d = pkgdb.newest(hits)
            names.add(rname)
            deps.append(d)
            queue.append(d)
    return deps[::-1] + chosen, already, missing


def cmd_install(ctx, specs, verb="install"):
    if not specs:
        raise Fail(f"Error: Need to pass a list of pkgs to {verb}" if not ctx.dnf else f"Error: Need to pass a list of pkgs to {verb}")
    meta = load_metadata(ctx)
    todo, already, missing = resolve_targets(ctx, specs, meta)
    if ctx.dnf and missing:
        for m in missing:
            if any(match_spec(c, m) for c in ctx.excluded):
                fs.out(f"All matches were filtered out by exclude filtering for argument: {m}")
            else:
                fs.out(f"No match for argument: {m}")
        raise Fail(f"Error: Unable to find a match: {' '.join(missing)}")
    if not ctx.dnf:
        ctx.say("Loaded plugins: fastestmirror" + (", versionlock" if versionlocks(ctx) is not None else ""))
    for m in missing:
        fs.out(f"No package {m} available.")
    for a in already:
        fs.out(a)
    if not todo:
        if ctx.dnf:
            ctx.say("Dependencies resolved.\nNothing to do.\nComplete!")
            return 0
        if missing:
            fs.err("Error: Nothing to do")
            return 1
        ctx.say("Nothing to do")
        return 0
    return transact(ctx, todo, "Installing" if verb == "install" else "Updating")


def cmd_downgrade(ctx, specs):
    meta = load_metadata(ctx)
    cands = candidates(ctx, meta)
    todo = []
    for spec in specs:
        hits = [c for c in cands if match_spec(c, spec)]
        if not hits:
            fs.out(f"No package {spec} available." if not ctx.dnf else f"No match for argument: {spec}")
            continue
        todo.append(pkgdb.newest(hits))
    if not todo:
        fs.err("Error: Nothing to do")
        return 1
    return transact(ctx, todo, "Downgrading")


def cmd_remove(ctx, specs):
    inst = pkgdb.installed()
    gone = []
    for spec in specs:
        hits = installed_matches(spec) if spec not in inst else [(spec, inst[spec])]
        if not hits:
            fs.out(f"No Match for argument: {spec}" if not ctx.dnf else f"No match for argument: {spec}")
            continue
        gone += [h[0] for h in hits]
    if not gone:
        if ctx.dnf:
            fs.err("No packages marked for removal.")
            ctx.say("Dependencies resolved.\nNothing to do.\nComplete!")
        else:
            ctx.say("No Packages marked for removal")
        return 0
    # what requires a removed package is removed too ('Removing dependent packages')
    changed = True
    while changed:
        changed = False
        for name, entry in sorted(inst.items()):
            if name not in gone and any(r.split()[0] in gone for r in entry.get("depends") or []):
                gone.append(name)
                changed = True
    if not ctx.assumeyes:
        fs.out("Is this ok [y/N]: \nExiting on user command" if not ctx.dnf else "Is this ok [y/N]: \nOperation aborted.")
        return 1
    for n in gone:
        e = inst[n]
        ctx.say(f"  Erasing    : {n}-{pkgdb.evr_of(e)}.{e.get('arch')}")
        pkgdb.record_remove(n, "RedHat")
    ctx.say("\nRemoved:\n" + "\n".join(f"  {n}" for n in gone) + "\n\nComplete!")
    return 0


def _list_rows(rows, header, out):
    if not rows:
        return
    out.append(header)
    for name, arch, ver, repo in rows:
        left = f"{name}.{arch}"
        if len(left) > 40:
            out.append(left)
            left = ""
        out.append(f"{left:<40} {ver:<30} {repo}")


def cmd_list(ctx, args):
    what = "all"
    if args and args[0] in ("all", "available", "installed", "updates", "upgrades", "--upgrades", "--available", "--installed", "--updates", "--all", "extras", "obsoletes", "recent"):
        what = args[0].lstrip("-")
        args = args[1:]
    pats = args
    inst = pkgdb.installed()
    out = []

    def want(name, arch):
        return not pats or any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(f"{name}.{arch}", p) for p in pats)

    if what in ("all", "installed"):
        rows = []
        for name, e in sorted(inst.items()):
            if want(name, e.get("arch")):
                for inst_e in [e] + list(e.get("instances") or []):
                    rows.append((name, inst_e.get("arch") or e.get("arch"), pkgdb.evr_of(inst_e), "@" + (e.get("repo") or "anaconda")))
        _list_rows(rows, "Installed Packages", out)
    if what in ("all", "available", "updates", "upgrades"):
        meta = load_metadata(ctx)
        cands = candidates(ctx, meta)
        rows = []
        byname = {}
        for c in cands:
            if not want(c.name, c.arch):
                continue
            cur = inst.get(c.name)
            if cur and pkgdb.rpm_compare(c.full, pkgdb.evr_of(cur)) <= 0:
                if what != "available" or not ctx.showdup:
                    continue
            if what in ("updates", "upgrades") and not cur:
                continue
            byname.setdefault(c.name, []).append(c)
        for name in sorted(byname):
            cs = byname[name]
            if not ctx.showdup:
                cs = [pkgdb.newest(cs)]
            else:
                import functools

                cs = sorted(cs, key=functools.cmp_to_key(lambda a, b: pkgdb.rpm_compare(a.full, b.full)))
            for c in cs:
                ver = c.vr if c.epoch in ("", "0") else f"{c.epoch}:{c.vr}"
                rows.append((c.name, c.arch, ver, c.repo_id))
        _list_rows(rows, "Available Upgrades" if what in ("updates", "upgrades") and ctx.dnf else ("Updated Packages" if what in ("updates", "upgrades") else "Available Packages"), out)
    if not out and pats:
        fs.err("Error: No matching Packages to list")
        return 1
    for line in out:
        fs.out(line)
    return 0


def cmd_check_update(ctx):
    meta = load_metadata(ctx)
    cands = candidates(ctx, meta)
    inst = pkgdb.installed()
    ups = {}
    for c in cands:
        cur = inst.get(c.name)
        if cur and not INSTALLONLY.match(c.name) and pkgdb.rpm_compare(c.full, pkgdb.evr_of(cur)) > 0:
            if c.name not in ups or pkgdb.rpm_compare(c.full, ups[c.name].full) > 0:
                ups[c.name] = c
    if not ups:
        return 0
    fs.out("")
    for name in sorted(ups):
        c = ups[name]
        fs.out(f"{name + '.' + c.arch:<40} {c.vr:<30} {c.repo_id}")
    return 100


def cmd_versionlock(ctx, args):
    locks = versionlocks(ctx)
    if locks is None:
        raise Fail(f"No such command: versionlock. Please use /usr/bin/{ctx.prog} --help" + ("\nIt could be a DNF plugin command, try: \"dnf install 'dnf-command(versionlock)'\"" if ctx.dnf else ""))
    sub = args[0] if args else "list"
    names = args[1:]
    if not ctx.dnf:
        ctx.say("Loaded plugins: fastestmirror, versionlock")
    fname = VERSIONLOCK_FILE[ctx.kind]
    if sub in ("list", "l"):
        for line in locks:
            fs.out(line)
        if not ctx.dnf:
            ctx.say("versionlock list done")
        return 0
    if sub in ("add", "exclude"):
        inst = pkgdb.installed()
        added = 0
        for spec in names:
            hits = installed_matches(spec) if spec not in inst else [(spec, inst[spec])]
            if not hits:
                fs.out(f"Error: No package found for: {spec}" if ctx.dnf else f"Error: Package {spec} not installed")
                continue
            for name, e in hits:
                epoch = e.get("epoch") or "0"
                vr = f"{e['version']}-{e['release']}"
                line = f"{name}-{epoch}:{vr}.*" if ctx.dnf else f"{epoch}:{name}-{vr}.*"
                if sub == "exclude":
                    line = "!" + line
                if line in locks:
                    continue
                locks.append(line)
                added += 1
                fs.out(f"Adding versionlock on: {line if ctx.dnf else line[:-2]}")
        fs.write(fname, "".join(x + "\n" for x in locks))
        if not ctx.dnf:
            fs.out(f"versionlock added: {added}")
        return 0
    if sub in ("delete", "del"):
        kept, deleted = [], 0
        for line in locks:
            n, _v = _lock_name_ver(line, ctx.dnf)
            if any(fnmatch.fnmatchcase(line, p) or fnmatch.fnmatchcase(line.lstrip("!"), p) or n == p for p in names):
                deleted += 1
                fs.out(f"Deleting versionlock for: {line}")
            else:
                kept.append(line)
        fs.write(fname, "".join(x + "\n" for x in kept))
        if not deleted and ctx.dnf:
            raise Fail(f"Error: Entry '{names[0] if names else ''}' not found")
        if not ctx.dnf:
            fs.out(f"versionlock deleted: {deleted}")
        return 0
    if sub == "clear":
        fs.write(fname, "")
        return 0
    raise Fail(f"Error: Unknown versionlock command: {sub}")


OPTS_NOARG = {"-y", "--assumeyes", "-q", "--quiet", "-C", "--cacheonly", "--nogpgcheck", "--showduplicates", "--downloadonly", "-v", "--verbose", "--noplugins", "--skip-broken", "--obsoletes", "--nobest", "-h", "--help", "--assumeno", "--refresh", "--allowerasing", "--best"}
DNF_ONLY = {"--best", "--allowerasing", "--nobest", "--refresh"}
OPTS_ARG = {"--disablerepo", "--enablerepo", "--setopt", "--disableexcludes", "--exclude", "-x", "--releasever", "-d", "--debuglevel", "-e", "--errorlevel", "--installroot", "-c", "--config", "--repo", "--repoid"}


def parse(ctx, args):
    rest = []
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--") and "=" in a:
            key, val = a.split("=", 1)
        else:
            key, val = a, None
        if key in OPTS_ARG:
            if val is None:
                i += 1
                if i >= len(args):
                    raise Fail(f"Command line error: {key} option requires an argument" if not ctx.dnf else f"{ctx.prog}: error: argument {key}: expected one argument", 1 if not ctx.dnf else 2)
                val = args[i]
            if key == "--disablerepo":
                ctx.repo_ops.append(("disable", val))
            elif key in ("--enablerepo",):
                ctx.repo_ops.append(("enable", val))
            elif key in ("--repo", "--repoid"):
                ctx.repo_ops += [("disable", "*"), ("enable", val)]
            elif key == "--setopt":
                if "=" not in val:
                    raise Fail(f"Command line error: Error parsing '{val}': need more than 1 value to unpack" if not ctx.dnf else f"{ctx.prog}: error: argument --setopt: Setopt argument has no value: {val}", 1 if not ctx.dnf else 2)
                k, v = val.split("=", 1)
                ctx.setopt[k] = v
                if k == "exclude":
                    ctx.exclude += v.replace(",", " ").split()
            elif key == "--disableexcludes":
                ctx.disableexcludes += val.split(",")
            elif key in ("--exclude", "-x"):
                ctx.exclude += val.split(",")
        elif key in OPTS_NOARG:
            if key in DNF_ONLY and not ctx.dnf:
                raise Fail(f"Command line error: no such option: {key}")
            if key in ("-y", "--assumeyes"):
                ctx.assumeyes = True
            elif key in ("-q", "--quiet"):
                ctx.quiet = True
            elif key == "--nogpgcheck":
                ctx.nogpgcheck = True
            elif key == "--showduplicates":
                ctx.showdup = True
            elif key in ("-C", "--cacheonly"):
                ctx.cacheonly = True
            elif key == "--downloadonly":
                ctx.downloadonly = True
        elif re.match(r"^-[dex]\d+$", a) or a in ("-yq", "-qy"):
            if "y" in a:
                ctx.assumeyes = True
            if "q" in a:
                ctx.quiet = True
        elif a.startswith("-") and a != "-":
            if ctx.dnf:
                raise Fail(f"usage: {ctx.prog} [options] COMMAND\n{ctx.prog}: error: unrecognized arguments: {a}", 2)
            raise Fail(f"Command line error: no such option: {key}")
        else:
            rest.append(a)
        i += 1
    return rest


def main(argv):
    prog = argv[0]
    _fam, major, _key = fs.node_os()
    ctx = Ctx(prog, major)
    try:
        if "--version" in argv[1:]:
            fs.out("3.4.3" if not ctx.dnf else ("4.7.0" if major == 8 else "4.14.0"))
            return 0
        rest = parse(ctx, argv[1:])
        if not rest:
            fs.err("You need to give some command" if not ctx.dnf else f"usage: {prog} [options] COMMAND")
            return 1
        cmd, args = rest[0], rest[1:]
        if cmd in ("install", "localinstall"):
            return cmd_install(ctx, args)
        if cmd in ("update", "upgrade"):
            if not args:
                inst = pkgdb.installed()
                args = list(inst)
                ctx_quiet = ctx.quiet
                meta = load_metadata(ctx)
                cands = candidates(ctx, meta)
                args = [n for n in args if any(c.name == n and pkgdb.rpm_compare(c.full, pkgdb.evr_of(inst[n])) > 0 for c in cands)]
                ctx.quiet = ctx_quiet
                if not args:
                    ctx.say("No packages marked for update" if not ctx.dnf else "Dependencies resolved.\nNothing to do.\nComplete!")
                    return 0
            return cmd_install(ctx, args, verb="update")
        if cmd == "downgrade":
            return cmd_downgrade(ctx, args)
        if cmd == "reinstall":
            return cmd_downgrade(ctx, args)
        if cmd in ("remove", "erase"):
            return cmd_remove(ctx, args)
        if cmd == "list":
            return cmd_list(ctx, args)
        if cmd in ("repository-packages", "repo-pkgs", "repo-packages"):
            if len(args) < 2:
                raise Fail("Error: repository-packages needs a repo and a subcommand")
            ctx.repo_ops += [("disable", "*"), ("enable", args[0])]
            if args[1] != "list":
                raise Fail(f"Error: unsupported repository-packages subcommand {args[1]}")
            return cmd_list(ctx, ["available"] + args[2:])
        if cmd in ("check-update", "check-upgrade"):
            return cmd_check_update(ctx)
        if cmd == "clean":
            if not args:
                raise Fail("Error: clean requires an option: headers, packages, metadata, dbcache, plugins, expire-cache, rpmdb, all")
            ctx.say(f"Cleaning repos: {' '.join(r['id'] for r in enabled_repos(ctx))}")
            return 0
        if cmd == "makecache":
            load_metadata(ctx)
            ctx.say("Metadata Cache Created")
            return 0
        if cmd == "repolist":
            meta = enabled_repos(ctx)
            fs.out("repo id" + " " * 30 + "repo name")
            for r in meta:
                fs.out(f"{r['id']:<37}{r['name']}")
            return 0
        if cmd == "versionlock":
            return cmd_versionlock(ctx, args)
        if cmd == "info":
            return cmd_list(ctx, args)
        if cmd in ("makecache", "search", "provides", "whatprovides", "history", "groupinstall", "group", "groupinfo", "grouplist"):
            raise Fail(f"Error: {cmd} is not emulated by the twin")
        raise Fail(f"No such command: {cmd}. Please use /usr/bin/{prog} --help")
    except Fail as exc:
        fs.err(exc.text)
        return exc.rc


_unused = sys
