{#- The NVIDIA Container Toolkit (replaces the seed's nvidia-docker2) from
    its repository, and both container engines told about its runtime, as
    `nvidia-ctk runtime configure` would do it:
    - docker: daemon.json gains runtimes.nvidia and, by pillar,
      "default-runtime": "nvidia"; merged, other keys are kept;
    - containerd: a drop-in (the layout nvidia-ctk >= 1.19 writes: the whole
      CRI plugin section, runc's options copied into the nvidia runtime,
      BinaryName set) at the config version of the installed containerd,
      imported by config.toml (docker.containerd edits that file).
      containerd 1.x replaces a plugin's whole section with a later file's,
      so this drop-in repeats everything docker.containerd's CRI drop-in
      sets.
    docker and containerd restart only when their configuration changed. -#}
{%- from "map.jinja" import k8s with context %}
{%- from "lib/pkgrepo.jinja" import pkgrepo with context %}
{%- set ctk = k8s.container_toolkit %}
{%- if ctk.manage %}
{%- if ctk.version %}
{%- set pkgs = [] %}
{%- for name in ctk.packages %}
{%- do pkgs.append({name: ctk.version}) %}
{%- endfor %}
{%- else %}
{%- set pkgs = ctk.packages %}
{%- endif %}
{%- set runtime = {"path": ctk.runtime_path.split("/")[-1], "args": []} %}
{%- set daemon = {"runtimes": {}} %}
{%- do daemon.runtimes.update({"nvidia": runtime}) %}
{%- if ctk.docker_default_runtime %}
{%- do daemon.update({"default-runtime": "nvidia"}) %}
{%- endif %}

include:
  - docker
  - docker.containerd
{{ pkgrepo("k8snvidia-nvidia-ctk-repo", ctk.repo, k8s) }}

k8snvidia-nvidia-ctk-packages:
  pkg.installed:
    - pkgs: {{ pkgs | json }}
    - require:
      - pkgrepo: k8snvidia-nvidia-ctk-repo
{%- if k8s.docker.manage %}

k8snvidia-nvidia-ctk-docker-daemon-json:
  file.serialize:
    - name: {{ k8s.docker.daemon_json | json }}
    - dataset: {{ daemon | json }}
    - serializer: json
    - serializer_opts:
      - indent: 4
      - sort_keys: true
    - merge_if_exists: true
    - makedirs: true
    - mode: '0644'
    - require:
      - pkg: k8snvidia-nvidia-ctk-packages
      - file: k8snvidia-docker-daemon-json
    - watch_in:
      - service: k8snvidia-docker-service
{%- endif %}

k8snvidia-nvidia-ctk-containerd-dropin:
  containerd.dropin_managed:
    - name: {{ ctk.containerd_dropin | json }}
    - config: {{ k8s.containerd.config | json }}
    - source: salt://docker/files/containerd-cri.toml.jinja
    - packages: {{ k8s.containerd.packages | json }}
    - context:
        systemd_cgroup: {{ k8s.containerd.systemd_cgroup | json }}
        sandbox_image: {{ k8s.containerd.sandbox_image | json }}
        nvidia: true
        nvidia_binary: {{ ctk.runtime_path | json }}
        nvidia_default: {{ ctk.containerd_default_runtime | json }}
    - require:
      - pkg: k8snvidia-nvidia-ctk-packages
      - containerd: k8snvidia-containerd-config
    - watch_in:
      - service: k8snvidia-containerd-service
{%- else %}

k8snvidia-nvidia-ctk-unmanaged:
  test.nop:
    - name: the container toolkit is not managed (k8snvidia:container_toolkit:manage is false)
{%- endif %}
