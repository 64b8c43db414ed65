{#- The control plane: kubeadm init, the admin's kubeconfig, the NVIDIA device
    plugin (with time-slicing), and GPU labels on the nodes from their
    `nvidia` grains (published through the mine as k8snvidia_gpu). -#}
{%- from "map.jinja" import k8s with context %}
{%- set admin_conf = k8s.cluster.admin_kubeconfig %}

include:
  - kubernetes

k8snvidia-kubernetes-control-plane-init:
  kubeadm.initialized:
    - name: {{ k8s.node.id | json }}
    - advertise_address: {{ k8s.node.ip | json }}
    - kubernetes_version: {{ k8s.kubernetes.version | json }}
    - pod_cidr: {{ k8s.cluster.pod_cidr | json }}
    - service_cidr: {{ k8s.cluster.service_cidr | json }}
    - dns_domain: {{ k8s.cluster.dns_domain | json }}
    - cri_socket: {{ k8s.derived.cri_socket | json }}
    - control_plane_endpoint: {{ k8s.cluster.control_plane_endpoint | json }}
    - image_repository: {{ k8s.kubernetes.image_repository | json }}
    - token_ttl: {{ k8s.cluster.join_token_ttl | json }}
    - require:
      - sls: kubernetes

{%- if k8s.cluster.admin_user %}
{%- set home = salt["user.info"](k8s.cluster.admin_user).get("home") or "/home/" ~ k8s.cluster.admin_user %}

k8snvidia-kubernetes-admin-kubeconfig:
  file.copy:
    - name: {{ (home ~ "/.kube/config") | json }}
    - source: {{ admin_conf | json }}
    - makedirs: true
    - user: {{ k8s.cluster.admin_user | json }}
    - mode: '0600'
    - require:
      - kubeadm: k8snvidia-kubernetes-control-plane-init
{%- endif %}

{%- set cni = k8s.cluster.cni %}
{%- if cni == "flannel" %}

k8snvidia-kubernetes-cni-manifest:
  file.managed:
    - name: /etc/kubernetes/k8snvidia-cni.yaml
    - source: salt://kubernetes/files/flannel.yaml.jinja
    - template: jinja
    - mode: '0644'
    - context:
        pod_cidr: {{ k8s.cluster.pod_cidr | json }}
        backend: {{ k8s.cni.flannel.backend | json }}
        image: {{ (k8s.cni.flannel.image ~ ":" ~ k8s.cni.flannel.version) | json }}
        cni_plugin_image: {{ (k8s.cni.flannel.cni_plugin_image ~ ":" ~ k8s.cni.flannel.cni_plugin_version) | json }}
    - require:
      - kubeadm: k8snvidia-kubernetes-control-plane-init
{%- else %}

k8snvidia-kubernetes-cni-manifest:
  file.managed:
    - name: /etc/kubernetes/k8snvidia-cni.yaml
    - source: {{ k8s.cni[cni].manifest_url | json }}
    - source_hash: {{ ("sha256=" ~ k8s.cni[cni].sha256) | json }}
    - mode: '0644'
    - require:
      - kubeadm: k8snvidia-kubernetes-control-plane-init
{%- endif %}

k8snvidia-kubernetes-cni-apply:
  kube.manifest_applied:
    - name: /etc/kubernetes/k8snvidia-cni.yaml
    - require:
      - file: k8snvidia-kubernetes-cni-manifest

k8snvidia-kubernetes-device-plugin-manifest:
  file.managed:
    - name: /etc/kubernetes/k8snvidia-device-plugin.yaml
    - source: salt://kubernetes/files/device-plugin.yaml.jinja
    - template: jinja
    - mode: '0644'
    - context:
        image: {{ (k8s.device_plugin.image ~ ":" ~ k8s.device_plugin.version) | json }}
        namespace: {{ k8s.device_plugin.namespace | json }}
        replicas: {{ k8s.device_plugin.time_slicing_replicas | json }}
    - require:
      - kubeadm: k8snvidia-kubernetes-control-plane-init

k8snvidia-kubernetes-device-plugin-apply:
  kube.manifest_applied:
    - name: /etc/kubernetes/k8snvidia-device-plugin.yaml
    - require:
      - file: k8snvidia-kubernetes-device-plugin-manifest

{%- set gpus = salt["mine.get"]("*", "k8snvidia_gpu") %}
{%- for node_id, node in k8s.nodes | dictsort %}
{%- set labels = salt["kube.gpu_labels"](gpus.get(node_id) or {}) %}
{%- if labels %}

k8snvidia-kubernetes-gpu-labels-{{ node_id }}:
  kube.node_labeled:
    - name: {{ node_id | json }}
    - labels: {{ labels | json }}
    - require:
      - kubeadm: k8snvidia-kubernetes-control-plane-init
{%- endif %}
{%- endfor %}
