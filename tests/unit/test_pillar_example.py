"""pillar.example: shows every key of defaults.yaml, sets no key that the OS
maps set (copying it must not mask OS values), names no unknown key, and is
a valid pillar for the nodes it lists."""

import re

import pytest
import yaml

from tests.conftest import ROOT, load_source

util = load_source("_utils/k8snvidia.py")
PARAMS = {n: yaml.safe_load((ROOT / f"salt/parameters/{n}.yaml").read_text()) for n in ("defaults", "os_family", "osfinger")}
TEXT = (ROOT / "pillar.example").read_text()
# a commented-out key: '# key: value' at a key's indentation
COMMENTED_KEY = re.compile(r"^(\s*)# ([a-z_][a-z0-9_.-]*:(?: .*)?)$")
SPLIT = ("nodes", "by_os_family", "by_osfinger")


def paths(tree, prefix=()):
    """Every key path of a nested mapping (mappings only, lists are leaves)."""
    out = set()
    for key, val in (tree or {}).items():
        out.add(prefix + (key,))
        if isinstance(val, dict) and val:
            out |= paths(val, prefix + (key,))
    return out


def shown():
    """pillar.example with its commented-out keys uncommented."""
    lines = [COMMENTED_KEY.sub(r"\1\2", line) for line in TEXT.splitlines()]
    return yaml.safe_load("\n".join(lines))["k8snvidia"]


def active():
    return yaml.safe_load(TEXT)["k8snvidia"]


def _top(cfg):
    return {k: v for k, v in cfg.items() if k not in SPLIT}


def map_paths():
    out = set()
    for layer in ("os_family", "osfinger"):
        for values in PARAMS[layer].values():
            out |= paths(values)
    return out


def test_every_default_key_is_shown():
    missing = sorted(".".join(p) for p in paths(PARAMS["defaults"]) - paths(_top(shown())) if p[0] != "nodes")
    assert not missing, f"pillar.example lacks: {missing}"


def test_no_active_key_masks_an_os_map_value():
    masked = sorted(".".join(p) for p in paths(_top(active())) & map_paths() if not isinstance(_get(active(), p), dict))
    assert not masked, f"pillar.example sets keys the OS maps set (comment them out): {masked}"


def _get(tree, path):
    for key in path:
        tree = tree[key]
    return tree


def test_no_unknown_keys():
    known = paths(PARAMS["defaults"]) | map_paths()
    unknown = sorted(".".join(p) for p in paths(_top(shown())) - known if not p[0] == "nodes")
    assert not unknown, unknown
    for family, values in active()["by_os_family"].items():
        assert family in PARAMS["os_family"]
        assert paths(values) <= known, family
    for finger, values in active()["by_osfinger"].items():
        assert paths(values) <= known, finger


@pytest.mark.parametrize(
    "grains",
    [
        {"id": "node-110", "os_family": "RedHat", "osfinger": "CentOS Linux-7", "os": "CentOS", "osmajorrelease": 7},
        {"id": "node-105", "os_family": "Debian", "osfinger": "Ubuntu-18.04", "os": "Ubuntu",
         "osmajorrelease": 18, "oscodename": "bionic"},
    ],
)
def test_example_is_a_valid_pillar(grains):
    pillar_cfg = active()
    cfg = util.build(PARAMS, pillar_cfg, grains["id"], grains)
    assert util.validate(cfg, pillar_cfg) == []
    # by_os_family applies the mirror; OS values stay the map's
    assert "mirrors.aliyun.com/docker-ce" in cfg["docker"]["repo"]["baseurl"]
    assert cfg["pkgrepo"]["format"] == ("yum" if grains["os_family"] == "RedHat" else "apt")
    if grains["id"] == "node-105":
        assert cfg["salt"]["ssh_user"] == "ubuntu" and cfg["docker"]["data_root"] == "/home/dockerData"
