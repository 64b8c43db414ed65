{#- Keep nouveau off the GPUs: the modprobe blacklist, and the initramfs of the
    kernel that boots next and of the running one rebuilt (the previous image
    kept as IMG.bak, as the seed did), only when the blacklist changed; an
    image still older than the blacklist (a rebuild that failed in an earlier
    run) is rebuilt on the next run. If nouveau is loaded now a reboot is
    marked pending (never done here). -#}
{%- from "map.jinja" import k8s with context %}

k8snvidia-nouveau-blacklist:
  file.managed:
    - name: {{ k8s.nouveau.blacklist_file | json }}
    - contents:
      - '# Managed by Salt (K8sNvidia): the NVIDIA driver needs nouveau off.'
      - blacklist nouveau
      - options nouveau modeset=0
    - mode: '0644'
    - makedirs: true

k8snvidia-nouveau-initramfs-rebuilt:
  bootkernel.initramfs_rebuilt:
    - name: initramfs without nouveau
    - tool: {{ k8s.nouveau.initramfs_tool | json }}
    - kernels: [default, running]
    - boot_tool: {{ k8s.kernel.boot_tool | json }}
    - grub_config: {{ k8s.kernel.grub_config | json }}
    - onchanges:
      - file: k8snvidia-nouveau-blacklist

k8snvidia-nouveau-initramfs-current:
  bootkernel.initramfs_rebuilt:
    - name: initramfs older than the nouveau blacklist
    - tool: {{ k8s.nouveau.initramfs_tool | json }}
    - kernels: [default, running]
    - boot_tool: {{ k8s.kernel.boot_tool | json }}
    - grub_config: {{ k8s.kernel.grub_config | json }}
    - older_than: {{ k8s.nouveau.blacklist_file | json }}
    - require:
      - bootkernel: k8snvidia-nouveau-initramfs-rebuilt

k8snvidia-nouveau-reboot-pending:
  reboot_pending.if_module_loaded:
    - name: nouveau
    - require:
      - bootkernel: k8snvidia-nouveau-initramfs-current
