"""_modules/k8snvidia.py: the map's module. ``config`` builds and validates
the node's configuration once per job; ``cached`` hands salt/map.jinja that
result, so the SLS files after the first skip fetching and parsing the
parameter files; a pillar found invalid keeps failing, briefly. Salt's
dunders through salt-factories' loader mock."""

import pytest
import yaml
from salt.exceptions import CommandExecutionError

from tests.conftest import ROOT, load_source, loader_globals

mod = load_source("_modules/k8snvidia.py")
PARAMS = [yaml.safe_load((ROOT / f"salt/parameters/{name}.yaml").read_text())
          for name in ("defaults", "os_family", "osfinger")]
# the seed's node-105 (Ubuntu 18.04) of the shipped pillar
GRAINS = {"id": "node-105", "os_family": "Debian", "osfinger": "Ubuntu-18.04", "os": "Ubuntu", "osmajorrelease": 18,
          "oscodename": "bionic"}


@pytest.fixture
def pillar():
    cluster = yaml.safe_load((ROOT / "pillar/cluster.sls").read_text())["k8snvidia"]
    profile = yaml.safe_load((ROOT / "pillar/profiles/modern.sls").read_text())["k8snvidia"]
    return {"k8snvidia": mod.__utils__["k8snvidia.merge"](profile, cluster)}


@pytest.fixture
def configure_loader_modules(pillar):
    return {mod: loader_globals(__grains__=dict(GRAINS), __pillar__=pillar)}


def test_cached_is_none_until_config_built_it_then_the_same_map():
    assert mod.cached() is None
    cfg = mod.config(*PARAMS)
    assert isinstance(cfg, dict) and cfg
    assert mod.cached() is cfg
    assert mod.config(*PARAMS) is cfg  # built once per job


def test_an_invalid_pillar_fails_in_config_and_then_in_cached(pillar):
    pillar["k8snvidia"]["kubernetes"] = {"version": "not-a-version"}
    with pytest.raises(CommandExecutionError) as first:
        mod.config(*PARAMS)
    assert "kubernetes" in str(first.value)
    with pytest.raises(CommandExecutionError, match="listed with the first SLS"):
        mod.cached()
