"""Emulated yum-config-manager (yum-utils / dnf-plugins-core): --add-repo, --enable, --disable, --save --setopt."""

import configparser
import io
import os

from .. import fs, pkgdb

# .repo files published at well-known URLs (what --add-repo downloads)
REPOFILES = {
    "docker-ce.repo": "[docker-ce-stable]\nname=Docker CE Stable - $basearch\nbaseurl={base}/$releasever/$basearch/stable\nenabled=1\ngpgcheck=1\ngpgkey={base}/gpg\n",
}


def _add_repo(url):
    name = url.rstrip("/").rsplit("/", 1)[-1]
    if pkgdb.unreachable(name, url) or not (name.endswith(".repo") and ("download.docker.com" in url or "mirrors.aliyun.com/docker-ce" in url or "nvidia.github.io" in url)):
        fs.err(f"Could not fetch/save url {url} to file /etc/yum.repos.d/{name}: [Errno 14] curl#6 - \"Could not resolve host: {pkgdb.host_of(url)}; Unknown error\"")
        return 1
    if "nvidia.github.io" in url:
        text = "[nvidia-container-toolkit]\nname=nvidia-container-toolkit\nbaseurl=https://nvidia.github.io/libnvidia-container/stable/rpm/$basearch\nrepo_gpgcheck=1\ngpgcheck=0\nenabled=1\ngpgkey=https://nvidia.github.io/libnvidia-container/gpgkey\n"
    else:
        base = url.rsplit("/", 1)[0]
        text = REPOFILES["docker-ce.repo"].format(base=base)
    fs.out(f"adding repo from: {url}\ngrabbing file {url} to /etc/yum.repos.d/{name}\nrepo saved to /etc/yum.repos.d/{name}")
    fs.write(f"/etc/yum.repos.d/{name}", text)
    return 0


def _set(repo_ids, key, val):
    for f in fs.glob("/etc/yum.repos.d/*.repo"):
        cp = configparser.RawConfigParser(strict=False)
        cp.optionxform = str
        cp.read_string(fs.read(f) or "")
        changed = False
        for sect in cp.sections():
            if sect in repo_ids or "*" in repo_ids:
                cp.set(sect, key, val)
                changed = True
        if changed:
            buf = io.StringIO()
            cp.write(buf)
            fs.write(f, buf.getvalue())


def main(argv):
    args = argv[1:]
    rc = 0
    enable, disable, setopts, save = [], [], [], False
    i = 0
    pos = []
    while i < len(args):
        a = args[i]
        if a.startswith("--add-repo"):
            url = a.split("=", 1)[1] if "=" in a else (args[i + 1] if i + 1 < len(args) else "")
            i += 0 if "=" in a else 1
            rc |= _add_repo(url)
        elif a in ("--enable", "--set-enabled"):
            enable.append(None)
        elif a in ("--disable", "--set-disabled"):
            disable.append(None)
        elif a == "--save":
            save = True
        elif a.startswith("--setopt"):
            val = a.split("=", 1)[1] if "=" in a else args[i + 1]
            i += 0 if "=" in a else 1
            setopts.append(val)
        elif a in ("-y", "-q", "--quiet", "--assumeyes"):
            pass
        elif a.startswith("-"):
            fs.err(f"{os.path.basename(argv[0])}: error: no such option: {a}")
            return 2
        else:
            pos.append(a)
        i += 1
    if enable:
        _set(pos, "enabled", "1")
    if disable:
        _set(pos, "enabled", "0")
    if save:
        for s in setopts:
            k, v = s.split("=", 1)
            rid, opt = k.rsplit(".", 1) if "." in k else ("*", k)
            _set([rid], opt, v)
    return rc
