"""The bundle's own overhead on CUDA, from a ``bench --device cuda --cuda-graphs`` report (issue 21 item 3).

    python benchmarks/bundle_overhead.py REPORT.json [--batch 1] [--max-overhead 0.10]

Compares the device-resident p50 (input already on the GPU, logits left there: bench's ``device_ms``) of
the bundle under a CUDA graph with the raw fused model's under a graph, which bench measures beside a
fused bundle. Exit 1 when the bundle adds more than ``--max-overhead``; exit 2 when the report lacks the
figures (a CPU run, a bench without --cuda-graphs, an unfused bundle).
"""

from __future__ import annotations

import argparse
import json
import sys

GRAPH = "-cudagraphs"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--max-overhead", type=float, default=0.10)
    args = parser.parse_args()
    report = json.load(open(args.report))
    device = {entry["variant"]: entry.get("device_ms") for entry in report["results"] if entry["batch"] == args.batch}
    bundle = f"{report['bundle']['backend']}-{report['bundle']['precision']}{GRAPH}" if "bundle" in report else None
    raw = next((name for name in device if name.startswith("fused-") and name.endswith(GRAPH)), None)
    if bundle is None or not device.get(bundle) or raw is None or not device.get(raw):
        print(f"error: {args.report} has no device-resident figures of the bundle and the raw fused model under a "
              f"CUDA graph at batch {args.batch} (variants: {', '.join(device) or 'none'})", file=sys.stderr)
        return 2
    ours, theirs = device[bundle]["p50"], device[raw]["p50"]
    overhead = ours / theirs - 1
    print(f"batch {args.batch}, device-resident p50 under a CUDA graph: bundle ({bundle}) {ours:.3f} ms, raw fused "
          f"model ({raw}) {theirs:.3f} ms: the bundle adds {overhead:+.1%} (target <= {args.max_overhead:+.0%})")
    return 0 if overhead <= args.max_overhead else 1


if __name__ == "__main__":
    sys.exit(main())
