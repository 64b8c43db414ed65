{#- The sysctl values Kubernetes and the CNIs need (the map's `host:sysctl`),
    set now and kept in `host:sysctl_file`. The net.bridge ones exist only
    once br_netfilter is loaded: they wait for host.modules; the others do
    not, so a module that cannot be loaded holds back only them. -#}
{%- from "map.jinja" import k8s with context %}

include:
  - host.modules
{%- for key, value in k8s.host.sysctl | dictsort %}

k8snvidia-host-sysctl-{{ key }}:
  sysctl.present:
    - name: {{ key | json }}
    - value: {{ value | json }}
    - config: {{ k8s.host.sysctl_file | json }}
{%- if key.startswith("net.bridge.") %}
    - require:
      - sls: host.modules
{%- endif %}
{%- endfor %}
