{#- nvidia.driver: the NVIDIA driver by the map's driver:method --
    nvidia.driver.runfile (NVIDIA's .run, sha256-checked) or
    nvidia.driver.package (the OS's or NVIDIA's repository packages).
    Both run one state, nvidia_driver.installed: facts, one plan, then act
    (docs/driver.md). Undo: nvidia.driver.clean. -#}
{%- from "map.jinja" import k8s with context %}
{%- if k8s.driver.manage %}

include:
  - nvidia.driver.{{ k8s.driver.get("method", "runfile") }}
{%- endif %}
