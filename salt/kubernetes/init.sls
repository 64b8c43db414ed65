{#- Kubernetes packages: the package repository (pkgs.k8s.io, one repository
    per minor version, or a mirror by pillar: the seed used aliyun),
    kubelet/kubeadm/kubectl pinned to k8snvidia:kubernetes:version and kept
    from unattended upgrades the way the map says (yum: exclude= in the
    repository, installs with --disableexcludes; apt: a dpkg hold), kubelet
    enabled (it crash-loops until kubeadm init/join, as the seed noted), and
    the CRI kubelet will use: containerd (docker.containerd) or cri-dockerd.
    kubeadm init/join are kubernetes.master and kubernetes.node. -#}
{%- from "map.jinja" import k8s with context %}
{%- from "lib/pkgrepo.jinja" import pkgrepo with context %}
{%- set kube = k8s.kubernetes %}
{%- set version = k8s.derived.kubernetes_package_version %}
{%- if kube.manage %}
{%- set pkgs = [] %}
{%- for name in kube.packages %}
{%- do pkgs.append({name: version}) %}
{%- endfor %}

include:
  - docker
{%- if kube.cri == "containerd" %}
  - docker.containerd
{%- endif %}
{{ pkgrepo("k8snvidia-kubernetes-repo", kube.repo, k8s, exclude=kube.repo.exclude if kube.protect == "exclude" else None) }}

k8snvidia-kubernetes-packages:
  pkg.installed:
    - pkgs: {{ pkgs | json }}
{%- if kube.protect == "exclude" %}
    - disableexcludes: {{ kube.repo.name | json }}
{%- elif kube.protect == "hold" %}
    - hold: true
{%- endif %}
    - require:
      - pkgrepo: k8snvidia-kubernetes-repo
{%- if kube.cri == "containerd" %}
      - service: k8snvidia-containerd-service
{%- else %}
      - service: k8snvidia-docker-service
{%- endif %}
{%- if kube.cri == "cri-dockerd" %}
{%- set cd = kube.cri_dockerd %}
{%- if cd.source and cd.sha256 %}
{%- set mirrored = salt["k8snvidia.mirror_source"](cd.source) %}
{%- set basename = cd.source.rstrip("/").split("/")[-1] %}
{%- set cached = k8s.driver.cache_dir ~ "/" ~ basename %}

k8snvidia-kubernetes-cri-dockerd-download:
  file.managed:
    - name: {{ cached | json }}
    - source:
{%- if mirrored %}
      - {{ mirrored | json }}
{%- endif %}
      - {{ cd.source | json }}
    - source_hash: {{ ("sha256=" ~ cd.sha256) | json }}
    - makedirs: true
    - mode: '0644'

k8snvidia-kubernetes-cri-dockerd-package:
  pkg.installed:
    - sources:
      - cri-dockerd: {{ cached | json }}
    - require:
      - file: k8snvidia-kubernetes-cri-dockerd-download
      - service: k8snvidia-docker-service
{%- for unit in cd.services %}

k8snvidia-kubernetes-cri-dockerd-{{ unit }}:
  service.running:
    - name: {{ unit | json }}
    - enable: true
    - watch:
      - pkg: k8snvidia-kubernetes-cri-dockerd-package
    - require_in:
      - service: k8snvidia-kubernetes-kubelet-service
{%- endfor %}
{%- else %}

k8snvidia-kubernetes-cri-dockerd-package:
  test.fail_without_changes:
    - name: >-
        k8snvidia:kubernetes:cri_dockerd: source and sha256 are required when
        k8snvidia:kubernetes:cri is cri-dockerd (cri-dockerd is released as
        .rpm/.deb files on github.com/Mirantis/cri-dockerd, not in a repository)
{%- endif %}
{%- endif %}

k8snvidia-kubernetes-kubelet-service:
  service.enabled:
    - name: kubelet
    - require:
      - pkg: k8snvidia-kubernetes-packages
{%- else %}

k8snvidia-kubernetes-unmanaged:
  test.nop:
    - name: Kubernetes packages are not managed (k8snvidia:kubernetes:manage is false)
{%- endif %}
