"""The container runtime files our states write, produced by the real
state tree (salt-call --local through tests/functional/render.py) into a
scratch root: containerd's config.toml (seeded with the one containerd.io
ships), our CRI drop-in, the nvidia drop-in, and docker's daemon.json.

``states(os, profile, cri)`` renders the file states once (paths under the
placeholder ROOT); ``apply(high, root, containerd_bin)`` runs them with the
given real containerd first in PATH, so the states read that containerd's
version exactly as on a node (``containerd --version``)."""

import atexit
import contextlib
import json
import os
import pathlib
import shutil
import tempfile

from tests.functional import render

ROOT = "/k8snvidia-judge-root"
PROFILES = ("modern", "seed2020")
# what the pillar allows: docker (dockershim) only before Kubernetes 1.24,
# i.e. in the seed's 2020 profile
CRIS = {"modern": ("containerd", "cri-dockerd"), "seed2020": ("containerd", "cri-dockerd", "docker")}
# containerd.io as download.docker.com ships it ("disabled_plugins" and the
# licence comments)
CONTAINERD_IO_CONFIG = """\
#   Copyright 2018-2022 Docker Inc.

#   Licensed under the Apache License, Version 2.0 (the "License");
#   you may not use this file except in compliance with the License.

disabled_plugins = ["cri"]

#root = "/var/lib/containerd"
#state = "/run/containerd"
#subreaper = true
#oom_score = 0

#[grpc]
#  address = "/run/containerd/containerd.sock"
#  uid = 0
#  gid = 0
"""
FILE_STATES = (
    "k8snvidia-containerd-config",
    "k8snvidia-containerd-cri-dropin",
    "k8snvidia-nvidia-ctk-containerd-dropin",
    "k8snvidia-docker-daemon-json",
    "k8snvidia-nvidia-ctk-docker-daemon-json",
)
REQUISITES = ("require", "watch", "require_in", "watch_in", "onchanges", "onlyif")
SANDBOX = {"seed2020": "registry.aliyuncs.com/google_containers/pause:3.10"}

_PILLARS = {}
_HIGH = {}


def pillar_dir(profile):
    """The shipped pillar, with cluster.sls including the given profile."""
    if profile == "modern":
        return None
    if profile not in _PILLARS:
        scratch = tempfile.mkdtemp(prefix=f"k8snvidia-judge-{profile}-")
        atexit.register(shutil.rmtree, scratch, True)
        dst = pathlib.Path(scratch) / "pillar"
        shutil.copytree(render.ROOT / "pillar", dst)
        cluster = dst / "cluster.sls"
        cluster.write_text(cluster.read_text().replace("- profiles.modern", f"- profiles.{profile}"))
        _PILLARS[profile] = dst
    return _PILLARS[profile]


def overrides(profile, cri):
    ctd = {
        "config": f"{ROOT}/containerd/config.toml",
        "dropin_dir": f"{ROOT}/containerd/conf.d",
        "cri_dropin": f"{ROOT}/containerd/conf.d/10-k8snvidia-cri.toml",
        # no package database here: the version comes from `containerd --version`
        "packages": [],
    }
    if profile in SANDBOX:
        ctd["sandbox_image"] = SANDBOX[profile]
    kube = {"cri": cri}
    if cri == "cri-dockerd":  # the pillar validation requires its checked download
        kube["cri_dockerd"] = {"source": "https://github.com/Mirantis/cri-dockerd/releases/download/v0.3.20/"
                                         "cri-dockerd-0.3.20-3.el9.x86_64.rpm", "sha256": "0" * 64}
    return {
        "k8snvidia": {
            "kubernetes": kube,
            "docker": {"daemon_json": f"{ROOT}/docker/daemon.json"},
            "containerd": ctd,
            "container_toolkit": {"containerd_dropin": f"{ROOT}/containerd/conf.d/99-nvidia.toml"},
        }
    }


def states(os_name, profile, cri):
    """The runtime file states of docker + nvidia.container_toolkit as this
    OS renders them, requisites on other states taken out."""
    key = (os_name, profile, cri)
    if key not in _HIGH:
        rc, high, err = render.salt_call(
            os_name,
            "state.show_sls",
            "docker,nvidia.container_toolkit",
            "pillar=" + json.dumps(overrides(profile, cri)),
            minion_id="node-110",
            pillar_dir=pillar_dir(profile),
        )
        assert rc == 0 and isinstance(high, dict), f"render {key} failed (rc {rc}): {high}\n{err}"
        keep = {}
        for sid in FILE_STATES:
            state = high[sid]
            body = {}
            for mod, args in state.items():
                if mod.startswith("__"):
                    body[mod] = args
                else:
                    body[mod] = [a for a in args if not (isinstance(a, dict) and set(a) & set(REQUISITES))]
            keep[sid] = body
        _HIGH[key] = keep
    return _HIGH[key]


def signature(high):
    """What the applied files depend on (not the SLS bookkeeping)."""
    out = {sid: {m: a for m, a in st.items() if not m.startswith("__")} for sid, st in high.items()}
    return json.dumps(out, sort_keys=True)


@contextlib.contextmanager
def path_first(directory):
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{directory}:{old}"
    try:
        yield
    finally:
        os.environ["PATH"] = old


def apply(os_name, high, root, containerd_bin, seed=CONTAINERD_IO_CONFIG, test=False):
    """Run the file states into ``root`` (config.toml seeded with ``seed``;
    None: no config.toml) with ``containerd_bin`` first in PATH; returns
    {state id: (result, comment, changes)}."""
    root = pathlib.Path(root)
    (root / "containerd").mkdir(parents=True, exist_ok=True)
    if seed is not None and not (root / "containerd/config.toml").exists():
        (root / "containerd/config.toml").write_text(seed)
    text = json.dumps(high).replace(ROOT, str(root))
    extra = ("test=True",) if test else ()
    with path_first(pathlib.Path(containerd_bin).parent):
        rc, out, err = render.salt_call(os_name, "state.high", text, *extra)
    assert isinstance(out, dict), f"state.high failed (rc {rc}): {out}\n{err}"
    return {k.split("_|-")[1]: (v["result"], v["comment"], v["changes"]) for k, v in out.items()}
