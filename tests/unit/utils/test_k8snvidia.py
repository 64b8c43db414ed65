"""The pillar validation: every class of bad pillar is named once, with its
key, the value as written and what is expected; nothing raises, neither in
cluster.validate (check_pillar) nor at render time (config_for, the
k8snvidia execution module); the shipped pillar passes. The execution
module's dunders through salt-factories' loader mock
(``configure_loader_modules``)."""

import copy

import pytest
import yaml

from tests.conftest import ROOT, load_source, loader_globals, salt_cmd

util = load_source("_utils/k8snvidia.py")
schema_mod = load_source("_utils/pillar_schema.py")
gpu = load_source("_utils/nvidia_gpu.py")
PARAMS = {n: yaml.safe_load((ROOT / f"salt/parameters/{n}.yaml").read_text()) for n in ("defaults", "os_family", "osfinger")}
CENTOS7 = {"id": "node-110", "os_family": "RedHat", "osfinger": "CentOS Linux-7", "os": "CentOS", "osmajorrelease": 7}
UBUNTU = {"id": "node-105", "os_family": "Debian", "osfinger": "Ubuntu-18.04", "os": "Ubuntu", "osmajorrelease": 18,
          "oscodename": "bionic"}


def shipped():
    cluster = yaml.safe_load((ROOT / "pillar/cluster.sls").read_text())["k8snvidia"]
    profile = yaml.safe_load((ROOT / "pillar/profiles/modern.sls").read_text())["k8snvidia"]
    return util.merge(profile, cluster)


def problems_for(pillar_cfg, grains=CENTOS7):
    cfg = util.build(PARAMS, pillar_cfg, grains["id"], grains)
    return util.validate(cfg, pillar_cfg)


def everything(pillar_cfg):
    """Problems from the whole-cluster check and from rendering two nodes; none raises."""
    whole = util.check_pillar(PARAMS, pillar_cfg, gpu_check=gpu.driver_problems)
    renders = [util.config_for(PARAMS, pillar_cfg, g["id"], g, gpu_check=gpu.driver_problems) for g in (CENTOS7, UBUNTU)]
    return whole, renders


def _bad(mutate):
    cfg = copy.deepcopy(shipped())
    mutate(cfg)
    return cfg


def assert_named_once(pillar_cfg, needle, render=True):
    """`needle` is in exactly one problem of cluster.validate, and (render) in
    exactly one problem of each node's render."""
    whole, renders = everything(pillar_cfg)
    hits = [p for p in whole["problems"] if needle in p]
    assert len(hits) == 1, whole["problems"]
    if render:
        for _cfg, problems, _warnings in renders:
            assert len([p for p in problems if needle in p]) == 1, problems
    return hits[0]


def test_shipped_pillar_is_valid():
    assert problems_for(shipped()) == []
    whole, renders = everything(shipped())
    assert whole["problems"] == []
    assert all(problems == [] for _c, problems, _w in renders)


def test_schema_fits_defaults_and_os_maps():
    """defaults.yaml and every layer of the OS maps pass the schema walk: the
    schema knows every key they set, with the right type."""
    ctx = util._context(PARAMS)
    found = util.Found()
    util.check_structure(PARAMS["defaults"], found, ctx)
    for layer in ("os_family", "osfinger"):
        for name, values in PARAMS[layer].items():
            util.check_structure(values, found, ctx)
            assert not found.problems, (layer, name, list(found.problems))
    assert not found.problems, list(found.problems)


def _schema_paths(spec, prefix=()):
    for key, sub in spec.items():
        path = prefix + (key,)
        yield path, sub
        if sub["type"] == "map":
            yield from _schema_paths(sub["keys"], path)
        if sub["type"] == "nodes":
            yield from _schema_paths(sub["keys"], path + ("*",))


def test_every_schema_key_has_a_default_and_a_doc():
    """A key's default is in defaults.yaml, an OS map, or the schema's default=."""
    layers = [PARAMS["defaults"]] + [v for layer in ("os_family", "osfinger") for v in PARAMS[layer].values()]
    for path, spec in _schema_paths(schema_mod.SCHEMA):
        assert spec.get("doc"), path
        if path[:2] == ("nodes", "*"):
            assert "default" in spec, path
            continue
        inherited = any("default" in s for p, s in _schema_paths(schema_mod.SCHEMA) if p == path[: len(p)])
        assert any(_has(tree, path) for tree in layers) or "default" in spec or inherited, f"{':'.join(path)}: no default"


def _has(tree, path):
    for key in path:
        if not isinstance(tree, dict) or key not in tree:
            return False
        tree = tree[key]
    return True


@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda c: c["nodes"]["node-105"].update(ip="912.168.0.105"), "k8snvidia:nodes:node-105:ip: '912.168.0.105'"),
        (lambda c: c["nodes"]["node-105"].update(ip="192.168.0.110"), "a unique address; node-110 has it too"),
        (lambda c: c["nodes"].update({"Node-110": {"ip": "192.168.0.120", "role": "worker"}}), "a unique node name"),
        (lambda c: c["nodes"]["node-109"].update(role="gpu-worker"), "k8snvidia:nodes:node-109:role: 'gpu-worker'"),
        (lambda c: c["nodes"]["cluster-master"].update(role="worker"), "exactly one node with role: control-plane"),
        (lambda c: c["driver"].pop("sha256"), "k8snvidia:driver:sha256: None is invalid"),
        (lambda c: c.setdefault("docker", {}).update(repo={"baseurl": "http://mirror.example/docker", "gpgcheck": False}),
         "k8snvidia:docker:repo:gpgcheck: False"),
        (lambda c: c["cluster"].update(pod_cidr="192.168.0.0/16"), "k8snvidia:cluster:pod_cidr: '192.168.0.0/16'"),
        (lambda c: c["kubernetes"].update(cri="docker"), "no dockershim"),
        (lambda c: c["kubernetes"].update(version="1.34"), "k8snvidia:kubernetes:version: '1.34'"),
        (lambda c: c.setdefault("host", {}).update(selinux="off"), "k8snvidia:host:selinux: 'off'"),
    ],
)
def test_rejected(mutate, needle):
    found = problems_for(_bad(mutate))
    assert any(needle in p for p in found), found
    assert_named_once(_bad(mutate), needle)


def test_headers_package_with_the_version_in_its_name_is_refused_on_yum():
    """The map before the fix (kernel-devel-{kernel}): dnf installs it, Salt's
    pkg.installed cannot find it by that name and fails the driver step."""
    bad = _bad(lambda c: c.update(by_os_family={"RedHat": {"driver": {"headers_package": "kernel-devel-{kernel}"}}}))
    hit = assert_named_once(bad, "k8snvidia:driver:headers_package: 'kernel-devel-{kernel}'", render=False)
    assert "with the version in driver:headers_version" in hit
    assert problems_for(bad, UBUNTU) == []  # Debian's linux-headers-{kernel} is a real package name
    assert problems_for(_bad(lambda c: c.update(by_os_family={"RedHat": {"driver": {
        "headers_package": "kernel-devel", "headers_version": "{kernel_noarch}"}}}))) == []


# ------------------------------------------------ class: wrong YAML types
@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda c: c.update(cluster="seed"), "k8snvidia:cluster: 'seed' is invalid; expected a mapping"),
        (lambda c: c.update(cluster=["name", "seed"]), "k8snvidia:cluster: ['name', 'seed'] is invalid; expected a mapping"),
        (lambda c: c.update(nodes=["node-110", "node-105"]), "k8snvidia:nodes: ['node-110', 'node-105'] is invalid; "
         "expected a mapping of minion id"),
        (lambda c: c.update(nodes="node-110"), "k8snvidia:nodes: 'node-110' is invalid"),
        (lambda c: c["nodes"].update({"node-109": "worker"}), "k8snvidia:nodes:node-109: 'worker' is invalid; expected a mapping"),
        (lambda c: c["nodes"].update({"node-109": ["192.168.0.109"]}), "k8snvidia:nodes:node-109: ['192.168.0.109']"),
        (lambda c: c.update(driver="580.95.05"), "k8snvidia:driver: '580.95.05' is invalid; expected a mapping"),
        (lambda c: c.update(kubernetes=None), "k8snvidia:kubernetes: None is invalid; expected a mapping; `kubernetes:` with nothing"),
        (lambda c: c.update(host={"firewall": "off"}), "k8snvidia:host:firewall: 'off' is invalid; expected a mapping"),
        (lambda c: c.update(host={"swap_off": "yes"}), "k8snvidia:host:swap_off: 'yes' is invalid; expected true or false, unquoted"),
        (lambda c: c["cluster"].update(join_batch_size="2"), "k8snvidia:cluster:join_batch_size: '2' is invalid; expected a "
         "whole number, without quotes"),
        (lambda c: c["cluster"].update(reboot_timeout=True), "k8snvidia:cluster:reboot_timeout: True is invalid; expected a whole number"),
        (lambda c: c["cluster"].update(cni=["flannel"]), "k8snvidia:cluster:cni: ['flannel'] is invalid"),
        (lambda c: c.update(by_os_family=["RedHat"]), "k8snvidia:by_os_family: ['RedHat'] is invalid; expected a mapping"),
        (lambda c: c["nodes"]["node-105"].update(overrides="docker"), "k8snvidia:nodes:node-105:overrides: 'docker' is invalid"),
        (lambda c: c["nodes"]["node-105"].update(overrides={"docker": ["data_root"]}),
         "k8snvidia:nodes:node-105:overrides:docker: ['data_root'] is invalid"),
        (lambda c: c.update(host={"sysctl": {"net.ipv4.ip_forward": [1]}}), "k8snvidia:host:sysctl:net.ipv4.ip_forward: [1]"),
        (lambda c: c.update(docker={"users": ["alice", 7]}), "k8snvidia:docker:users: 7 is invalid; expected a list of strings"),
    ],
)
def test_wrong_types_are_named_without_traceback(mutate, needle):
    assert_named_once(_bad(mutate), needle)


def test_a_pillar_that_is_not_a_mapping():
    whole, renders = everything(["nodes"])
    assert len(whole["problems"]) == 1 and whole["problems"][0].startswith("k8snvidia: ['nodes'] is invalid"), whole
    assert all(len(problems) == 1 for _c, problems, _w in renders)


# ------------------------------------------------ class: unknown keys
@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda c: c.update(drvier={"version": "580.95.05"}), "k8snvidia:drvier: unknown key; did you mean driver?"),
        (lambda c: c["cluster"].update(pod_cdir="10.244.0.0/16"), "k8snvidia:cluster:pod_cdir: unknown key; did you mean cluster:pod_cidr?"),
        (lambda c: c["cluster"].update(join_token_tll="15m"), "did you mean cluster:join_token_ttl?"),
        (lambda c: c["nodes"]["node-110"].update(gpu=["NVIDIA GeForce GTX 1080 Ti"]),
         "k8snvidia:nodes:node-110:gpu: unknown key; did you mean nodes:node-110:gpus?"),
        (lambda c: c["nodes"]["node-110"].update(roles="worker"), "did you mean nodes:node-110:role?"),
        (lambda c: c["nodes"]["node-105"].update(overrides={"docker": {"data_rot": "/x"}}),
         "k8snvidia:nodes:node-105:overrides:docker:data_rot: unknown key; did you mean nodes:node-105:overrides:docker:data_root?"),
        (lambda c: c["kubernetes"].update(repo={"baseurl": "https://m.example/k8s", "gpg_key": "https://m.example/k"}),
         "k8snvidia:kubernetes:repo:gpg_key: unknown key; did you mean kubernetes:repo:gpgkey?"),
        (lambda c: c.update(by_os_family={"Redhat": {}}), "k8snvidia:by_os_family:Redhat: unknown os_family; did you mean RedHat?"),
        (lambda c: c.update(by_osfinger={"Ubuntu-2204": {}}), "k8snvidia:by_osfinger:Ubuntu-2204: unknown osfinger; did you mean Ubuntu-22.04?"),
        (lambda c: c.update(by_osfinger={"CentOS Linux-7": {"kernel": {"verison": "5.4"}}}),
         "k8snvidia:by_osfinger:CentOS Linux-7:kernel:verison: unknown key; did you mean by_osfinger:CentOS Linux-7:kernel:version?"),
        (lambda c: c.update(xyzzy=1), "k8snvidia:xyzzy: unknown key; k8snvidia has: cluster, nodes"),
    ],
)
def test_unknown_keys_get_the_closest_known_key(mutate, needle):
    assert_named_once(_bad(mutate), needle)


@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda c: c["nodes"]["node-105"].update(hostname="Node_105"), "k8snvidia:nodes:node-105:hostname: 'Node_105'"),
        (lambda c: c["nodes"]["node-105"].update(hostname="node-110"), "a unique node name; node-110 has it too"),
        (lambda c: c["nodes"]["node-105"].update(ip=3232235625), "k8snvidia:nodes:node-105:ip: 3232235625"),
        (lambda c: c["nodes"]["node-105"].pop("ip"), "k8snvidia:nodes:node-105:ip: None is invalid; expected an IPv4"),
        (lambda c: c["nodes"]["node-105"].pop("role"), "k8snvidia:nodes:node-105:role: None is invalid"),
        (lambda c: c.update(ports={"worker": [10250]}), "k8snvidia:ports:worker: 10250 is invalid"),
        (lambda c: c.update(ports={"worker": ["10250/sctp"]}), "k8snvidia:ports:worker: '10250/sctp' is invalid"),
        (lambda c: c["cluster"].update(cni="flanel"), "k8snvidia:cluster:cni: 'flanel' is invalid; expected one of flannel, "
         "calico (did you mean flannel?)"),
        (lambda c: c.update(containerd={"config_version": 4}), "k8snvidia:containerd:config_version: unknown key"),
        (lambda c: c.update(containerd={"packages": "containerd.io"}), "k8snvidia:containerd:packages: 'containerd.io' is invalid"),
        (lambda c: c["cluster"].update(cni="calico"), "k8snvidia:cni:calico:manifest_url: None is invalid"),
        (lambda c: c["kubernetes"].update(cri="cri-dockerd"), "k8snvidia:kubernetes:cri_dockerd:source: None is invalid"),
    ],
)
def test_node_entries_and_values_named_once(mutate, needle):
    assert_named_once(_bad(mutate), needle)


# ------------------------------------------------ class: join_token_ttl
@pytest.mark.parametrize(
    "value,needle",
    [
        ("soon", "'soon' is invalid; expected a duration in kubeadm's form"),
        ("1.5h", "'1.5h' is invalid; expected a duration in kubeadm's form"),
        ("15 m", "'15 m' is invalid"),
        ("0s", "'0s' is invalid; expected a duration longer than 0"),
        ("0m", "'0m' is invalid; expected a duration longer than 0"),
        ("2h", "'2h' is invalid; expected a duration of at most 60m"),
        ("24h", "'24h' is invalid; expected a duration of at most 60m"),
        ("61m", "'61m' is invalid; expected a duration of at most 60m"),
        (15, "15 is invalid; expected a duration such as 15m or 1h: YAML read 15 as a number without a unit"),
        (0, "0 is invalid"),
    ],
)
def test_join_token_ttl(value, needle):
    assert_named_once(_bad(lambda c: c["cluster"].update(join_token_ttl=value)), f"k8snvidia:cluster:join_token_ttl: {needle}")


@pytest.mark.parametrize("value", ["15m", "1h", "59m59s", "30s", "1h0m0s", "45m"])
def test_join_token_ttl_accepted(value):
    whole, _ = everything(_bad(lambda c: c["cluster"].update(join_token_ttl=value)))
    assert whole["problems"] == []


def test_ttl_max_matches_kubeadm_module_parsing():
    """What the validator accepts, _modules/kubeadm.py's _duration reads the same way."""
    kubeadm = load_source("_modules/kubeadm.py", "kubeadm_for_ttl")
    for value in ("15m", "1h", "1h0m0s", "45m", "30s"):
        assert kubeadm._seconds(value) == util.duration_seconds(value)


# ------------------------------------------------ class: lists given as strings
@pytest.mark.parametrize(
    "mutate,key",
    [
        (lambda c: c["nodes"]["node-110"].update(gpus="NVIDIA GeForce GTX 1080 Ti"), "nodes:node-110:gpus"),
        (lambda c: c.update(docker={"users": "alice"}), "docker:users"),
        (lambda c: c.update(docker={"registry_mirrors": "https://mirror.example"}), "docker:registry_mirrors"),
        (lambda c: c.update(host={"kernel_modules": "br_netfilter"}), "host:kernel_modules"),
        (lambda c: c.update(ports={"worker": "10250/tcp"}), "ports:worker"),
        (lambda c: c["kubernetes"].update(packages="kubelet"), "kubernetes:packages"),
        (lambda c: c.update(driver={**c["driver"], "prerequisites": "gcc"}), "driver:prerequisites"),
    ],
)
def test_list_given_as_string(mutate, key):
    line = assert_named_once(_bad(mutate), f"k8snvidia:{key}: '")
    assert "expected a list, such as [" in line and "a single string is not a list" in line


# ------------------------------------------------ class: GPU model names
@pytest.mark.parametrize(
    "name,suggestion",
    [
        ("NVIDIA H2OO", "NVIDIA H200"),
        ("Tesla T5", "Tesla T4"),
        ("NVIDIA A1OO 80GB PCIe", "NVIDIA A100 80GB PCIe"),
        ("AMD Radeon RX 7900 XTX", None),
        ("0xffff", None),
    ],
)
def test_unknown_gpu_model(name, suggestion):
    line = assert_named_once(_bad(lambda c: c["nodes"]["node-109"].update(gpus=[name])),
                             f"k8snvidia:nodes:node-109:gpus: {name!r} is invalid; expected a GPU model K8sNvidia knows")
    if suggestion:
        assert f"did you mean {suggestion}?" in line, line


@pytest.mark.parametrize("name", ["NVIDIA GeForce GTX 1080 Ti", "0x1b06", "NVIDIA H200", "Tesla T4"])
def test_known_gpu_models(name):
    whole, _ = everything(_bad(lambda c: c["nodes"]["node-110"].update(gpus=[name])))
    assert not [p for p in whole["problems"] if "GPU model" in p], whole


# ------------------------------------------------ class: node os
@pytest.mark.parametrize(
    "value,suggestion",
    [("CentOS-7", "CentOS Linux-7"), ("Ubuntu-20.10", "Ubuntu-20.04"), ("ubuntu-22.04", "Ubuntu-22.04"),
     ("Windows-11", None), ("Rocky Linux-10", "Rocky Linux-9")],
)
def test_unknown_node_os(value, suggestion):
    line = assert_named_once(_bad(lambda c: c["nodes"]["node-106"].update(os=value)),
                             f"k8snvidia:nodes:node-106:os: {value!r} is invalid; expected an OS release the map knows",
                             render=False)
    if suggestion:
        assert f"did you mean {suggestion}?" in line, line


def test_minion_os_unknown_to_every_map_layer_at_render_time():
    grains = dict(CENTOS7, os_family="Gentoo", osfinger="Gentoo-2")
    _cfg, problems, _w = util.config_for(PARAMS, shipped(), "node-110", grains)
    assert len([p for p in problems if "os_family 'Gentoo'" in p]) == 1, problems
    grains = dict(CENTOS7, osfinger="Rocky Linux-10")
    _cfg, problems, warnings = util.config_for(PARAMS, shipped(), "node-110", grains)
    assert problems == [] and any("Rocky Linux-10" in w for w in warnings)


# ------------------------------------------------ class: IPv6 / dual stack
@pytest.mark.parametrize(
    "key,value",
    [
        ("pod_cidr", "fd00:10:244::/56"),
        ("pod_cidr", "10.244.0.0/16,fd00:10:244::/56"),
        ("service_cidr", "fd00:10:96::/112"),
        ("service_cidr", "10.96.0.0/12,fd00:10:96::/112"),
        ("node_network", "2001:db8::/64"),
    ],
)
def test_ipv6_and_dual_stack_rejected(key, value):
    line = assert_named_once(_bad(lambda c: c["cluster"].update({key: value})), f"k8snvidia:cluster:{key}: {value!r}")
    assert "IPv6 and dual-stack are not supported" in line


def test_ipv6_node_address_rejected():
    assert_named_once(_bad(lambda c: c["nodes"]["node-105"].update(ip="fd00::105")),
                      "k8snvidia:nodes:node-105:ip: 'fd00::105' is invalid; expected an IPv4 address")


# ------------------------------------------------ class: versions YAML read as numbers
@pytest.mark.parametrize(
    "key,value",
    [("driver:version", 580.95), ("driver:version", 440.1), ("driver:version", 580),
     ("kubernetes:version", 1.35), ("salt:version", 3008.4), ("container_toolkit:version", 1.17)],
)
def test_version_read_as_number(key, value):
    section, sub = key.split(":")

    def mutate(c):
        c.setdefault(section, {})[sub] = value

    line = assert_named_once(_bad(mutate), f"k8snvidia:{key}: {value!r} is invalid")
    assert f"in quotes as written: YAML read {value!r} as a number" in line, line


# ------------------------------------------------ class: Kubernetes version and its repository
@pytest.mark.parametrize(
    "version,needle",
    [
        ("1.20.15", "expected 1.24 or newer: pkgs.k8s.io has no v1.20 repository"),
        ("1.18.20", "expected 1.24 or newer: pkgs.k8s.io has no v1.18 repository"),
        ("1.38.0", "pkgs.k8s.io has no v1.38 repository"),
        ("1.40.1", "expected a released Kubernetes version: 1.37 is the newest minor"),
        ("2.0.0", "expected a full Kubernetes version"),
        ("v1.35.1", "expected a full Kubernetes version"),
    ],
)
def test_kubernetes_version_without_repository(version, needle):
    line = assert_named_once(_bad(lambda c: c["kubernetes"].update(version=version)),
                             f"k8snvidia:kubernetes:version: {version!r} is invalid; expected")
    assert needle in line, line


@pytest.mark.parametrize("version,warned", [("1.35.1", False), ("1.35.4", False), ("1.34.2", True), ("1.28.15", True)])
def test_kubernetes_past_end_of_life_is_a_warning(version, warned):
    whole, renders = everything(_bad(lambda c: c["kubernetes"].update(version=version)))
    assert whole["problems"] == []
    assert bool([w for w in whole["warnings"] if "past its end of life" in w]) is warned
    assert all(problems == [] for _c, problems, _w in renders)


def test_old_kubernetes_from_a_mirror_is_allowed():
    """The seed2020 profile: Kubernetes 1.18 from the aliyun mirror (a warning, not an error)."""
    seed = yaml.safe_load((ROOT / "pillar/profiles/seed2020.sls").read_text())["k8snvidia"]
    cluster = yaml.safe_load((ROOT / "pillar/cluster.sls").read_text())["k8snvidia"]
    whole, renders = everything(util.merge(seed, cluster))
    assert whole["problems"] == [], whole["problems"]
    assert any("1.18" in w for w in whole["warnings"])


# ------------------------------------------------ class: no worker
@pytest.mark.parametrize(
    "nodes",
    [
        {"cluster-master": {"ip": "192.168.0.113", "role": "control-plane"}},
        {"cluster-master": {"ip": "192.168.0.113", "role": "control-plane", "gpus": ["NVIDIA GeForce GTX 1080 Ti"]}},
        {"a": {"ip": "192.168.0.1", "role": "control-plane"}, "b": {"ip": "192.168.0.2", "role": "control-plane"}},
    ],
)
def test_cluster_without_worker(nodes):
    assert_named_once(_bad(lambda c: c.update(nodes=nodes)), "expected at least one node with role: worker")


# ------------------------------------------------ one line for a problem many nodes share
def test_problem_common_to_all_nodes_is_printed_once_naming_them():
    whole = util.check_pillar(PARAMS, _bad(lambda c: c["driver"].pop("sha256")), gpu_check=gpu.driver_problems)
    lines = [p for p in whole["problems"] if "driver:sha256" in p]
    assert len(lines) == 1, whole["problems"]
    assert lines[0].endswith("[every node: cluster-master, node-110, node-109, node-106, node-105]"), lines[0]


def test_problem_of_some_nodes_names_those():
    def mutate(c):
        for nid in ("node-109", "node-106"):
            c["nodes"][nid]["overrides"] = {"driver": {"sha256": None}}

    whole = util.check_pillar(PARAMS, _bad(mutate))
    lines = [p for p in whole["problems"] if "driver:sha256" in p]
    assert len(lines) == 1 and lines[0].endswith("[node-109, node-106]"), whole["problems"]


def test_gpu_problem_names_each_node_once():
    whole = util.check_pillar(PARAMS, _bad(lambda c: c["driver"].update(version="590.44.01")), gpu_check=gpu.driver_problems)
    for nid in ("node-110", "node-109", "node-106", "node-105"):
        assert len([p for p in whole["problems"] if f"node {nid} has NVIDIA GeForce GTX 1080 Ti" in p]) == 1, whole


# ------------------------------------------------ render time: the execution module
k8s_mod = load_source("_modules/k8snvidia.py", "k8s_mod_validate")


@pytest.fixture
def configure_loader_modules():
    return {k8s_mod: loader_globals(__grains__=dict(CENTOS7), __utils__={
        "k8snvidia.config_for": util.config_for, "k8snvidia.report": util.report,
        "pillar_schema.schema": schema_mod.schema, "pillar_schema.facts": schema_mod.facts,
        "nvidia_gpu.driver_problems": gpu.driver_problems, "k8snvidia.gpu_names": util.gpu_names,
    })}


def _module(pillar):
    """The execution module on node-110 with ``pillar`` (this test's dunders, filled in place)."""
    k8s_mod.__pillar__["k8snvidia"] = pillar
    return k8s_mod


@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda c: c.update(cluster="seed"), "k8snvidia:cluster: 'seed' is invalid"),
        (lambda c: c.update(nodes=["node-110"]), "k8snvidia:nodes: ['node-110'] is invalid"),
        (lambda c: c["nodes"].update({"node-110": "worker"}), "k8snvidia:nodes:node-110: 'worker' is invalid"),
        (lambda c: c["nodes"]["node-110"].update(overrides=["x"]), "k8snvidia:nodes:node-110:overrides: ['x']"),
        (lambda c: c.update(by_os_family={"RedHat": "mirror"}), "k8snvidia:by_os_family:RedHat: 'mirror'"),
        (lambda c: c["driver"].update(version=580.95), "k8snvidia:driver:version: 580.95"),
    ],
)
def test_render_time_raises_the_report_only(mutate, needle):
    from salt.exceptions import CommandExecutionError

    mod = _module(_bad(mutate))
    with pytest.raises(CommandExecutionError) as err:
        mod.config(PARAMS["defaults"], PARAMS["os_family"], PARAMS["osfinger"])
    text = str(err.value)
    assert text.startswith("K8sNvidia pillar: ") and text.count(needle) == 1, text


def test_render_time_without_validation_still_builds():
    mod = _module(_bad(lambda c: c.update(cluster="seed")))
    cfg = mod.config(PARAMS["defaults"], PARAMS["os_family"], PARAMS["osfinger"], validate=False)
    assert cfg["cluster"]["pod_cidr"] == "10.244.0.0/16"


# ------------------------------------------------ end to end, through the real salt-run
def test_runner_validate_passes_and_names_bad_ip(repo_copy):
    ok = salt_cmd("salt-run", "cluster.validate", cwd=repo_copy)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "unclosed" not in ok.stderr and "Traceback" not in ok.stdout + ok.stderr
    path = repo_copy / "pillar/cluster.sls"
    path.write_text(path.read_text().replace("ip: 192.168.0.105", "ip: 912.168.0.105"))
    bad = salt_cmd("salt-run", "cluster.validate", cwd=repo_copy)
    assert bad.returncode != 0
    assert "k8snvidia:nodes:node-105:ip: '912.168.0.105' is invalid; expected an IPv4 address" in bad.stdout


@pytest.mark.parametrize(
    "old,new,needle",
    [
        ("    name: seed\n", "    name: seed\n   bad: [\n", "cluster.sls: line 13, column 4: did not find expected key"),
        ("    name: seed\n", "    name: {{ nosuch.thing }}\n", "cluster.sls: line 12: Jinja variable 'nosuch' is undefined"),
        ("  cluster:\n", "  cluster: seed\n  clusterx:\n", "k8snvidia:cluster: 'seed' is invalid; expected a mapping"),
        ("node_network: 192.168.0.0/24", "node_netwrok: 192.168.0.0/24",
         "k8snvidia:cluster:node_netwrok: unknown key; did you mean cluster:node_network?"),
        ("\nk8snvidia:\n", "\nk8snvida:\n", "pillar key k8snvida: unknown; did you mean k8snvidia?"),
        ("    name: seed\n", "    name: seed\n    join_token_ttl: 24h\n",
         "k8snvidia:cluster:join_token_ttl: '24h' is invalid; expected a duration of at most 60m"),
    ],
)
def test_runner_e2e_bad_pillar(tmp_path, old, new, needle):
    """Through the real salt-run, with pillar_dir=DIR: one line per problem,
    file and line for YAML/Jinja errors, non-zero exit, no traceback, no
    unclosed-Runner noise."""
    pillar = tmp_path / "pillar"
    import shutil

    shutil.copytree(ROOT / "pillar", pillar)
    path = pillar / "cluster.sls"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    res = salt_cmd("salt-run", "cluster.validate", f"pillar_dir={pillar}")
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert out.count(needle) == 1, out
    assert "Traceback" not in out and "unclosed" not in out and "CRITICAL" not in out, out


def test_runner_on_a_fresh_clone_without_run_folders(tmp_path):
    """No `bash bin/venv` yet: no .run/ at all. salt-run still works (the
    runner makes Salt's proc folder when it loads)."""
    import shutil

    dst = tmp_path / "clone"
    for name in ("salt", "pillar", "etc", "_modules", "_states", "_grains", "_runners", "_utils", "Saltfile"):
        src = ROOT / name
        (shutil.copytree(src, dst / name) if src.is_dir() else shutil.copy(src, dst / name))
    shutil.rmtree(dst / ".run", ignore_errors=True)
    res = salt_cmd("salt-run", "cluster.validate", cwd=dst)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "FileNotFoundError" not in out and "Traceback" not in out and "unclosed" not in out, out


def test_runner_compiles_per_node_when_the_pillar_depends_on_the_minion(tmp_path):
    """A pillar with Jinja on grains['id'] is compiled for each node: a bad
    value that only node-105 gets is named for node-105 only."""
    import shutil

    pillar = tmp_path / "pillar"
    shutil.copytree(ROOT / "pillar", pillar)
    (pillar / "node105.sls").write_text(
        "{% if grains['id'] == 'node-105' %}\nk8snvidia:\n  docker:\n    data_root: relative/path\n{% endif %}\n"
    )
    (pillar / "top.sls").write_text("base:\n  '*':\n    - cluster\n    - node105\n")
    res = salt_cmd("salt-run", "cluster.validate", f"pillar_dir={pillar}")
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert out.count("k8snvidia:docker:data_root: 'relative/path' is invalid; expected an absolute path") == 1, out
    assert "[node-105]" in out, out


@pytest.mark.parametrize(
    "old,new,needle",
    [
        ("  cluster:\n", "  cluster: seed\n  clusterx:\n", "k8snvidia:cluster: 'seed' is invalid; expected a mapping"),
        ("      gpus: [NVIDIA GeForce GTX 1080 Ti]\n", "      gpus: NVIDIA GeForce GTX 1080 Ti\n",
         "k8snvidia:nodes:node-110:gpus: 'NVIDIA GeForce GTX 1080 Ti' is invalid; expected a list"),
    ],
)
def test_render_time_through_salt_call(tmp_path, old, new, needle):
    """A real state render (salt-call --local, the CentOS 7 preview): the
    report once, no traceback."""
    import shutil

    from tests.functional.render import salt_call

    pillar = tmp_path / "pillar"
    shutil.copytree(ROOT / "pillar", pillar)
    path = pillar / "cluster.sls"
    path.write_text(path.read_text().replace(old, new, 1))
    rc, parsed, err = salt_call("centos7", "state.show_sls", "host", pillar_dir=pillar)
    text = ("\n".join(map(str, parsed)) if isinstance(parsed, list) else str(parsed)) + err
    assert rc != 0, text
    assert text.count(needle) == 1, text
    assert "Traceback" not in text and "AttributeError" not in text and "TypeError" not in text, text
