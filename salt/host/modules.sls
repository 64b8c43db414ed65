{#- br_netfilter and overlay (the map's `host:kernel_modules`): loaded now,
    and at every boot through a file in /etc/modules-load.d. A module that is
    built into the running kernel needs no loading (kmod.present would fail:
    it never shows in lsmod): it is one listed in the kernel's
    modules.builtin, or, for a kernel with no /lib/modules/<release> here at
    all (a container, a kernel booted from elsewhere: nothing can be loaded
    into it from this system), one that is already active, by /sys/module/<name>,
    a filesystem of that name in /proc/filesystems (overlay: a container sees
    no /sys/module/overlay), or the path of `host:kernel_module_evidence` (br_netfilter has no
    /sys/module entry when built in, but then /proc/sys/net/bridge exists). -#}
{%- from "map.jinja" import k8s with context %}
{%- set moddir = "/lib/modules/" ~ grains.get("kernelrelease", "") %}
{%- set evidence = k8s.host.get("kernel_module_evidence") or {} %}
{%- set builtin = [] %}
{%- if salt["file.file_exists"](moddir ~ "/modules.builtin") %}
{%- for line in salt["file.read"](moddir ~ "/modules.builtin").split() %}
{%- do builtin.append(line.split("/")[-1].replace(".ko", "").replace("-", "_")) %}
{%- endfor %}
{%- endif %}
{%- set no_moddir = not salt["file.directory_exists"](moddir) %}
{%- set filesystems = [] %}
{%- if no_moddir and salt["file.file_exists"]("/proc/filesystems") %}
{%- for line in salt["file.read"]("/proc/filesystems").splitlines() if line.split() %}
{%- do filesystems.append(line.split()[-1]) %}
{%- endfor %}
{%- endif %}
{%- set active = [] %}
{%- set to_load = [] %}
{%- for mod in k8s.host.kernel_modules %}
{%- if mod.replace("-", "_") in builtin %}
{%- do active.append(mod) %}
{%- elif no_moddir and (salt["file.directory_exists"]("/sys/module/" ~ mod) or mod in filesystems
                        or (evidence.get(mod) and salt["file.access"](evidence[mod], "f"))) %}
{%- do active.append(mod) %}
{%- else %}
{%- do to_load.append(mod) %}
{%- endif %}
{%- endfor %}

k8snvidia-host-modules-load-file:
  file.managed:
    - name: {{ k8s.host.modules_load_file | json }}
    - contents: {{ (["# Managed by Salt (K8sNvidia): kernel modules Kubernetes needs"]
                    + k8s.host.kernel_modules) | json }}
    - mode: '0644'
    - makedirs: true
{%- if to_load %}

k8snvidia-host-modules-loaded:
  kmod.present:
    - name: k8snvidia-host-modules
    - mods: {{ to_load | json }}
{%- endif %}
{%- if active %}

k8snvidia-host-modules-builtin:
  test.succeed_without_changes:
    - name: {{ ("built into the running kernel (or already active in it): " ~ (active | join(", "))) | json }}
{%- endif %}
