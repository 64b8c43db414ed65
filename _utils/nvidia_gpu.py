"""
What K8sNvidia knows about NVIDIA GPUs, and how it reads a host's GPUs.

Shared by the ``nvidia`` grains (``_grains/nvidia.py``), the ``nvidia``
execution module, the driver state and the pillar validation
(``_utils/k8snvidia.py`` calls :func:`driver_problems`). Plain Python, no Salt
imports, so the twin and the tests can load it by path too.

Contents:

* the GPU table: PCI device id (vendor 0x10de) -> marketing name and
  architecture, with device-id ranges and name patterns as fallbacks;
* the driver rules per architecture (branches, kernel module type, CUDA);
* readers for the sysfs PCI tree, ``/proc/modules`` and
  ``/proc/driver/nvidia/version``, a parser for ``nvidia-smi -q -x``
  (every DTD from v10 to v13) and one for ``nvidia-smi --query-gpu`` CSV;
* :func:`inventory`, the one function behind the ``nvidia`` grain (NVML
  through ``_utils/nvml.py`` first, ``nvidia-smi --query-gpu`` as the
  fallback, the PCI tree without a driver).

Sources: device ids and chip names from the PCI ID Repository (pci.ids,
https://pci-ids.ucw.cz, snapshot 2023-04-11); ids newer than that snapshot
(Ada refreshes, H200, GH200, Blackwell) from NVIDIA's driver README
"Appendix A. Supported NVIDIA GPU Products" (R580) -- those are marked below.
Driver rules from NVIDIA's R580 Unix driver deprecation notice (R580 is the
last branch for Maxwell, Pascal and Volta), the Kepler support plan (R470 is
the last branch for Kepler), NVIDIA/open-gpu-kernel-modules README (Turing
and newer; Blackwell requires the open modules) and the CUDA 13.0 release
notes (Maxwell, Pascal and Volta dropped).
"""

import os
import re
import subprocess
import xml.etree.ElementTree as ET

VENDOR_NVIDIA = "0x10de"

# Architectures, oldest first.
ARCHITECTURES = ("Kepler", "Maxwell", "Pascal", "Volta", "Turing", "Ampere", "Ada", "Hopper", "Blackwell")

# Per architecture: the last driver branch that supports it (None: current),
# the first branch that does, whether the open kernel modules support it and
# whether it needs them, and the newest CUDA major version for it.
RULES = {
    "Kepler": {"max_branch": 470, "min_branch": None, "open": False, "open_required": False, "cuda_max": 11},
    "Maxwell": {"max_branch": 580, "min_branch": None, "open": False, "open_required": False, "cuda_max": 12},
    "Pascal": {"max_branch": 580, "min_branch": None, "open": False, "open_required": False, "cuda_max": 12},
    "Volta": {"max_branch": 580, "min_branch": None, "open": False, "open_required": False, "cuda_max": 12},
    "Turing": {"max_branch": None, "min_branch": 410, "open": True, "open_required": False, "cuda_max": None},
    "Ampere": {"max_branch": None, "min_branch": 450, "open": True, "open_required": False, "cuda_max": None},
    "Ada": {"max_branch": None, "min_branch": 525, "open": True, "open_required": False, "cuda_max": None},
    "Hopper": {"max_branch": None, "min_branch": 525, "open": True, "open_required": False, "cuda_max": None},
    "Blackwell": {"max_branch": None, "min_branch": 570, "open": True, "open_required": True, "cuda_max": None},
}
# The open kernel modules exist from R515 on.
OPEN_MODULE_MIN_BRANCH = 515

# PCI device id -> (name as nvidia-smi prints it, architecture).
GPUS = {
    # Maxwell (GM107, GM200, GM204, GM206)
    0x1380: ("NVIDIA GeForce GTX 750 Ti", "Maxwell"),
    0x1381: ("NVIDIA GeForce GTX 750", "Maxwell"),
    0x13BA: ("Quadro K2200", "Maxwell"),
    0x13BB: ("Quadro K620", "Maxwell"),
    0x13BC: ("Quadro K1200", "Maxwell"),
    0x13C0: ("NVIDIA GeForce GTX 980", "Maxwell"),
    0x13C2: ("NVIDIA GeForce GTX 970", "Maxwell"),
    0x13F0: ("Quadro M5000", "Maxwell"),
    0x13F1: ("Quadro M4000", "Maxwell"),
    0x13F2: ("Tesla M60", "Maxwell"),
    0x13F3: ("Tesla M6", "Maxwell"),
    0x1401: ("NVIDIA GeForce GTX 960", "Maxwell"),
    0x1402: ("NVIDIA GeForce GTX 950", "Maxwell"),
    0x1430: ("Quadro M2000", "Maxwell"),
    0x1431: ("Tesla M4", "Maxwell"),
    0x17C2: ("NVIDIA GeForce GTX TITAN X", "Maxwell"),
    0x17C8: ("NVIDIA GeForce GTX 980 Ti", "Maxwell"),
    0x17F0: ("Quadro M6000", "Maxwell"),
    0x17F1: ("Quadro M6000 24GB", "Maxwell"),
    0x17FD: ("Tesla M40", "Maxwell"),
    # Pascal (GP100, GP102, GP104, GP106, GP107, GP108)
    0x15F0: ("Quadro GP100", "Pascal"),
    0x15F7: ("Tesla P100-PCIE-12GB", "Pascal"),
    0x15F8: ("Tesla P100-PCIE-16GB", "Pascal"),
    0x15F9: ("Tesla P100-SXM2-16GB", "Pascal"),
    0x1B00: ("NVIDIA TITAN X (Pascal)", "Pascal"),
    0x1B02: ("NVIDIA TITAN Xp", "Pascal"),
    0x1B06: ("NVIDIA GeForce GTX 1080 Ti", "Pascal"),
    0x1B30: ("Quadro P6000", "Pascal"),
    0x1B38: ("Tesla P40", "Pascal"),
    0x1B80: ("NVIDIA GeForce GTX 1080", "Pascal"),
    0x1B81: ("NVIDIA GeForce GTX 1070", "Pascal"),
    0x1B82: ("NVIDIA GeForce GTX 1070 Ti", "Pascal"),
    0x1B83: ("NVIDIA GeForce GTX 1060 6GB", "Pascal"),
    0x1B84: ("NVIDIA GeForce GTX 1060 3GB", "Pascal"),
    0x1BB0: ("Quadro P5000", "Pascal"),
    0x1BB1: ("Quadro P4000", "Pascal"),
    0x1BB3: ("Tesla P4", "Pascal"),
    0x1BB4: ("Tesla P6", "Pascal"),
    0x1C02: ("NVIDIA GeForce GTX 1060 3GB", "Pascal"),
    0x1C03: ("NVIDIA GeForce GTX 1060 6GB", "Pascal"),
    0x1C30: ("Quadro P2000", "Pascal"),
    0x1C31: ("Quadro P2200", "Pascal"),
    0x1C81: ("NVIDIA GeForce GTX 1050", "Pascal"),
    0x1C82: ("NVIDIA GeForce GTX 1050 Ti", "Pascal"),
    0x1CB1: ("Quadro P1000", "Pascal"),
    0x1CB2: ("Quadro P600", "Pascal"),
    0x1CB3: ("Quadro P400", "Pascal"),
    0x1D01: ("NVIDIA GeForce GT 1030", "Pascal"),
    # Volta (GV100)
    0x1D81: ("NVIDIA TITAN V", "Volta"),
    0x1DB1: ("Tesla V100-SXM2-16GB", "Volta"),
    0x1DB4: ("Tesla V100-PCIE-16GB", "Volta"),
    0x1DB5: ("Tesla V100-SXM2-32GB", "Volta"),
    0x1DB6: ("Tesla V100-PCIE-32GB", "Volta"),
    0x1DB8: ("Tesla V100-SXM3-32GB", "Volta"),
    0x1DBA: ("Quadro GV100", "Volta"),
    0x1DF6: ("Tesla V100S-PCIE-32GB", "Volta"),
    # Turing (TU102, TU104, TU106, TU116, TU117)
    0x1E02: ("NVIDIA TITAN RTX", "Turing"),
    0x1E04: ("NVIDIA GeForce RTX 2080 Ti", "Turing"),
    0x1E07: ("NVIDIA GeForce RTX 2080 Ti", "Turing"),
    0x1E30: ("Quadro RTX 6000", "Turing"),
    0x1E36: ("Quadro RTX 6000", "Turing"),
    0x1E78: ("Quadro RTX 8000", "Turing"),
    0x1E81: ("NVIDIA GeForce RTX 2080 SUPER", "Turing"),
    0x1E82: ("NVIDIA GeForce RTX 2080", "Turing"),
    0x1E84: ("NVIDIA GeForce RTX 2070 SUPER", "Turing"),
    0x1E87: ("NVIDIA GeForce RTX 2080", "Turing"),
    0x1EB0: ("Quadro RTX 5000", "Turing"),
    0x1EB1: ("Quadro RTX 4000", "Turing"),
    0x1EB8: ("Tesla T4", "Turing"),
    0x1F02: ("NVIDIA GeForce RTX 2070", "Turing"),
    0x1F03: ("NVIDIA GeForce RTX 2060 12GB", "Turing"),
    0x1F06: ("NVIDIA GeForce RTX 2060 SUPER", "Turing"),
    0x1F07: ("NVIDIA GeForce RTX 2070", "Turing"),
    0x1F08: ("NVIDIA GeForce RTX 2060", "Turing"),
    0x1F82: ("NVIDIA GeForce GTX 1650", "Turing"),
    0x1FB1: ("NVIDIA T600", "Turing"),
    0x1FF2: ("NVIDIA T400 4GB", "Turing"),
    0x2182: ("NVIDIA GeForce GTX 1660 Ti", "Turing"),
    0x2184: ("NVIDIA GeForce GTX 1660", "Turing"),
    0x2187: ("NVIDIA GeForce GTX 1650 SUPER", "Turing"),
    0x21C4: ("NVIDIA GeForce GTX 1660 SUPER", "Turing"),
    # Ampere (GA100, GA102, GA104, GA106, GA107)
    0x20B0: ("NVIDIA A100-SXM4-40GB", "Ampere"),
    0x20B1: ("NVIDIA A100-PCIE-40GB", "Ampere"),
    0x20B2: ("NVIDIA A100-SXM4-80GB", "Ampere"),
    0x20B5: ("NVIDIA A100 80GB PCIe", "Ampere"),
    0x20B7: ("NVIDIA A30", "Ampere"),
    0x20F1: ("NVIDIA A100-PCIE-40GB", "Ampere"),
    0x20F3: ("NVIDIA A800-SXM4-80GB", "Ampere"),
    0x2203: ("NVIDIA GeForce RTX 3090 Ti", "Ampere"),
    0x2204: ("NVIDIA GeForce RTX 3090", "Ampere"),
    0x2206: ("NVIDIA GeForce RTX 3080", "Ampere"),
    0x2208: ("NVIDIA GeForce RTX 3080 Ti", "Ampere"),
    0x220A: ("NVIDIA GeForce RTX 3080", "Ampere"),
    0x2216: ("NVIDIA GeForce RTX 3080", "Ampere"),
    0x2230: ("NVIDIA RTX A6000", "Ampere"),
    0x2231: ("NVIDIA RTX A5000", "Ampere"),
    0x2233: ("NVIDIA RTX A5500", "Ampere"),
    0x2235: ("NVIDIA A40", "Ampere"),
    0x2236: ("NVIDIA A10", "Ampere"),
    0x2237: ("NVIDIA A10G", "Ampere"),
    0x2482: ("NVIDIA GeForce RTX 3070 Ti", "Ampere"),
    0x2484: ("NVIDIA GeForce RTX 3070", "Ampere"),
    0x2486: ("NVIDIA GeForce RTX 3060 Ti", "Ampere"),
    0x2488: ("NVIDIA GeForce RTX 3070", "Ampere"),
    0x2489: ("NVIDIA GeForce RTX 3060 Ti", "Ampere"),
    0x24B0: ("NVIDIA RTX A4000", "Ampere"),
    0x2503: ("NVIDIA GeForce RTX 3060", "Ampere"),
    0x2504: ("NVIDIA GeForce RTX 3060", "Ampere"),
    0x2507: ("NVIDIA GeForce RTX 3050", "Ampere"),
    0x25B6: ("NVIDIA A16", "Ampere"),
    # Ada Lovelace (AD102, AD103, AD104, AD106, AD107)
    0x2684: ("NVIDIA GeForce RTX 4090", "Ada"),
    0x26B1: ("NVIDIA RTX 6000 Ada Generation", "Ada"),
    0x26B2: ("NVIDIA RTX 5000 Ada Generation", "Ada"),  # driver README
    0x26B5: ("NVIDIA L40", "Ada"),
    0x26B9: ("NVIDIA L40S", "Ada"),  # driver README
    0x2702: ("NVIDIA GeForce RTX 4080 SUPER", "Ada"),  # driver README
    0x2704: ("NVIDIA GeForce RTX 4080", "Ada"),
    0x2705: ("NVIDIA GeForce RTX 4070 Ti SUPER", "Ada"),  # driver README
    0x2782: ("NVIDIA GeForce RTX 4070 Ti", "Ada"),
    0x2783: ("NVIDIA GeForce RTX 4070 SUPER", "Ada"),  # driver README
    0x2786: ("NVIDIA GeForce RTX 4070", "Ada"),
    0x27B1: ("NVIDIA RTX 4500 Ada Generation", "Ada"),  # driver README
    0x27B2: ("NVIDIA RTX 4000 Ada Generation", "Ada"),  # driver README
    0x27B8: ("NVIDIA L4", "Ada"),
    0x2803: ("NVIDIA GeForce RTX 4060 Ti", "Ada"),
    0x2805: ("NVIDIA GeForce RTX 4060 Ti", "Ada"),  # 16GB; driver README
    0x2882: ("NVIDIA GeForce RTX 4060", "Ada"),  # driver README
    # Hopper (GH100)
    0x2321: ("NVIDIA H100 NVL", "Hopper"),  # driver README
    0x2322: ("NVIDIA H800 PCIe", "Hopper"),
    0x2324: ("NVIDIA H800", "Hopper"),
    0x2330: ("NVIDIA H100 80GB HBM3", "Hopper"),
    0x2331: ("NVIDIA H100 PCIe", "Hopper"),
    0x2335: ("NVIDIA H200", "Hopper"),  # H200 SXM 141GB; driver README
    0x233B: ("NVIDIA H200 NVL", "Hopper"),  # driver README
    0x2342: ("NVIDIA GH200 480GB", "Hopper"),  # driver README
    0x2348: ("NVIDIA GH200 144G HBM3e", "Hopper"),  # driver README
    # Blackwell (GB100, GB202, GB203, GB205, GB206); all from the driver README
    0x2901: ("NVIDIA B200", "Blackwell"),
    0x2941: ("NVIDIA GB200", "Blackwell"),
    0x2B85: ("NVIDIA GeForce RTX 5090", "Blackwell"),
    0x2BB1: ("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "Blackwell"),
    0x2BB5: ("NVIDIA RTX PRO 6000 Blackwell Server Edition", "Blackwell"),
    0x2C02: ("NVIDIA GeForce RTX 5080", "Blackwell"),
    0x2C05: ("NVIDIA GeForce RTX 5070 Ti", "Blackwell"),
    0x2D04: ("NVIDIA GeForce RTX 5060 Ti", "Blackwell"),
    0x2D05: ("NVIDIA GeForce RTX 5060", "Blackwell"),
    0x2F04: ("NVIDIA GeForce RTX 5070", "Blackwell"),
}

# Device-id ranges (inclusive) where every display-class device of pci.ids is
# one architecture; other NVIDIA functions (audio, USB) in them are not of
# display class and never reach this lookup. Blackwell from the driver README.
RANGES = (
    (0x0FC0, 0x103F, "Kepler"),
    (0x1180, 0x12FF, "Kepler"),
    (0x1340, 0x143F, "Maxwell"),
    (0x15F0, 0x15FF, "Pascal"),
    (0x1600, 0x16FF, "Maxwell"),
    (0x1720, 0x173F, "Pascal"),
    (0x1740, 0x17FF, "Maxwell"),
    (0x1B00, 0x1D7F, "Pascal"),
    (0x1D80, 0x1DFF, "Volta"),
    (0x1E00, 0x1FFF, "Turing"),
    (0x2080, 0x20FF, "Ampere"),
    (0x2180, 0x21FF, "Turing"),
    (0x2200, 0x22FF, "Ampere"),
    (0x2300, 0x237F, "Hopper"),
    (0x2400, 0x25FF, "Ampere"),
    (0x2680, 0x28FF, "Ada"),
    (0x2900, 0x2FFF, "Blackwell"),
)

# Name patterns (matched against the lower-cased name with "nvidia",
# "geforce", "tesla", "quadro" kept), first match wins.
NAME_PATTERNS = (
    (r"\btitan xp?\b.*pascal|\btitan xp\b", "Pascal"),
    (r"\btitan v\b|\bv100|\bgv100\b", "Volta"),
    (r"\btitan rtx\b|\brtx 20\d0|\bgtx 16\d0|\bt4\b|quadro rtx|\bt(400|600|1000)\b", "Turing"),
    (r"\bgtx 10[5-8]0|\bgt 10[13]0\b|\bp(4|6|40|100)\b|\bp100-|quadro p\d|\bgp100\b|grid p\d", "Pascal"),
    (r"\bgtx (9[5-8]0|750)|\btitan x\b|\bm(4|6|10|40|60)\b|quadro m\d|\bk(620|1200|2200)\b", "Maxwell"),
    (r"\bk(10|20|40|80)\b|\bgtx (6[5-9]0|7[6-8]0)|titan black|titan z", "Kepler"),
    (r"\brtx 30\d0|\brtx a\d{4}\b|\ba(2|10g?|16|30|40|100|800)\b|\ba100-|\ba800-", "Ampere"),
    (r"\brtx 40\d0|\bl4\b|\bl40s?\b|ada generation", "Ada"),
    (r"\bh(100|200|800|20)\b|\bgh200\b", "Hopper"),
    (r"\brtx 50\d0|\bb(100|200|300)\b|\bgb(200|300)\b|blackwell", "Blackwell"),
)
NAME_RES = tuple((re.compile(p), arch) for p, arch in NAME_PATTERNS)

# What nvidia-smi's <product_architecture> says -> our names.
SMI_ARCHITECTURES = {"ada lovelace": "Ada"}

# Placeholder names an old driver gives a GPU it does not know yet.
GENERIC_NAMES = ("graphics device", "n/a", "unknown", "")


def device_id(value):
    """A device id as an int from '0x1b06', '1b06', 0x1b06 or nvidia-smi's
    '1B0610DE' (device, then vendor); None when it cannot be read."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value or "").strip().lower()
    if text.startswith("0x"):
        text = text[2:]
    if re.fullmatch(r"[0-9a-f]{8}", text) and text.endswith("10de"):
        text = text[:4]
    if re.fullmatch(r"[0-9a-f]{1,4}", text):
        return int(text, 16)
    return None


def device_id_str(value):
    """'0x1b06' for any form device_id() reads; None when unknown."""
    dev = device_id(value)
    return None if dev is None else f"0x{dev:04x}"


def architecture_of_id(value):
    """The architecture of a PCI device id: exact table, then ranges."""
    dev = device_id(value)
    if dev is None:
        return None
    if dev in GPUS:
        return GPUS[dev][1]
    for low, high, arch in RANGES:
        if low <= dev <= high:
            return arch
    return None


def name_of_id(value):
    """The marketing name of a PCI device id (None when not in the table)."""
    dev = device_id(value)
    return GPUS[dev][0] if dev in GPUS else None


def normalize_architecture(value):
    """nvidia-smi's <product_architecture> in this module's spelling."""
    text = str(value or "").strip()
    if not text or text.lower() in GENERIC_NAMES:
        return None
    text = SMI_ARCHITECTURES.get(text.lower(), text)
    for arch in ARCHITECTURES:
        if arch.lower() == text.lower():
            return arch
    return text


def _norm_name(name):
    return re.sub(r"\s+", " ", str(name or "").lower().replace("-", " - ")).strip()


def architecture_of_name(name):
    """The architecture of a GPU named like nvidia-smi or the pillar names it
    ('NVIDIA GeForce GTX 1080 Ti', '1080 Ti', 'Tesla T4'), or of a device id
    written as a name ('0x1b06'); None when unknown."""
    if name is None:
        return None
    by_id = architecture_of_id(name) if re.fullmatch(r"\s*0x[0-9a-fA-F]{1,4}\s*", str(name)) else None
    if by_id:
        return by_id
    norm = _norm_name(name)
    if not norm or norm in GENERIC_NAMES:
        return None
    for _dev, (known, arch) in GPUS.items():
        if _norm_name(known) == norm:
            return arch
    # bare model numbers: "1080 Ti", "2080", "4090"
    bare = re.search(r"\b(\d{3,4})\b", norm)
    for rx, arch in NAME_RES:
        if rx.search(norm):
            return arch
    if bare:
        num = int(bare.group(1))
        series = {10: "Pascal", 16: "Turing", 20: "Turing", 30: "Ampere", 40: "Ada", 50: "Blackwell"}
        if 1000 <= num <= 5099 and num // 100 in series:
            return series[num // 100]
        if 900 <= num <= 999:
            return "Maxwell"
    return None


def identify(pci_device_id=None, name=None, smi_architecture=None):
    """(name, architecture) for one GPU from what is known of it: the table by
    device id, nvidia-smi's architecture, the id ranges, then the name."""
    arch = None
    dev = device_id(pci_device_id)
    if dev is not None and dev in GPUS:
        arch = GPUS[dev][1]
    arch = arch or normalize_architecture(smi_architecture) or architecture_of_id(dev)
    arch = arch or architecture_of_name(name)
    shown = name if name and _norm_name(name) not in GENERIC_NAMES else None
    return (shown or name_of_id(dev), arch)


# ---------------------------------------------------------------- driver rules


def version_tuple(version):
    """``'580.95.05'`` -> ``(580, 95, 5)`` for comparing driver versions;
    unparsable parts count as 0 (the one parser of driver versions: the
    driver module and state use it)."""
    out = []
    for part in str(version or "").split("."):
        try:
            out.append(int(part))
        except ValueError:
            out.append(0)
    return tuple(out)


def branch_of(version):
    """The driver branch (major number) of '580.95.05'; None when unreadable."""
    match = re.match(r"^\s*(\d{3})\.", str(version or ""))
    return int(match.group(1)) if match else None


def recommend(architectures):
    """
    The driver branch limits and kernel module type for a node whose GPUs are
    of these architectures (unknown ones are ignored).

    Returns ``{"max_branch": int|None, "min_branch": int|None,
    "module_type": "open"|"proprietary"|None, "open_required": bool,
    "cuda_max": int|None, "architectures": [...], "conflicts": [...]}``;
    module_type is None for a node with no known GPU, ``open_required`` true
    when a GPU works with the open kernel module only (Blackwell),
    ``conflicts`` names rules no single driver meets (a Pascal and a
    Blackwell GPU in one node). :func:`violations` checks a driver against it.
    """
    archs = []
    for arch in architectures or []:
        arch = normalize_architecture(arch)
        if arch in RULES and arch not in archs:
            archs.append(arch)
    archs.sort(key=ARCHITECTURES.index)
    maxes = [RULES[a]["max_branch"] for a in archs if RULES[a]["max_branch"]]
    mins = [RULES[a]["min_branch"] for a in archs if RULES[a]["min_branch"]]
    cudas = [RULES[a]["cuda_max"] for a in archs if RULES[a]["cuda_max"]]
    closed_only = [a for a in archs if not RULES[a]["open"]]
    open_only = [a for a in archs if RULES[a]["open_required"]]
    conflicts = []
    if closed_only and open_only:
        conflicts.append(
            f"{', '.join(closed_only)} GPUs need the proprietary kernel module and {', '.join(open_only)} GPUs the open one"
        )
    max_branch = min(maxes) if maxes else None
    min_branch = max(mins) if mins else None
    if max_branch and min_branch and min_branch > max_branch:
        conflicts.append(f"no driver branch is both {min_branch}+ and {max_branch} or older")
    if not archs:
        module = None
    elif closed_only:
        module = "proprietary"
    else:
        module = "open"
    return {
        "max_branch": max_branch,
        "min_branch": min_branch,
        "module_type": module,
        "open_required": bool(open_only),
        "cuda_max": min(cudas) if cudas else None,
        "architectures": archs,
        "conflicts": conflicts,
    }


def _problem(key, value, expected):
    # same shape as k8snvidia.problem (the validator's messages)
    return f"k8snvidia:{key}: {value!r} is invalid; expected {expected}"


def chosen_module_type(requested, rec):
    """The kernel module type a driver is installed with: ``requested``, or
    for ``auto`` (or unset) the recommendation's (:func:`recommend`),
    ``proprietary`` when it has none (no known GPU)."""
    if requested in (None, "", "auto"):
        return rec.get("module_type") if rec.get("module_type") in ("open", "proprietary") else "proprietary"
    return requested


def violations(rec, branch, module_type="auto"):
    """
    The rules a driver of ``branch`` (an int, None: not checked) with
    ``module_type`` (``auto``, ``open``, ``proprietary``) breaks for GPUs
    whose :func:`recommend` answer is ``rec``: the one place the branch and
    open-module rules are applied (the pillar check :func:`driver_problems`
    and the driver state word them). A list, in this order, of
    ``{"rule": ...}``:

    * ``conflict`` (``text``): no single driver serves these GPUs;
    * ``max_branch`` / ``min_branch`` (``limit``): the branch is newer than
      the last one for the GPUs, older than the first;
    * ``open_unsupported``: ``open`` asked for GPUs older than Turing;
    * ``open_required``: ``proprietary`` asked for GPUs that need the open
      module (Blackwell);
    * ``open_min_branch`` (``limit``): ``open`` asked for a branch that has
      no open kernel modules.
    """
    out = [{"rule": "conflict", "text": text} for text in rec.get("conflicts") or []]
    if branch:
        if rec.get("max_branch") and branch > int(rec["max_branch"]):
            out.append({"rule": "max_branch", "limit": int(rec["max_branch"])})
        if rec.get("min_branch") and branch < int(rec["min_branch"]):
            out.append({"rule": "min_branch", "limit": int(rec["min_branch"])})
    mtype = str(module_type or "auto")
    if mtype == "open" and rec.get("module_type") == "proprietary":
        out.append({"rule": "open_unsupported"})
    if mtype == "proprietary" and rec.get("open_required"):
        out.append({"rule": "open_required"})
    if mtype == "open" and branch and branch < OPEN_MODULE_MIN_BRANCH:
        out.append({"rule": "open_min_branch", "limit": OPEN_MODULE_MIN_BRANCH})
    return out


def driver_problems(node_id, gpu_names, driver_version, module_type):
    """
    Problems with a node's pillar driver settings given its GPUs (names as
    nvidia-smi or the pillar give them, or PCI device ids like '0x1b06').
    Each names the pillar key, the bad value, the node and the GPU; an empty
    list means no problem. A bad version *format* is the validator's own
    check and is not repeated here. The rules are :func:`violations`, per GPU.
    """
    gpus = []
    for name in gpu_names or []:
        arch = architecture_of_name(name)
        if arch in RULES:
            shown = name_of_id(name) if re.fullmatch(r"\s*0x[0-9a-fA-F]{1,4}\s*", str(name)) else None
            gpus.append((str(shown or name), arch))
    if not gpus:
        return []
    branch = branch_of(driver_version)
    node = f"node {node_id}"
    mtype = str(module_type or "auto")
    found = [(name, arch, violations(recommend([arch]), branch, mtype)) for name, arch in gpus]
    version_key, type_key = "driver:version", "driver:kernel_module_type"
    words = {
        "max_branch": lambda v, name, arch: (version_key, str(driver_version), (
            f"a driver of branch {v['limit']} or older: {node} has {name} ({arch}), "
            f"which {_next_branch(v['limit'])}+ drivers do not support")),
        "min_branch": lambda v, name, arch: (version_key, str(driver_version), (
            f"a driver of branch {v['limit']} or newer: {node} has {name} ({arch}), "
            f"which drivers before {v['limit']} do not support")),
        "open_unsupported": lambda v, name, arch: (type_key, mtype, (
            f"proprietary or auto: {node} has {name} ({arch}), which the open kernel modules do not "
            "support (Turing and newer only)")),
        "open_required": lambda v, name, arch: (type_key, mtype, (
            f"open or auto: {node} has {name} ({arch}), which only the open kernel modules support")),
        "open_min_branch": lambda v, name, arch: (type_key, mtype, (
            f"proprietary or auto: driver {driver_version} for {node} has no open kernel modules "
            f"(they exist from {v['limit']} on)")),
    }
    problems = []
    # the version's problems first, then the module type's (each GPU in order)
    for rules in (("max_branch", "min_branch"), ("open_unsupported", "open_required"), ("open_min_branch",)):
        for name, arch, broken in found:
            for v in broken:
                if v["rule"] in rules:
                    problems.append(_problem(*words[v["rule"]](v, name, arch)))
    rec = recommend([arch for _name, arch in gpus])
    for conflict in rec["conflicts"]:
        problems.append(
            _problem(
                f"nodes:{node_id}:gpus",
                [name for name, _arch in gpus],
                f"GPUs one driver can serve: on {node}, {conflict}",
            )
        )
    return list(dict.fromkeys(problems))


def _next_branch(branch):
    # R580 is followed by R590 (branches step by 5 or 10; the notice says "590+")
    return {470: 495, 580: 590}.get(branch, branch + 5)


# ---------------------------------------------------------------- host readers


def pci_bus_id(value):
    """A PCI address as sysfs names it ('0000:01:00.0') from nvidia-smi's
    '00000000:01:00.0' or any case."""
    text = str(value or "").strip().lower()
    match = re.fullmatch(r"(?:([0-9a-f]{1,8}):)?([0-9a-f]{1,2}):([0-9a-f]{1,2})\.([0-7])", text)
    if not match:
        return text or None
    domain = int(match.group(1) or "0", 16)
    return f"{domain:04x}:{int(match.group(2), 16):02x}:{int(match.group(3), 16):02x}.{match.group(4)}"


def _read(path):
    with open(path, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def read_pci(sysfs_root):
    """NVIDIA display devices in ``<sysfs_root>/bus/pci/devices``, ordered by
    bus id: ``[{"pci_bus_id", "pci_device_id", "kernel_driver"}]``. A missing
    tree gives []; an unreadable device is skipped."""
    base = os.path.join(sysfs_root, "bus", "pci", "devices")
    try:
        names = os.listdir(base)
    except OSError:
        return []
    found = []
    for name in names:
        path = os.path.join(base, name)
        try:
            vendor = _read(os.path.join(path, "vendor")).strip().lower()
            if vendor != VENDOR_NVIDIA:
                continue
            klass = _read(os.path.join(path, "class")).strip().lower()
            if not klass.startswith("0x03"):
                continue
            dev = _read(os.path.join(path, "device")).strip().lower()
        except OSError:
            continue
        driver = None
        link = os.path.join(path, "driver")
        if os.path.islink(link):
            driver = os.path.basename(os.readlink(link))
        found.append({"pci_bus_id": pci_bus_id(name), "pci_device_id": device_id_str(dev), "kernel_driver": driver})
    return sorted(found, key=lambda d: d["pci_bus_id"])


def read_modules(procfs_root):
    """Names of the loaded kernel modules (``host.kernel_modules``); None
    when ``/proc/modules`` cannot be read."""
    try:
        return list(_host().kernel_modules(procfs_root))
    except OSError:
        return None


def module_taint(procfs_root, name="nvidia"):
    """The taint flags of a loaded module from ``/proc/modules`` ('POE' for
    the proprietary nvidia module, 'OE' or 'O' for the open one); None when
    it is not listed."""
    try:
        row = _host().kernel_modules(procfs_root).get(name)
    except OSError:
        return None
    return None if row is None else row["taint"]


VERSION_RE = re.compile(r"Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)")


def read_driver_version(procfs_root):
    """``(version, module_type)`` from ``/proc/driver/nvidia/version``
    (module_type 'open' when it reads 'Open Kernel Module'); (None, None)
    when the driver is not loaded."""
    try:
        text = _read(os.path.join(procfs_root, "driver", "nvidia", "version"))
    except OSError:
        return None, None
    first = text.splitlines()[0] if text.strip() else ""
    match = VERSION_RE.search(first)
    module = "open" if "Open Kernel Module" in first else "proprietary"
    return (match.group(1) if match else None), module


# ---------------------------------------------------------------- nvidia-smi


def _text(elem, path):
    """Text of a child element, None for missing, empty or 'N/A'-like."""
    if elem is None:
        return None
    node = elem.find(path)
    if node is None or node.text is None:
        return None
    text = node.text.strip()
    if not text or text in ("N/A", "[N/A]", "Not Supported", "[Not Supported]") or text.startswith("[REDACTED"):
        return None
    return text


def _mib(text):
    match = re.match(r"^\s*(\d+)\s*MiB\s*$", str(text or ""))
    return int(match.group(1)) if match else None


def _int(text):
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return None


def parse_smi_xml(text):
    """
    Parse ``nvidia-smi -q -x`` output (DTD v10 to v13).

    Returns ``{"driver_version", "cuda_version", "dtd", "attached_gpus",
    "gpus": [...], "processes": [...]}``. Each GPU: ``index`` (order in the
    file), ``pci_bus_id`` (sysfs form), ``pci_device_id`` ('0x1b06'),
    ``name``, ``architecture``, ``uuid``, ``memory_mib``, ``minor_number``,
    ``mig_mode``. Each process: ``gpu`` (index), ``pci_bus_id``, ``uuid``,
    ``pid``, ``type``, ``name``, ``used_memory_mib``. Fields the file lacks or
    reports as N/A are None. Raises ValueError on text that is not such XML.
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"nvidia-smi -q -x output is not XML: {exc}") from exc
    if root.tag != "nvidia_smi_log":
        raise ValueError(f"nvidia-smi -q -x output has root <{root.tag}>, not <nvidia_smi_log>")
    dtd = None
    match = re.search(r"nvsmi_device_(v\d+)\.dtd", text if isinstance(text, str) else text.decode("utf-8", "replace"))
    if match:
        dtd = match.group(1)
    gpus, procs = [], []
    for index, gpu in enumerate(root.findall("gpu")):
        bus = _text(gpu, "pci/pci_bus_id") or gpu.get("id")
        dev = _text(gpu, "pci/pci_device_id")
        smi_name = _text(gpu, "product_name")
        name, arch = identify(dev, smi_name, _text(gpu, "product_architecture"))
        uuid = _text(gpu, "uuid")
        entry = {
            "index": index,
            "pci_bus_id": pci_bus_id(bus),
            "pci_device_id": device_id_str(dev),
            "name": name,
            "architecture": arch,
            "uuid": uuid,
            "memory_mib": _mib(_text(gpu, "fb_memory_usage/total")),
            "minor_number": _int(_text(gpu, "minor_number")),
            "mig_mode": _text(gpu, "mig_mode/current_mig"),
        }
        gpus.append(entry)
        for proc in gpu.findall("processes/process_info"):
            procs.append(
                {
                    "gpu": index,
                    "pci_bus_id": entry["pci_bus_id"],
                    "uuid": uuid,
                    "pid": _int(_text(proc, "pid")),
                    "type": _text(proc, "type"),
                    "name": _text(proc, "process_name"),
                    "used_memory_mib": _mib(_text(proc, "used_memory")),
                }
            )
    return {
        "driver_version": _text(root, "driver_version"),
        "cuda_version": _text(root, "cuda_version"),
        "dtd": dtd,
        "attached_gpus": _int(_text(root, "attached_gpus")),
        "gpus": gpus,
        "processes": procs,
    }


def which(name, path=None):
    """The first executable ``name`` on PATH (or ``path``)."""
    for folder in (path if path is not None else os.environ.get("PATH", "")).split(os.pathsep):
        cand = os.path.join(folder or ".", name)
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def run_smi_subprocess(args, timeout=None):
    """Run nvidia-smi once, bounded (``timeout`` seconds, default
    :data:`SMI_TIMEOUT`): ``(rc, stdout, stderr)``; rc None means it could
    not run (not found, timed out), with the reason in stderr."""
    if timeout is None:
        timeout = smi_timeout(None)
    exe = which("nvidia-smi")
    if exe is None:
        return None, "", "nvidia-smi not found on PATH"
    try:
        proc = subprocess.run(
            [exe, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, "", f"nvidia-smi {' '.join(args)} timed out after {timeout}s"
    except OSError as exc:
        return None, "", f"nvidia-smi could not run: {exc}"
    return proc.returncode, proc.stdout, proc.stderr


# Fields of the fallback query, newest first; drivers older than R510 do not
# know compute_cap (and pre-R450 mig.mode.current): the query is then made
# once more with the base fields only.
SMI_FIELDS = ("index", "pci.bus_id", "pci.device_id", "name", "uuid", "memory.total", "driver_version",
              "compute_cap", "mig.mode.current")
SMI_BASE_FIELDS = SMI_FIELDS[:7]
SMI_FORMAT = "--format=csv,noheader,nounits"
# The minion option nvidia.smi_timeout (seconds), shared by the grain and the
# execution module.
SMI_TIMEOUT = 10


def smi_timeout(opts):
    """``nvidia.smi_timeout`` from minion opts as a positive float, else the default."""
    # never `opts or {}`: the truth value of Salt's opts dict counts its ~1000
    # keys through every layer (10 ms per refresh on the lent H200)
    try:
        value = float(opts.get("nvidia.smi_timeout", SMI_TIMEOUT) if opts is not None else SMI_TIMEOUT)
    except (TypeError, ValueError):
        return float(SMI_TIMEOUT)
    return value if value > 0 else float(SMI_TIMEOUT)


def smi_query_args(fields=SMI_FIELDS):
    return [f"--query-gpu={','.join(fields)}", SMI_FORMAT]


def _csv_value(text):
    text = (text or "").strip()
    if not text or text in ("N/A", "[N/A]", "Not Supported", "[Not Supported]", "[Unknown Error]"):
        return None
    if text.startswith("[REDACTED") or text.startswith("[Insufficient"):
        return None
    return text


def parse_smi_csv(text, fields=SMI_FIELDS):
    """
    Parse ``nvidia-smi --query-gpu=<fields> --format=csv,noheader,nounits``.

    Returns ``{"driver_version", "cuda_version": None, "gpus": [...]}`` with
    GPUs in the shape of :func:`parse_smi_xml`'s (``index``, ``pci_bus_id``,
    ``pci_device_id``, ``name``, ``architecture``, ``uuid``, ``memory_mib``)
    plus ``compute_capability`` and ``mig_mode``. Raises ValueError on a
    line with the wrong number of fields.
    """
    import csv

    gpus, driver = [], None
    for row in csv.reader((text or "").splitlines(), skipinitialspace=True):
        if not row or not "".join(row).strip():
            continue
        if len(row) != len(fields):
            raise ValueError(f"nvidia-smi --query-gpu printed {len(row)} fields, not {len(fields)}: {','.join(row)!r}")
        val = {f: _csv_value(v) for f, v in zip(fields, row)}
        dev = val.get("pci.device_id")  # '0x233510DE': device, then vendor
        name, arch = identify(dev, val.get("name"))
        gpus.append(
            {
                "index": _int(val.get("index")),
                "pci_bus_id": pci_bus_id(val.get("pci.bus_id")),
                "pci_device_id": device_id_str(dev),
                "name": name,
                "architecture": arch,
                "uuid": val.get("uuid"),
                "memory_mib": _int(val.get("memory.total")),
                "compute_capability": val.get("compute_cap"),
                "mig_mode": val.get("mig.mode.current"),
            }
        )
        driver = driver or val.get("driver_version")
    return {"driver_version": driver, "cuda_version": None, "gpus": gpus}


def _from_smi(run_smi, errors):
    """One bounded ``--query-gpu`` (twice on a driver that lacks the newer
    fields); the parsed view or None."""
    fields = SMI_FIELDS
    rc, out, err = run_smi(smi_query_args(fields))
    if rc not in (None, 0) and "is not a valid field" in f"{out}{err}":
        fields = SMI_BASE_FIELDS
        rc, out, err = run_smi(smi_query_args(fields))
    if rc == 0:
        try:
            return parse_smi_csv(out, fields)
        except ValueError as exc:
            errors.append(str(exc))
            return None
    msg = (err or out or "").strip().splitlines()
    reason = msg[0] if msg else "no output"
    errors.append(reason if rc is None else f"nvidia-smi --query-gpu failed (rc {rc}): {reason}")
    return None


def _from_nvml(read_nvml, errors):
    """The NVML view, GPUs normalised like :func:`parse_smi_csv`'s; None
    when NVML cannot answer (then the caller falls back, without an error)."""
    try:
        data, error = read_nvml()
    except Exception:  # a broken reader is a fallback too
        return None
    if data is None:
        return None
    if error:
        errors.append(error)
    gpus = []
    for raw in data.get("gpus") or []:
        name, arch = identify(raw.get("pci_device_id"), raw.get("name"))
        gpus.append(
            {
                "index": raw.get("index"),
                "pci_bus_id": pci_bus_id(raw.get("pci_bus_id")),
                "pci_device_id": device_id_str(raw.get("pci_device_id")),
                "name": name,
                "architecture": arch,
                "uuid": raw.get("uuid"),
                "memory_mib": raw.get("memory_mib"),
                "compute_capability": raw.get("compute_capability"),
                "mig_mode": raw.get("mig_mode"),
            }
        )
    return {"driver_version": data.get("driver_version"), "cuda_version": data.get("cuda_version"), "gpus": gpus}


def _sibling(stem):
    """``<stem>.py`` beside this file (synced with it), imported once per
    process and again when the file changes (a ``saltutil.sync_all``); None
    when it is missing or broken.

    Not through Salt's loader on purpose: the grain's loader is rebuilt at
    every refresh, and one more utils module costs a refresh about 5 ms (an
    opts copy that counts every key, an exec), as much as half of NVML's own
    answer on the lent H200 (docs/gpu-device-run.md)."""
    import importlib.util
    import sys

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{stem}.py")
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (path, st.st_mtime_ns, st.st_size)
    name = f"k8snvidia_{stem}"
    mod = sys.modules.get(name)
    if mod is not None and getattr(mod, "_k8snvidia_key", None) == key:
        return mod
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    except Exception:  # a broken file is a missing one: the caller says what that means
        return None
    mod._k8snvidia_key = key
    sys.modules[name] = mod
    return mod


def nvml_module():
    """``nvml.py`` beside this file (``_utils/nvml.py``), see :func:`_sibling`;
    None when it is missing or broken (NVML is then a fallback, not an error)."""
    return _sibling("nvml")


def _host():
    """``host.py`` beside this file (``_utils/host.py``: the host roots and
    the ``/proc/modules`` reader), see :func:`_sibling`."""
    mod = _sibling("host")
    if mod is None:
        raise ImportError("_utils/host.py is missing or broken beside _utils/nvidia_gpu.py (run saltutil.sync_all)")
    return mod


def host_roots(opts):
    """``(sysfs, procfs)``: the roots :func:`inventory` reads, from the minion
    options as ``host.sysfs``/``host.procfs`` read them (through this module,
    so the grain's refresh loads no second utils module)."""
    host = _host()
    return host.sysfs(opts), host.procfs(opts)


def nvml_readers(library=None):
    """``(read_nvml, read_cuda)`` for :func:`inventory` from
    :func:`nvml_module` (``library``: the minion option
    ``nvidia.nvml_library``, None for ``libnvidia-ml.so.1``); (None, None)
    without the module."""
    import functools

    mod = nvml_module()
    if mod is None:
        return None, None
    return functools.partial(mod.read, library), mod.cuda_driver_version


def driver_loaded(procfs_root="/proc"):
    """Whether the nvidia kernel module is loaded (its version file, or
    ``nvidia`` in ``/proc/modules``): the driver's sources are asked only then."""
    return read_driver_version(procfs_root)[0] is not None or "nvidia" in (read_modules(procfs_root) or [])


def inventory(sysfs_root="/sys", procfs_root="/proc", run_smi=None, read_nvml=None, read_cuda=None):
    """
    Everything the ``nvidia`` grain reports, from sysfs and procfs and, when
    the driver is loaded, from the driver: NVML first (``read_nvml() ->
    (data, error)``, :func:`nvml.read`, no subprocess), else one
    ``nvidia-smi --query-gpu`` (``run_smi(args) -> (rc, out, err)``; the
    CUDA version then from ``read_cuda() -> '13.0' | None``). ``source``
    says which answered: ``nvml``, ``nvidia-smi`` or ``pci`` (no driver, or
    neither could). Never raises for a host problem: those land in ``error``.
    """
    errors = []
    pci = read_pci(sysfs_root)
    modules = read_modules(procfs_root) or []
    version, module_type = read_driver_version(procfs_root)
    loaded = version is not None or "nvidia" in modules
    if loaded and module_type is None:
        # no version file: the proprietary module taints the kernel with P
        taint = module_taint(procfs_root)
        module_type = None if taint is None else ("proprietary" if "P" in taint else "open")
    view, source = None, "pci"
    if loaded and read_nvml is not None:
        view = _from_nvml(read_nvml, errors)
        source = "nvml" if view is not None else source
    if loaded and view is None and run_smi is not None:
        view = _from_smi(run_smi, errors)
        if view is not None:
            source = "nvidia-smi"
            if read_cuda is not None:
                try:
                    view["cuda_version"] = read_cuda()
                except Exception:
                    view["cuda_version"] = None
    by_bus = {g["pci_bus_id"]: g for g in (view or {}).get("gpus", [])}
    matched = {dev["pci_bus_id"]: by_bus.pop(dev["pci_bus_id"]) for dev in pci if dev["pci_bus_id"] in by_bus}
    # bus ids that differ between the two views (a VM remapping them): pair
    # the rest in order by device id, so no GPU is counted twice
    for dev in pci:
        if dev["pci_bus_id"] in matched:
            continue
        for bus, seen in sorted(by_bus.items(), key=lambda kv: kv[0] or ""):
            if seen.get("pci_device_id") in (dev["pci_device_id"], None):
                matched[dev["pci_bus_id"]] = by_bus.pop(bus)
                break

    def entry(bus, dev_id, kernel_driver, seen):
        name, arch = identify(dev_id, seen.get("name"), seen.get("architecture"))
        return {
            "pci_bus_id": bus,
            "pci_device_id": dev_id,
            "name": name,
            "architecture": arch,
            "uuid": seen.get("uuid"),
            "memory_mib": seen.get("memory_mib"),
            "kernel_driver": kernel_driver,
            "compute_capability": seen.get("compute_capability"),
            "mig_mode": seen.get("mig_mode"),
        }

    gpus = [
        entry(dev["pci_bus_id"], dev["pci_device_id"], dev["kernel_driver"], matched.get(dev["pci_bus_id"]) or {})
        for dev in pci
    ]
    # GPUs the driver sees but sysfs does not show (a sandbox without /sys/bus/pci)
    for bus, seen in sorted(by_bus.items(), key=lambda kv: kv[0] or ""):
        gpus.append(entry(bus, seen.get("pci_device_id"), None, seen))
    gpus.sort(key=lambda g: g["pci_bus_id"] or "")
    result = {
        "gpu_count": len(gpus),
        "gpus": gpus,
        "driver_version": version or (view or {}).get("driver_version"),
        "cuda_version": (view or {}).get("cuda_version"),
        "kernel_module": module_type if loaded else None,
        "nouveau_loaded": "nouveau" in modules,
        "source": source,
    }
    if errors:
        result["error"] = "; ".join(errors)
    return result


# ------------------------------------------------------- compute capability
# CUDA compute capability (major, minor) when the driver does not report it
# (no driver yet, or a grain from before the NVML key): by PCI device-id
# range where one architecture spans several (GM107/GM108 5.0 vs 5.2; GP100
# 6.0 vs 6.1; GA100 8.0 vs 8.6; GB100 10.0 vs GB20x 12.0; the Kepler chips),
# else by architecture. Values from NVIDIA's CUDA C++ Programming Guide
# ("Compute Capabilities": GPUs per compute capability) and CUDA GPUs list
# (developer.nvidia.com/cuda-gpus); chips per id range from pci.ids.
CC_RANGES = (
    (0x0FC0, 0x0FFF, (3, 0)),  # GK107
    (0x1000, 0x102C, (3, 5)),  # GK110 (Tesla K20, K40, GTX 780, TITAN)
    (0x102D, 0x102D, (3, 7)),  # GK210 (Tesla K80)
    (0x1180, 0x11FF, (3, 0)),  # GK104, GK106
    (0x1280, 0x12FF, (3, 5)),  # GK208
    (0x1340, 0x13BF, (5, 0)),  # GM107, GM108 (GTX 750 Ti, Quadro K620/K1200/K2200)
    (0x15F0, 0x15FF, (6, 0)),  # GP100
    (0x2080, 0x20FF, (8, 0)),  # GA100 (A100, A30, A800)
    (0x2900, 0x29FF, (10, 0)),  # GB100, GB200 (B200, GB200)
    (0x2B00, 0x2FFF, (12, 0)),  # GB202..GB207 (GeForce RTX 50, RTX PRO Blackwell)
)
CC_BY_ARCHITECTURE = {
    "Maxwell": (5, 2),
    "Pascal": (6, 1),
    "Volta": (7, 0),
    "Turing": (7, 5),
    "Ampere": (8, 6),
    "Ada": (8, 9),
    "Hopper": (9, 0),
}
CC_NAME_PATTERNS = (
    (re.compile(r"\bgtx 750|\bk(620|1200|2200)\b"), (5, 0)),
    (re.compile(r"\bp100\b|\bgp100\b"), (6, 0)),
    (re.compile(r"\ba(30|100|800)\b"), (8, 0)),
    (re.compile(r"\brtx 50\d0|\brtx pro \d+ blackwell"), (12, 0)),
    (re.compile(r"\bg?b(100|200)\b"), (10, 0)),
    (re.compile(r"\bg?b300\b"), (10, 3)),
    (re.compile(r"\bk80\b"), (3, 7)),
    (re.compile(r"\bk(20|40)\b"), (3, 5)),
)


def compute_capability(pci_device_id=None, architecture=None, name=None):
    """The CUDA compute capability of a GPU as "major.minor" ("6.1" for a
    GTX 1080 Ti), from its PCI device id, else its name, else its
    architecture; None when that does not decide it (an unknown Kepler or
    Blackwell)."""
    dev = device_id(pci_device_id)
    if dev is not None:
        for low, high, cc in CC_RANGES:
            if low <= dev <= high:
                return "%d.%d" % cc
    norm = _norm_name(name) if name else ""
    for rx, cc in CC_NAME_PATTERNS:
        if norm and rx.search(norm):
            return "%d.%d" % cc
    arch = normalize_architecture(architecture) or architecture_of_id(dev) or architecture_of_name(name)
    cc = CC_BY_ARCHITECTURE.get(arch)
    return "%d.%d" % cc if cc else None

