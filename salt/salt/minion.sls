{#- Enrolment: salt-minion from Salt's package repository (the 3008 line,
    at k8snvidia:salt:version), pointed at the master (k8snvidia:salt:master,
    else the control-plane node's ip) with this node's id. The bootstrap
    path, before any minion exists, is salt-ssh with the roster that
    `salt-run cluster.roster` writes from the pillar's node list:

        salt-run cluster.roster
        salt-ssh '*' state.apply salt.minion

    Applied later by the minion itself, a config change restarts the minion
    without blocking (Salt's systemd module uses --no-block for it). -#}
{%- from "map.jinja" import k8s with context %}
{%- from "lib/pkgrepo.jinja" import pkgrepo with context %}
{%- set cfg = k8s.salt %}
{%- set control = k8s.derived.control_plane %}
{%- set master = cfg.master or (k8s.nodes[control[0]].ip if control else none) %}
{%- set pkgs = [] %}
{%- for name in cfg.packages %}
{%- do pkgs.append({name: cfg.version}) %}
{%- endfor %}
{{ pkgrepo("k8snvidia-salt-minion-repo", cfg.repo, k8s) }}

k8snvidia-salt-minion-packages:
  pkg.installed:
    - pkgs: {{ pkgs | json }}
    - require:
      - pkgrepo: k8snvidia-salt-minion-repo

k8snvidia-salt-minion-config:
  file.serialize:
    - name: {{ cfg.minion_config | json }}
    - dataset: {{ {"master": master, "id": k8s.node.id} | json }}
    - serializer: yaml
    - makedirs: true
    - mode: '0644'
    - require:
      - pkg: k8snvidia-salt-minion-packages

k8snvidia-salt-minion-service:
  service.running:
    - name: salt-minion
    - enable: true
    - watch:
      - pkg: k8snvidia-salt-minion-packages
      - file: k8snvidia-salt-minion-config
