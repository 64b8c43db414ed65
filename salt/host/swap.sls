{#- Swap off now and at boot: kubelet refuses to start with swap on unless it
    is configured for it. fstab's swap lines are commented out with a marker
    (`#k8snvidia# `) that `host.clean` removes again. -#}
{%- from "map.jinja" import k8s with context %}
{%- if k8s.host.swap_off %}

k8snvidia-host-swap-off-now:
  swap.off:
    - name: all swap devices

k8snvidia-host-swap-off-in-fstab:
  file.replace:
    - name: /etc/fstab
    - pattern: '^([^#\s]\S*\s+\S+\s+swap\s.*)$'
    - repl: '#k8snvidia# \1'
    - ignore_if_missing: true
{%- endif %}
