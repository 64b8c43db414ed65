{#- br_netfilter and overlay (the map's `host:kernel_modules`): loaded now,
    and at every boot through a file in /etc/modules-load.d. -#}
{%- from "map.jinja" import k8s with context %}

k8snvidia-host-modules-load-file:
  file.managed:
    - name: {{ k8s.host.modules_load_file | json }}
    - contents: {{ (["# Managed by Salt (K8sNvidia): kernel modules Kubernetes needs"]
                    + k8s.host.kernel_modules) | json }}
    - mode: '0644'
    - makedirs: true

k8snvidia-host-modules-loaded:
  kmod.present:
    - name: k8snvidia-host-modules
    - mods: {{ k8s.host.kernel_modules | json }}
