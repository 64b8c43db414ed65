{#- Undo nvidia.driver (either method): the .run driver removed with its
    own nvidia-uninstall (its DKMS registrations included; refused while
    the GPU is held unless k8snvidia:driver:force), or the package method's
    packages removed; then the download cache. Prerequisites (compilers,
    dkms) and repositories stay: other software may use them. A module
    still loaded after the removal marks a reboot pending. -#}
{%- from "map.jinja" import k8s with context %}
{%- set driver = k8s.driver %}
{%- set package = driver.get("package") or {} %}

k8snvidia-driver-clean-removed:
  nvidia_driver.removed:
    - method: {{ driver.get("method", "runfile") | json }}
    - force: {{ driver.force | json }}
{%- if driver.get("method") == "package" %}
    - branch: {{ package.branch | json }}
    - packages: {{ package.packages | json }}
    - dkms_packages: {{ package.dkms_packages | json }}
    - precompiled: {{ package.precompiled | json }}
{%- endif %}

k8snvidia-driver-clean-cache:
  file.absent:
    - name: {{ driver.cache_dir | json }}
    - require:
      - nvidia_driver: k8snvidia-driver-clean-removed
