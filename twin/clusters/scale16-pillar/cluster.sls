# The 16 machines of twin/clusters/scale16.yaml, on the modern profile.
include:
  - profiles.modern

k8snvidia:
  cluster:
    name: scale16
    node_network: 10.16.0.0/24
  nodes:
    cp-1:
      ip: 10.16.0.11
      role: control-plane
      os: CentOS Linux-7
      gpus: []
    gpu-01:
      ip: 10.16.0.12
      role: worker
      os: CentOS Linux-7
      gpus: [NVIDIA GeForce GTX 1080 Ti]
    gpu-02:
      ip: 10.16.0.13
      role: worker
      os: CentOS Linux-7
      gpus: [NVIDIA GeForce GTX 1080 Ti]
    gpu-03:
      ip: 10.16.0.14
      role: worker
      os: CentOS Linux-7
      gpus: [NVIDIA GeForce GTX 1080 Ti]
    gpu-04:
      ip: 10.16.0.15
      role: worker
      os: CentOS Linux-7
      gpus: [NVIDIA GeForce GTX 1080 Ti]
    gpu-05:
      ip: 10.16.0.16
      role: worker
      os: CentOS Linux-7
      gpus: [NVIDIA GeForce GTX 1080 Ti]
    gpu-06:
      ip: 10.16.0.17
      role: worker
      os: Rocky Linux-9
      gpus: [NVIDIA GeForce GTX 1080 Ti]
    gpu-07:
      ip: 10.16.0.18
      role: worker
      os: Rocky Linux-9
      gpus: [NVIDIA GeForce GTX 1080 Ti]
    gpu-08:
      ip: 10.16.0.19
      role: worker
      os: Rocky Linux-9
      gpus: [NVIDIA GeForce GTX 1080 Ti]
    gpu-09:
      ip: 10.16.0.20
      role: worker
      os: Rocky Linux-9
      gpus: [NVIDIA GeForce GTX 1080 Ti]
    gpu-10:
      ip: 10.16.0.21
      role: worker
      os: Ubuntu-22.04
      gpus: [NVIDIA GeForce GTX 1080 Ti]
    gpu-11:
      ip: 10.16.0.22
      role: worker
      os: Ubuntu-22.04
      gpus: [NVIDIA GeForce GTX 1080 Ti]
    gpu-12:
      ip: 10.16.0.23
      role: worker
      os: Ubuntu-22.04
      gpus: [NVIDIA GeForce GTX 1080 Ti]
    gpu-13:
      ip: 10.16.0.24
      role: worker
      os: Ubuntu-18.04
      gpus: [NVIDIA GeForce GTX 1080 Ti]
    cpu-01:
      ip: 10.16.0.25
      role: worker
      os: Debian-12
      gpus: []
    cpu-02:
      ip: 10.16.0.26
      role: worker
      os: Rocky Linux-9
      gpus: []
