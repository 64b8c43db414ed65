{#- Undo nvidia.container_toolkit: the nvidia runtime taken out of docker's
    daemon.json (runtimes.nvidia, and "default-runtime" when it is nvidia;
    other keys stay) and the containerd drop-in removed, each engine
    restarted if it runs; then the toolkit packages and repository
    removed. -#}
{%- from "map.jinja" import k8s with context %}
{%- from "lib/pkgrepo.jinja" import pkgrepo_absent, json_without with context %}
{%- set ctk = k8s.container_toolkit %}
{%- set drop = {"runtimes": {"nvidia": none}, "default-runtime": "nvidia"} %}
{{ json_without("k8snvidia-nvidia-ctk-clean-docker-daemon-json", k8s.docker.daemon_json, drop,
                watch_in="service: k8snvidia-nvidia-ctk-clean-docker-restart") }}

k8snvidia-nvidia-ctk-clean-containerd-dropin:
  file.absent:
    - name: {{ ctk.containerd_dropin | json }}

k8snvidia-nvidia-ctk-clean-docker-restart:
  service.running:
    - name: docker
    - onlyif: systemctl is-active docker

k8snvidia-nvidia-ctk-clean-containerd-restart:
  service.running:
    - name: containerd
    - onlyif: systemctl is-active containerd
    - watch:
      - file: k8snvidia-nvidia-ctk-clean-containerd-dropin

k8snvidia-nvidia-ctk-clean-packages:
  pkg.removed:
    - pkgs: {{ ctk.packages | json }}
    - require:
      - service: k8snvidia-nvidia-ctk-clean-docker-restart
      - service: k8snvidia-nvidia-ctk-clean-containerd-restart
{{ pkgrepo_absent("k8snvidia-nvidia-ctk-clean-repo", ctk.repo, k8s) }}
