"""The one cluster view (_utils/k8snvidia.cluster_view, salt-run
cluster.view): roles, GPU nodes and each node's driver decided once, through
the same map as the states, and used by the orchestration's runners, the
inventory and the highstate's rule for GPUs. The cluster runner's dunders
through salt-factories' loader mock (``configure_loader_modules``)."""

import pytest

from tests.conftest import cluster_view, load_source, loader_globals, map_params

NODES = {
    "cp": {"role": "control-plane", "ip": "10.0.0.1", "os": "Rocky Linux-9"},
    "gpu-el7": {"ip": "10.0.0.2", "os": "CentOS Linux-7", "gpus": ["NVIDIA GeForce GTX 1080 Ti"]},
    "gpu-u22": {"role": "worker", "ip": "10.0.0.3", "os": "Ubuntu-22.04", "gpus": ["NVIDIA H200"]},
    "cpu": {"role": "worker", "ip": "10.0.0.4", "os": "Ubuntu-22.04"},
}
cluster_runner = load_source("_runners/cluster.py", "cluster_runner_view_test")


@pytest.fixture
def configure_loader_modules():
    return {cluster_runner: loader_globals(__opts__={"output": "json"})}


def test_roles_gpu_nodes_and_a_role_left_out_is_a_worker():
    view = cluster_view(NODES)
    assert view["control_plane"] == ["cp"]
    assert view["workers"] == ["cpu", "gpu-el7", "gpu-u22"]
    assert view["gpu_nodes"] == ["gpu-el7", "gpu-u22"]
    assert view["nodes"]["gpu-el7"]["role"] == "worker" and view["nodes"]["gpu-el7"]["grains"] == "pillar"


def test_the_driver_is_each_nodes_own_map_by_os_family_by_osfinger_and_overrides():
    nodes = dict(NODES, **{"gpu-u22": dict(NODES["gpu-u22"], overrides={"driver": {"version": "570.211.01"}})})
    view = cluster_view(nodes, driver={"version": "580.95.05"},
                        by_os_family={"RedHat": {"driver": {"version": "535.288.01"}}})
    assert view["nodes"]["gpu-el7"]["driver"]["version"] == "535.288.01"
    assert view["nodes"]["gpu-u22"]["driver"]["version"] == "570.211.01"
    assert view["nodes"]["cpu"]["driver"]["version"] == "580.95.05"
    # the method too is the node's map's: CentOS 7 installs the .run, Ubuntu 22.04 packages
    assert view["nodes"]["gpu-el7"]["driver"]["method"] == "runfile"
    assert view["nodes"]["gpu-u22"]["driver"]["method"] == "package"


def test_a_gpu_its_grain_sees_makes_a_gpu_node_as_in_the_highstate():
    grains = {"cpu": {"os_family": "Debian", "osfinger": "Ubuntu-22.04", "os": "Ubuntu", "osmajorrelease": 22,
                      "nvidia": {"gpus": [{"name": None, "pci_device_id": "0x2335"}]}}}
    view = cluster_view(NODES, grains=grains)
    assert view["nodes"]["cpu"]["gpus"] == ["0x2335"] and view["nodes"]["cpu"]["gpu"] is True
    assert "cpu" in view["gpu_nodes"] and view["nodes"]["cpu"]["grains"] == "cached"


def test_cached_grains_decide_the_os_over_the_pillars_os():
    grains = {"gpu-el7": {"os_family": "RedHat", "osfinger": "Rocky Linux-9", "os": "Rocky", "osmajorrelease": 9}}
    view = cluster_view(NODES, grains=grains, by_osfinger={"CentOS Linux-7": {"driver": {"version": "535.288.01"}}})
    assert view["nodes"]["gpu-el7"]["os"] == "Rocky Linux-9"
    assert view["nodes"]["gpu-el7"]["driver"]["version"] != "535.288.01"


def test_a_pillar_with_problems_still_gives_a_view():
    view = cluster_view({"cp": {"role": "control-plane", "ip": "10.0.0.1"}, "bad": "not a mapping",
                         "n1": {"ip": "10.0.0.5", "gpus": "GTX"}})
    assert view["control_plane"] == ["cp"]
    assert "n1" in view["nodes"] and view["nodes"]["n1"]["gpu"] is False


def test_the_map_and_the_view_share_the_gpu_rule():
    util = load_source("_utils/k8snvidia.py", "k8snvidia_test_view_rule")
    grain = {"gpus": [{"name": "NVIDIA H200"}, {"name": None, "pci_device_id": "0x2335"}, {}]}
    assert util.gpu_names(grain) == ["NVIDIA H200", "0x2335"]
    grains = {"id": "cpu", "os_family": "Debian", "osfinger": "Ubuntu-22.04", "os": "Ubuntu", "osmajorrelease": 22}
    cfg, _problems, _warnings = util.config_for(map_params(), {"nodes": NODES}, "cpu", grains,
                                                gpus_seen=util.gpu_names(grain))
    view = util.cluster_view(map_params(), {"nodes": NODES}, {"cpu": dict(grains, nvidia=grain)})
    assert cfg["node"]["gpus"] == view["nodes"]["cpu"]["gpus"] == ["NVIDIA H200", "0x2335"]


def test_inventory_reads_each_nodes_pinned_driver_no_false_mismatch(monkeypatch):
    """A driver pinned per OS family (by_os_family) is that node's want: the
    inventory flags only a node whose driver differs from its own map."""
    import salt.client

    mod = cluster_runner
    pins = {"driver": {"version": "580.95.05"}, "by_os_family": {"RedHat": {"driver": {"version": "535.288.01"}}}}
    monkeypatch.setattr(mod, "view", lambda pillar_dir=None: cluster_view(NODES, **pins))
    seen = {"gpu-el7": "535.288.01", "gpu-u22": "570.211.01", "cp": None, "cpu": None}

    class Client:
        def cmd(self, tgt, fun, arg=(), tgt_type="glob", **kwargs):
            ids = tgt if isinstance(tgt, list) else [tgt]
            if fun == "grains.item":
                return {n: {"kernelrelease": "6.8.0", "nvidia": {"driver_version": seen[n],
                                                                 "gpus": [{"name": "x"}] if seen[n] else []}}
                        for n in ids}
            if fun == "kubeadm.ca_hash":
                return {n: "sha256:" + "c" * 64 for n in ids}
            if fun == "kube.registered":
                return {n: sorted(NODES) for n in ids}
            if fun == "kube.allocatable":
                return {n: {"gpu-el7": 1, "gpu-u22": 1} for n in ids}
            return {n: True for n in ids}

    monkeypatch.setattr(salt.client, "get_local_client", lambda mopts=None: Client())
    inv = mod.inventory()
    assert "!= pillar" not in inv["gpu-el7"]["flags"]  # its OS family's pin, met
    # Ubuntu 22.04 installs from packages: the repositories decide the version, no pin to differ from
    assert "!= pillar" not in inv["gpu-u22"]["flags"]
    assert inv["gpu-el7"]["joined"] is True and inv["gpu-u22"]["allocatable"] == 1
