# The seed's 2020 stack on CentOS 7: vault and archive repositories,
# ELRepo kernel-lt, a 440-era .run driver, Docker with the nvidia runtime,
# and the aliyun mirrors the seed used. Kubernetes 1.18 is the seed's era:
# Docker is still its runtime through dockershim (removed in 1.24).
k8snvidia:
  driver:
    version: '440.100'
    # sha256 of NVIDIA-Linux-x86_64-440.100.run: nixpkgs
    # pkgs/os-specific/linux/nvidia-x11/default.nix (sha256_64bit, nix
    # base32 07ygp8xs293glbybv2psi5ykfdlpgwp03bkczf51fyzknkx895k4, in hex here).
    sha256: 649684fab4f37b178afb6cae012e7f9736377d89fa8abdfca26f24a13bbacf1f
    kernel_module_type: proprietary
  docker:
    registry_mirrors: []
  container_toolkit:
    docker_default_runtime: true
  kubernetes:
    version: 1.18.20
    cri: docker
    image_repository: registry.aliyuncs.com/google_containers
  # Per-OS-family values sit in by_os_family (and by_osfinger), merged at
  # the matching layer of the map.
  by_os_family:
    RedHat:
      docker:
        repo:
          baseurl: https://mirrors.aliyun.com/docker-ce/linux/centos/{major}/$basearch/stable
          gpgkey: https://mirrors.aliyun.com/docker-ce/linux/centos/gpg
      kubernetes:
        repo:
          baseurl: https://mirrors.aliyun.com/kubernetes/yum/repos/kubernetes-el7-x86_64
          gpgkey: https://mirrors.aliyun.com/kubernetes/yum/doc/rpm-package-key.gpg
        package_version_suffix: '-0'
    Debian:
      docker:
        repo:
          baseurl: https://mirrors.aliyun.com/docker-ce/linux/{os_id}
          gpgkey: https://mirrors.aliyun.com/docker-ce/linux/{os_id}/gpg
      kubernetes:
        repo:
          baseurl: https://mirrors.aliyun.com/kubernetes/apt/
          gpgkey: https://mirrors.aliyun.com/kubernetes/apt/doc/apt-key.gpg
          suite: kubernetes-xenial main
        package_version_suffix: '-00'
