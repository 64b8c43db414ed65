{#- Reverses the nouveau layer: the blacklist goes, the initramfs images are
    rebuilt without it, and a reboot is marked pending (nouveau comes back
    only at boot). -#}
{%- from "map.jinja" import k8s with context %}

k8snvidia-nouveau-clean-blacklist:
  file.absent:
    - name: {{ k8s.nouveau.blacklist_file | json }}

k8snvidia-nouveau-clean-initramfs-rebuilt:
  bootkernel.initramfs_rebuilt:
    - name: initramfs with nouveau allowed again
    - tool: {{ k8s.nouveau.initramfs_tool | json }}
    - kernels: [default, running]
    - boot_tool: {{ k8s.kernel.boot_tool | json }}
    - grub_config: {{ k8s.kernel.grub_config | json }}
    - onchanges:
      - file: k8snvidia-nouveau-clean-blacklist

k8snvidia-nouveau-clean-reboot-pending:
  reboot_pending.marked:
    - name: the nouveau blacklist was removed
    - onchanges:
      - file: k8snvidia-nouveau-clean-blacklist
