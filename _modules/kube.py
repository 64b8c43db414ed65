"""
Kubernetes through kubectl for K8sNvidia, on the control plane (the admin
kubeconfig): node labels, manifests, registered nodes, allocatable
``nvidia.com/gpu``, GPU Feature Discovery labels from the ``nvidia`` grain,
and the GPU validation pod. kubeadm itself (init, join, join data) is the
``kubeadm`` module.
"""

import json
import logging
import re
import time

import salt.utils.path
import salt.utils.yaml
from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "kube"

ADMIN_CONF = "/etc/kubernetes/admin.conf"


def __virtual__():
    return __virtualname__


def kubectl(args, kubeconfig=ADMIN_CONF, stdin=None):
    """
    ``kubectl --kubeconfig=KUBECONFIG ARGS`` (the admin kubeconfig by
    default; ``stdin`` fed to it): cmd.run_all's result. The one way this
    project's code calls kubectl.

    CLI Example:

    .. code-block:: bash

        salt cluster-master kube.kubectl '[get, nodes]'
    """
    kubectl = salt.utils.path.which("kubectl")
    if not kubectl:
        raise CommandExecutionError("kubectl is not installed: apply the `kubernetes` SLS first")
    return __salt__["cmd.run_all"](
        [kubectl, f"--kubeconfig={kubeconfig}", *args], python_shell=False, stdin=stdin, output_loglevel="debug"
    )


LABELS_CACHE = "kube.node_labels"


def node_labels(node):
    """
    The labels of a Kubernetes node (via the admin kubeconfig), or None
    when the node is not registered. One ``kubectl get nodes`` serves every
    node of a state run (kept in ``__context__`` until a label changes).

    CLI Example:

    .. code-block:: bash

        salt cluster-master kube.node_labels node-110
    """
    if LABELS_CACHE not in __context__:
        res = kubectl(["get", "nodes", "-o", "json"])
        if res["retcode"] != 0:
            return None
        __context__[LABELS_CACHE] = {
            item["metadata"]["name"]: (item["metadata"].get("labels") or {})
            for item in json.loads(res["stdout"]).get("items", [])
        }
    return __context__[LABELS_CACHE].get(node)


def registered():
    """
    The names of the nodes registered in the cluster (via the admin
    kubeconfig), or None when the API server does not answer.

    CLI Example:

    .. code-block:: bash

        salt cluster-master kube.registered
    """
    if node_labels("") is None and LABELS_CACHE not in __context__:
        return None
    return sorted(__context__[LABELS_CACHE])


def label_node(node, labels):
    """
    Set labels on a node (``kubectl label --overwrite``).

    CLI Example:

    .. code-block:: bash

        salt cluster-master kube.label_node node-110 '{"nvidia.com/gpu.present": "true"}'
    """
    args = ["label", "node", node, "--overwrite"] + [f"{k}={v}" for k, v in sorted(labels.items())]
    res = kubectl(args)
    __context__.pop(LABELS_CACHE, None)
    if res["retcode"] != 0:
        raise CommandExecutionError(f"kubectl label node {node} failed: {res['stderr'].strip()}")
    return True


def apply(manifest):
    """
    ``kubectl apply -f -`` of a manifest given as text. Returns the output.

    CLI Example:

    .. code-block:: bash

        salt cluster-master kube.apply "$(cat manifest.yaml)"
    """
    res = kubectl(["apply", "-f", "-"], stdin=manifest)
    if res["retcode"] != 0:
        raise CommandExecutionError(f"kubectl apply failed: {res['stderr'].strip()}")
    return res["stdout"]


def _gfd_sanitise(text):
    """GFD's product sanitising (internal/lm/resource.go ``sanitise``): drop
    every character but ``A-Za-z0-9-_.`` and blanks, then join the words
    with ``-``."""
    return "-".join(re.sub(r"[^A-Za-z0-9_. -]", "", str(text)).split())


def _gfd_family(major, minor):
    """GFD's ``getArchFamily`` (internal/lm/resource.go)."""
    if major == 7:
        return "volta" if minor < 5 else "turing"
    if major == 8:
        return "ampere" if minor < 9 else "ada-lovelace"
    return {1: "tesla", 2: "fermi", 3: "kepler", 5: "maxwell", 6: "pascal", 9: "hopper", 10: "blackwell",
            12: "blackwell", 13: "rubin"}.get(major, "undefined")


def _compute_capability(gpu):
    """(major, minor) of a grain's GPU: NVML's ``compute_capability`` when the
    grain has it, else the table of ``_utils/nvidia_gpu.py`` (PCI id, name,
    architecture); None when neither knows."""
    cc = gpu.get("compute_capability")
    if not cc:
        try:
            table = __utils__.get("nvidia_gpu.compute_capability")  # noqa: F821 - a Salt loader dunder
        except NameError:
            table = None
        if table:
            cc = table(gpu.get("pci_device_id"), gpu.get("architecture"), gpu.get("name"))
    match = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", str(cc or ""))
    return (int(match.group(1)), int(match.group(2))) if match else None


def gpu_labels(nvidia, replicas=None):
    """
    Node labels as GPU Feature Discovery writes them (NVIDIA/k8s-device-plugin
    ``internal/lm``), from a node's ``nvidia`` grain, so workloads that select
    on GFD labels work: ``gpu.present``, ``gpu.count``, ``gpu.product``
    (sanitised name; ``-SHARED`` appended when ``replicas`` > 1, with
    ``gpu.replicas`` and ``gpu.sharing-strategy``), ``gpu.memory`` (MiB),
    ``gpu.family`` (GFD's names: pascal, ada-lovelace, ...), ``gpu.compute.major``
    and ``gpu.compute.minor``, ``cuda.driver-version.*`` and
    ``cuda.runtime-version.*``.

    CLI Example:

    .. code-block:: bash

        salt cluster-master kube.gpu_labels "$(salt-call --out=json grains.get nvidia)"
    """
    gpus = (nvidia or {}).get("gpus") or []
    if not gpus:
        return {}
    first = gpus[0]
    labels = {"nvidia.com/gpu.present": "true", "nvidia.com/gpu.count": str(len(gpus))}
    if first.get("name"):
        product = _gfd_sanitise(first["name"])
        if replicas is not None and int(replicas) > 1:
            product += "-SHARED"
        labels["nvidia.com/gpu.product"] = product
    if replicas is not None:
        labels["nvidia.com/gpu.replicas"] = str(int(replicas))
        labels["nvidia.com/gpu.sharing-strategy"] = "time-slicing" if int(replicas) > 1 else "none"
    if first.get("memory_mib"):
        labels["nvidia.com/gpu.memory"] = str(int(first["memory_mib"]))
    cc = _compute_capability(first)
    if cc:
        labels["nvidia.com/gpu.family"] = _gfd_family(*cc)
        labels["nvidia.com/gpu.compute.major"], labels["nvidia.com/gpu.compute.minor"] = str(cc[0]), str(cc[1])
    version = nvidia.get("driver_version")
    parts = str(version or "").split(".")
    if version and 2 <= len(parts) <= 3:
        labels["nvidia.com/cuda.driver-version.full"] = str(version)
        labels["nvidia.com/cuda.driver-version.major"] = parts[0]
        labels["nvidia.com/cuda.driver-version.minor"] = parts[1]
        if len(parts) > 2:  # GFD writes "" for a two-part version; kept out here
            labels["nvidia.com/cuda.driver-version.revision"] = parts[2]
    cuda = re.fullmatch(r"\s*(\d+)\.(\d+).*", str(nvidia.get("cuda_version") or ""))
    if cuda:
        labels["nvidia.com/cuda.runtime-version.major"] = cuda.group(1)
        labels["nvidia.com/cuda.runtime-version.minor"] = cuda.group(2)
        labels["nvidia.com/cuda.runtime-version.full"] = f"{cuda.group(1)}.{cuda.group(2)}"
    return labels


def allocatable():
    """
    ``nvidia.com/gpu`` allocatable per node, from the control plane.

    CLI Example:

    .. code-block:: bash

        salt cluster-master kube.allocatable
    """
    res = kubectl(["get", "nodes", "-o", "json"])
    if res["retcode"] != 0:
        raise CommandExecutionError(f"kubectl get nodes failed: {res['stderr'].strip()}")
    out = {}
    for item in json.loads(res["stdout"]).get("items", []):
        name = item["metadata"]["name"]
        value = ((item.get("status") or {}).get("allocatable") or {}).get("nvidia.com/gpu", "0")
        out[name] = int(value)
    return out


def _validation_settings():
    """The map's ``validation`` section (salt://parameters/defaults.yaml)
    with the pillar's ``k8snvidia:validation`` over it."""
    text = __salt__["cp.get_file_str"]("salt://parameters/defaults.yaml") or ""
    base = (salt.utils.yaml.safe_load(text) or {}).get("validation") or {}
    return __utils__["k8snvidia.merge"](base, (__pillar__.get("k8snvidia") or {}).get("validation") or {})


def validate_gpu(node, image=None, timeout=None):
    """
    Run a pod on ``node`` that requests ``nvidia.com/gpu: 1`` and runs
    nvidia-smi; wait for it to finish (``timeout`` seconds), return its phase,
    the end of its log and, when it failed, the pod's reason (``pod_reason``:
    ``OutOfnvidia.com/gpu: ...`` when the kubelet rejected it because running
    pods hold every GPU), and delete it. The orchestration passes ``image``
    and ``timeout`` from the node's own map (cluster.view); called by hand,
    they come from this control plane's map (defaults and pillar
    ``k8snvidia:validation``) and the node's driver in the mine.

    CLI Example:

    .. code-block:: bash

        salt cluster-master kube.validate_gpu node-110
    """
    settings = _validation_settings() if not (image and timeout) else {}
    timeout = float(timeout or settings.get("timeout") or 300)
    name = f"k8snvidia-gpu-check-{node}"
    if not image:
        # the image's CUDA must fit the node's driver (its GPU facts in the mine)
        facts = (__salt__["mine.get"](node, "k8snvidia_gpu") or {}).get(node) or {}
        driver = facts.get("driver_version")
        image = __utils__["k8snvidia.validation_image"](settings, driver)
        if not image:
            return {"phase": "NotRun", "log": "",
                    "reason": f"no k8snvidia:validation:images entry fits driver {driver} of {node}"}
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app.kubernetes.io/managed-by": "k8snvidia"}},
        "spec": {
            "restartPolicy": "Never",
            "nodeName": node,
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [
                {
                    "name": "nvidia-smi",
                    "image": image,
                    "command": ["nvidia-smi"],
                    "resources": {"limits": {"nvidia.com/gpu": 1}},
                }
            ],
        },
    }
    kubectl(["delete", "pod", name, "--ignore-not-found"])
    apply(json.dumps(pod))
    deadline = time.time() + timeout
    phase = "Unknown"
    while time.time() < deadline:
        res = kubectl(["get", "pod", name, "-o", "jsonpath={.status.phase}"])
        phase = (res["stdout"] or "").strip() or "Unknown"
        if phase in ("Succeeded", "Failed"):
            break
        time.sleep(1)
    pod_reason = ""
    if phase == "Failed":
        # the kubelet's rejection (OutOfnvidia.com/gpu: every GPU taken by running pods) or the container's end
        res = kubectl(["get", "pod", name, "-o", "jsonpath={.status.reason}: {.status.message}"])
        pod_reason = (res["stdout"] or "").strip().strip(":").strip()
    logs = kubectl(["logs", name])
    kubectl(["delete", "pod", name, "--ignore-not-found"])
    tail = "\n".join((logs.get("stdout") or "").splitlines()[-12:])
    reason = "" if phase == "Succeeded" else f"pod {name} is {phase} after {int(timeout)}s"
    if pod_reason:
        reason += f" ({pod_reason})"
    return {"phase": phase, "reason": reason, "log": tail, "pod_reason": pod_reason}
