# The modern default: current Kubernetes from pkgs.k8s.io, containerd as the
# CRI, the NVIDIA Container Toolkit, and the R580 driver branch (the last
# that supports Pascal GPUs such as the GTX 1080 Ti; it also runs everything
# newer).
k8snvidia:
  driver:
    version: 580.95.05
    # sha256 of NVIDIA-Linux-x86_64-580.95.05.run, from the fetchurl hash a
    # public NixOS configuration pins for this file (SRI base64, in hex here).
    sha256: 849ef0ef8e842b9806b2cde9f11c1303d54f1a9a769467e4e5d961b2fe1182a7
  kubernetes:
    # version: the map's (salt/parameters): the 1.36 line on current systems,
    # the 1.35 line where the OS's Docker repository ends at containerd 1.6/1.7
    # (CentOS 7, Ubuntu 18.04/20.04). Set it here to pin one for the cluster.
    cri: containerd
    image_repository: registry.k8s.io
