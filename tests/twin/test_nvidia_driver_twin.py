"""nvidia_driver.installed on a twin node, through the real master and minion:
the .run stand-in from the artifact store (sha256 from the twin's pillar
overlay), the emulated installer inside the node's namespaces, nvidia-smi
after it, and the module back after a reboot (DKMS)."""

import json
import sys

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "twin"))

from k8stwin import artifacts  # noqa: E402

KERNEL = "3.10.0-1062.18.1.el7.x86_64"
VERSION = "580.95.05"
CLUSTER = {
    "name": "driver",
    "nodes": [{"id": "node-110", "os": "centos7", "kernel": KERNEL, "gpus": ["NVIDIA GeForce GTX 1080 Ti"]}],
}
# What the kernel layer and the driver prerequisites leave on a node: the
# headers of the boot kernel and gcc/make/dkms, dkms on PATH (done by hand
# here so that this test exercises the driver state alone).
PREPARE = (
    f"mkdir -p /usr/src/kernels/{KERNEL} && ln -sfn /usr/src/kernels/{KERNEL} /lib/modules/{KERNEL}/build && "
    "$K8STWIN_PYTHON -c 'from k8stwin import pkgdb, state\n"
    "with state.locked() as st:\n"
    "    p = st.setdefault(\"packages\", {})\n"
    "    for n in (\"gcc\", \"make\", \"dkms\"): p.setdefault(n, {\"version\": \"1\"})\n"
    "pkgdb.sync_tool_links()'"
)


def _single(twin):
    url = f"https://us.download.nvidia.com/XFree86/Linux-x86_64/{VERSION}/NVIDIA-Linux-x86_64-{VERSION}.run"
    out = twin.salt("node-110", "state.single", "nvidia_driver.installed", VERSION, f"url={url}",
                    f"sha256={artifacts.RUNFILE_SHA256}", timeout=300)
    return next(iter(out["node-110"].values()))


def test_driver_on_a_twin_node(twin):
    twin.up(CLUSTER)
    twin.salt("node-110", "saltutil.sync_all", timeout=300)
    ret = _single(twin)
    assert ret["result"] is False and "the nouveau kernel module is loaded" in ret["comment"]
    # the nouveau layer, then the reboot the orchestration does between layers
    out = twin.salt("node-110", "state.apply", "nouveau", timeout=300)
    assert all(r["result"] for r in out["node-110"].values()), out
    twin.reboot("node-110")
    ret = _single(twin)
    assert ret["result"] is False and f"the kernel headers for {KERNEL}" in ret["comment"]
    twin.node_exec("node-110", PREPARE, check=True)
    ret = _single(twin)
    assert ret["result"] is True, ret["comment"]
    assert ret["changes"]["kernel_module_type"] == "proprietary"
    smi = twin.node_exec("node-110", "nvidia-smi -L")
    assert smi.returncode == 0 and "GeForce GTX 1080 Ti" in smi.stdout
    assert _single(twin)["changes"] == {}
    twin.reboot("node-110")
    smi = twin.node_exec("node-110", "nvidia-smi -L")
    assert smi.returncode == 0 and "GeForce GTX 1080 Ti" in smi.stdout
    st = json.loads((twin.node_dir("node-110") / "state.json").read_text())
    assert st["nvidia_driver"]["dkms"] is True and KERNEL in st["dkms"][f"nvidia/{VERSION}"]["kernels"]
    cmds = twin.records()["nodes"]["node-110"]["commands"]
    runs = [c["argv"] for c in cmds if c["argv"][0].endswith(".run")]
    assert runs[-1] == [f"NVIDIA-Linux-x86_64-{VERSION}.run", "--silent", "--dkms", f"--kernel-name={KERNEL}",
                        "--kernel-module-type=proprietary"]


def _failed(ret):
    return [f"{v.get('__id__', k)}: {str(v.get('comment', ''))[:400]}" for k, v in ret.items() if not v.get("result")]


def test_package_method_on_ubuntu_2204(twin, tmp_path):
    """driver:method: package (the Ubuntu 22.04 map default): Ubuntu's R580
    with the signed precompiled module for the HWE kernel the kernel layer
    installs, through the twin's apt; the module is loaded at once (the kernel
    runs, nouveau is gone), so no second reboot."""
    import shutil

    import yaml

    pillar = tmp_path / "pillar"
    shutil.copytree(ROOT / "pillar", pillar)
    cluster = yaml.safe_load((pillar / "cluster.sls").read_text())
    cluster["k8snvidia"]["nodes"]["node-105"]["os"] = "Ubuntu-22.04"
    # the kernel layer is opt-in off CentOS 7: here it installs the HWE kernel
    cluster["k8snvidia"]["nodes"]["node-105"]["overrides"] = {"kernel": {"manage": True}}
    (pillar / "cluster.sls").write_text(yaml.safe_dump(cluster, sort_keys=False))
    twin.up({"nodes": [{"id": "node-105", "os": "ubuntu2204", "gpus": ["NVIDIA GeForce GTX 1080 Ti"]}]},
            pillar=pillar, fresh=True)
    twin.salt("node-105", "saltutil.sync_all", timeout=300)
    ret = twin.salt("node-105", "state.apply", "host,kernel,nouveau", timeout=900)["node-105"]
    assert _failed(ret) == []
    twin.reboot("node-105")
    boot = twin.node_state("node-105")["kernel"]["running"]
    assert boot == "6.8.0-87-generic"
    out = twin.salt("node-105", "state.apply", "nvidia.driver", "test=True", timeout=900)["node-105"]
    drv = next(v for k, v in out.items() if k.startswith("nvidia_driver_|-"))
    assert drv["result"] is None, drv["comment"]
    assert drv["changes"]["packages"] == ["nvidia-headless-no-dkms-580", "nvidia-utils-580",
                                          f"linux-modules-nvidia-580-{boot}"]
    ret = twin.salt("node-105", "state.apply", "nvidia.driver", timeout=900)["node-105"]
    assert _failed(ret) == []
    drv = next(v for k, v in ret.items() if k.startswith("nvidia_driver_|-"))
    # the module is built for the running kernel and nothing else is loaded: modprobe now, no second reboot
    assert "reboot pending" not in drv["comment"] and drv["changes"].get("loaded"), drv
    st = twin.node_state("node-105")
    assert st["nvidia_driver"]["version"] == "580.95.05" and "nvidia" in st["modules"]
    smi = twin.node_exec("node-105", "nvidia-smi -L")
    assert smi.returncode == 0 and "GeForce GTX 1080 Ti" in smi.stdout, smi.stderr
    ret = twin.salt("node-105", "state.apply", "nvidia.driver", timeout=900)["node-105"]
    assert _failed(ret) == [] and not [k for k, v in ret.items() if v.get("changes")]


def test_dkms_build_failure_fails_the_state_on_a_twin_node(twin):
    """Fault dkms_build_fails: the installer warns and exits 0 (as NVIDIA's
    does); the state checks `dkms status` and fails, saying what to do."""
    cluster = {"name": "driver", "nodes": [dict(CLUSTER["nodes"][0], faults={"dkms_build_fails": True})]}
    twin.up(cluster, fresh=True)
    twin.salt("node-110", "saltutil.sync_all", timeout=300)
    out = twin.salt("node-110", "state.apply", "nouveau", timeout=300)
    assert all(r["result"] for r in out["node-110"].values()), out
    twin.reboot("node-110")
    twin.node_exec("node-110", PREPARE, check=True)
    ret = _single(twin)
    assert ret["result"] is False
    assert f"DKMS does not list nvidia/{VERSION} as installed for kernel {KERNEL}" in ret["comment"]
    cmds = twin.records()["nodes"]["node-110"]["commands"]
    run = [c for c in cmds if c["argv"][0].endswith(".run")][-1]
    assert run["rc"] == 0  # the installer itself reported success
