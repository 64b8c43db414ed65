{#- Every node gets the base layers in this order; nodes with GPUs (the map's
    k8s.node.gpus: the pillar's `gpus` of this node, or the GPUs its nvidia
    grain saw) also get the NVIDIA driver, after nouveau is blacklisted and
    before the container toolkit. -#}
{%- from "map.jinja" import k8s with context %}
base:
  '*':
    - host
    - kernel
    - nouveau
{%- if k8s.node.gpus %}
    - nvidia.driver
{%- endif %}
    - docker
    - nvidia.container_toolkit
    - kubernetes
