{#- Undo the kubernetes package layer: kubelet stopped and disabled, the
    holds released (apt), kubelet/kubeadm/kubectl (and cri-dockerd when it
    was the CRI) removed, the repository and its keyring removed. It does
    not run `kubeadm reset`: leaving the cluster is kubernetes.master's and
    kubernetes.node's business. -#}
{%- from "map.jinja" import k8s with context %}
{%- from "lib/pkgrepo.jinja" import pkgrepo_absent with context %}
{%- set kube = k8s.kubernetes %}

k8snvidia-kubernetes-clean-kubelet-service:
  service.dead:
    - name: kubelet
    - enable: false
{%- if kube.protect == "hold" %}

k8snvidia-kubernetes-clean-unhold:
  pkg.unheld:
    - pkgs: {{ kube.packages | json }}
    - require_in:
      - pkg: k8snvidia-kubernetes-clean-packages
{%- endif %}

k8snvidia-kubernetes-clean-packages:
  pkg.removed:
    - pkgs: {{ kube.packages | json }}
    - require:
      - service: k8snvidia-kubernetes-clean-kubelet-service
{%- if kube.cri == "cri-dockerd" %}
{%- for unit in kube.cri_dockerd.services %}

k8snvidia-kubernetes-clean-cri-dockerd-{{ unit }}:
  service.dead:
    - name: {{ unit | json }}
    - enable: false
    - require_in:
      - pkg: k8snvidia-kubernetes-clean-cri-dockerd-package
{%- endfor %}

k8snvidia-kubernetes-clean-cri-dockerd-package:
  pkg.removed:
    - name: cri-dockerd
{%- endif %}
{{ pkgrepo_absent("k8snvidia-kubernetes-clean-repo", kube.repo, k8s) }}
