"""``resnet-edge bench``: latency, throughput and memory of a bundle, against eager FP32 PyTorch.

What is measured is what an application pays: a float32 NCHW batch on the host goes in, float32
logits on the host come out (``Bundle.predict``; host-to-device copies, padding to the artifact's batch
range and the copy back included). On CUDA each variant is also timed device-resident (``resident``:
input already on the GPU, logits left there, CUDA events), beside a fused bundle the raw fused model
too, so the copies and the bundle's own casts and padding show. ``--cuda-graphs`` adds, for every
variant with device-resident work, a variant that replays a captured CUDA graph of it (``cudagraphs``).

In the same run, the eager FP32 PyTorch model of the same architecture (``pytorch-fp32``, BatchNorm
unfolded, exactly as ``model.eval()`` runs it) is measured as the baseline, and every figure is also
given as a ratio to it (``speedup`` = baseline p50 / this p50), so results hold on noisy machines
(``timing``: rounds alternate the variants). On the CPU the bundle's model is also timed under every
other installed runtime that reads it, each in a process of its own (``variants.ForeignRuntime``), so
no runtime's thread pool disturbs another's. Memory: see ``memory``.

Steps (``run.run_bench``): check options -> read manifest -> memory, one variant loaded at a time ->
timing, all loaded -> ratios -> report (``report``). Rendering the table and the plot is
``resnet_edge.reports.bench``'s job. The report's schema is in ``docs/validate-report.md``.
"""

from .options import BASELINE_VARIANT, REPORT_SCHEMA, REPORT_VERSION, BenchOptions, BenchResult, check_options, parse_batch_sizes
from .run import run_bench

__all__ = [
    "BASELINE_VARIANT",
    "REPORT_SCHEMA",
    "REPORT_VERSION",
    "BenchOptions",
    "BenchResult",
    "check_options",
    "parse_batch_sizes",
    "run_bench",
]
