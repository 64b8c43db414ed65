"""The nvidia grain on twin nodes answers through NVML, like on a real host:
the node's stand-in libnvidia-ml.so.1 (twin/k8stwin/fakenvml.c, placed by
k8stwin.hw.sync where the driver's installer puts it on the node's OS family)
is there while a driver is installed and answers while the nvidia module is
loaded; no nvidia-smi runs for the grain."""

import json

CLUSTER = {
    "name": "nvml",
    "nodes": [
        {"id": "el7", "os": "centos7", "gpus": ["NVIDIA GeForce GTX 1080 Ti"]},
        {"id": "deb", "os": "ubuntu2204", "gpus": ["NVIDIA A100-SXM4-80GB", "Tesla T4"]},
    ],
}
# what a driver install leaves in state.json, then the node's views refreshed
DRIVER = (
    "$K8STWIN_PYTHON -c 'from k8stwin import state, hw\n"
    "with state.locked() as st:\n"
    "    st[\"nvidia_driver\"] = {\"version\": \"580.95.05\", \"kernel_module_type\": \"proprietary\"}\n"
    "    st[\"modules\"] = [m for m in st.get(\"modules\", []) if m not in (\"nouveau\", \"nvidia\")] + {mods}\n"
    "hw.sync()'"
)


def _grain(twin, node):
    twin.salt(node, "saltutil.refresh_grains", timeout=120)
    return twin.salt(node, "grains.item", "nvidia", timeout=120)[node]["nvidia"]


def _smi_runs(twin, node):
    path = twin.node_dir(node) / "commands.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line)["argv"] for line in lines if line.strip() and "nvidia-smi" in line]


def test_grain_through_nvml_on_both_families(twin):
    twin.up(CLUSTER)
    twin.salt("*", "saltutil.sync_all", timeout=300)
    for node in ("el7", "deb"):
        assert _grain(twin, node)["source"] == "pci"
        twin.node_exec(node, DRIVER.replace("{mods}", '["nvidia"]'), check=True)
    libs = {"el7": "/usr/lib64/libnvidia-ml.so.1", "deb": "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"}
    for node, lib in libs.items():
        assert twin.node_exec(node, f"test -L {lib}").returncode == 0, node
    before = {node: len(_smi_runs(twin, node)) for node in libs}
    el7, deb = _grain(twin, "el7"), _grain(twin, "deb")
    assert el7["source"] == deb["source"] == "nvml", (el7, deb)
    assert "error" not in el7 and "error" not in deb
    assert (el7["driver_version"], el7["cuda_version"]) == ("580.95.05", "13.0")
    assert [(g["name"], g["compute_capability"], g["mig_mode"]) for g in el7["gpus"]] == [
        ("NVIDIA GeForce GTX 1080 Ti", "6.1", None)]
    assert [(g["name"], g["compute_capability"], g["mig_mode"]) for g in deb["gpus"]] == [
        ("NVIDIA A100-SXM4-80GB", "8.0", "Disabled"), ("Tesla T4", "7.5", None)]
    assert all(g["uuid"] and g["memory_mib"] for g in el7["gpus"] + deb["gpus"])
    assert {node: len(_smi_runs(twin, node)) for node in libs} == before  # no nvidia-smi for the grain
    # the module unloaded (the library stays): nvmlInit says Driver Not Loaded, the grain falls back to PCI
    twin.node_exec("el7", DRIVER.replace("{mods}", "[]"), check=True)
    got = _grain(twin, "el7")
    assert got["source"] == "pci" and got["gpus"][0]["uuid"] is None
    assert twin.node_exec("el7", f"test -L {libs['el7']}").returncode == 0
