# The seed's cluster (shared/seed/K8sNvidia.md), with the node IPs of its
# table written as meant (the seed's own table has 912.168.0.105 and the
# misspelt hostnames noed-109/noed-106/cluster-msater).
#
# Pick a profile: profiles.modern (supported systems, current stack) or
# profiles.seed2020 (the seed's 2020 stack on CentOS 7).
include:
  - profiles.modern

k8snvidia:
  cluster:
    name: seed
    node_network: 192.168.0.0/24
  # The seed's machines run CentOS 7 and Ubuntu 18.04, whose Docker
  # repositories end at containerd.io 1.6: Kubernetes 1.36 needs containerd
  # 2.2+, so this cluster stays on the 1.35 line (EOL 2027-02-28; cgroup v1:
  # failCgroupV1: false and kubeadm's SystemVerification skipped per node).
  # On supported systems drop this and take the profile's 1.36.
  kubernetes:
    version: 1.35.4
  nodes:
    cluster-master:
      ip: 192.168.0.113
      role: control-plane
      os: CentOS Linux-7
      gpus: []
    node-110:
      ip: 192.168.0.110
      role: worker
      os: CentOS Linux-7
      gpus: [NVIDIA GeForce GTX 1080 Ti]
    node-109:
      ip: 192.168.0.109
      role: worker
      os: CentOS Linux-7
      gpus: [NVIDIA GeForce GTX 1080 Ti]
    node-106:
      ip: 192.168.0.106
      role: worker
      os: CentOS Linux-7
      gpus: [NVIDIA GeForce GTX 1080 Ti]
    node-105:
      ip: 192.168.0.105
      role: worker
      os: Ubuntu-18.04
      gpus: [NVIDIA GeForce GTX 1080 Ti]
