"""Fixtures of the real-node tier (marker ``real``): a booted Debian node per
suite, with its Salt master, local archive and network; see node.py and
docs/real-node-tier.md."""

import atexit
import fcntl
import json
import sys

import pytest

from tests.real import node as realnode


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "real: the real-node tier (Debian booted under systemd-nspawn with a real salt-minion; root; "
        "minutes, cached under /var/cache/k8snvidia-tests)",
    )


_LIVE = []


def _safety_net():
    for node in list(_LIVE):
        try:
            node.close()
        except Exception as exc:  # noqa: BLE001 - last resort at interpreter exit
            sys.stderr.write(f"[real-node] cleanup failed: {exc}\n")
        _LIVE.remove(node)


atexit.register(_safety_net)


@pytest.fixture(scope="session")
def real_host():
    reason = realnode.ensure_host_tools()
    if reason:
        pytest.skip(reason)
    realnode.reap_stale()
    return realnode


def boot_node(suite, pillar, stub_versions):
    cache, built = realnode.ensure_cache(suite)
    node = realnode.Node(suite, cache)
    _LIVE.append(node)
    node.timings["cache_build"] = round(built, 1)
    try:
        node.start(pillar, stub_versions)
    except BaseException:
        node.close()
        _LIVE.remove(node)
        raise
    return node


def release_node(node):
    try:
        node.close()
    finally:
        if node in _LIVE:
            _LIVE.remove(node)


@pytest.fixture(scope="module")
def debian(request, real_host):
    """The booted node of the test file's Debian suite (its ``SUITE``), with
    the layers' pillar (tests/real/layers.py) and the stubs' versions."""
    from tests.real import layers

    suite = request.module.SUITE
    # One booted node at a time on this machine, whichever test process
    # holds it: two nspawn containers started side by side by two workers
    # (same cgroup, --keep-unit) once failed a containerd restart inside one.
    realnode.STATE_DIR.mkdir(parents=True, exist_ok=True)
    lock = open(realnode.STATE_DIR / "node.lock", "w")  # noqa: SIM115 - held for the module
    fcntl.flock(lock, fcntl.LOCK_EX)
    request.addfinalizer(lock.close)
    version = layers.kube_package_version()
    versions = {"kubeadm": version, "kubelet": version, "kubectl": version,
                "nvidia-container-toolkit": layers.CTK_STUB_VERSION}
    node = boot_node(suite, layers.pillar_for, versions)
    try:
        sync = node.salt(node.minion_id, "saltutil.sync_all")
        assert node.minion_id in sync, sync
        yield node
    finally:
        print(f"\n[real-node] {suite} timings: {json.dumps(node.timings)}")
        release_node(node)
