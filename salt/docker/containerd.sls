{#- containerd (the containerd.io package of the docker repository) ready
    for Kubernetes, without rewriting its config.toml: that file gets the
    config version of the installed containerd (2 for 1.x, 3 for 2.0-2.2,
    4 from 2.3; chosen when the state runs, after the package is in), an
    `imports` entry for the drop-in directory, and full plugin ids in
    disabled_plugins, without the CRI when containerd is the Kubernetes
    CRI (containerd.io ships "cri" disabled, a short id containerd >= 1.6
    refuses in a versioned file). The CRI settings (runc with
    SystemdCgroup = true, the sandbox image) are a drop-in at the same
    version; nvidia.container_toolkit adds the nvidia runtime in a later
    one. containerd restarts only when one of these files changed. -#}
{%- from "map.jinja" import k8s with context %}
{%- set ctd = k8s.containerd %}

include:
  - docker

k8snvidia-containerd-config:
  containerd.config_managed:
    - name: {{ ctd.config | json }}
    - imports: {{ (ctd.dropin_dir ~ "/*.toml") | json }}
    - cri: {{ (k8s.kubernetes.cri == "containerd") | json }}
    - packages: {{ ctd.packages | json }}
{%- if k8s.docker.manage %}
    - require:
      - pkg: k8snvidia-docker-packages
{%- endif %}

k8snvidia-containerd-cri-dropin:
  containerd.dropin_managed:
    - name: {{ ctd.cri_dropin | json }}
    - config: {{ ctd.config | json }}
    - source: salt://docker/files/containerd-cri.toml.jinja
    - packages: {{ ctd.packages | json }}
    - context:
        systemd_cgroup: {{ ctd.systemd_cgroup | json }}
        sandbox_image: {{ ctd.sandbox_image | json }}
        nvidia: false
        nvidia_binary: null
        nvidia_default: false
    - require:
      - containerd: k8snvidia-containerd-config

k8snvidia-containerd-service:
  service.running:
    - name: containerd
    - enable: true
    - watch:
{%- if k8s.docker.manage %}
      - pkg: k8snvidia-docker-packages
{%- endif %}
      - containerd: k8snvidia-containerd-config
      - containerd: k8snvidia-containerd-cri-dropin
