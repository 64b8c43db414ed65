{#- The whole cluster, from bare machines to GPU pods:

        salt-run state.orchestrate cluster            # do it
        salt-run state.orchestrate cluster test=True  # predict it, change nothing

    Validate the pillar, sync the custom modules, prepare every node in
    parallel (every layer up to the driver), reboot only the nodes with a
    reboot pending, install the driver (DKMS, for the running kernel), init
    the control plane, join the workers in batches, deploy the device plugin
    and labels, check every GPU node with a pod, and print a summary.
    A node that fails is reported and left out; the others go on (the
    k8snvidia runner keeps the per-node record). Jinja here renders once,
    before any step: runtime data (join tokens, who needs a reboot) is read
    by the steps themselves. -#}
{%- set cfg = salt["pillar.get"]("k8snvidia", {}) %}
{%- set nodes = cfg.get("nodes", {}) %}
{%- set cluster = cfg.get("cluster", {}) %}
{%- set ids = nodes | list | sort %}
{%- set control = [] %}
{%- set workers = [] %}
{%- set gpu_nodes = [] %}
{%- for nid in ids %}
{%-   if (nodes[nid] or {}).get("role") == "control-plane" %}{% do control.append(nid) %}{% else %}{% do workers.append(nid) %}{% endif %}
{%-   if (nodes[nid] or {}).get("gpus") %}{% do gpu_nodes.append(nid) %}{% endif %}
{%- endfor %}
{%- set prepare = ["host", "kernel", "nouveau", "docker", "nvidia.container_toolkit", "kubernetes"] %}
{%- set batch = cluster.get("join_batch_size", 2) %}
{%- set reboot_timeout = cluster.get("reboot_timeout", 900) %}

k8snvidia-orchestrate-validate:
  salt.runner:
    - name: cluster.validate
    - failhard: true

k8snvidia-orchestrate-sync:
  salt.function:
    - name: saltutil.sync_all
    - tgt: {{ ids | join(",") | json }}
    - tgt_type: list
    - require:
      - salt: k8snvidia-orchestrate-validate

{%- if opts.get("test") %}
{#- test=True: every node predicts its layers; nothing reboots or joins. #}

k8snvidia-orchestrate-predict-prepare:
  salt.state:
    - tgt: {{ ids | join(",") | json }}
    - tgt_type: list
    - sls: {{ prepare | json }}
    - test: true
    - allow_fail: {{ ids | length }}

{%-   if gpu_nodes %}

k8snvidia-orchestrate-predict-driver:
  salt.state:
    - tgt: {{ gpu_nodes | join(",") | json }}
    - tgt_type: list
    - sls: [nvidia.driver]
    - test: true
    - allow_fail: {{ gpu_nodes | length }}
{%-   endif %}
{%- else %}

k8snvidia-orchestrate-begin:
  salt.runner:
    - name: k8snvidia.begin
    - require:
      - salt: k8snvidia-orchestrate-validate

k8snvidia-orchestrate-prepare:
  salt.runner:
    - name: k8snvidia.step
    - step_name: prepare
    - sls: {{ prepare | json }}

k8snvidia-orchestrate-reboot:
  salt.runner:
    - name: k8snvidia.reboot
    - timeout: {{ reboot_timeout }}

{#- a driver replaced on a joined node: cordon, drain, device plugin off
    (k8snvidia_driver runner, docs/driver.md); given back after the step #}
k8snvidia-orchestrate-driver-drain:
  salt.runner:
    - name: k8snvidia_driver.drain
    - namespace: {{ (cfg.get("device_plugin") or {}).get("namespace", "kube-system") | json }}

k8snvidia-orchestrate-driver:
  salt.runner:
    - name: k8snvidia.step
    - step_name: driver
    - sls: [nvidia.driver]
    - gpu: true

k8snvidia-orchestrate-reboot-after-driver:
  salt.runner:
    - name: k8snvidia.reboot
    - timeout: {{ reboot_timeout }}

k8snvidia-orchestrate-driver-uncordon:
  salt.runner:
    - name: k8snvidia_driver.uncordon

k8snvidia-orchestrate-control-plane:
  salt.runner:
    - name: k8snvidia.step
    - step_name: control-plane
    - sls: [kubernetes.master]
    - role: control-plane
    - required: true
    - failhard: true

k8snvidia-orchestrate-join-data:
  salt.runner:
    - name: k8snvidia.publish_join_data
    - failhard: true

k8snvidia-orchestrate-join:
  salt.runner:
    - name: k8snvidia.step
    - step_name: join
    - sls: [kubernetes.node]
    - role: worker
    - batch: {{ batch }}

k8snvidia-orchestrate-gpu-facts:
  salt.runner:
    - name: k8snvidia.publish_gpu_facts

k8snvidia-orchestrate-labels:
  salt.runner:
    - name: k8snvidia.step
    - step_name: labels
    - sls: [kubernetes.master]
    - role: control-plane

k8snvidia-orchestrate-gpu-check:
  salt.runner:
    - name: k8snvidia.gpu_check

k8snvidia-orchestrate-summary:
  salt.runner:
    - name: k8snvidia.summary
{%- endif %}
