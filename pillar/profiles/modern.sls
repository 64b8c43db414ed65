# The modern default: current Kubernetes from pkgs.k8s.io, containerd as the
# CRI, the NVIDIA Container Toolkit, and the R580 driver branch (the last
# that supports Pascal GPUs such as the GTX 1080 Ti; it also runs everything
# newer).
k8snvidia:
  driver:
    # The newest R580 (LTSB, the last branch for Maxwell, Pascal and Volta)
    # found published by December 2026.
    version: 580.178.04
    # sha256 of NVIDIA-Linux-x86_64-580.178.04.run as pinned by a public
    # makepkg recipe that downloads it from download.nvidia.com and checks it
    # (CachyOS nvidia-580xx-utils PKGBUILD, sha256sums). Verify it against
    # NVIDIA's own download before trusting it on real machines.
    sha256: 5975a86ee45bffcb626f51ae33d1169b108186a2ea47ad651e72f13fa4b6d6f9
  kubernetes:
    # version: the map's (salt/parameters): the 1.36 line on current systems,
    # the 1.35 line where the OS's Docker repository ends at containerd 1.6/1.7
    # (CentOS 7, Ubuntu 18.04/20.04). Set it here to pin one for the cluster.
    cri: containerd
    image_repository: registry.k8s.io
