"""Every default the library and the command line share, in one place.

The click options (``resnet_edge.cli.options``) show these values; the library's option dataclasses
use them. Change a default here and both follow.
"""

from __future__ import annotations

# What can be built, and for where.
PRECISIONS = ("fp32", "fp16", "bf16", "int8")
HALF_PRECISIONS = ("fp16", "bf16")  # 16-bit floats: built and run on a GPU by the backends that offer them
TARGETS = ("cpu", "datacenter", "jetson-orin", "jetson-xavier")
BACKEND = "auto"


def precision_flags() -> str:
    """The compile command's precision flags as a sentence: ``--fp32, --fp16, --bf16 or --int8``."""
    flags = [f"--{name}" for name in PRECISIONS]
    return f"{', '.join(flags[:-1])} or {flags[-1]}"
DEVICE = "auto"

# INT8 calibration.
# "auto" scores every range rule on held-out calibration images and keeps the best (quantize/auto.py);
# the methods are "auto" and the range rules (quantize/ranges.py: RANGE_RULES, CALIBRATION_METHODS).
CALIB_METHOD = "auto"
CALIB_IMAGES = 512
CALIB_SEED = 0
CALIB_SPLIT = "train"
# The attribute the ModelOpt residual-add quantizer gets on a ResNet block: quantize/ creates it,
# fuse/int8.py reads its range (a name both layers share, so it lives below both).
RESIDUAL_QUANTIZER = "residual_quantizer"

# validate.
MAX_TOP1_DROP = 1.0
MIN_AGREEMENT = 0.99
BASELINE_TOLERANCE = 0.5
VALIDATE_BATCH = 32
VALIDATE_WORKERS = 0
WORST_CLASSES = 5

# bench.
BENCH_BATCH_SIZES = (1, 8, 32)
BENCH_WARMUP = 10
BENCH_ITERS = 100
BENCH_ROUNDS = 5

# sensitivity.
SENSITIVITY_MODES = ("only", "revert", "both")
SENSITIVITY_MODE = "both"

# train (the paper's recipe; the learning rate follows from the batch, see resnet_edge.train).
TRAIN_EPOCHS = 30
TRAIN_BATCH = 128
TRAIN_WEIGHT_DECAY = 1e-4
TRAIN_MOMENTUM = 0.9
TRAIN_SCHEDULES = ("step", "plateau")
TRAIN_SCHEDULE = "step"
TRAIN_WORKERS = 2
SEED = 0

# demo.
DEMO_OUT = "runs/demo"
DEMO_EPOCHS = 12

# diagnose.
DIAGNOSE_IMAGES = 64
DIAGNOSE_MIN_SQNR = 20.0  # dB: a block output whose noise is above a tenth of its amplitude has diverged
DIAGNOSE_MAX_SQNR_DROP = 6.0  # dB: ... or whose SQNR fell this much (noise doubled) since the previous block
