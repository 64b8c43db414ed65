{#- The OS's own repositories at the URLs of the map's `os_repos` (only
    CentOS 7 has them: its mirrors are gone, the vault keeps the packages).
    An existing repository (CentOS-Base.repo) is edited in place: baseurl
    replaces its dead mirrorlist. -#}
{%- from "map.jinja" import k8s with context %}
{%- for repo, url in k8s.get("os_repos", {}) | dictsort %}

k8snvidia-host-os-repo-{{ repo }}:
  pkgrepo.managed:
    - name: {{ repo | json }}
    - humanname: {{ (k8s.os.finger ~ " - " ~ repo) | json }}
    - baseurl: {{ url | json }}
    - gpgcheck: 1
    - gpgkey: {{ k8s.os_repo_gpgkey | json }}
    - enabled: 1
{%- endfor %}
