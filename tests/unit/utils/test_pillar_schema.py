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
# a commented-out key: '# key: value' at a key's indentation, or '#   key: value'
# (a key nested under a commented-out key, the '#' at the parent's indentation)
COMMENTED_KEY = re.compile(r"^(\s*)#( +)([a-z_][a-z0-9_.-]*:(?: .*)?)$")
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
    lines = [COMMENTED_KEY.sub(lambda m: m.group(1) + m.group(2)[1:] + m.group(3), line) for line in TEXT.splitlines()]
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
    """Unknown keys at any depth: the schema walk (test_example_fits_the_schema); here the layers."""
    for family, values in active()["by_os_family"].items():
        assert family in PARAMS["os_family"] and values
    for finger, values in active()["by_osfinger"].items():
        assert finger in PARAMS["osfinger"] and values


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


# ------------------------------------------------ the schema, the docs and this file agree
schema_mod = load_source("_utils/pillar_schema.py")
DOC = (ROOT / "docs/pillar.md").read_text()
TICK = re.compile(r"`([^`]+)`")


def schema_paths(spec=None, prefix=()):
    """(path, entry, repo path or None) for every key of the schema; node keys as nodes:*:key."""
    spec = schema_mod.SCHEMA if spec is None else spec
    for key, entry in spec.items():
        path = prefix + (key,)
        yield path, entry
        if entry["type"] == "map":
            yield from schema_paths(entry["keys"], path)
        elif entry["type"] == "nodes":
            yield from schema_paths(entry["keys"], path + ("*",))


def repo_of(path):
    """The repository map a path is inside (its path), else None."""
    for cut in range(len(path) - 1, 0, -1):
        entry = dict(schema_paths()).get(path[:cut])
        if entry and entry.get("ref") == "repo":
            return path[:cut]
    return None


def documented():
    """Key paths of the '## Keys' part of docs/pillar.md: table rows under a
    '### `section`' heading are relative to it (nodes: to nodes:<id>), under a
    heading of several sections they are full paths; the 'Repository keys'
    table documents the keys every repository map has."""
    keys_part = DOC.split("\n## Keys\n", 1)[1].split("\n## ", 1)[0]
    top = set(schema_mod.SCHEMA)
    paths, repo_keys, heading = set(), set(), []
    for line in keys_part.splitlines():
        if line.startswith("### "):
            heading = [t for t in TICK.findall(line) if t in top]
            repo_table = line[4:].startswith("Repository keys")
            continue
        if not line.startswith("| ") or line.startswith("|---") or line.startswith("| key "):
            continue
        for token in TICK.findall(line.split("|")[1]):
            if repo_table:
                repo_keys.add(token)
            elif len(heading) == 1:
                base = ("nodes", "*") if heading[0] == "nodes" else (heading[0],)
                paths.add(base + tuple(token.split(":")))
            else:
                paths.add(tuple(token.split(":")))
    for section in heading_sections(keys_part):
        paths.add((section,))
    return paths, repo_keys


def heading_sections(text):
    top = set(schema_mod.SCHEMA)
    return {t for line in text.splitlines() if line.startswith("### ") for t in TICK.findall(line) if t in top}


def test_docs_document_every_schema_key_and_nothing_else():
    paths, repo_keys = documented()
    known = dict(schema_paths())
    repo_entry = schema_mod.Repo("x")["keys"]
    unknown = sorted(":".join(p) for p in paths if p not in known)
    assert not unknown, f"docs/pillar.md documents keys the schema lacks: {unknown}"
    assert repo_keys <= set(repo_entry), repo_keys - set(repo_entry)
    missing = []
    for path, entry in known.items():
        repo = repo_of(path)
        if path in paths:
            continue
        if entry["type"] == "map" and any(p[: len(path)] == path for p in paths):
            continue  # a mapping: documented by its keys
        if repo is not None and path[-1] in repo_keys and any(p[: len(repo)] == repo for p in paths):
            continue
        missing.append(":".join(path))
    assert not missing, f"docs/pillar.md does not document: {missing}"
    assert set(repo_entry) <= repo_keys, set(repo_entry) - repo_keys


def test_example_shows_every_schema_key():
    example = shown()
    missing = []
    repo_keys_seen = set()
    for path, _entry in schema_paths():
        repo = repo_of(path)
        if path[:2] == ("nodes", "*"):
            if not any(isinstance(n, dict) and path[2] in n for n in example["nodes"].values()):
                missing.append(":".join(path))
            continue
        if repo is not None and path[len(repo):][0] in schema_mod.Repo("x")["keys"]:
            if _has(example, path):
                repo_keys_seen.add(path[-1])
            continue
        if not _has(example, path):
            missing.append(":".join(path))
    missing += [f"(some repo):{k}" for k in sorted(set(schema_mod.Repo("x")["keys"]) - repo_keys_seen)]
    assert not missing, f"pillar.example does not show: {missing}"


def _has(tree, path):
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return False
        tree = tree[key]
    return True


def test_example_fits_the_schema():
    """Every key pillar.example shows (commented ones too) is a schema key of the right type."""
    ctx = util._context(PARAMS)
    for tree in (shown(), active()):
        found = util.Found()
        util.check_structure(tree, found, ctx)
        assert not found.problems, list(found.problems)


# ------------------------------------------------ one table per choice
SCHEMA_MOD = load_source("_utils/pillar_schema.py")


def test_cnis_are_one_table():
    """cluster:cni's choices, the cni:<name> settings and ports:cni:<name>
    all come from pillar_schema.CNIS, and defaults.yaml has each CNI's
    settings and ports (adding a CNI: docs/changing.md)."""
    sch = SCHEMA_MOD.schema()
    names = tuple(SCHEMA_MOD.CNIS)
    assert sch["cluster"]["keys"]["cni"]["choices"] == names
    assert tuple(sch["cni"]["keys"]) == names
    assert tuple(sch["ports"]["keys"]["cni"]["keys"]) == names
    assert set(PARAMS["defaults"]["ports"]["cni"]) == set(names)
    assert set(PARAMS["defaults"]["cni"]) == set(names)
    assert SCHEMA_MOD.facts()["cni_required"] == {
        "flannel": {}, "calico": {"manifest_url": "the calico manifest (required for cni: calico)",
                                  "sha256": "its sha256 (required for cni: calico)"}}


def test_driver_methods_are_one_table():
    """driver:method's choices are pillar_schema.DRIVER_METHODS, the driver
    state acts on exactly those, and each has its SLS."""
    sch = SCHEMA_MOD.schema()
    names = tuple(SCHEMA_MOD.DRIVER_METHODS)
    assert sch["driver"]["keys"]["method"]["choices"] == names
    state = load_source("_states/nvidia_driver.py")
    assert state.METHODS == names
    for name in names:
        assert (ROOT / f"salt/nvidia/driver/{name}.sls").is_file(), name


@pytest.mark.parametrize("method,pin", [("runfile", "580.95.05"), ("package", None)])
def test_driver_pin_follows_the_method(method, pin):
    assert util.driver_pin({"manage": True, "method": method, "version": "580.95.05"}) == pin
    assert util.driver_pin({"manage": False, "method": method, "version": "580.95.05"}) is None
