"""_modules/kubeadm.py against the twin's kubeadm and kubectl: "initialized"
comes from the cluster's state (files of a finished init + the API server
answering), so a manual ``kubeadm reset`` is seen, a half-done init is reset
and done again, and a finished control plane that is down is never reset."""

import os

import pytest

from tests.conftest import load_source, with_kube

from .conftest import INIT_CONFIG


@pytest.fixture
def master(twin):
    return twin.add("cluster-master", ip="192.168.0.113")


@pytest.fixture
def mod(master, monkeypatch):
    """The execution module on the master: its paths under the node's root,
    its commands run by the twin's tools."""
    mod = load_source("_modules/kubeadm.py", "kubeadm_on_twin")
    root = str(master.root)
    for const in ("KUBE_DIR", "ADMIN_CONF", "KUBELET_CONF", "INIT_CONFIG", "JOIN_CONFIG", "CA_CERT", "MANIFESTS",
                  "KUBELET_CLIENT"):
        monkeypatch.setattr(mod, const, root + getattr(mod, const))

    def run_all(args, python_shell=False, stdin=None, **kwargs):
        tool = os.path.basename(args[0])
        rc, out, err = master.run(tool, *[a.replace(root, "") for a in args[1:]], stdin=stdin or "")
        return {"retcode": rc, "stdout": out, "stderr": err}

    mod.__salt__ = {"cmd.run_all": run_all}
    mod.__context__ = {}
    kube = with_kube(mod)
    for m in (mod, kube):
        monkeypatch.setattr(m.salt.utils.path, "which", lambda name: f"/usr/bin/{name}")
    return mod


CONFIG = INIT_CONFIG.format(ip="192.168.0.113", name="cluster-master")


def test_manual_reset_is_seen_and_the_rerun_initialises_again(mod, master):
    assert mod.status()["state"] == "absent" and mod.initialized() is False
    assert mod.init(CONFIG)["result"] is True
    assert mod.status()["state"] == "ready" and mod.initialized() is True
    rc, out, _ = master.run("kubeadm", "reset", "-f")
    assert rc == 0 and "Deleting files" in out
    # the reset removed admin.conf, the manifests, the pki and kubelet.conf
    assert mod.status()["state"] == "absent" and mod.initialized() is False
    res = mod.init(CONFIG)
    assert res["result"] is True, res
    assert mod.initialized() is True


def test_a_half_done_init_is_reset_and_done_again(mod, master):
    assert mod.init(CONFIG)["result"] is True
    # what an init stopped before kubelet-finalize leaves: every file but the
    # kubelet's rotated certificate, and no API server
    os.remove(master.path(mod.KUBELET_CLIENT.replace(str(master.root), "")))
    master.edit(lambda st: st["services"]["kubelet"].update(active=False))
    now = mod.status()
    assert now["state"] == "partial" and "kubelet.conf not finalized" in now["detail"], now
    res = mod.init(CONFIG)
    assert res["result"] is True, res
    assert mod.initialized() is True


def test_a_finished_control_plane_that_is_down_is_never_reset(mod, master):
    assert mod.init(CONFIG)["result"] is True
    master.edit(lambda st: st["services"]["kubelet"].update(active=False))  # the API server's pods stop
    now = mod.status()
    assert now["state"] == "down" and "was refused" in now["detail"], now
    res = mod.init(CONFIG)
    assert res["result"] is False and "not initialised again" in res["comment"]
    assert master.read("/etc/kubernetes/admin.conf") is not None  # nothing was reset
    st = load_source("_states/kubeadm.py", "kubeadm_state_on_twin")
    st.__opts__ = {"test": False}
    st.__salt__ = {"kubeadm.status": mod.status, "kubeadm.init_config": lambda *a, **k: CONFIG,
                   "kubeadm.init": mod.init}
    ret = st.initialized("cluster-master", "192.168.0.113", "1.34.2", "10.244.0.0/16", "10.96.0.0/12", "sock")
    assert ret["result"] is False and "systemctl status kubelet" in ret["comment"] and ret["changes"] == {}


def test_kubectl_get_raw_readyz(master, mod):
    assert mod.init(CONFIG)["result"] is True
    rc, out, _ = master.run("kubectl", "--kubeconfig=/etc/kubernetes/admin.conf", "get", "--raw", "/readyz")
    assert (rc, out) == (0, "ok")
    rc, _, err = master.run("kubectl", "--kubeconfig=/etc/kubernetes/admin.conf", "get", "--raw", "/nope")
    assert rc == 1 and "NotFound" in err
    rc, _, err = master.run("kubectl", "--kubeconfig=/etc/kubernetes/admin.conf", "get", "nodes", "--raw", "/readyz")
    assert rc == 1 and "arguments may not be passed when --raw is specified" in err


def test_reset_dry_run_and_tmp_dir(mod, master):
    assert mod.init(CONFIG)["result"] is True
    master.write("/etc/kubernetes/tmp/kubeadm-backup-etcd/x", "x")
    master.write("/etc/kubernetes/k8snvidia-other", "kept")
    rc, out, _ = master.run("kubeadm", "reset", "-f", "--dry-run")
    assert rc == 0 and "Would delete files" in out and mod.initialized() is True
    rc, out, _ = master.run("kubeadm", "reset", "-f", "--cleanup-tmp-dir")
    assert rc == 0 and "/etc/kubernetes/tmp" in out
    assert master.read("/etc/kubernetes/tmp/kubeadm-backup-etcd/x") is None
    assert master.read("/etc/kubernetes/k8snvidia-other") == "kept"  # reset removes only kubeadm's files
