{#- The whole cluster, from bare machines to GPU pods:

        salt-run state.orchestrate cluster            # do it
        salt-run state.orchestrate cluster test=True  # predict it, change nothing

    Validate the pillar, sync the custom modules, prepare every node in
    parallel (every layer up to the driver), reboot only the nodes with a
    reboot pending, install the driver (DKMS, for the running kernel), init
    the control plane, join the workers in batches, deploy the device plugin
    and labels, check every GPU node with a pod, and print a summary.
    The control plane goes first: its stages run on it alone, and when one
    fails the run stops before any worker changes. A worker that fails is
    reported and left out; the others go on (the cluster_run runner keeps the
    per-node record). The exit code is non-zero when a node failed.
    Jinja here renders once, before any step: runtime data (join tokens, who
    needs a reboot) is read by the steps themselves. Each step is a runner
    function run by cluster_stage.run (_states/cluster_stage.py): what
    salt.runner does, through one runner client for the whole run. -#}
{%- set cfg = salt["pillar.get"]("k8snvidia", {}) %}
{%- set cluster = cfg.get("cluster", {}) %}
{#- who is the control plane, a worker, a GPU node: cluster.view, the one
    answer the runners and the highstate share #}
{%- set view = salt["saltutil.runner"]("cluster.view") %}
{%- set ids = view.nodes | list | sort %}
{%- set gpu_nodes = view.gpu_nodes %}
{%- import_yaml "parameters/layers.yaml" as layers %}
{%- set prepare = layers.layers | rejectattr("gpu", "defined") | map(attribute="sls") | list %}
{%- set gpu_layers = layers.layers | selectattr("gpu", "defined") | map(attribute="sls") | list %}
{%- set batch = cluster.get("join_batch_size", 2) %}
{%- set reboot_timeout = cluster.get("reboot_timeout", 900) %}
{%- set reboot_grace = cluster.get("reboot_grace", 300) %}
{%- set node_timeout = cluster.get("node_timeout", 120) %}
{#- The run: the control plane's stages first (its node alone), then the
    workers'. Each entry: (SLS id suffix, runner, its arguments). A stage of
    the control plane that fails stops the run before any worker changes. #}
{%- set cp = "control-plane" %}
{#- a driver replaced on a joined node: cordon, drain, device plugin off
    first; the device plugin back after the driver step and its reboot; the
    node uncordoned once its GPU check passed (driver_upgrade runner,
    docs/driver.md) #}
{%- set device_plugin_ns = (cfg.get("device_plugin") or {}).get("namespace", "kube-system") %}
{%- set stages = [
      ("prepare-control-plane", "cluster_run.step", {"step_name": "prepare", "sls": prepare, "role": cp, "required": true}),
      ("reboot-control-plane", "cluster_run.reboot", {"role": cp, "required": true}),
      ("driver-control-plane", "cluster_run.step", {"step_name": "driver", "sls": gpu_layers, "gpu": true, "role": cp, "required": true}),
      ("reboot-after-driver-control-plane", "cluster_run.reboot", {"role": cp, "required": true}),
      ("control-plane", "cluster_run.step", {"step_name": "control-plane", "sls": ["kubernetes.master"], "role": cp, "required": true}),
      ("prepare", "cluster_run.step", {"step_name": "prepare", "sls": prepare, "role": "worker"}),
      ("reboot", "cluster_run.reboot", {"role": "worker"}),
      ("driver-drain", "driver_upgrade.drain", {"namespace": device_plugin_ns}),
      ("driver", "cluster_run.step", {"step_name": "driver", "sls": gpu_layers, "gpu": true, "role": "worker"}),
      ("reboot-after-driver", "cluster_run.reboot", {"role": "worker"}),
      ("driver-restore", "driver_upgrade.restore", {"namespace": device_plugin_ns}),
      ("join-data", "cluster_run.publish_join_data", {}),
      ("join", "cluster_run.step", {"step_name": "join", "sls": ["kubernetes.node"], "role": "worker", "batch": batch}),
      ("gpu-facts", "cluster_run.publish_gpu_facts", {}),
      ("labels", "cluster_run.step", {"step_name": "labels", "sls": ["kubernetes.master"], "role": cp}),
      ("gpu-check", "cluster_run.gpu_check", {"refresh": false}),
      ("driver-uncordon", "driver_upgrade.uncordon", {"namespace": device_plugin_ns}),
    ] %}

k8snvidia-orchestrate-validate:
  cluster_stage.run:
    - name: cluster.validate
    - failhard: true

{%- if opts.get("test") %}

k8snvidia-orchestrate-sync:
  salt.function:
    - name: saltutil.sync_all
    - tgt: {{ ids | join(",") | json }}
    - tgt_type: list
    - require:
      - cluster_stage: k8snvidia-orchestrate-validate
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
    - sls: {{ gpu_layers | json }}
    - test: true
    - allow_fail: {{ gpu_nodes | length }}
{%-   endif %}
{%- else %}
{#- begin: the lock (one orchestration at a time; failhard when another
    runs), this run's record, and who answers; finish: the lock released and
    the exit code (non-zero when a node failed or the run stopped). #}

k8snvidia-orchestrate-begin:
  cluster_stage.run:
    - name: cluster_run.begin
    - plan: {{ (stages | map(attribute=0) | list) | json }}
    - node_timeout: {{ node_timeout }}
    - failhard: true
    - require:
      - cluster_stage: k8snvidia-orchestrate-validate

k8snvidia-orchestrate-sync:
  cluster_stage.run:
    - name: cluster_run.sync
    - node_timeout: {{ node_timeout }}
{%-   for sid, fun, args in stages %}

k8snvidia-orchestrate-{{ sid }}:
  cluster_stage.run:
    - name: {{ fun }}
    - stage: {{ sid }}
{%-     for key, val in args | dictsort %}
    - {{ key }}: {{ val | json }}
{%-     endfor %}
{%-     if fun == "cluster_run.reboot" %}
    - timeout: {{ reboot_timeout }}
    - grace: {{ reboot_grace }}
{%-     endif %}
    - node_timeout: {{ node_timeout }}
{%-   endfor %}

k8snvidia-orchestrate-summary:
  cluster_stage.run:
    - name: cluster_run.summary

k8snvidia-orchestrate-finish:
  cluster_stage.run:
    - name: cluster_run.finish
{%- endif %}
