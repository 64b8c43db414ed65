"""What the third device run on the lent H200 captured (tests/fixtures/device/nvml/,
COMMAND.md there): the grain through NVML equal to nvidia-smi --query-gpu field by
field, through real salt-call and in-process; the fallback equal too; no subprocess
per refresh through NVML; the cost against Salt's own grains; the twin's nvidia-smi
printing what the real one printed for the fallback's query."""

import json
import re
import subprocess

from tests.fakes.nvidia import DEVICE, gpu, make_node, smi_bin

RUN = DEVICE / "nvml"
CHECK = json.loads((RUN / "h200-nvml-check.json").read_text())
BENCH = json.loads((RUN / "h200-bench.json").read_text())
SALT = json.loads((RUN / "h200-salt.json").read_text())
CLI = (RUN / "h200-smi-cli.txt").read_text()
QUERY = "--query-gpu=" + ",".join(gpu.SMI_FIELDS)


def section(args):
    return re.search(r"### \$ nvidia-smi " + re.escape(args) + r"\n(.*?)### rc=(\d+)\n", CLI, re.S).groups()


def salt_grain():
    return SALT["grains.item nvidia gpus num_gpus"]["out"]["local"]["nvidia"]


def test_every_field_equal_on_both_paths():
    assert CHECK["ok"] is True
    assert [c["field"] for c in CHECK["checks"] if not c["equal"]] == []
    fields = {c["field"] for c in CHECK["checks"]}
    assert {"count", "0.name", "0.pci.bus_id", "0.pci.device_id", "0.uuid", "0.memory.total", "0.compute_cap",
            "0.mig.mode.current", "0.driver_version", "cuda_version (smi header)"} <= fields
    assert CHECK["grain_nvml"]["source"] == "nvml" and CHECK["grain_nvml_subprocesses"] == []
    assert CHECK["grain_fallback"]["source"] == "nvidia-smi" and CHECK["grain_fallback_subprocesses"] == ["nvidia-smi"]
    assert CHECK["pynvml_equal"] is True  # NVIDIA's own binding reads the same


def test_salt_call_grain_equals_the_query_gpu_line():
    out, rc = section(QUERY + " --format=csv,noheader,nounits")
    assert rc == "0"
    parsed = gpu.parse_smi_csv(out)
    nv = salt_grain()
    assert nv["source"] == "nvml" and "error" not in nv
    keys = ("pci_bus_id", "pci_device_id", "name", "architecture", "uuid", "memory_mib", "compute_capability", "mig_mode")
    assert [{k: g[k] for k in keys} for g in nv["gpus"]] == [{k: g[k] for k in keys} for g in parsed["gpus"]]
    assert nv["driver_version"] == parsed["driver_version"]
    assert nv["cuda_version"] == CHECK["smi_header_cuda_version"] == "13.0"
    assert {k: v["rc"] for k, v in SALT.items()} == dict.fromkeys(SALT, 0)


def test_cost_and_subprocesses_per_refresh():
    host = BENCH["host"]["scenarios"]["host"]
    assert host["nvidia_source"] == "nvml"
    assert host["subprocesses_per_refresh"]["ours_max_over_runs"] == 0
    assert host["ratio_ours_to_salt_builtin"] <= 1.5  # the target, as measured there
    fallback = BENCH["host_fallback"]["scenarios"]["host"]
    assert fallback["nvidia_source"] == "nvidia-smi"
    assert fallback["subprocesses_per_refresh"]["ours_programs"] == ["nvidia-smi"]
    assert host["nvidia_grain"] == salt_grain()
    # where NVML's time goes: nvmlInit_v2 + nvmlShutdown, the queries are microseconds
    brk = CHECK["nvml_breakdown"]
    assert max(v["median_ms"] for k, v in brk.items() if k.startswith("nvmlDevice") or k.startswith("nvmlSystem")) < 1


def test_twin_smi_prints_what_the_real_one_printed(tmp_path):
    real = salt_grain()["gpus"][0]
    node = make_node(tmp_path / "n", [{"name": "NVIDIA H200", "pci_bus_id": real["pci_bus_id"], "uuid": real["uuid"]}],
                     ["nvidia"], "580.159.04", open_module=True)
    exe = str(smi_bin(tmp_path, node) / "nvidia-smi")
    for fmt in ("--format=csv", "--format=csv,noheader,nounits"):
        want, rc = section(f"{QUERY} {fmt}")
        got = subprocess.run([exe, QUERY, fmt], capture_output=True, text=True)
        assert (got.stdout, got.returncode) == (want, int(rc))
    want, rc = section("--query-gpu=compute_cap,mig.mode.current,mig.mode.pending --format=csv")
    got = subprocess.run([exe, "--query-gpu=compute_cap,mig.mode.current,mig.mode.pending", "--format=csv"],
                         capture_output=True, text=True)
    assert got.stdout == want


def test_libraries_where_the_reader_looks():
    """There the library sits in /usr/local/nvidia/lib64 (on LD_LIBRARY_PATH),
    one of the directories the reader also tries by itself."""
    from tests.fakes.nvml import nvml

    host = (RUN / "h200-host.txt").read_text()
    assert "libnvidia-ml.so.1 -> libnvidia-ml.so.580.159.04" in host
    assert "LD_LIBRARY_PATH=/usr/local/nvidia/lib64" in host
    assert "/usr/local/nvidia/lib64" in nvml.LIBRARY_DIRS
