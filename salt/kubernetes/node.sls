{#- A worker joins the cluster. The join data (a short-lived token and the
    CA hash) is read from the control plane's mine entry, encrypted for this
    node only, when the state runs: it never appears in the SLS, the
    output, or a pillar file. -#}
{%- from "map.jinja" import k8s with context %}

include:
  - kubernetes

k8snvidia-kubernetes-node-join:
  kubeadm.joined:
    - name: {{ k8s.node.id | json }}
    - control_plane: {{ k8s.derived.control_plane[0] | json }}
    - cri_socket: {{ k8s.derived.cri_socket | json }}
    - kubernetes_version: {{ k8s.kubernetes.version | json }}
    - require:
      - sls: kubernetes
