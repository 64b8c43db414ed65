{#- The host layer: what every node needs before a container runtime and
    Kubernetes: the OS repositories (CentOS 7: the vault), swap off, SELinux
    permissive (RedHat family), the Kubernetes ports opened in the firewall,
    br_netfilter and overlay loaded, and the sysctl values Kubernetes needs.
    Each part is its own SLS; `host.clean` reverses what is sensible. -#}
include:
  - host.os_repos
  - host.swap
  - host.selinux
  - host.firewall
  - host.modules
  - host.sysctl
