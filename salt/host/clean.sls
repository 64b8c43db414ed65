{#- Reverses the host layer where that is sensible: fstab's swap lines come
    back (and swap goes on), the modules-load and sysctl files go (the values
    fall back to the OS defaults at the next boot), the opened ports are
    closed. SELinux and the OS repositories stay as they are: going back to
    enforcing or to dead mirrors is not something to do unasked. -#}
{%- from "map.jinja" import k8s with context %}
{%- set fw = k8s.host.firewall %}

k8snvidia-host-clean-swap-in-fstab:
  file.replace:
    - name: /etc/fstab
    - pattern: '^#k8snvidia# (.*)$'
    - repl: '\1'
    - ignore_if_missing: true

k8snvidia-host-clean-swap-on-now:
  cmd.run:
    - name: swapon -a
    - onchanges:
      - file: k8snvidia-host-clean-swap-in-fstab

k8snvidia-host-clean-modules-load-file:
  file.absent:
    - name: {{ k8s.host.modules_load_file | json }}

k8snvidia-host-clean-sysctl-file:
  file.absent:
    - name: {{ k8s.host.sysctl_file | json }}
{%- if fw.manage and not fw.disable %}
{%- for port in k8s.derived.ports %}

{{ "k8snvidia-host-clean-firewall-port-" ~ port | replace("/", "-") }}:
  firewall_port.closed:
    - name: {{ port | json }}
    - backend: {{ fw.backend | json }}
{%- endfor %}
{%- if fw.backend == "firewalld" and k8s.derived.ports %}

k8snvidia-host-clean-firewall-reload:
  cmd.run:
    - name: firewall-cmd --reload
    - onchanges:
{%- for port in k8s.derived.ports %}
      - firewall_port: {{ "k8snvidia-host-clean-firewall-port-" ~ port | replace("/", "-") }}
{%- endfor %}
{%- endif %}
{%- endif %}
