"""
Cluster-wide commands for K8sNvidia, run on the master (no daemon needed):

    salt-run cluster.validate
"""

import logging
import os

import salt.pillar
import salt.utils.files
import salt.utils.yaml

log = logging.getLogger(__name__)

PARAMS = ("defaults", "os_family", "osfinger")


def _params():
    for root in __opts__["file_roots"].get("base", []):
        path = os.path.join(root, "parameters")
        if os.path.isdir(path):
            out = {}
            for name in PARAMS:
                with salt.utils.files.fopen(os.path.join(path, f"{name}.yaml")) as fh:
                    out[name] = salt.utils.yaml.safe_load(fh) or {}
            return out
    raise FileNotFoundError("parameters/ not found in file_roots:base")


def _pillar(minion_id, grains):
    pil = salt.pillar.get_pillar(__opts__, grains, minion_id, saltenv="base")
    return pil.compile_pillar()


def _grains_for(minion_id, node, params):
    finger = (node or {}).get("os") or "Rocky Linux-9"
    fam = __utils__["k8snvidia.family_of"](finger, params["os_family"])
    name, _, release = finger.rpartition("-")
    return {
        "id": minion_id,
        "os_family": fam,
        "osfinger": finger,
        "os": name.split()[0],
        "osmajorrelease": int(release.split(".")[0]) if release[:1].isdigit() else None,
        "oscodename": None,
    }


def validate(pillar_dir=None):
    """
    Check the pillar for every node of the cluster, before anything changes.
    Prints each problem with its pillar key, the bad value and what is
    expected; exits non-zero when there is one.

    CLI Example:

    .. code-block:: bash

        salt-run cluster.validate
    """
    if pillar_dir:
        __opts__["pillar_roots"] = {"base": [pillar_dir]}
    params = _params()
    first = _pillar("validate", {"id": "validate"})
    errors = first.get("_errors")
    if errors:
        return {"valid": False, "problems": errors, "retcode": 1}
    pillar_cfg = first.get("k8snvidia") or {}
    problems = __utils__["k8snvidia.validate_cluster"](pillar_cfg)
    nodes = pillar_cfg.get("nodes") if isinstance(pillar_cfg.get("nodes"), dict) else {}
    gpu_check = __utils__.get("nvidia_gpu.driver_problems")
    for nid, node in nodes.items():
        grains = _grains_for(nid, node if isinstance(node, dict) else {}, params)
        node_pillar = _pillar(nid, grains).get("k8snvidia") or {}
        cfg = __utils__["k8snvidia.build"](params, node_pillar, nid, grains)
        found = __utils__["k8snvidia.validate"](cfg, node_pillar, gpu_check)
        problems += [p if p.startswith(f"k8snvidia:nodes:{nid}") or p in problems else f"[{nid}] {p}" for p in found]
    problems = list(dict.fromkeys(problems))
    ret = {"valid": not problems, "nodes": sorted(nodes), "problems": problems}
    if problems:
        ret["retcode"] = 1
        __context__["retcode"] = 1  # fails the orchestration's validate step
    return ret
