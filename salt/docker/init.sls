{#- Docker CE: its repository (a mirror by pillar: the seed used
    mirrors.aliyun.com/docker-ce), its packages (containerd.io among them),
    the docker service, the users of k8snvidia:docker:users in the docker
    group, and docker's own keys in daemon.json: data-root (replaces the
    seed's move-and-symlink of /var/lib/docker), registry-mirrors and the
    systemd cgroup driver. daemon.json is merged: keys this state does not
    set are kept. The containerd service is in docker.containerd. -#}
{%- from "map.jinja" import k8s with context %}
{%- from "lib/pkgrepo.jinja" import pkgrepo with context %}
{%- set docker = k8s.docker %}
{%- if docker.manage %}
{%- set daemon = {"exec-opts": docker.exec_opts} %}
{%- if docker.data_root %}
{%- do daemon.update({"data-root": docker.data_root}) %}
{%- endif %}
{%- if docker.registry_mirrors %}
{%- do daemon.update({"registry-mirrors": docker.registry_mirrors}) %}
{%- endif %}

include:
  - docker.containerd
{%- if docker.source == "distribution" %}

k8snvidia-docker-packages:
  pkg.installed:
    - pkgs: {{ docker.distribution_packages | json }}
{%- else %}
{{ pkgrepo("k8snvidia-docker-repo", docker.repo, k8s) }}

k8snvidia-docker-packages:
  pkg.installed:
    - pkgs: {{ docker.packages | json }}
    - require:
      - pkgrepo: k8snvidia-docker-repo
{%- endif %}

{%- if docker.data_root %}

k8snvidia-docker-data-root:
  file.directory:
    - name: {{ docker.data_root | json }}
    - mode: '0711'
    - makedirs: true
    - require_in:
      - service: k8snvidia-docker-service
{%- endif %}

k8snvidia-docker-daemon-json:
  file.serialize:
    - name: {{ docker.daemon_json | json }}
    - dataset: {{ daemon | json }}
    - serializer: json
    - serializer_opts:
      - indent: 4
      - sort_keys: true
    - merge_if_exists: true
    - makedirs: true
    - mode: '0644'
    - require:
      - pkg: k8snvidia-docker-packages

k8snvidia-docker-service:
  service.running:
    - name: docker
    - enable: true
    - require:
      - service: k8snvidia-containerd-service
    - watch:
      - pkg: k8snvidia-docker-packages
      - file: k8snvidia-docker-daemon-json
{%- if docker.users %}

k8snvidia-docker-group-users:
  group.present:
    - name: docker
    - addusers: {{ docker.users | json }}
    - require:
      - pkg: k8snvidia-docker-packages
{%- endif %}
{%- else %}

k8snvidia-docker-unmanaged:
  test.nop:
    - name: docker is not managed (k8snvidia:docker:manage is false)
{%- endif %}
