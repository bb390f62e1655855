#!/usr/bin/env bash
# The paper's degradation experiment (He et al. 2015, §4.2, Figure 6) on this machine:
#
#     benchmarks/paper_degradation.sh [cifar10:DIR]
#
# Trains plain-20, plain-56, ResNet-20 and ResNet-56 with the paper's CIFAR recipe (batch 128, lr 0.1
# divided by 10 at 50% and 75% of the run, momentum 0.9, weight decay 1e-4, pad-and-crop + flip) and
# draws training and validation error with `resnet-edge curves`.
#   cifar10:DIR   the CIFAR-10 python batches; 164 epochs by default (the paper's 64k iterations of 128
#                 images over 50k training images). Days on a CPU; hours on one GPU.
#   (no argument) the built-in procedural shapes set (installs with the package), 20 epochs by default
#                 (hours on 2 CPU cores): not CIFAR-10, so its errors are not the paper's; the ordering is
#                 the point, and a run this short may not show it.
# Environment: EPOCHS (override the epoch count), OUT (default runs/paper-degradation), SHAPES_SIZE
# (training images of the shapes set, default 2400), WORKERS (DataLoader workers, default 2).
# Writes OUT/<arch>/ (each run), OUT/<arch>.log, OUT/times.txt (wall seconds per run), OUT/machine.txt,
# OUT/degradation.png and OUT/degradation.json.
set -euo pipefail
cd "$(dirname "$0")/.."
CLI=.venv/bin/resnet-edge
OUT="${OUT:-runs/paper-degradation}"
WORKERS="${WORKERS:-2}"
ARCHS=(plain20 plain56 resnet20 resnet56)

if [ $# -gt 1 ] || { [ $# -eq 1 ] && [[ "$1" != cifar10:* ]]; }; then
    echo "error: pass cifar10:DIR (the CIFAR-10 python batches) or nothing for the built-in shapes set" >&2
    exit 2
fi
if [ $# -eq 1 ]; then
    DATA=$1
    EPOCHS="${EPOCHS:-164}"
    echo "== CIFAR-10 from ${DATA#cifar10:}: the paper's recipe, $EPOCHS epochs per net"
else
    DATA="shapes:${SHAPES_SIZE:-2400}"
    EPOCHS="${EPOCHS:-20}"
    echo "== no cifar10:DIR given: training on the built-in shapes set ($DATA) for $EPOCHS epochs instead;"
    echo "   the paper's figures are for CIFAR-10 at 164 epochs, so compare the ordering, not the errors"
fi
mkdir -p "$OUT"
{
    echo "commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (dirty)')"
    echo "cpu $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "data $DATA, $EPOCHS epochs, batch 128, $WORKERS workers"
} | tee "$OUT/machine.txt"

: > "$OUT/times.txt"
for arch in "${ARCHS[@]}"; do
    echo "== train $arch"
    started=$(date +%s)
    "$CLI" train --arch "$arch" --data "$DATA" --epochs "$EPOCHS" --batch-size 128 --workers "$WORKERS" \
        --out "$OUT/$arch" --force 2>&1 | tee "$OUT/$arch.log"
    echo "$arch $(( $(date +%s) - started )) s" | tee -a "$OUT/times.txt"
done

echo "== curves"
"$CLI" curves "${ARCHS[@]/#/$OUT/}" --plot "$OUT/degradation.png" --report "$OUT/degradation.json"
