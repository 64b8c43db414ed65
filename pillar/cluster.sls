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
