"""
Emulated ``nvidia-ctk`` of the NVIDIA Container Toolkit (``main(argv) -> rc``).

``runtime configure`` as CTK ``cmd/nvidia-ctk/runtime/configure`` and
``pkg/config/engine/{docker,containerd}`` do it (../shared/guides/real-tools.md
section 5): docker -> ``/etc/docker/daemon.json`` (4-space indent, sorted keys,
no trailing newline, other keys kept); containerd -> in place (toolkit
<= 1.17), a drop-in ``/etc/containerd/config.d/99-nvidia.toml`` (1.18) or
``/etc/containerd/conf.d/99-nvidia.toml`` (>= 1.19) plus ``imports`` in the
main file; logs through logrus on stderr (non-TTY format). Also ``cdi
generate`` / ``cdi list`` and ``--version``. The version is the installed
``nvidia-container-toolkit(-base)`` package's.
"""

import copy
import json
import os
import sys
import time

from k8stwin import fs, kube, state, tomlw

DROPIN_DIR = {(1, 18): "/etc/containerd/config.d"}


def log(level, msg):
    t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    sys.stderr.write(f'time="{t}" level={level} msg="{msg}"\n')


class Usage(Exception):
    pass


def _parse(args, spec):
    """urfave/cli flags: -name / --name, =value or separate value; bools bare."""
    opts, pos = {}, []
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--":
            pos += args[i:]
            break
        if a.startswith("-") and len(a) > 1:
            name, eq, value = a.lstrip("-").partition("=")
            if name not in spec:
                raise Usage(f"flag provided but not defined: -{name}")
            kind, key = spec[name]
            if kind == "bool":
                opts[key] = value.lower() not in ("false", "0") if eq else True
            else:
                if not eq:
                    if i >= len(args):
                        raise Usage(f"flag needs an argument: -{name}")
                    value = args[i]
                    i += 1
                if kind == "list":
                    opts.setdefault(key, []).append(value)
                else:
                    opts[key] = value
        else:
            pos.append(a)
    return opts, pos


def configure_flags(ver):
    spec = {
        "runtime": ("str", "runtime"), "config": ("str", "config"), "dry-run": ("bool", "dry-run"),
        "nvidia-runtime-name": ("str", "name"), "runtime-name": ("str", "name"),
        "nvidia-runtime-path": ("str", "path"), "runtime-path": ("str", "path"),
        "nvidia-runtime-hook-path": ("str", "hook"),
        "nvidia-set-as-default": ("bool", "default"), "set-as-default": ("bool", "default"),
        "cdi.enabled": ("bool", "cdi"), "enable-cdi": ("bool", "cdi"),
        "config-mode": ("str", "config-mode"), "help": ("bool", "help"), "h": ("bool", "help"),
    }
    if ver >= (1, 16, 0):
        spec["config-source"] = ("str", "config-source")
    if ver >= (1, 18, 0):
        spec["drop-in-config"] = ("str", "drop-in")
    return spec


def _write_json(path, data):
    fs.write(path, json.dumps(data, indent=4, sort_keys=True))


def configure_docker(opts, ver):
    path = opts.get("config") or "/etc/docker/daemon.json"
    if opts.get("drop-in"):
        raise Usage("runtime docker does not support drop-in configs")
    text = fs.read(path)
    if text is None:
        log("info", "Config file does not exist; using empty config")
        cfg = {}
    else:
        log("info", f"Loading config from {path}")
        try:
            cfg = json.loads(text) if text.strip() else {}
        except ValueError as exc:
            log("error", f"unable to load config for runtime: unable to load config: {exc}")
            return 1
    name = opts.get("name") or "nvidia"
    runtimes = cfg.setdefault("runtimes", {})
    runtimes[name] = {"args": [], "path": opts.get("path") or "nvidia-container-runtime"}
    if opts.get("default"):
        cfg["default-runtime"] = name
    if opts.get("cdi"):
        cfg.setdefault("features", {})["cdi"] = True
    body = json.dumps(cfg, indent=4, sort_keys=True)
    if opts.get("dry-run"):
        sys.stdout.write(body + "\n")
        return 0
    fs.write(path, body)
    log("info", f"Wrote updated config to {path}")
    log("info", "It is recommended that docker daemon be restarted.")
    return 0


def _cri_plugin(cfg, version):
    return cfg.setdefault("plugins", {}).setdefault(kube.CRI_PLUGIN.get(version, "io.containerd.cri.v1.runtime"), {})


def _add_runtime(cri, opts):
    name = opts.get("name") or "nvidia"
    ctr = cri.setdefault("containerd", {})
    runtimes = ctr.setdefault("runtimes", {})
    runc = runtimes.get("runc")
    rt = copy.deepcopy(runc) if isinstance(runc, dict) else {"runtime_type": "io.containerd.runc.v2"}
    rt.setdefault("options", {})
    path = opts.get("path") or "nvidia-container-runtime"
    rt["options"]["BinaryName"] = path if path.startswith("/") else "/usr/bin/" + path
    runtimes[name] = rt
    if opts.get("default"):
        ctr["default_runtime_name"] = name
    if opts.get("cdi"):
        cri["enable_cdi"] = True


def configure_containerd(opts, ver):
    path = opts.get("config") or "/etc/containerd/config.toml"
    text = fs.read(path)
    if text is None or not text.strip():
        log("info", "Config file does not exist; using empty config")
        cfg = {}
    else:
        log("info", f"Loading config from {path}")
        try:
            cfg = tomlw.loads(text)
        except Exception as exc:  # noqa: BLE001 - any TOML error
            log("error", f"unable to load config for runtime: failed to load config: {exc}")
            return 1
    main_file = cfg
    if opts.get("config-source") == "command":
        # `containerd config dump`: the running containerd's effective config
        cfg, _, error = kube.containerd_effective(kube.here_view(), path)
        if error:
            log("error", f"unable to load config for runtime containerd: failed to load config: {error}")
            return 1
    # pkg/config/engine/containerd parseVersion: an empty config is version
    # 2, a non-empty one without `version` is version 1 (edited in place,
    # plugin "cri"), a non-integer version is refused
    if not cfg:
        version = 2
    elif "version" not in cfg:
        version = 1
    elif isinstance(cfg["version"], int) and not isinstance(cfg["version"], bool):
        version = cfg["version"]
    else:
        log("error", "unable to load config for runtime containerd: failed to parse config version: "
                     f"unsupported type for version field: {cfg['version']}")
        return 1
    log("info", f"Using config version {version}")
    log("info", f'Using CRI runtime plugin name "{kube.CRI_PLUGIN.get(version, "io.containerd.cri.v1.runtime")}"')
    if ver < (1, 18, 0) or version == 1:
        dropin = None
    else:
        dropin = opts.get("drop-in") or (DROPIN_DIR.get(ver[:2], "/etc/containerd/conf.d") + "/99-nvidia.toml")
    if dropin:
        cri_src = (cfg.get("plugins") or {}).get(kube.CRI_PLUGIN.get(version, "io.containerd.cri.v1.runtime")) or {}
        drop = {"version": version, "plugins": {kube.CRI_PLUGIN.get(version, "io.containerd.cri.v1.runtime"):
                                                copy.deepcopy(cri_src)}}
        _add_runtime(_cri_plugin(drop, version), opts)
        pattern = os.path.dirname(dropin) + "/*.toml"
        main_cfg = dict(main_file)
        imports = list(main_cfg.get("imports") or [])
        if pattern not in imports:
            imports.append(pattern)
        main_cfg["imports"] = imports
        main_cfg.setdefault("version", version)
        if opts.get("dry-run"):
            sys.stdout.write(tomlw.dumps(drop))
            return 0
        fs.write(path, tomlw.dumps(_ordered(main_cfg)))
        fs.write(dropin, tomlw.dumps(drop))
        log("info", f"Wrote updated config to {dropin}")
    else:
        _add_runtime(_cri_plugin(cfg, version), opts)
        cfg.setdefault("version", version)
        if opts.get("dry-run"):
            sys.stdout.write(tomlw.dumps(_ordered(cfg)))
            return 0
        fs.write(path, tomlw.dumps(_ordered(cfg)))
        log("info", f"Wrote updated config to {path}")
    log("info", "It is recommended that containerd daemon be restarted.")
    return 0


def _ordered(cfg):
    """go-toml writes keys sorted."""
    return {k: (_ordered(v) if isinstance(v, dict) else v) for k, v in sorted(cfg.items())}


def configure_crio(opts, ver):
    path = opts.get("drop-in") or opts.get("config") or "/etc/crio/crio.conf.d/99-nvidia.toml"
    name = opts.get("name") or "nvidia"
    cfg = {"crio": {"runtime": {"runtimes": {name: {"runtime_path": "/usr/bin/nvidia-container-runtime",
                                                    "runtime_type": "oci"}}}}}
    if opts.get("default"):
        cfg["crio"]["runtime"]["default_runtime"] = name
    fs.write(path, tomlw.dumps(cfg))
    log("info", f"Wrote updated config to {path}")
    log("info", "It is recommended that crio daemon be restarted.")
    return 0


def cmd_cdi(pos, opts_args):
    st = state.read()
    sub = pos[0] if pos else ""
    if sub == "list":
        spec = fs.read("/etc/cdi/nvidia.yaml") or fs.read("/var/run/cdi/nvidia.yaml")
        if spec is None:
            log("info", "Found 0 CDI devices")
            return 0
        gpus = state.node().get("gpus") or []
        log("info", f"Found {len(gpus) + 1} CDI devices")
        for i in range(len(gpus)):
            sys.stdout.write(f"nvidia.com/gpu={i}\n")
        sys.stdout.write("nvidia.com/gpu=all\n")
        return 0
    if sub != "generate":
        sys.stderr.write(f"No help topic for '{sub}'\n")
        return 3
    opts, _ = _parse(opts_args, {"output": ("str", "output"), "format": ("str", "format"),
                                 "device-name-strategy": ("list", "strategy"), "mode": ("str", "mode")})
    if "nvidia" not in (st.get("modules") or []) or not st.get("nvidia_driver"):
        log("error", "failed to generate CDI spec: failed to create device CDI specs: failed to initialize NVML: "
                     "ERROR_LIBRARY_NOT_FOUND")
        return 1
    gpus = state.node().get("gpus") or []
    driver = st["nvidia_driver"].get("version", "")
    lines = ["---", "cdiVersion: 0.5.0", "kind: nvidia.com/gpu", "devices:"]
    for i, _model in enumerate(gpus):
        lines += [f"- name: \"{i}\"", "  containerEdits:", "    deviceNodes:", f"    - path: /dev/nvidia{i}"]
    lines += ["- name: all", "  containerEdits:", "    deviceNodes:"]
    lines += [f"    - path: /dev/nvidia{i}" for i in range(len(gpus))]
    lines += ["containerEdits:", "  env:", "  - NVIDIA_VISIBLE_DEVICES=void", "  deviceNodes:",
              "  - path: /dev/nvidiactl", "  - path: /dev/nvidia-uvm", "  mounts:",
              f"  - hostPath: /usr/lib64/libnvidia-ml.so.{driver}",
              f"    containerPath: /usr/lib64/libnvidia-ml.so.{driver}"]
    text = "\n".join(lines) + "\n"
    log("info", "Generated CDI spec with version 0.5.0")
    if opts.get("output"):
        fs.write(opts["output"], text)
    else:
        sys.stdout.write(text)
    return 0


def main(argv):
    st = state.read()
    text = kube.package_version(st, "nvidia-container-toolkit-base", "nvidia-container-toolkit")
    ver = kube.parse_version(text)
    if ver is None:
        sys.stderr.write(f"{os.path.basename(argv[0])}: command not found\n")
        return 127
    args = list(argv[1:])
    if args[:1] in (["--version"], ["-v"], ["version"]):
        sys.stdout.write(f"NVIDIA Container Toolkit CLI version {text.split('-')[0]}\ncommit: 0000000\n")
        return 0
    glob_opts = []
    while args and args[0].startswith("-"):
        a = args.pop(0)
        if a.split("=")[0].lstrip("-") not in ("debug", "d", "quiet"):
            sys.stderr.write(f"Incorrect Usage: flag provided but not defined: -{a.lstrip('-').split('=')[0]}\n\n")
            return 1
        glob_opts.append(a)
    try:
        if args[:2] == ["runtime", "configure"]:
            opts, pos = _parse(args[2:], configure_flags(ver))
            if pos:
                raise Usage(f"unexpected arguments: {' '.join(pos)}")
            runtime = opts.get("runtime", "docker")
            if opts.get("config-source", "file") not in ("file", "command") and ver >= (1, 16, 0):
                log("error", f"unrecognized config source: {opts['config-source']}")
                return 1
            handler = {"docker": configure_docker, "containerd": configure_containerd, "crio": configure_crio}.get(runtime)
            if handler is None:
                log("error", f"unrecognized runtime '{runtime}'")
                return 1
            try:
                return handler(opts, ver)
            finally:
                kube.refresh_node()
        if args[:1] == ["cdi"]:
            pos = [a for a in args[1:] if not a.startswith("-")][:1]
            rest = [a for a in args[1:] if a not in pos]
            return cmd_cdi(pos, rest)
    except Usage as exc:
        msg = str(exc)
        if msg.startswith("runtime docker"):
            log("error", f"unable to configure runtime: {msg}")
        else:
            sys.stderr.write(f"Incorrect Usage: {msg}\n\n")
        return 1
    if not args:
        sys.stdout.write("NAME:\n   NVIDIA Container Toolkit CLI - Tools to configure the NVIDIA Container Toolkit\n")
        return 0
    sys.stderr.write(f"No help topic for '{args[0]}'\n")
    return 3


if __name__ == "__main__":  # pragma: no cover
    state.run_tool(main)
