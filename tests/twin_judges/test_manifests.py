"""The twin's copy of k8s-device-plugin v0.20's config loading
(twin/k8stwin/kube.py plugin_config): it accepts the config file our states
render (tests/judges/test_manifests.py renders it) with the replicas and
resource name the real plugin advertises, and refuses what the real plugin
refuses with its message."""

import pytest

from tests.judges import test_manifests as product
from twin.k8stwin import kube


@pytest.mark.parametrize("replicas,want", [(None, 1), (1, 1), (4, 4)])
def test_twin_device_plugin_accepts_what_we_render(tmp_path_factory, replicas, want):
    docs = product.manifests(tmp_path_factory, "modern", replicas)
    cm = next(d for d in docs["dp.yaml"] if d["kind"] == "ConfigMap")
    assert kube.plugin_config(cm["data"]["config.yaml"]) == (want, "nvidia.com/gpu")


@pytest.mark.parametrize("text,message", [
    ("version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 1\n",
     "number of replicas must be >= 2"),
    ("version: v1\nsharing:\n  timeSlicing:\n    resources: []\n", "no resources specified"),
    ("version: v1\nsharing:\n  timeSlicing:\n    resources:\n    - name: nvidia.com/gpu\n", "no replicas specified"),
    ("version: v2\n", "unknown version: v2"),
    ("version: v1\nsharing:\n  mps:\n    resources:\n    - name: nvidia.com/gpu\n      replicas: 2\n",
     "using MPS requires --mps-root to be specified"),
])
def test_twin_plugin_refuses_like_the_real_one(text, message):
    with pytest.raises(kube.PluginConfigError) as exc:
        kube.plugin_config(text)
    assert str(exc.value).endswith(message)
