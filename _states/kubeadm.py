"""
States for kubeadm init and join (see the ``kubeadm`` execution module).

.. code-block:: yaml

    k8snvidia-kubernetes-control-plane:
      kubeadm.initialized:
        - name: cluster-master
        - advertise_address: 192.168.0.113
        - kubernetes_version: 1.34.2
        - pod_cidr: 10.244.0.0/16
        - service_cidr: 10.96.0.0/12
        - cri_socket: unix:///run/containerd/containerd.sock

    k8snvidia-kubernetes-join:
      kubeadm.joined:
        - name: node-110
        - control_plane: cluster-master
        - cri_socket: unix:///run/containerd/containerd.sock
        - kubernetes_version: 1.34.2
"""


__virtualname__ = "kubeadm"


def __virtual__():
    if "kubeadm.initialized" in __salt__:
        return __virtualname__
    return (False, "the kubeadm execution module is not loaded (saltutil.sync_modules)")


def _predict_or_act(ret, change, would, act):
    """Under test=True say what ``act`` would change; else run it (it
    returns {"result", "comment"}) and report ``change`` when it succeeded."""
    if __opts__["test"]:
        ret.update(result=None, changes=change, comment=would)
        return ret
    res = act()
    ret.update(result=res["result"], comment=res["comment"], changes=change if res["result"] else {})
    return ret


def initialized(
    name,
    advertise_address,
    kubernetes_version,
    pod_cidr,
    service_cidr,
    cri_socket,
    control_plane_endpoint=None,
    image_repository="registry.k8s.io",
    dns_domain="cluster.local",
    token_ttl="15m",
):
    """
    Make this node the cluster's control plane with ``kubeadm init``; no-op
    when it already is one (``kubeadm.status``: the files of a finished init
    and an API server answering). A finished control plane whose API server
    does not answer fails with what to check; it is never reset. A half-done
    init (or a manual ``kubeadm reset``) is initialised again.

    name
        The node name registered in Kubernetes.
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    now = __salt__["kubeadm.status"]()
    if now["state"] == "ready":
        ret["comment"] = f"{name} is already an initialised control plane"
        return ret
    if now["state"] == "down":
        ret["result"] = False
        ret["comment"] = (
            f"{name}: {now['detail']}; kubeadm init is not run again on a finished control plane: check "
            "`systemctl status kubelet` and `crictl ps` there (or `kubeadm reset -f` to start it over)"
        )
        return ret
    config = __salt__["kubeadm.init_config"](
        name,
        advertise_address,
        kubernetes_version,
        pod_cidr,
        service_cidr,
        cri_socket,
        control_plane_endpoint=control_plane_endpoint,
        image_repository=image_repository,
        dns_domain=dns_domain,
        token_ttl=token_ttl,
    )
    return _predict_or_act(
        ret,
        {"kubeadm init": f"Kubernetes v{kubernetes_version} control plane at {advertise_address}:6443"},
        f"{name} would be initialised as the control plane (kubeadm init)",
        lambda: __salt__["kubeadm.init"](config),
    )


def joined(name, control_plane, cri_socket, kubernetes_version):
    """
    Join this node to the cluster whose control plane is ``control_plane``,
    with join data that node published (encrypted for this node) in the mine;
    no-op when already joined to that cluster (its CA against the control
    plane's); a node joined to another cluster is refused with what to do.

    name
        The node name registered in Kubernetes.
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    check = __salt__["kubeadm.cluster_check"](control_plane)
    if check["state"] == "other":
        ret["result"] = False
        ret["comment"] = (
            f"{name} is {check['detail']}: it is not joined here. To move it to this cluster run "
            f"`kubeadm reset -f` on {name} (it leaves the other cluster), then run the orchestration again"
        )
        return ret
    if check["state"] in ("member", "unknown"):
        ret["comment"] = f"{name} has already joined the cluster" + (
            f" ({check['detail']})" if check["state"] == "unknown" else ""
        )
        return ret
    return _predict_or_act(
        ret,
        {"kubeadm join": f"joins the cluster of {control_plane}"},
        f"{name} would join the cluster of {control_plane} (kubeadm join)",
        lambda: __salt__["kubeadm.join"](control_plane, name, cri_socket, kubernetes_version),
    )
