{#- Reverses the kernel layer where that is safe: the ELRepo repository goes.
    The installed kernels stay (one of them may be running or be the boot
    default, and the NVIDIA driver is built for it). -#}
{%- from "map.jinja" import k8s with context %}
{%- if k8s.kernel.repo.baseurl and k8s.kernel.repo.name %}

k8snvidia-kernel-clean-repo:
  pkgrepo.absent:
    - name: {{ k8s.kernel.repo.name | json }}
{%- endif %}
