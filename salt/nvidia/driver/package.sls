{#- The NVIDIA driver from repository packages (driver:method: package):
    the branch the OS's repositories ship (driver:package:branch, from the
    OS maps), checked against the node's GPUs before anything is installed;
    signed precompiled modules where the repository has them for the kernel
    that boots next (Ubuntu), DKMS packages otherwise, verified in `dkms
    status`; a dnf module stream enabled first on EL; on Debian the node's
    sources must enable the archive areas the packages are in
    (driver:package:components: contrib, non-free, non-free-firmware),
    refused before anything is installed otherwise. A node that shows no
    GPU is planned for the pillar's `gpus`. All names are map data
    (salt/parameters); this file has no OS branching. -#}
{%- from "map.jinja" import k8s with context %}
{%- from "lib/pkgrepo.jinja" import pkgrepo with context %}
{%- from "nvidia/driver/headers.jinja" import kernel_headers with context %}
{%- set driver = k8s.driver %}
{%- set package = driver.package %}
{%- set repo = package.get("repo") or {} %}
{%- set headers = driver.get("headers_package") if not k8s.kernel.manage else none %}

include:
  - kernel
  - nouveau
{%- if repo.get("baseurl") %}
{{ pkgrepo("k8snvidia-driver-package-repo", repo, k8s) }}
{%- endif %}
{%- if headers %}
{#- the kernel layer is off: headers of the running kernel, for DKMS #}
{{ kernel_headers(driver) }}
{%- endif %}

k8snvidia-driver:
  nvidia_driver.installed:
    - name: {{ ("branch " ~ package.branch) | json }}
    - method: package
    - branch: {{ package.branch | json }}
    - packages: {{ package.packages | json }}
    - precompiled: {{ package.precompiled | json }}
    - dkms_packages: {{ package.dkms_packages | json }}
    - dkms_module: {{ package.dkms_module | json }}
    - module_stream: {{ package.module_stream | json }}
    - components: {{ (package.get("components") or []) | json }}
    - gpus: {{ k8s.node.gpus | json }}
    - kernel_module_type: {{ driver.kernel_module_type | json }}
    - dkms: {{ driver.dkms | json }}
    - stop_services: {{ driver.get("stop_services", []) | json }}
    - boot_tool: {{ k8s.kernel.boot_tool | json }}
    - grub_config: {{ k8s.kernel.grub_config | json }}
    - require:
      - sls: kernel
      - sls: nouveau
{%- if repo.get("baseurl") %}
      - pkgrepo: k8snvidia-driver-package-repo
{%- endif %}
{%- if headers %}
      - pkg: k8snvidia-driver-kernel-headers
{%- endif %}
