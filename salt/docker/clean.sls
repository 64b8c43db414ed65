{#- Undo the docker layer: the docker and containerd services stopped and
    disabled, the packages and the repository (with its keyring) removed,
    the CRI drop-in removed, and the daemon.json keys this layer set taken
    out again (other keys stay). Images and containers under data-root are
    left on disk. -#}
{%- from "map.jinja" import k8s with context %}
{%- from "lib/pkgrepo.jinja" import pkgrepo_absent, json_without with context %}
{%- set docker = k8s.docker %}
{%- set owned = {"exec-opts": docker.exec_opts} %}
{%- if docker.data_root %}
{%- do owned.update({"data-root": docker.data_root}) %}
{%- endif %}
{%- if docker.registry_mirrors %}
{%- do owned.update({"registry-mirrors": docker.registry_mirrors}) %}
{%- endif %}

k8snvidia-docker-clean-service:
  service.dead:
    - name: docker
    - enable: false

k8snvidia-docker-clean-containerd-service:
  service.dead:
    - name: containerd
    - enable: false
    - require:
      - service: k8snvidia-docker-clean-service

k8snvidia-docker-clean-cri-dropin:
  file.absent:
    - name: {{ k8s.containerd.cri_dropin | json }}
{{ json_without("k8snvidia-docker-clean-daemon-json", docker.daemon_json, owned) }}

k8snvidia-docker-clean-packages:
  pkg.removed:
    - pkgs: {{ (docker.distribution_packages if docker.source == "distribution" else docker.packages) | json }}
    - require:
      - service: k8snvidia-docker-clean-containerd-service
{%- if docker.source != "distribution" %}
{{ pkgrepo_absent("k8snvidia-docker-clean-repo", docker.repo, k8s) }}
{%- endif %}
