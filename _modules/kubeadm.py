"""
kubeadm for K8sNvidia: configuration files, init, join, and join data that
never leaks.

Join data (bootstrap token, CA hash, API endpoint) travels from the control
plane to the workers through the Salt mine, encrypted for each worker with
that worker's own minion key (a fresh AES-256-GCM key per worker, wrapped
with RSA-OAEP/SHA-256; see :py:func:`_encrypt`):

1. every node publishes its public key: mine function ``k8snvidia_pubkey``
   (:py:func:`pubkey`);
2. the control plane creates a short-lived token and publishes
   ``k8snvidia_join`` (:py:func:`join_data`): one ciphertext per worker;
3. a worker's ``kubeadm.joined`` state reads its own entry and decrypts it
   when it runs.

So the token is never in a state's arguments, a return, a log line, the
master's job or mine cache, or any file but the worker's own
``/etc/kubernetes`` (removed after the join).
"""

import base64
import logging
import os
import re
import time

import salt.utils.files
import salt.utils.path
import salt.utils.yaml
from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "kubeadm"

KUBE_DIR = "/etc/kubernetes"
ADMIN_CONF = f"{KUBE_DIR}/admin.conf"
KUBELET_CONF = f"{KUBE_DIR}/kubelet.conf"
INIT_CONFIG = f"{KUBE_DIR}/k8snvidia-init.yaml"
JOIN_CONFIG = f"{KUBE_DIR}/k8snvidia-join.yaml"
CA_CERT = f"{KUBE_DIR}/pki/ca.crt"
MANIFESTS = f"{KUBE_DIR}/manifests"
CONTROL_PLANE_PODS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
KUBELET_CLIENT = "/var/lib/kubelet/pki/kubelet-client-current.pem"
API_TIMEOUT = 10
MINE_PUBKEY = "k8snvidia_pubkey"
MINE_JOIN = "k8snvidia_join"
JOIN_RE = re.compile(
    r"kubeadm join (?P<endpoint>\S+) --token (?P<token>[a-z0-9]{6}\.[a-z0-9]{16}) "
    r"--discovery-token-ca-cert-hash (?P<hash>sha256:[0-9a-f]{64})"
)
TOKEN_RE = re.compile(r"[a-z0-9]{6}\.[a-z0-9]{16}")
CERT_KEY_RE = re.compile(r"[0-9a-f]{64}")


def __virtual__():
    return __virtualname__


def _redact(text):
    """Remove tokens, CA hashes and certificate keys from kubeadm output."""
    text = TOKEN_RE.sub("<token>", text or "")
    return CERT_KEY_RE.sub("<redacted>", text)


def _run(args, **kwargs):
    kubeadm = salt.utils.path.which("kubeadm")
    if not kubeadm:
        raise CommandExecutionError("kubeadm is not installed: apply the `kubernetes` SLS first")
    # quiet: kubeadm's output can hold a token; it is never logged.
    return __salt__["cmd.run_all"]([kubeadm, *args], python_shell=False, output_loglevel="quiet", **kwargs)


def api_version(kubernetes_version):
    """
    The kubeadm configuration API for a Kubernetes version: v1beta4 from
    1.31, v1beta3 from 1.22, v1beta2 before.

    CLI Example:

    .. code-block:: bash

        salt '*' kubeadm.api_version 1.36.4
    """
    minor = int(str(kubernetes_version).lstrip("v").split(".")[1])
    if minor >= 31:
        return "kubeadm.k8s.io/v1beta4"
    if minor >= 22:
        return "kubeadm.k8s.io/v1beta3"
    return "kubeadm.k8s.io/v1beta2"


def init_config(
    node_name,
    advertise_address,
    kubernetes_version,
    pod_cidr,
    service_cidr,
    cri_socket,
    control_plane_endpoint=None,
    image_repository="registry.k8s.io",
    dns_domain="cluster.local",
    token_ttl="15m",
    ignore_preflight_errors=None,
    fail_cgroup_v1=None,
):
    """
    The kubeadm InitConfiguration + ClusterConfiguration + KubeletConfiguration
    documents (YAML text) for the control plane.

    ignore_preflight_errors
        kubeadm checks this node skips (``nodeRegistration.ignorePreflightErrors``),
        e.g. ``[SystemVerification]`` on a cgroup v1 host with Kubernetes 1.35+.
    fail_cgroup_v1
        ``failCgroupV1`` of the cluster's KubeletConfiguration (every kubelet
        reads it from the kubelet-config ConfigMap): false when a node of the
        cluster runs cgroup v1 with Kubernetes 1.35+; None leaves it out.

    Both default to what this node's map derived (``k8snvidia:derived``) in
    the running state run.

    CLI Example:

    .. code-block:: bash

        salt cluster-master kubeadm.init_config cluster-master 192.168.0.113 1.36.4 10.244.0.0/16 10.96.0.0/12 unix:///run/containerd/containerd.sock
    """
    api = api_version(kubernetes_version)
    ttl = _duration(token_ttl)
    init = {
        "apiVersion": api,
        "kind": "InitConfiguration",
        # The token kubeadm init makes is short-lived too.
        "bootstrapTokens": [
            {
                "ttl": ttl,
                "usages": ["signing", "authentication"],
                "groups": ["system:bootstrappers:kubeadm:default-node-token"],
            }
        ],
        "localAPIEndpoint": {"advertiseAddress": advertise_address, "bindPort": 6443},
        "nodeRegistration": _node_registration(node_name, cri_socket, ignore_preflight_errors),
    }
    cluster = {
        "apiVersion": api,
        "kind": "ClusterConfiguration",
        "kubernetesVersion": f"v{str(kubernetes_version).lstrip('v')}",
        "controlPlaneEndpoint": control_plane_endpoint or f"{advertise_address}:6443",
        "imageRepository": image_repository,
        "networking": {"podSubnet": pod_cidr, "serviceSubnet": service_cidr, "dnsDomain": dns_domain},
    }
    kubelet = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "systemd",
    }
    if fail_cgroup_v1 is None:
        fail_cgroup_v1 = _derived().get("fail_cgroup_v1")
    if fail_cgroup_v1 is not None and _minor(kubernetes_version) >= 31:
        # kubelet.config.k8s.io/v1beta1 failCgroupV1 (since 1.31; default true from 1.35)
        kubelet["failCgroupV1"] = bool(fail_cgroup_v1)
    return "---\n".join(salt.utils.yaml.safe_dump(d, default_flow_style=False) for d in (init, cluster, kubelet))


def join_config(
    node_name, cri_socket, kubernetes_version, endpoint, token, ca_cert_hash, ignore_preflight_errors=None
):
    """The JoinConfiguration for a worker (YAML text; holds the token).
    ``ignore_preflight_errors`` as for :py:func:`init_config` (the worker's
    kubelet configuration comes from the cluster's kubelet-config ConfigMap)."""
    doc = {
        "apiVersion": api_version(kubernetes_version),
        "kind": "JoinConfiguration",
        "discovery": {
            "bootstrapToken": {"apiServerEndpoint": endpoint, "token": token, "caCertHashes": [ca_cert_hash]}
        },
        "nodeRegistration": _node_registration(node_name, cri_socket, ignore_preflight_errors),
    }
    return salt.utils.yaml.safe_dump(doc, default_flow_style=False)


def _minor(kubernetes_version):
    return int(str(kubernetes_version).lstrip("v").split(".")[1])


def _derived():
    """This node's derived map values when a state run has built the map
    (salt/map.jinja caches it in __context__), else nothing."""
    context = globals().get("__context__") or {}
    return (context.get("k8snvidia.config") or {}).get("derived") or {}


def _node_registration(node_name, cri_socket, ignore_preflight_errors):
    reg = {"name": node_name, "criSocket": cri_socket}
    if ignore_preflight_errors is None:
        ignore_preflight_errors = _derived().get("preflight_ignore") or []
    if ignore_preflight_errors:
        reg["ignorePreflightErrors"] = [str(name) for name in ignore_preflight_errors]
    return reg


def _duration(value):
    """'15m' -> '0h15m0s' style accepted by kubeadm; ints are minutes."""
    text = str(value).strip()
    if re.fullmatch(r"\d+", text):
        text = f"{text}m"
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", text)
    if not match or not any(match.groups()):
        raise CommandExecutionError(
            f"k8snvidia:cluster:join_token_ttl: {value!r} is invalid; expected a duration such as 15m or 1h"
        )
    h, m, s = (int(g or 0) for g in match.groups())
    return f"{h}h{m}m{s}s"


def _seconds(value):
    h, m, s = (int(x) for x in re.fullmatch(r"(\d+)h(\d+)m(\d+)s", _duration(value)).groups())
    return h * 3600 + m * 60 + s


def _control_plane_files():
    return [ADMIN_CONF, CA_CERT] + [f"{MANIFESTS}/{pod}.yaml" for pod in CONTROL_PLANE_PODS]


def _api_ready():
    """(True, "") when the API server answers ``/readyz`` with admin.conf,
    within ``API_TIMEOUT`` seconds; else (False, kubectl's error)."""
    if not salt.utils.path.which("kubectl"):
        return False, "kubectl is not installed"
    res = __salt__["kube.kubectl"](["get", "--raw", "/readyz", f"--request-timeout={API_TIMEOUT}s"])
    if res["retcode"] == 0:
        return True, ""
    lines = (res.get("stderr") or res.get("stdout") or "").strip().splitlines()
    return False, _redact(lines[-1] if lines else f"kubectl exited {res['retcode']}")


def status():
    """
    What this node is as a control plane, from the cluster's own state (not
    from a file of ours, which ``kubeadm reset`` would leave behind):

    - ``absent``: none of admin.conf, the CA, the static pod manifests;
    - ``ready``: admin.conf reaches an API server that answers ``/readyz``;
    - ``down``: every file of a finished ``kubeadm init`` is there (kubelet.conf
      points at the rotated client certificate: the kubelet-finalize phase
      ran) but the API server does not answer: nothing is reset, it needs a
      look (``systemctl status kubelet``, ``crictl ps``);
    - ``partial``: some of those files, from an init that stopped half-way
      (or a reset by hand that was not finished): ``kubeadm.init`` resets
      them first.

    Returns ``{"state": ..., "detail": ...}``.

    CLI Example:

    .. code-block:: bash

        salt cluster-master kubeadm.status
    """
    files = _control_plane_files()
    present = [p for p in files if os.path.exists(p)]
    if not present:
        return {"state": "absent", "detail": "no control plane files (admin.conf, CA, static pod manifests)"}
    if os.path.exists(ADMIN_CONF):
        ready, why = _api_ready()
        if ready:
            return {"state": "ready", "detail": "the API server answers /readyz"}
    else:
        why = f"{ADMIN_CONF} is missing"
    missing = [p for p in files if p not in present]
    if not missing and _finalized():
        return {"state": "down", "detail": f"kubeadm init finished here but the API server does not answer: {why}"}
    lacking = ", ".join(missing) if missing else f"kubelet.conf not finalized ({KUBELET_CLIENT})"
    return {"state": "partial", "detail": f"a kubeadm init that did not finish: {lacking} missing"}


def _finalized():
    """True when kubelet.conf points at the kubelet's rotated client
    certificate and that file exists: the last node-side phase of
    ``kubeadm init`` (kubelet-finalize) ran; ``kubeadm reset`` removes both."""
    try:
        with salt.utils.files.fopen(KUBELET_CONF, "r") as fh:
            text = fh.read()
    except OSError:
        return False
    pointed = re.search(r"client-certificate:\s*\S*/" + re.escape(os.path.basename(KUBELET_CLIENT)), text)
    return bool(pointed) and os.path.exists(KUBELET_CLIENT)


def initialized():
    """
    True when this node is a working control plane: admin.conf, the CA and
    the static pod manifests are there and the API server answers
    ``/readyz`` (bounded by ``API_TIMEOUT``). See :py:func:`status` for why not.

    CLI Example:

    .. code-block:: bash

        salt cluster-master kubeadm.initialized
    """
    return status()["state"] == "ready"


def joined():
    """
    True when this node has joined a cluster (kubelet.conf exists). Which
    cluster: :py:func:`ca_hash` and :py:func:`cluster_check`.

    CLI Example:

    .. code-block:: bash

        salt node-110 kubeadm.joined
    """
    return os.path.exists(KUBELET_CONF)


def ca_hash():
    """
    The ``sha256:<hex>`` hash (kubeadm's ``--discovery-token-ca-cert-hash``:
    the CA certificate's SubjectPublicKeyInfo) of the cluster CA this node
    trusts (``/etc/kubernetes/pki/ca.crt``, else kubelet.conf's embedded CA);
    None when it has none. Not a secret: it identifies a cluster, it joins
    nothing.

    CLI Example:

    .. code-block:: bash

        salt '*' kubeadm.ca_hash
    """
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    pem = None
    if os.path.exists(CA_CERT):
        with salt.utils.files.fopen(CA_CERT, "rb") as fh:
            pem = fh.read()
    elif os.path.exists(KUBELET_CONF):
        with salt.utils.files.fopen(KUBELET_CONF, "r") as fh:
            conf = salt.utils.yaml.safe_load(fh) or {}
        data = (((conf.get("clusters") or [{}])[0] or {}).get("cluster") or {}).get("certificate-authority-data")
        pem = base64.b64decode(data) if data else None
    if not pem:
        return None
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def cluster_check(control_plane):
    """
    Whether this node belongs to the cluster of ``control_plane``: its CA
    (:py:func:`ca_hash`) against the CA hash in the join data that control
    plane published for this node (the mine). ``{"state": ..., "detail": ...}``
    with state ``absent`` (not joined anywhere), ``member``, ``other`` (joined
    to another cluster: ``kubeadm reset -f`` there to move it) or ``unknown``
    (joined, but no join data to compare with). Returns no secret.

    CLI Example:

    .. code-block:: bash

        salt node-110 kubeadm.cluster_check cluster-master
    """
    if not joined():
        return {"state": "absent", "detail": f"{KUBELET_CONF} does not exist"}
    mine = ca_hash()
    try:
        want = _join_secret(control_plane, check_expiry=False)["ca_cert_hash"]
    except CommandExecutionError as exc:
        return {"state": "unknown", "detail": f"joined, not checked against {control_plane}: {exc}"}
    except Exception as exc:  # pylint: disable=broad-except
        # a check that cannot run must not fail a node that was joined before
        log.warning("kubeadm: cluster check against %s failed: %s", control_plane, exc)
        return {"state": "unknown", "detail": f"joined, not checked against {control_plane}: {type(exc).__name__}"}
    if mine == want:
        return {"state": "member", "detail": f"joined to the cluster of {control_plane} (CA {want[:19]}...)"}
    return {
        "state": "other",
        "detail": f"joined to another cluster: its CA is {(mine or 'unknown')[:19]}..., the cluster of "
        f"{control_plane} has {want[:19]}...",
    }


def _write_secret(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def _errors(stderr):
    """The [ERROR ...] lines and the error line of kubeadm output, redacted."""
    lines = [ln.strip() for ln in (stderr or "").splitlines()]
    picked = [ln for ln in lines if ln.startswith("[ERROR") or ln.startswith("error") or "couldn't" in ln]
    return _redact("\n".join(picked or lines[-5:]))


def init(config_text):
    """
    Run ``kubeadm init --config`` with the given configuration. Returns
    ``{"result": bool, "comment": str}``; the output (which holds a join
    token) is never returned or logged.

    CLI Example:

    .. code-block:: bash

        salt cluster-master kubeadm.init "$(cat init.yaml)"
    """
    now = status()
    if now["state"] in ("ready", "down"):
        # never reset a control plane that finished its init
        return {"result": now["state"] == "ready", "comment": f"not initialised again: {now['detail']}"}
    if now["state"] == "partial":
        # An init that failed half-way leaves these behind and the next init's
        # preflight refuses them: reset first, so a re-run finishes the job.
        log.info("kubeadm: resetting a half-initialised control plane (%s)", now["detail"])
        res = _run(["reset", "-f"])
        if res["retcode"] != 0:
            return {"result": False, "comment": "kubeadm reset of a half-initialised node failed:\n" + _errors(res["stderr"])}
    _write_secret(INIT_CONFIG, config_text)
    res = _run(["init", "--config", INIT_CONFIG])
    if res["retcode"] != 0:
        return {"result": False, "comment": "kubeadm init failed:\n" + _errors(res["stderr"])}
    return {"result": True, "comment": "kubeadm init succeeded"}


def pubkey():
    """
    This minion's public key (PEM): the mine function ``k8snvidia_pubkey``
    lets the control plane encrypt join data for this node alone.

    CLI Example:

    .. code-block:: bash

        salt '*' kubeadm.pubkey
    """
    with salt.utils.files.fopen(os.path.join(__opts__["pki_dir"], "minion.pub"), "r") as fh:
        return fh.read()


def _encrypt(pem, data, recipient=""):
    return __utils__["join_seal.seal"](pem, data, recipient)


def _decrypt(blob, recipient=""):
    """Open a blob of :py:func:`_encrypt` with this minion's private key."""
    with salt.utils.files.fopen(os.path.join(__opts__["pki_dir"], "minion.pem"), "rb") as fh:
        private = fh.read()
    try:
        return __utils__["join_seal.unseal"](private, blob, recipient)
    except ValueError as exc:
        raise CommandExecutionError(str(exc)) from None


def join_data(ttl=None, workers=None):
    """
    Mine function ``k8snvidia_join``, run on the control plane: creates a
    bootstrap token living ``ttl`` (pillar ``k8snvidia:cluster:join_token_ttl``,
    default 15m) and returns, per worker, the join data encrypted with that
    worker's public key (from the mine). Workers without a published key
    are listed under ``missing``. ``workers``: the minion ids to publish
    for (the orchestration passes cluster.view's workers); by default every
    pillar node that is not the control plane.

    CLI Example:

    .. code-block:: bash

        salt cluster-master mine.send k8snvidia_join mine_function=kubeadm.join_data
    """
    cfg = __pillar__.get("k8snvidia") or {}
    ttl = ttl or (cfg.get("cluster") or {}).get("join_token_ttl") or "15m"
    if workers is None:  # by hand: the pillar's workers (the orchestration passes cluster.view's)
        workers = [n for n, v in (cfg.get("nodes") or {}).items() if not __utils__["k8snvidia.is_control_plane"](v)]
    if not initialized():
        return {"error": "the control plane is not initialised"}
    res = _run(["token", "create", "--ttl", _duration(ttl), "--print-join-command"])
    match = JOIN_RE.search(res["stdout"] or "")
    if res["retcode"] != 0 or not match:
        return {"error": "kubeadm token create failed: " + _errors(res["stderr"])}
    data = {
        "endpoint": match.group("endpoint"),
        "token": match.group("token"),
        "ca_cert_hash": match.group("hash"),
        "expires": int(time.time()) + _seconds(ttl),
    }
    keys = __salt__["mine.get"](",".join(workers), MINE_PUBKEY, tgt_type="list") if workers else {}
    out = {"expires": data["expires"], "for": {}, "missing": []}
    for worker in workers:
        if keys.get(worker):
            out["for"][worker] = _encrypt(keys[worker], data, worker)
        else:
            out["missing"].append(worker)
    return out


def _mine_get(tgt, fun):
    """``mine.get`` through ``__salt__``; when this module was loaded into a
    loader that cannot reach the mine module (seen with Salt 3008's split
    loaders on a minion that had served kubeadm.* over the wire before a
    state run: KeyError 'mine.get'), through a loader of its own."""
    try:
        getter = __salt__["mine.get"]
    except KeyError:
        import salt.loader

        log.debug("kubeadm: mine.get is not in this loader; loading the mine module")
        getter = salt.loader.minion_mods(__opts__)["mine.get"]
    return getter(tgt, fun) or {}


def _join_secret(control_plane, check_expiry=True):
    """
    Read and decrypt this node's join data from the control plane's mine
    entry. For the ``kubeadm.joined`` state; raises with what to do when the
    data is missing or expired. Private (not a Salt function): it returns
    the token, and a public function's return lands in the job cache.
    """
    mine = _mine_get(control_plane, MINE_JOIN).get(control_plane)
    me = __grains__["id"]
    hint = (
        f"run `salt {control_plane} mine.send {MINE_JOIN} mine_function=kubeadm.join_data` "
        "(the `cluster` orchestration does this) after every node has published its key "
        f"(`salt '*' mine.send {MINE_PUBKEY} mine_function=kubeadm.pubkey`)"
    )
    if not mine or mine.get("error"):
        raise CommandExecutionError(
            f"no join data from {control_plane}: {(mine or {}).get('error', 'nothing in the mine')}; {hint}"
        )
    blob = (mine.get("for") or {}).get(me)
    if not blob:
        raise CommandExecutionError(f"the join data from {control_plane} has no entry for {me}; {hint}")
    data = _decrypt(blob, me)
    if check_expiry and data["expires"] <= time.time():
        raise CommandExecutionError(f"the join token from {control_plane} has expired; {hint}")
    return data


def join(control_plane, node_name, cri_socket, kubernetes_version):
    """
    Join this node to the cluster of ``control_plane`` with the join data from
    the mine. Returns ``{"result": bool, "comment": str}`` with no secret in it.

    CLI Example:

    .. code-block:: bash

        salt node-110 kubeadm.join cluster-master node-110 unix:///run/containerd/containerd.sock 1.34.2
    """
    try:
        data = _join_secret(control_plane)
    except CommandExecutionError as exc:
        return {"result": False, "comment": str(exc)}
    leftovers = [p for p in (f"{KUBE_DIR}/bootstrap-kubelet.conf", f"{KUBE_DIR}/pki/ca.crt") if os.path.exists(p)]
    if leftovers:
        # A join that failed half-way (e.g. at the TLS bootstrap) leaves these
        # behind and the next join's preflight refuses them: reset first, so a
        # re-run finishes what the failed one started.
        log.info("kubeadm: resetting a half-joined node (%s)", ", ".join(leftovers))
        res = _run(["reset", "-f"])
        if res["retcode"] != 0:
            return {"result": False, "comment": "kubeadm reset of a half-joined node failed:\n" + _errors(res["stderr"])}
    _write_secret(
        JOIN_CONFIG,
        join_config(node_name, cri_socket, kubernetes_version, data["endpoint"], data["token"], data["ca_cert_hash"]),
    )
    try:
        res = _run(["join", "--config", JOIN_CONFIG])
    finally:
        try:
            os.remove(JOIN_CONFIG)
        except OSError:
            pass
    if res["retcode"] != 0:
        return {"result": False, "comment": "kubeadm join failed:\n" + _errors(res["stderr"])}
    return {"result": True, "comment": f"joined the cluster at {data['endpoint']}"}
