#!/usr/bin/env python3
"""
What the pillar validator costs for a big cluster, as a ratio to a small one.

Builds a pillar like the shipped one (profiles.modern + a node list) with N
nodes: one control plane and N-1 workers on four OS releases (CentOS 7,
Ubuntu 18.04, Rocky 9, Ubuntu 22.04), GPUs of four generations, every 10th
node with overrides. Times, per size (median of the iterations):

* ``cluster``: ``check_pillar`` -- what ``salt-run cluster.validate`` does
  after Salt compiled the pillar (schema walk, cluster checks, every node's
  effective configuration, the GPU driver rules);
* ``render``: ``config_for`` for one worker -- what each state run does at
  render time (the whole cluster's schema walk and checks plus that node).

Prints both sizes and the ratios; the target is <= 2 s for 1000 nodes.

Usage::

    python bench/validate_bench.py [--sizes 5,1000] [--iterations 5] [--json out.json]
"""

import argparse
import json
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
TARGET_S = 2.0

OSES = ("CentOS Linux-7", "Ubuntu-18.04", "Rocky Linux-9", "Ubuntu-22.04")
GPUS = (["NVIDIA GeForce GTX 1080 Ti"], ["Tesla T4", "Tesla T4"], ["NVIDIA H200"], ["NVIDIA A100 80GB PCIe"])


def _load(relpath, name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / relpath)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def params():
    import yaml

    return {n: yaml.safe_load((ROOT / f"salt/parameters/{n}.yaml").read_text()) for n in ("defaults", "os_family", "osfinger")}


def pillar(n):
    """A valid pillar with n nodes (n >= 2)."""
    import yaml

    cfg = yaml.safe_load((ROOT / "pillar/profiles/modern.sls").read_text())["k8snvidia"]
    cfg["kubernetes"]["version"] = "1.35.1"
    cfg["cluster"] = {"name": "bench", "node_network": "10.0.0.0/16"}
    nodes = {"master-0": {"ip": "10.0.0.1", "role": "control-plane", "os": "Rocky Linux-9", "gpus": []}}
    for i in range(1, n):
        node = {
            "ip": f"10.0.{1 + i // 250}.{1 + i % 250}",
            "role": "worker",
            "os": OSES[i % len(OSES)],
            "gpus": list(GPUS[(i // 4) % len(GPUS)]),
        }
        if node["gpus"] == GPUS[0]:
            node["os"] = OSES[i % 2]  # Pascal nodes on the seed's OSes
        if i % 10 == 0:
            node["overrides"] = {"docker": {"data_root": f"/data/{i % 3}"}}
        nodes[f"node-{i:04d}"] = node
    cfg["nodes"] = nodes
    return cfg


def _median_s(func, iterations):
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(sizes, iterations):
    util = _load("_utils/k8snvidia.py", "bench_k8snvidia")
    gpu = _load("_utils/nvidia_gpu.py", "bench_nvidia_gpu")
    par = params()
    results = {}
    for n in sizes:
        cfg = pillar(n)
        found = util.check_pillar(par, cfg, gpu_check=gpu.driver_problems)
        if found["problems"]:
            raise SystemExit(f"bench pillar of {n} nodes is not valid: {found['problems'][:3]}")
        worker = sorted(k for k in cfg["nodes"] if k != "master-0")[0]
        grains = dict(util.grains_for(worker, cfg["nodes"][worker]), oscodename="bionic")
        results[n] = {
            "cluster_s": _median_s(lambda c=cfg: util.check_pillar(par, c, gpu_check=gpu.driver_problems), iterations),
            "render_s": _median_s(
                lambda c=cfg, w=worker, g=grains: util.config_for(par, c, w, g, gpu_check=gpu.driver_problems),
                iterations,
            ),
        }
    small, big = min(sizes), max(sizes)
    out = {
        "sizes": {str(n): r for n, r in results.items()},
        "ratio_cluster": results[big]["cluster_s"] / results[small]["cluster_s"],
        "ratio_render": results[big]["render_s"] / results[small]["render_s"],
        "target_s": TARGET_S,
        "within_target": results[big]["cluster_s"] <= TARGET_S and results[big]["render_s"] <= TARGET_S,
        "iterations": iterations,
    }
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="5,1000", help="comma-separated node counts (smallest is the base)")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",")})
    if len(sizes) < 2 or sizes[0] < 2:
        parser.error("--sizes needs two or more node counts, each >= 2")
    out = run(sizes, args.iterations)
    for n in sizes:
        r = out["sizes"][str(n)]
        print(f"{n:>6} nodes: cluster.validate checks {r['cluster_s'] * 1000:8.1f} ms   "
              f"render-time config_for {r['render_s'] * 1000:8.1f} ms")
    print(f"ratio {sizes[-1]}/{sizes[0]}: cluster {out['ratio_cluster']:.1f}x, render {out['ratio_render']:.1f}x; "
          f"target <= {TARGET_S:.0f} s at {sizes[-1]} nodes: {'met' if out['within_target'] else 'MISSED'}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
