#!/usr/bin/env bash
# Every CPU figure of the README's "Measured figures" in one command, on an otherwise idle machine:
#
#     benchmarks/cpu_suite.sh [OUT_DIR]      (default runs/cpu-suite; after `make demo` and `make cpp`)
#
# Writes one log per step plus JSON reports into OUT_DIR and prints the machine and commit first,
# so a table can be traced back to the run that produced it. Takes about 20 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-runs/cpu-suite}"
PY=.venv/bin/python
CLI=.venv/bin/resnet-edge
mkdir -p "$OUT"

step() {  # step NAME COMMAND...: run one benchmark, echo its output and keep it in OUT/NAME.log
    local name=$1
    shift
    echo "== $name: $*"
    "$@" 2>&1 | tee "$OUT/$name.log"
}

{
    echo "commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (dirty)')"
    echo "cpu $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
    $PY -c 'import torch, onnxruntime; print("torch", torch.__version__, "onnxruntime", onnxruntime.__version__)'
} | tee "$OUT/machine.txt"

test -d runs/demo/bundle || { echo "runs/demo/bundle is missing: run make demo first" >&2; exit 2; }

step cpu_backends $PY benchmarks/cpu_backends.py --arch resnet50 --batch 1 --rounds 15 --json "$OUT/cpu_backends.json"
step fused_ops $PY benchmarks/fused_ops.py --arch resnet18 resnet50 --batch 1 8 --json "$OUT/fused_ops.json"
step bench_demo_1thread $CLI bench runs/demo/bundle --batch-sizes 1,8,32 --threads 1 --report "$OUT/bench_demo_1thread.json"
step compile_resnet50_int8 $CLI compile --arch resnet50 --random-weights --int8 --calib-data shapes \
    --calib-images 64 --out "$OUT/resnet50-int8" --force
step bench_resnet50_1thread $CLI bench "$OUT/resnet50-int8" --batch-sizes 1,8,32 --iters 30 --threads 1 \
    --report "$OUT/bench_resnet50_1thread.json"
step bench_resnet50_2threads $CLI bench "$OUT/resnet50-int8" --batch-sizes 1,8,32 --iters 30 --threads 2 \
    --report "$OUT/bench_resnet50_2threads.json"
if test -x build/cpp/resnet-edge-infer; then
    step cpp_vs_python $PY benchmarks/cpp_vs_python.py --threads 1 --work "$OUT/cpp_vs_python"
else
    echo "== cpp_vs_python skipped: build/cpp/resnet-edge-infer is missing (make cpp)"
fi
echo "logs and reports: $OUT"
