"""
States for Kubernetes objects through kubectl on the control plane (see
the ``kube`` execution module): node labels and applied manifests.

.. code-block:: yaml

    k8snvidia-kubernetes-cni:
      kube.manifest_applied:
        - name: /etc/kubernetes/k8snvidia/cni.yaml

    k8snvidia-gpu-labels-node-110:
      kube.node_labeled:
        - name: node-110
        - labels:
            nvidia.com/gpu.present: "true"
"""

import hashlib
import os

from salt.exceptions import CommandExecutionError

__virtualname__ = "kube"


def __virtual__():
    if "kube.kubectl" in __salt__:
        return __virtualname__
    return (False, "the kube execution module is not loaded (saltutil.sync_modules)")


def node_labeled(name, labels):
    """
    Ensure a Kubernetes node carries ``labels`` (run on the control plane).
    A node that has not registered yet is left alone, with a comment.

    name
        The node name.
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    labels = {str(k): str(v) for k, v in (labels or {}).items()}
    if not labels:
        ret["comment"] = f"no labels for {name}"
        return ret
    current = __salt__["kube.node_labels"](name)
    if current is None:
        ret["comment"] = f"node {name} is not registered in the cluster yet; labels are set once it joins"
        return ret
    wrong = {k: v for k, v in labels.items() if current.get(k) != v}
    if not wrong:
        ret["comment"] = f"node {name} has its {len(labels)} labels"
        return ret
    ret["changes"] = {k: {"old": current.get(k), "new": v} for k, v in wrong.items()}
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = f"{len(wrong)} label(s) would be set on node {name}"
        return ret
    __salt__["kube.label_node"](name, wrong)
    ret["comment"] = f"{len(wrong)} label(s) set on node {name}"
    return ret


def manifest_applied(name):
    """
    ``kubectl apply`` a manifest file on the control plane when its content
    differs from the last one applied successfully (its sha256 is kept beside
    it in ``<name>.applied``). A failed apply leaves the record unchanged, so
    the next run applies again; an unchanged manifest costs no subprocess.

    name
        Path of the manifest file.
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    try:
        with open(name, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
    except OSError as exc:
        if __opts__["test"]:
            ret["result"] = None
            ret["comment"] = f"{name} would be applied once written"
            return ret
        ret["result"] = False
        ret["comment"] = f"cannot read {name}: {exc}"
        return ret
    record = name + ".applied"
    try:
        with open(record, encoding="utf-8") as fh:
            applied = fh.read().strip()
    except OSError:
        applied = None
    if applied == digest:
        ret["comment"] = f"{name} is applied"
        return ret
    ret["changes"] = {"applied": {"old": applied, "new": digest}}
    if __opts__["test"]:
        ret["result"] = None
        ret["comment"] = f"{name} would be applied (kubectl apply)"
        return ret
    with open(name, encoding="utf-8") as fh:
        try:
            out = __salt__["kube.apply"](fh.read())
        except CommandExecutionError as exc:
            ret["result"] = False
            ret["changes"] = {}
            ret["comment"] = f"{exc} (the next run applies {name} again)"
            return ret
    with open(record, "w", encoding="utf-8") as fh:
        fh.write(digest + "\n")
    os.chmod(record, 0o644)
    ret["comment"] = f"{name} applied: " + " ".join(out.split())[:300]
    return ret
