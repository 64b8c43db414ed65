"""
Emulated ``nvidia-smi`` for twin nodes (``main(argv) -> rc``).

What it reads: ``node.json`` ``gpus`` (models), ``state.json`` ``modules``
(the ``nvidia`` module must be loaded), ``nvidia_driver.version`` and
``gpu_processes``. GPU bus ids, uuids and memory come from
:func:`k8stwin.hw.layout`, the same the fake sysfs shows.

What it answers, as the real one does:

* ``-q -x`` (``--query --xml-format``): built from a real capture in
  ``tests/fixtures/nvidia-smi/`` (the same model if one exists, else one of
  the same architecture), with bus ids, uuids, names, memory, the driver
  and CUDA versions and the processes substituted;
* ``-q``: a short text log; ``-L``/``--list-gpus``;
* ``--query-gpu=FIELDS --format=csv[,noheader][,nounits]`` (``compute_cap``
  from R510, ``mig.mode.current``/``pending``) and
  ``--query-compute-apps=FIELDS --format=...``; ``-i/--id`` selects GPUs;
* no driver loaded: the real "couldn't communicate" message, rc 9;
* unknown options and fields fail with the real messages.
"""

import copy
import datetime
import re
import sys
import xml.etree.ElementTree as ET

from k8stwin import hw, state

CAPTURES = hw.ROOT / "tests" / "fixtures" / "nvidia-smi"

NO_DRIVER = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running.\n"
)
RC_NO_DRIVER = 9
# Seen from nvidia-smi 580.159.04 (tests/fixtures/device/h200-smi-cli.txt).
UNKNOWN_OPTION = "ERROR: Option {0} is not recognized. Please run 'nvidia-smi -h'.\n\n"
RC_UNKNOWN_OPTION = 255
XML_WITHOUT_QUERY = (
    "Invalid combination of input arguments. Specify -q/--query and -x/--xml-format to run an XML query.  "
    "Please run 'nvidia-smi -h' for help.\n\n"
)
NOT_VALID_HERE = "ERROR: Option {0} is not valid for this command. Please run 'nvidia-smi -h' for help.\n\n"
RC_BAD_ARGS = 2
BAD_FIELD = 'Field "{0}" is not a valid field to query.\n\n'
# --query-gpu=compute_cap: unknown to 470.182 (huggingface/candle#733,
# NVIDIA/TensorRT-LLM#735), answered by 570 (canonical/inference-snaps#128);
# taken to exist from R510 on.
COMPUTE_CAP_BRANCH = 510

# The CUDA version each driver branch reports (nvidia-smi's header); from
# NVIDIA's CUDA toolkit release notes, table "CUDA Toolkit and Minimum
# Required Driver Version".
CUDA_BY_BRANCH = {
    418: "10.1", 440: "10.2", 450: "11.0", 460: "11.2", 470: "11.4", 510: "11.6", 515: "11.7",
    520: "11.8", 525: "12.0", 530: "12.1", 535: "12.2", 545: "12.3", 550: "12.4", 555: "12.5",
    560: "12.6", 565: "12.7", 570: "12.8", 575: "12.9", 580: "13.0", 590: "13.1", 595: "13.2",
}

# Captures preferred per architecture when none of the exact model exists.
BY_ARCH = {
    "Kepler": "gt-1030.xml",
    "Maxwell": "gt-1030.xml",
    "Pascal": "gt-1030.xml",
    "Volta": "tesla-t4.xml",
    "Turing": "dual_2070-v13.xml",
    "Ampere": "rtx-3080-v13.xml",
    "Ada": "rtx-3080-v13.xml",
    "Hopper": "h200-v13.xml",
    "Blackwell": "rtx-3080-v13.xml",
}
FALLBACK = "rtx-3080-v13.xml"


def cuda_for(version):
    branch = hw.nvidia_gpu.branch_of(version)
    if branch is None:
        return "N/A"
    known = [b for b in sorted(CUDA_BY_BRANCH) if b <= branch]
    return CUDA_BY_BRANCH[known[-1]] if known else "N/A"


def _smi_bus(bus):
    """sysfs '0000:01:00.0' -> nvidia-smi '00000000:01:00.0'."""
    dom, rest = bus.split(":", 1)
    return f"{int(dom, 16):08X}:{rest.upper()}"


def _capture_for(gpu):
    """The capture to build ``gpu``'s block from: same device id, else by architecture."""
    files = sorted(CAPTURES.glob("*.xml"))
    want = (gpu.get("pci_device_id") or "").lower()
    for path in files:
        text = path.read_text(encoding="utf-8")
        m = re.search(r"<pci_device_id>([0-9A-Fa-f]{4})10DE</pci_device_id>", text)
        if want and m and f"0x{m.group(1).lower()}" == want and "<mig_devices>" not in text:
            return path
    name = BY_ARCH.get(gpu.get("architecture"), FALLBACK)
    return CAPTURES / name if (CAPTURES / name).exists() else CAPTURES / FALLBACK


def _set(elem, path, value):
    node = elem.find(path)
    if node is not None:
        node.text = str(value)


def _process(proc):
    info = ET.Element("process_info")
    for tag, value in (
        ("gpu_instance_id", "N/A"),
        ("compute_instance_id", "N/A"),
        ("pid", proc.get("pid", 0)),
        ("type", proc.get("type", "C")),
        ("process_name", proc.get("name", "")),
        ("used_memory", f"{proc.get('used_memory_mib', 0)} MiB"),
    ):
        ET.SubElement(info, tag).text = str(value)
    return info


def build_xml(gpus, version, processes):
    """The ``-q -x`` document for ``gpus`` (hw.layout dicts)."""
    doctype = "nvsmi_device_v13.dtd"
    root = None
    for gpu in gpus:
        path = _capture_for(gpu)
        text = path.read_text(encoding="utf-8")
        m = re.search(r'SYSTEM "(nvsmi_device_v\d+\.dtd)"', text)
        tree = ET.fromstring(text)
        if root is None:
            doctype = m.group(1) if m else doctype
            root = ET.Element("nvidia_smi_log")
            for child in tree:
                if child.tag == "gpu":
                    break
                root.append(copy.deepcopy(child))
        block = copy.deepcopy(tree.find("gpu"))
        for mig in block.findall("mig_devices"):
            block.remove(mig)
        if block.find("mig_mode") is not None:
            _set(block, "mig_mode/current_mig", gpu.get("mig_mode") or "N/A")
            _set(block, "mig_mode/pending_mig", gpu.get("mig_mode") or "N/A")
        bus = gpu["pci_bus_id"]
        block.set("id", _smi_bus(bus))
        _set(block, "product_name", gpu["name"] or "NVIDIA Graphics Device")
        _set(block, "product_architecture", {"Ada": "Ada Lovelace"}.get(gpu["architecture"], gpu["architecture"]))
        _set(block, "uuid", gpu["uuid"])
        _set(block, "minor_number", gpu["index"])
        _set(block, "pci/pci_bus_id", _smi_bus(bus))
        _set(block, "pci/pci_bus", bus.split(":")[1].upper())
        _set(block, "pci/pci_device", bus.split(":")[2].split(".")[0].upper())
        _set(block, "pci/pci_domain", bus.split(":")[0].upper())
        if gpu["pci_device_id"]:
            _set(block, "pci/pci_device_id", f"{gpu['pci_device_id'][2:].upper()}10DE")
        mine = [p for p in processes if p.get("gpu", 0) == gpu["index"]]
        total = gpu["memory_mib"] or _mib(block.find("fb_memory_usage/total"))
        used = sum(int(p.get("used_memory_mib") or 0) for p in mine)
        reserved = _mib(block.find("fb_memory_usage/reserved"))
        _set(block, "fb_memory_usage/total", f"{total} MiB")
        _set(block, "fb_memory_usage/used", f"{used} MiB")
        _set(block, "fb_memory_usage/free", f"{max(total - reserved - used, 0)} MiB")
        gpu["memory_mib"] = total
        procs = block.find("processes")
        if procs is None:
            procs = ET.SubElement(block, "processes")
        for child in list(procs):
            procs.remove(child)
        for proc in mine:
            procs.append(_process(proc))
        root.append(block)
    if root is None:
        root = ET.Element("nvidia_smi_log")
        ET.SubElement(root, "timestamp")
        ET.SubElement(root, "driver_version")
        ET.SubElement(root, "cuda_version")
        ET.SubElement(root, "attached_gpus")
    _set(root, "timestamp", datetime.datetime.now().strftime("%a %b %e %H:%M:%S %Y"))
    _set(root, "driver_version", version)
    _set(root, "cuda_version", cuda_for(version))
    _set(root, "attached_gpus", len(gpus))
    ET.indent(root, space="\t")
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" ?>\n<!DOCTYPE nvidia_smi_log SYSTEM "{doctype}">\n{body}\n'


def _mib(elem):
    m = re.match(r"(\d+)", (elem.text or "") if elem is not None else "")
    return int(m.group(1)) if m else 0


# ------------------------------------------------------------------ CSV queries
def _gpu_fields(gpu, version, count, processes):
    used = sum(int(p.get("used_memory_mib") or 0) for p in processes if p.get("gpu", 0) == gpu["index"])
    total = gpu["memory_mib"] or 0
    fields = {
        "index": (str(gpu["index"]), None),
        "name": (gpu["name"], None),
        "gpu_name": (gpu["name"], None),
        "pci.bus_id": (_smi_bus(gpu["pci_bus_id"]), None),
        "gpu_bus_id": (_smi_bus(gpu["pci_bus_id"]), None),
        "pci.device_id": (f"0x{gpu['pci_device_id'][2:].upper()}10DE" if gpu["pci_device_id"] else "[N/A]", None),
        "uuid": (gpu["uuid"], None),
        "gpu_uuid": (gpu["uuid"], None),
        "memory.total": (str(total), "MiB"),
        "memory.used": (str(used), "MiB"),
        "memory.free": (str(max(total - used, 0)), "MiB"),
        "driver_version": (version, None),
        "count": (str(count), None),
        "serial": ("[N/A]", None),
        "mig.mode.current": (gpu.get("mig_mode") or "[N/A]", None),
        "mig.mode.pending": (gpu.get("mig_mode") or "[N/A]", None),
    }
    branch = hw.nvidia_gpu.branch_of(version)
    if branch is None or branch >= COMPUTE_CAP_BRANCH:
        fields["compute_cap"] = (gpu.get("compute_capability") or "[N/A]", None)
    return fields


HEADER_NAMES = {"used_memory": "used_gpu_memory"}
UNITS = {f: "MiB" for f in ("memory.total", "memory.used", "memory.free", "used_memory", "used_gpu_memory")}
APP_FIELDS = ("pid", "process_name", "name", "used_memory", "used_gpu_memory", "gpu_uuid", "gpu_bus_id", "gpu_name")


def _csv(fields, rows, fmt):
    opts = set(fmt.split(","))
    if "csv" not in opts:
        sys.stdout.write(f'"{fmt}" is not a valid format.\n')
        return RC_BAD_ARGS
    lines = []
    if "noheader" not in opts:
        header = []
        for f in fields:
            unit = UNITS.get(f)
            shown = HEADER_NAMES.get(f, f)
            header.append(f"{shown} [{unit}]" if unit else shown)
        lines.append(", ".join(header))
    for row in rows:
        vals = []
        for f in fields:
            val, unit = row[f]
            vals.append(val if (unit is None or "nounits" in opts) else f"{val} {unit}")
        lines.append(", ".join(vals))
    sys.stdout.write("".join(line + "\n" for line in lines))
    return 0


# ------------------------------------------------------------------ summary
RULE = "+" + "-" * 89 + "+"
COLS = "+" + "-" * 41 + "+" + "-" * 24 + "+" + "-" * 22 + "+"


def summary(gpus, version, processes):
    """Bare ``nvidia-smi``: the table as driver 580 prints it (sensor
    readings are fixed idle values)."""
    now = datetime.datetime.now().strftime("%a %b %e %H:%M:%S %Y")
    head = f"NVIDIA-SMI {version}"
    lines = [
        f"{now}       ",
        RULE,
        f"| {head:<34}Driver Version: {version:<15}CUDA Version: {cuda_for(version):<9}|",
        COLS,
        "| GPU  Name                 Persistence-M | Bus-Id          Disp.A | Volatile Uncorr. ECC |",
        "| Fan  Temp   Perf          Pwr:Usage/Cap |           Memory-Usage | GPU-Util  Compute M. |",
        "|                                         |                        |               MIG M. |",
        "|" + "=" * 41 + "+" + "=" * 24 + "+" + "=" * 22 + "|",
    ]
    for g in gpus:
        used = sum(int(p.get("used_memory_mib") or 0) for p in processes if p.get("gpu", 0) == g["index"])
        mem = f"{used}MiB / {g['memory_mib'] or 0}MiB"
        lines += [
            f"| {g['index']:>3}  {(g['name'] or '')[:29]:<29}{'On':>4}  |   {_smi_bus(g['pci_bus_id'])} Off |"
            f"{'0':>21} |",
            f"| N/A   30C    P0             60W /  300W | {mem:>22} |      0%      Default |",
            "|                                         |                        |             Disabled |",
            COLS,
        ]
    lines += ["", RULE, "| Processes:" + " " * 78 + "|",
              "|  GPU   GI   CI              PID   Type   Process name                        GPU Memory |",
              "|        ID   ID                                                               Usage      |",
              "|" + "=" * 89 + "|"]
    if not processes:
        lines.append("|  No running processes found" + " " * 61 + "|")
    for p in processes:
        lines.append(
            f"| {p.get('gpu', 0):>4}   N/A  N/A {p.get('pid', 0):>16} {p.get('type', 'C'):>6}   "
            f"{str(p.get('name', ''))[:33]:<33}{str(p.get('used_memory_mib', 0)) + 'MiB':>12} |"
        )
    lines.append(RULE)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ main
def _parse(argv):
    opts = {"q": False, "x": False, "L": False, "query_gpu": None, "query_apps": None, "format": None, "id": None}
    args = list(argv[1:])
    i = 0
    while i < len(args):
        arg = args[i]
        key, eq, val = arg.partition("=")
        if arg in ("-q", "--query"):
            opts["q"] = True
        elif arg in ("-x", "--xml-format"):
            opts["x"] = True
        elif arg in ("-L", "--list-gpus"):
            opts["L"] = True
        elif arg in ("-h", "--help"):
            opts["help"] = True
        elif key in ("--query-gpu", "--query-compute-apps", "--format", "-i", "--id"):
            if not eq:
                if i + 1 >= len(args):
                    opts["unknown"] = key
                    return opts
                i += 1
                val = args[i]
            name = {"--query-gpu": "query_gpu", "--query-compute-apps": "query_apps", "-i": "id", "--id": "id"}
            opts[name.get(key, "format")] = val
        elif re.fullmatch(r"-i\d+", arg):
            opts["id"] = arg[2:]
        else:
            opts["unknown"] = key
            return opts
        i += 1
    return opts


def main(argv):
    opts = _parse(argv)
    if opts.get("unknown"):
        sys.stdout.write(UNKNOWN_OPTION.format(opts["unknown"]))
        return RC_UNKNOWN_OPTION
    if opts["x"] and not opts["q"]:
        sys.stdout.write(XML_WITHOUT_QUERY)
        return RC_BAD_ARGS
    if opts["L"] and opts["id"] is not None:
        sys.stdout.write(NOT_VALID_HERE.format("-i"))
        return RC_BAD_ARGS
    if opts.get("help"):
        sys.stdout.write("NVIDIA System Management Interface -- v580.95.05\n\n(emulated by the K8sNvidia twin)\n")
        return 0
    data = state.read()
    if "nvidia" not in (data.get("modules") or []):
        sys.stdout.write(NO_DRIVER)
        return RC_NO_DRIVER
    node = state.node()
    version = (data.get("nvidia_driver") or {}).get("version") or "N/A"
    gpus = hw.layout(node.get("gpus") or [], node.get("id", "node"))
    processes = [p for p in (data.get("gpu_processes") or []) if isinstance(p, dict)]
    if opts["id"] is not None:
        want = [w.strip() for w in str(opts["id"]).split(",")]
        picked = [g for g in gpus if str(g["index"]) in want or g["uuid"] in want or _smi_bus(g["pci_bus_id"]) in want]
        if not picked:
            sys.stdout.write("No devices were found\n")
            return 6
        gpus = picked
    if opts["query_gpu"] is not None or opts["query_apps"] is not None:
        if opts["query_gpu"] is not None:
            fields = [f.strip() for f in opts["query_gpu"].split(",") if f.strip()]
            rows = [_gpu_fields(g, version, len(gpus), processes) for g in gpus]
            known = rows[0] if rows else _gpu_fields(hw.layout(["0x1b06"])[0], version, 0, [])
        else:
            fields = [f.strip() for f in opts["query_apps"].split(",") if f.strip()]
            by_index = {g["index"]: g for g in gpus}
            rows = []
            for p in processes:
                g = by_index.get(p.get("gpu", 0))
                if g is None:
                    continue
                rows.append(
                    {
                        "pid": (str(p.get("pid", 0)), None),
                        "process_name": (p.get("name", ""), None),
                        "name": (p.get("name", ""), None),
                        "used_memory": (str(p.get("used_memory_mib", 0)), "MiB"),
                        "used_gpu_memory": (str(p.get("used_memory_mib", 0)), "MiB"),
                        "gpu_uuid": (g["uuid"], None),
                        "gpu_bus_id": (_smi_bus(g["pci_bus_id"]), None),
                        "gpu_name": (g["name"], None),
                    }
                )
            known = dict.fromkeys(APP_FIELDS)
        for f in fields:
            if f not in known:
                sys.stdout.write(BAD_FIELD.format(f))
                return RC_BAD_ARGS
        return _csv(fields, rows, opts["format"] or "csv")
    if opts["L"]:
        for g in gpus:
            sys.stdout.write(f"GPU {g['index']}: {g['name']} (UUID: {g['uuid']})\n")
        return 0
    if opts["q"] and opts["x"]:
        sys.stdout.write(build_xml(gpus, version, processes))
        return 0
    if opts["q"]:
        now = datetime.datetime.now().strftime("%a %b %e %H:%M:%S %Y")
        out = ["", "==============NVSMI LOG==============", "", f"{'Timestamp':<38}: {now}",
               f"{'Driver Version':<38}: {version}", f"{'CUDA Version':<38}: {cuda_for(version)}", "",
               f"{'Attached GPUs':<38}: {len(gpus)}"]
        for g in gpus:
            out += [f"GPU {_smi_bus(g['pci_bus_id'])}", f"    {'Product Name':<34}: {g['name']}",
                    f"    {'GPU UUID':<34}: {g['uuid']}"]
        sys.stdout.write("\n".join(out) + "\n")
        return 0
    sys.stdout.write(summary(gpus, version, processes))
    return 0
