"""The cluster view through the real salt-run of this repo's master config:
`salt-run cluster.view` and the orchestration rendered from it
(`state.orchestrate_show_sls cluster`), with grains in the master's real
minion data cache. No minion runs: the cache is what the master knows of
them."""

import json
import subprocess

from tests.conftest import VENV_BIN, salt_cmd

CACHED = {  # cluster-master as its minion last reported: a GPU the pillar does not list
    "id": "cluster-master", "os_family": "RedHat", "osfinger": "CentOS Linux-7", "os": "CentOS",
    "osmajorrelease": 7, "nvidia": {"gpu_count": 1, "gpus": [{"name": "NVIDIA GeForce GTX 1080 Ti"}]},
}


def _cache_grains(repo, minion_id, grains):
    """Store ``grains`` in the master's minion data cache (Salt's own cache
    API, the localfs driver the master uses) and accept the minion's key,
    as when its minion had connected."""
    code = ("import json, sys, salt.cache, salt.config\n"
            "opts = salt.config.master_config('etc/salt/master')\n"
            "salt.cache.factory(opts).store('grains', sys.argv[1], json.loads(sys.argv[2]))\n")
    subprocess.run([str(VENV_BIN / "python"), "-c", code, minion_id, json.dumps(grains)], cwd=repo, check=True)
    keys = repo / ".run/salt/etc/salt/pki/master/minions"
    keys.mkdir(parents=True, exist_ok=True)
    (keys / minion_id).write_text("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n")


def _json(proc):
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def _predict_targets(repo):
    out = _json(salt_cmd("salt-run", "--out=json", "--log-level=quiet", "state.orchestrate_show_sls", "cluster",
                         "test=True", cwd=repo))
    states = next(iter(out.values()))
    return {sid: next(arg["tgt"] for arg in body["salt"] if isinstance(arg, dict) and "tgt" in arg)
            for sid, body in states.items() if "predict" in sid}


def test_the_view_and_the_orchestration_agree_with_the_cached_grains(repo_copy):
    view = _json(salt_cmd("salt-run", "--out=json", "--log-level=quiet", "cluster.view", cwd=repo_copy))
    assert view["control_plane"] == ["cluster-master"]
    assert "cluster-master" not in view["gpu_nodes"] and view["gpu_nodes"]
    before = _predict_targets(repo_copy)
    assert before["k8snvidia-orchestrate-predict-driver"] == ",".join(view["gpu_nodes"])

    # the control plane's minion reports a GPU: the highstate's top.sls gives
    # it the driver (the map's node.gpus), so the orchestration does too
    _cache_grains(repo_copy, "cluster-master", CACHED)
    view = _json(salt_cmd("salt-run", "--out=json", "--log-level=quiet", "cluster.view", cwd=repo_copy))
    node = view["nodes"]["cluster-master"]
    assert node["grains"] == "cached" and node["gpu"] is True and node["gpus"] == ["NVIDIA GeForce GTX 1080 Ti"]
    after = _predict_targets(repo_copy)
    assert after["k8snvidia-orchestrate-predict-driver"].split(",")[0] == "cluster-master"
    assert after["k8snvidia-orchestrate-predict-prepare"] == before["k8snvidia-orchestrate-predict-prepare"]
