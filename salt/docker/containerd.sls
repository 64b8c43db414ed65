{#- containerd (the containerd.io package of the docker repository) ready
    for Kubernetes, without rewriting its config.toml: that file only gains
    `version` (when it has none), an `imports` entry for the drop-in
    directory, and, when containerd is the Kubernetes CRI, loses "cri" from
    disabled_plugins (containerd.io ships it disabled). The CRI settings
    (runc with SystemdCgroup = true, the sandbox image) are a drop-in;
    nvidia.container_toolkit adds the nvidia runtime in a later one.
    containerd restarts only when one of these files changed. -#}
{%- from "map.jinja" import k8s with context %}
{%- set ctd = k8s.containerd %}
{%- set glob = ctd.dropin_dir ~ "/*.toml" %}

include:
  - docker

k8snvidia-containerd-config:
  file.managed:
    - name: {{ ctd.config | json }}
    - contents: {{ ("version = " ~ ctd.config_version) | json }}
    - replace: false
    - makedirs: true
    - mode: '0644'
{%- if k8s.docker.manage %}
    - require:
      - pkg: k8snvidia-docker-packages
{%- endif %}

k8snvidia-containerd-config-version:
  file.replace:
    - name: {{ ctd.config | json }}
    - pattern: '^version\s*=.*$'
    - repl: '\g<0>'
    - not_found_content: {{ ("version = " ~ ctd.config_version) | json }}
    - prepend_if_not_found: true
    - backup: false
    # test=True: the file may only be predicted by k8snvidia-containerd-config
    - ignore_if_missing: true
    - require:
      - file: k8snvidia-containerd-config

k8snvidia-containerd-config-imports-extend:
  file.replace:
    - name: {{ ctd.config | json }}
    - pattern: {{ ('^imports\s*=\s*\[(?!.*"' ~ (glob | regex_escape) ~ '")\s*') | json }}
    - repl: {{ ('imports = [' ~ (glob | json) ~ ', ') | json }}
    - backup: false
    # test=True: the file may only be predicted by k8snvidia-containerd-config
    - ignore_if_missing: true
    - require:
      - file: k8snvidia-containerd-config-version

k8snvidia-containerd-config-imports:
  file.replace:
    - name: {{ ctd.config | json }}
    - pattern: '^imports\s*=.*$'
    - repl: '\g<0>'
    - not_found_content: {{ ('imports = [' ~ (glob | json) ~ ']') | json }}
    - prepend_if_not_found: true
    - backup: false
    # test=True: the file may only be predicted by k8snvidia-containerd-config
    - ignore_if_missing: true
    - require:
      - file: k8snvidia-containerd-config-imports-extend
{%- if k8s.kubernetes.cri == "containerd" %}

k8snvidia-containerd-config-cri-enabled:
  file.replace:
    - name: {{ ctd.config | json }}
    - pattern: '^(disabled_plugins\s*=\s*\[[^\]\n]*?)"(?:io\.containerd\.grpc\.v1\.)?cri"\s*,?\s*'
    - repl: '\1'
    - backup: false
    # test=True: the file may only be predicted by k8snvidia-containerd-config
    - ignore_if_missing: true
    - require:
      - file: k8snvidia-containerd-config
    - watch_in:
      - service: k8snvidia-containerd-service
{%- endif %}

k8snvidia-containerd-cri-dropin:
  file.managed:
    - name: {{ ctd.cri_dropin | json }}
    - source: salt://docker/files/containerd-cri.toml.jinja
    - template: jinja
    - makedirs: true
    - mode: '0644'
    - context:
        version: {{ ctd.config_version | json }}
        systemd_cgroup: {{ ctd.systemd_cgroup | json }}
        sandbox_image: {{ ctd.sandbox_image | json }}
        nvidia: false
        nvidia_binary: null
        nvidia_default: false

k8snvidia-containerd-service:
  service.running:
    - name: containerd
    - enable: true
    - watch:
{%- if k8s.docker.manage %}
      - pkg: k8snvidia-docker-packages
{%- endif %}
      - file: k8snvidia-containerd-config
      - file: k8snvidia-containerd-config-version
      - file: k8snvidia-containerd-config-imports-extend
      - file: k8snvidia-containerd-config-imports
      - file: k8snvidia-containerd-cri-dropin
