{#- The NVIDIA driver from NVIDIA's .run installer: built with DKMS for the
    kernel that boots next, the kernel module type chosen for the node's
    GPUs (auto: Pascal and older get the proprietary module), the download
    checked against the pillar's sha256, DKMS verified afterwards.

    Order: the `kernel` layer (kernel and its headers, boot default) and the
    `nouveau` layer (blacklist, initramfs) come first; the orchestration
    reboots the node between those layers and this one. Applied in one run
    on a node where nouveau is still loaded, the install refuses with what
    to do, before anything of the driver is installed. -#}
{%- from "map.jinja" import k8s with context %}
{%- from "lib/pkgrepo.jinja" import pkgrepo with context %}
{%- from "nvidia/driver/headers.jinja" import kernel_headers with context %}
{%- set driver = k8s.driver %}
{%- set extra = driver.get("extra_repo") or {} %}
{%- set headers = driver.get("headers_package") if not k8s.kernel.manage else none %}

include:
  - kernel
  - nouveau
{%- if extra.get("baseurl") %}
{#- the repository that has dkms where the OS's own has not (EPEL on RedHat) #}
{{ pkgrepo("k8snvidia-driver-extra-repo", extra, k8s) }}
{%- endif %}

k8snvidia-driver-prerequisites:
  pkg.installed:
    - pkgs: {{ driver.prerequisites | json }}
    - require:
      - sls: kernel
      - sls: nouveau
{%- if extra.get("baseurl") %}
      - pkgrepo: k8snvidia-driver-extra-repo
{%- endif %}
{%- if headers %}
{#- the kernel layer is off: headers of the running kernel (it is the one that boots) #}
{{ kernel_headers(driver) }}
{%- endif %}

k8snvidia-driver:
  nvidia_driver.installed:
    - name: {{ driver.version | string | json }}
    - method: runfile
    - url: {{ driver.url | json }}
    - sha256: {{ driver.sha256 | string | lower | json }}
    - kernel_module_type: {{ driver.kernel_module_type | json }}
    - dkms: {{ driver.dkms | json }}
    - force: {{ driver.force | json }}
    - cache_dir: {{ driver.cache_dir | json }}
    - stop_services: {{ driver.get("stop_services", []) | json }}
    - boot_tool: {{ k8s.kernel.boot_tool | json }}
    - grub_config: {{ k8s.kernel.grub_config | json }}
    - require:
      - pkg: k8snvidia-driver-prerequisites
      - sls: kernel
      - sls: nouveau
{%- if headers %}
      - pkg: k8snvidia-driver-kernel-headers
{%- endif %}
