{#- The kernel layer. RedHat family: the ELRepo kernel repository with its
    GPG key, kernel-lt and kernel-lt-devel; Debian family: a pillar-named
    kernel metapackage with its headers (e.g. Ubuntu's HWE kernel). Packages
    and version come from the map's `kernel` section (version null: the
    repository's newest at install time). The newest release of the package
    then becomes the boot default with the map's `kernel:boot_tool`
    (grub2-mkconfig + grub2-set-default on el7, grubby on el8+, update-grub
    on Debian); when it is not the running kernel a reboot is marked
    pending. Nothing reboots here. -#}
{%- from "map.jinja" import k8s with context %}
{%- set kernel = k8s.kernel %}
{%- if kernel.manage and kernel.package %}
{%- if kernel.repo.baseurl %}

k8snvidia-kernel-repo:
  pkgrepo.managed:
    - name: {{ kernel.repo.name | json }}
    - humanname: {{ kernel.repo.humanname | json }}
    - baseurl: {{ kernel.repo.baseurl | json }}
    - gpgcheck: {{ 1 if kernel.repo.gpgcheck else 0 }}
{%- if kernel.repo.gpgkey %}
    - gpgkey: {{ kernel.repo.gpgkey | json }}
{%- endif %}
    - enabled: 1
    - require_in:
      - pkg: k8snvidia-kernel-packages
{%- endif %}

k8snvidia-kernel-packages:
  pkg.installed:
    - pkgs:
{%- for name in [kernel.package, kernel.devel_package] if name %}
{%- if kernel.version %}
      - {{ name | json }}: {{ kernel.version | string | json }}
{%- else %}
      - {{ name | json }}
{%- endif %}
{%- endfor %}

k8snvidia-kernel-boot-default:
  bootkernel.default:
    - name: {{ kernel.package | json }}
    - boot_tool: {{ kernel.boot_tool | json }}
    - grub_config: {{ kernel.grub_config | json }}
    - require:
      - pkg: k8snvidia-kernel-packages
{%- else %}

{#- the layer is off: one state, so that `require: sls: kernel` still holds #}
k8snvidia-kernel-unmanaged:
  test.nop:
    - name: the kernel is not managed (k8snvidia:kernel:manage is false or no kernel package is set)
{%- endif %}
