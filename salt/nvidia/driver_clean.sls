{#- Undo nvidia.driver: the .run driver removed with its own
    nvidia-uninstall (its DKMS registrations included; refused while
    processes use the GPUs unless k8snvidia:driver:force), then the download
    cache. The prerequisites (compilers, dkms) and the extra repository
    stay: other software may use them. A module still loaded after the
    removal marks a reboot pending. -#}
{%- from "map.jinja" import k8s with context %}
{%- set driver = k8s.driver %}

k8snvidia-driver-clean-removed:
  nvidia_driver.removed:
    - force: {{ driver.force | json }}

k8snvidia-driver-clean-cache:
  file.absent:
    - name: {{ driver.cache_dir | json }}
    - require:
      - nvidia_driver: k8snvidia-driver-clean-removed
