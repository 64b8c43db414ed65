#!/bin/bash
# Run the nvidia grains and execution module through real Salt on a machine
# with real NVIDIA GPUs, beside nvidia-smi, and keep every output.
#
# Made for the `device` tool's H200 machines (Python 3.12, no network): Salt
# and the dependencies the image lacks travel as wheels in .whl/ (git-ignored;
# see docs/gpu-device-run.md for how they were made). From the repo root:
#
#     bash bench/device/gpu_check.sh            # outputs under $OUT (default /tmp/gpu-check)
#     SKIP_WHEELS=1 PYTHON=.venv/bin/python bash bench/device/gpu_check.sh   # dry run here
#     SKIP_BUSY=1 ...                           # without the busy-GPU part (needs torch)
#
# Outputs (at most 8 files, the device tool's limit):
#   gpu_check.log     every command with its rc and output, in order
#   salt.json         salt-call results: grains.item nvidia gpus num_gpus, nvidia.* functions
#   nvml-check.json   bench/device/nvml_check.py: the grain (NVML path and nvidia-smi fallback)
#                     field by field against --query-gpu and pynvml, and each source's cost
#   smi-q-x.xml       nvidia-smi -q -x (idle)
#   smi-q-x-busy.xml  nvidia-smi -q -x while a CUDA process holds GPU memory (not with SKIP_BUSY)
#   smi-cli.txt       -L, --query-gpu, --query-compute-apps, error cases (rc each)
#   host.txt          /proc/driver/nvidia/version, /proc/modules (nvidia/nouveau), sysfs PCI files,
#                     where libnvidia-ml and libcuda are
#   bench.json        bench/grains_bench.py --mode host (NVML), host with a missing NVML
#                     (the fallback) and --mode fixtures
set -u
REPO=$(pwd)
OUT=${OUT:-/tmp/gpu-check}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
LOG=$OUT/gpu_check.log
: >"$LOG"

run() {  # run CMD...: log the command, its output and rc
    echo "### \$ $*" >>"$LOG"
    local start=$(date +%s.%N)
    "$@" >>"$LOG" 2>&1
    local rc=$?
    echo "### rc=$rc seconds=$(echo "$(date +%s.%N) - $start" | bc 2>/dev/null || echo ?)" >>"$LOG"
    return $rc
}

if [ -z "${SKIP_WHEELS:-}" ]; then
    run $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site
fi
run $PY -c 'import sys, salt.version; print(sys.version); print("salt", salt.version.__version__)'
run uname -a
run nvidia-smi --version

# A minimal local minion using this repo's custom code.
CFG=/tmp/k8snvidia-salt
rm -rf "$CFG"
mkdir -p "$CFG/pillar" "$CFG/root"
cat >"$CFG/minion" <<EOF
root_dir: $CFG/root
id: gpu-check
file_client: local
file_roots: {base: [$REPO/salt]}
pillar_roots: {base: [$CFG/pillar]}
grains_dirs: [$REPO/_grains]
utils_dirs: [$REPO/_utils]
module_dirs: [$REPO/_modules]
log_level_logfile: info
EOF
cat >"$CFG/salt-call" <<EOF
#!/bin/sh
exec $PY -c 'import sys; sys.argv[0] = "salt-call"; import salt.scripts; salt.scripts.salt_call()' "\$@"
EOF
chmod +x "$CFG/salt-call"
SC="$CFG/salt-call --local -c $CFG --out=json --log-level=warning"

{
    echo "{"
    first=1
    for call in "grains.item nvidia gpus num_gpus" "nvidia.gpus" "nvidia.driver" "nvidia.processes" \
                "nvidia.recommended" "nvidia.inventory" "nvidia.driver_problems 590.44.01" \
                "match.grain nvidia:gpus:name:*H200*" "match.grain nvidia:gpu_count:1" "grains.get nvidia:gpus:0:architecture"; do
        res=$($SC $call 2>>"$LOG")
        rc=$?
        [ $first = 1 ] || echo ","
        first=0
        printf '"%s": {"rc": %d, "out": %s}' "$call" $rc "${res:-null}"
    done
    echo "}"
} >"$OUT/salt.json"
run cat "$OUT/salt.json"
run bash -c "time $SC grains.item nvidia >/dev/null"
run $PY bench/device/nvml_check.py --json "$OUT/nvml-check.json"

# nvidia-smi itself
run bash -c "nvidia-smi -q -x > $OUT/smi-q-x.xml"
run bash -c "for i in 1 2 3; do time nvidia-smi -q -x >/dev/null; done"
# what the cheaper queries cost beside -q -x (the grain's fallback is the first)
QUERY="--query-gpu=index,pci.bus_id,pci.device_id,name,uuid,memory.total,driver_version,compute_cap,mig.mode.current"
run bash -c "for i in 1 2 3; do time nvidia-smi $QUERY --format=csv,noheader,nounits >/dev/null; done"
run bash -c "for i in 1 2 3; do time nvidia-smi --query-gpu=index,name,pci.bus_id,uuid,memory.total --format=csv,noheader >/dev/null; done"
run bash -c "for i in 1 2 3; do time nvidia-smi -L >/dev/null; done"
{
    for args in "-L" \
                "--query-gpu=index,name,pci.bus_id,uuid,memory.total,driver_version --format=csv" \
                "--query-gpu=index,name,pci.bus_id,uuid,memory.total,driver_version --format=csv,noheader,nounits" \
                "--query-gpu=pci.device_id,count,memory.used,memory.free --format=csv" \
                "$QUERY --format=csv" "$QUERY --format=csv,noheader,nounits" \
                "--query-gpu=compute_cap,mig.mode.current,mig.mode.pending --format=csv" \
                "--query-compute-apps=pid,process_name,used_memory,gpu_uuid,gpu_bus_id --format=csv" \
                "--query-gpu=name" "--query-gpu=foo --format=csv" "--bogus" "-x" "-i 7 -L"; do
        echo "### \$ nvidia-smi $args"
        nvidia-smi $args 2>&1
        echo "### rc=$?"
    done
    echo "### \$ nvidia-smi (summary)"
    nvidia-smi 2>&1
    echo "### rc=$?"
} >"$OUT/smi-cli.txt"

# the host files the grain reads
{
    for f in /proc/driver/nvidia/version /proc/driver/nvidia/params; do
        echo "### $f"; head -5 "$f" 2>&1
    done
    echo "### /proc/modules (nvidia, nouveau)"; grep -E '^(nvidia|nouveau)' /proc/modules 2>&1
    echo "### lspci"; command -v lspci || echo "lspci: not installed"
    for d in /sys/bus/pci/devices/*; do
        v=$(cat "$d/vendor" 2>/dev/null)
        [ "$v" = "0x10de" ] || continue
        echo "### $d"
        echo "vendor=$v device=$(cat "$d/device") class=$(cat "$d/class") driver=$(readlink "$d/driver" 2>/dev/null)"
    done
    echo "### ls /sys/bus/pci/devices | wc -l"; ls /sys/bus/pci/devices 2>&1 | wc -l
    echo "### ldconfig -p (libnvidia-ml, libcuda)"; ldconfig -p 2>&1 | grep -E 'libnvidia-ml|libcuda\.'
    echo "### ls -l /usr/local/nvidia/lib64 (libnvidia-ml, libcuda)"
    ls -l /usr/local/nvidia/lib64 2>&1 | grep -E 'libnvidia-ml|libcuda\.'
    echo "### LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
    echo "### cc"; command -v cc gcc 2>&1
} >"$OUT/host.txt" 2>&1

# a busy GPU: one CUDA process holding memory, then -q -x and nvidia.processes
[ -n "${SKIP_BUSY:-}" ] || {
$PY -c 'import torch, time; x = torch.empty(2**30, dtype=torch.uint8, device="cuda"); print("holding", flush=True); time.sleep(40)' \
    >"$CFG/busy.log" 2>&1 &
BUSY=$!
for _ in $(seq 1 30); do
    grep -q holding "$CFG/busy.log" 2>/dev/null && break
    kill -0 "$BUSY" 2>/dev/null || break
    sleep 1
done
run cat "$CFG/busy.log"
run bash -c "nvidia-smi -q -x > $OUT/smi-q-x-busy.xml"
run $SC nvidia.processes
run nvidia-smi --query-compute-apps=pid,process_name,used_memory,gpu_uuid,gpu_bus_id --format=csv
kill "$BUSY" 2>/dev/null
wait "$BUSY" 2>/dev/null
}

# the benchmark: this host, then the fixtures
{
    echo '{"host":'
    $PY bench/grains_bench.py --mode host --iterations "${BENCH_ITERATIONS:-10}" 2>>"$LOG" || echo null
    echo ', "host_fallback":'
    $PY bench/grains_bench.py --mode host --iterations "${BENCH_ITERATIONS:-10}" \
        --nvml-library /nonexistent/libnvidia-ml.so.1 2>>"$LOG" || echo null
    echo ', "fixtures":'
    $PY bench/grains_bench.py --mode fixtures --iterations "${BENCH_ITERATIONS:-10}" 2>>"$LOG" || echo null
    echo '}'
} >"$OUT/bench.json"
echo "### done" >>"$LOG"
ls -la "$OUT" >>"$LOG"
