{#- SELinux in the pillar's mode (permissive by default, as kubeadm's install
    guide asks), now (_states/selinux_mode.py: setenforce when getenforce
    says the other mode) and at boot in /etc/selinux/config, on
    the OS families whose map sets `host:selinux_managed`. For permissive
    only an `enforcing` config line changes: a node with SELinux disabled
    stays disabled. -#}
{%- from "map.jinja" import k8s with context %}
{%- if k8s.host.get("selinux_managed") %}
{%- set mode = k8s.host.selinux %}

k8snvidia-host-selinux-mode-now:
  selinux_mode.current:
    - name: {{ mode | json }}

k8snvidia-host-selinux-mode-at-boot:
  file.replace:
    - name: /etc/selinux/config
{%- if mode == "permissive" %}
    - pattern: '^SELINUX=enforcing$'
{%- else %}
    - pattern: {{ ("^SELINUX=(?!" ~ mode ~ "$).*$") | json }}
{%- endif %}
    - repl: {{ ("SELINUX=" ~ mode) | json }}
    - ignore_if_missing: true
{%- endif %}
