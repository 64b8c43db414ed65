"""nvidia-ctk runtime configure (docker daemon.json, containerd in place /
drop-in by toolkit version), cdi, and the small runtime CLIs."""

import json

from k8stwin import tomlw

from .conftest import GTX


def test_docker_daemon_json_format_and_merge(twin):
    n = twin.add("node-110", gpus=[GTX])
    n.write("/etc/docker/daemon.json", '{"registry-mirrors": ["https://m.example"], "exec-opts": ["native.cgroupdriver=systemd"]}')
    rc, out, err = n.run("nvidia-ctk", "runtime", "configure", "--runtime=docker", "--set-as-default")
    assert rc == 0, err
    text = n.read("/etc/docker/daemon.json")
    assert not text.endswith("\n")
    data = json.loads(text)
    assert text == json.dumps(data, indent=4, sort_keys=True)
    assert data["runtimes"]["nvidia"] == {"args": [], "path": "nvidia-container-runtime"}
    assert data["default-runtime"] == "nvidia" and data["registry-mirrors"] == ["https://m.example"]
    assert 'level=info msg="Loading config from /etc/docker/daemon.json"' in err
    assert 'msg="Wrote updated config to /etc/docker/daemon.json"' in err
    assert 'msg="It is recommended that docker daemon be restarted."' in err


def test_docker_empty_config_and_dropin_refused(twin):
    n = twin.add("node-110")
    rc, _, err = n.run("nvidia-ctk", "runtime", "configure", "--runtime=docker")
    assert rc == 0 and "Config file does not exist; using empty config" in err
    assert "default-runtime" not in json.loads(n.read("/etc/docker/daemon.json"))
    n.edit(lambda st: st["packages"]["nvidia-container-toolkit"].update(version="1.18.1"))
    rc, _, err = n.run("nvidia-ctk", "runtime", "configure", "--runtime=docker", "--drop-in-config=/x.json")
    assert rc == 1 and "runtime docker does not support drop-in configs" in err


def test_unknown_runtime_and_flag(twin):
    n = twin.add("node-110")
    rc, _, err = n.run("nvidia-ctk", "runtime", "configure", "--runtime=podman")
    assert rc == 1 and "unrecognized runtime 'podman'" in err
    rc, _, err = n.run("nvidia-ctk", "runtime", "configure", "--bogus")
    assert rc == 1 and "flag provided but not defined: -bogus" in err


def test_containerd_dropin_by_version(twin):
    n = twin.add("node-110", gpus=[GTX])
    # >= 1.19: conf.d
    n.edit(lambda st: st["packages"]["nvidia-container-toolkit"].update(version="1.19.0"))
    rc, _, err = n.run("nvidia-ctk", "runtime", "configure", "--runtime=containerd", "--set-as-default")
    assert rc == 0, err
    main = tomlw.loads(n.read("/etc/containerd/config.toml"))
    assert main["imports"] == ["/etc/containerd/conf.d/*.toml"] and main["version"] == 2
    drop = tomlw.loads(n.read("/etc/containerd/conf.d/99-nvidia.toml"))
    ctr = drop["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]
    assert ctr["default_runtime_name"] == "nvidia"
    assert ctr["runtimes"]["nvidia"]["options"]["BinaryName"] == "/usr/bin/nvidia-container-runtime"
    assert ctr["runtimes"]["nvidia"]["options"]["SystemdCgroup"] is True  # runc's options copied
    assert "Using config version 2" in err
    # the effective config (main + imports) has the nvidia runtime as default
    facts = n.state()["kube_runtime"]["containerd"]
    assert facts["default"] == "nvidia" and "nvidia" in facts["runtimes"]
    # running twice keeps one import
    n.run("nvidia-ctk", "runtime", "configure", "--runtime=containerd", "--set-as-default")
    assert tomlw.loads(n.read("/etc/containerd/config.toml"))["imports"] == ["/etc/containerd/conf.d/*.toml"]


def test_containerd_1_18_config_d_and_1_17_in_place(twin):
    n = twin.add("node-110")
    n.edit(lambda st: st["packages"]["nvidia-container-toolkit"].update(version="1.18.0"))
    assert n.run("nvidia-ctk", "runtime", "configure", "--runtime=containerd")[0] == 0
    assert n.read("/etc/containerd/config.d/99-nvidia.toml") is not None
    m = twin.add("node-109")
    m.edit(lambda st: st["packages"]["nvidia-container-toolkit"].update(version="1.17.8"))
    rc, _, err = m.run("nvidia-ctk", "runtime", "configure", "--runtime=containerd", "--drop-in-config=/x.toml")
    assert rc == 1 and "flag provided but not defined: -drop-in-config" in err
    assert m.run("nvidia-ctk", "runtime", "configure", "--runtime=containerd")[0] == 0
    cfg = tomlw.loads(m.read("/etc/containerd/config.toml"))
    assert "nvidia" in cfg["plugins"]["io.containerd.grpc.v1.cri"]["containerd"]["runtimes"]
    assert "imports" not in cfg


def test_containerd_v3_plugin_and_empty_config(twin):
    n = twin.add("node-110")
    n.edit(lambda st: st["packages"]["containerd.io"].update(version="2.1.4"))
    rc, out, _ = n.run("containerd", "config", "default")
    n.write("/etc/containerd/config.toml", out)
    n.edit(lambda st: st["packages"]["nvidia-container-toolkit"].update(version="1.18.0"))
    assert n.run("nvidia-ctk", "runtime", "configure", "--runtime=containerd", "--set-as-default")[0] == 0
    drop = tomlw.loads(n.read("/etc/containerd/config.d/99-nvidia.toml"))
    assert drop["version"] == 3 and "io.containerd.cri.v1.runtime" in drop["plugins"]
    e = twin.add("node-109")
    (e.root / "etc/containerd/config.toml").unlink()
    rc, _, err = e.run("nvidia-ctk", "runtime", "configure", "--runtime=containerd", "--dry-run")
    assert rc == 0 and "Config file does not exist; using empty config" in err


def test_cdi_generate_needs_driver(twin):
    n = twin.add("node-110", gpus=[GTX])
    rc, _, err = n.run("nvidia-ctk", "cdi", "generate", "--output=/etc/cdi/nvidia.yaml")
    assert rc == 0, err
    assert "nvidia.com/gpu" in n.read("/etc/cdi/nvidia.yaml")
    n.edit(lambda st: st.update(modules=["overlay"]))
    rc, _, err = n.run("nvidia-ctk", "cdi", "generate")
    assert rc == 1 and "ERROR_LIBRARY_NOT_FOUND" in err
    assert n.run("nvidia-ctk", "--version")[1].startswith("NVIDIA Container Toolkit CLI version 1.17.8")


def test_containerd_config_default_shape(twin):
    n = twin.add("node-110")
    rc, out, _ = n.run("containerd", "config", "default")
    assert rc == 0 and "SystemdCgroup = false" in out and 'sandbox_image = "registry.k8s.io/pause:3.8"' in out
    assert tomlw.loads(out)["version"] == 2
    rc, out, _ = n.run("containerd", "--version")
    assert out.startswith("containerd containerd.io 1.7.27 ")


def test_docker_info_runtimes(twin):
    n = twin.add("node-110")
    n.edit(lambda st: st["services"].update(docker={"enabled": True, "active": True}))
    n.run("nvidia-ctk", "runtime", "configure", "--runtime=docker", "--set-as-default")
    rc, out, _ = n.run("docker", "info", "--format", "{{.DefaultRuntime}}")
    assert (rc, out) == (0, "nvidia\n")
    rc, out, _ = n.run("docker", "info", "-f", "{{json .Runtimes}}")
    assert json.loads(out)["nvidia"] == {"path": "nvidia-container-runtime"}
    n.edit(lambda st: st["services"]["docker"].update(active=False))
    rc, _, err = n.run("docker", "info", "--format", "{{.DefaultRuntime}}")
    assert rc == 1 and "Cannot connect to the Docker daemon" in err


def test_crictl_info(twin):
    n = twin.add("node-110")
    rc, out, _ = n.run("crictl", "info")
    assert rc == 0 and json.loads(out)["status"]["conditions"][0]["type"] == "RuntimeReady"
    n.edit(lambda st: st["services"]["containerd"].update(active=False))
    rc, _, err = n.run("crictl", "info")
    assert rc == 1 and "validate service connection" in err


def test_containerd_version_choice_as_real_ctk(twin):
    # pkg/config/engine/containerd parseVersion: a non-empty config without
    # `version` is version 1 (edited in place, plugin "cri"); with
    # --config-source=command the running containerd's dump decides (3 on 2.x)
    n = twin.add("node-110")
    n.edit(lambda st: st["packages"]["nvidia-container-toolkit"].update(version="1.20.0"))
    n.write("/etc/containerd/config.toml", 'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n')
    rc, _, err = n.run("nvidia-ctk", "runtime", "configure", "--runtime=containerd")
    assert rc == 0 and "Using config version 1" in err, err
    main = tomlw.loads(n.read("/etc/containerd/config.toml"))
    assert main["plugins"]["cri"]["containerd"]["runtimes"]["nvidia"]["options"]["BinaryName"]
    assert n.read("/etc/containerd/conf.d/99-nvidia.toml") is None
    n.write("/etc/containerd/config.toml", 'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n')
    n.edit(lambda st: st["packages"]["containerd.io"].update(version="2.1.5"))
    rc, _, err = n.run("nvidia-ctk", "runtime", "configure", "--runtime=containerd", "--config-source=command")
    assert rc == 0 and "Using config version 3" in err, err
    drop = tomlw.loads(n.read("/etc/containerd/conf.d/99-nvidia.toml"))
    assert drop["version"] == 3 and "io.containerd.cri.v1.runtime" in drop["plugins"]
