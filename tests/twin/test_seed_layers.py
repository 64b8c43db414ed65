"""The issue's end-to-end check on the seed's five machines: the node layers
applied through the real master to the CentOS 7 GPU node and to the Ubuntu
node, one reboot each (the nouveau blacklist and the new kernel take effect),
then the driver, and the GPU visible to nvidia-smi inside the node; it stays
visible across another reboot (the module is rebuilt/loaded for the running
kernel)."""

import pytest

NODES = ("node-110", "node-105")


def _failed(ret):
    if not isinstance(ret, dict):
        return [str(ret)]
    return [f"{v.get('__id__', k)}: {v.get('comment', '')[:300]}" for k, v in ret.items() if not v.get("result")]


@pytest.fixture(scope="module")
def seed(twin):
    twin.up("twin/clusters/seed.yaml")
    twin.salt("*", "saltutil.sync_all", timeout=300)
    return twin


def test_layers_reboot_and_gpu_visible(seed):
    target = ",".join(NODES)
    kernels = {n: seed.node_state(n)["kernel"]["running"] for n in NODES}
    # -t: the CLI asks the minions whether their job still runs only after
    # this long, not every 30 s with a 20 s answer window (a CI run on a
    # loaded machine once had node-110 missing from the output entirely)
    first = seed.salt("-L", target, "state.apply", "-t", "840", timeout=900)
    for node in NODES:
        assert node in first, (node, sorted(first))
        # the first run stops where the seed's trap is: nouveau still loaded
        assert all("nouveau" in f or "k8snvidia-driver" in f for f in _failed(first[node])), _failed(first[node])
    for node in NODES:
        seed.reboot(node)
    second = seed.salt("-L", target, "state.apply", "-t", "840", timeout=900)
    for node in NODES:
        assert node in second, (node, sorted(second))
        assert _failed(second[node]) == [], node
        assert seed.node_state(node)["reboots"] == 1
        if node == "node-110":  # CentOS 7: the kernel layer's kernel-lt (the layer is off elsewhere)
            assert seed.node_state(node)["kernel"]["running"] != kernels[node]
        else:  # Ubuntu 18.04 keeps the distribution's kernel
            assert seed.node_state(node)["kernel"]["running"] == kernels[node]
        smi = seed.node_exec(node, "nvidia-smi -L")
        assert smi.returncode == 0 and "GeForce GTX 1080 Ti" in smi.stdout, (node, smi.stdout, smi.stderr)
    seed.reboot("node-110")
    smi = seed.node_exec("node-110", "nvidia-smi -L")
    assert smi.returncode == 0 and "GeForce GTX 1080 Ti" in smi.stdout, smi.stderr
    rec = seed.records()["nodes"]["node-110"]
    assert rec["reboots"] == 2
    assert any(c["argv"][0].startswith("NVIDIA-Linux") or "nvidia-installer" in c["argv"][0] for c in rec["commands"])
