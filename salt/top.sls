{#- Every node gets the layers of salt/parameters/layers.yaml in its order;
    the GPU layer (the NVIDIA driver, after nouveau is blacklisted and before
    the container toolkit) only nodes with GPUs (the map's k8s.node.gpus: the
    pillar's `gpus` of this node, or the GPUs its nvidia grain saw). -#}
{%- from "map.jinja" import k8s with context %}
{%- import_yaml "parameters/layers.yaml" as layers %}
base:
  '*':
{%- for layer in layers.layers if k8s.node.gpus or not layer.get("gpu") %}
    - {{ layer.sls }}
{%- endfor %}
