{#- The firewall: the ports of this node's role and of the CNI
    (k8s.derived.ports) opened in the permanent configuration of firewalld
    (then reloaded) or in ufw's rules, by the map's `host:firewall:backend`
    (_states/firewall_port.py).
    A firewall that is not running is left so (firewalld: nothing to open;
    ufw: the rules are added and apply when it is enabled); a node without
    the firewall's tool (Debian 12 has no ufw by default) is left alone.
    `host:firewall:disable: true` is the seed's route instead: stop and
    disable the firewall. -#}
{%- from "map.jinja" import k8s with context %}
{%- set fw = k8s.host.firewall %}
{%- if fw.disable %}
{%- if fw.backend == "firewalld" %}

k8snvidia-host-firewall-disabled:
  service.dead:
    - name: firewalld
    - enable: false
{%- else %}

k8snvidia-host-firewall-disabled:
  cmd.run:
    - name: ufw disable
    - onlyif: {{ "ufw status | grep -qx 'Status: active'" | json }}
{%- endif %}
{%- elif fw.manage %}
{%- for port in k8s.derived.ports %}

{{ "k8snvidia-host-firewall-port-" ~ port | replace("/", "-") }}:
  firewall_port.open:
    - name: {{ port | json }}
    - backend: {{ fw.backend | json }}
{%- endfor %}
{%- if fw.backend == "firewalld" and k8s.derived.ports %}

k8snvidia-host-firewall-reload:
  cmd.run:
    - name: firewall-cmd --reload
    - onchanges:
{%- for port in k8s.derived.ports %}
      - firewall_port: {{ "k8snvidia-host-firewall-port-" ~ port | replace("/", "-") }}
{%- endfor %}
{%- endif %}
{%- endif %}
