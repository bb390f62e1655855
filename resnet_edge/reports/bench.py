"""The bench report rendered: the table the CLI prints and the latency/throughput plot."""

from __future__ import annotations

from ..pipelines.bench import BASELINE_VARIANT
from ..pipelines.bench.cudagraphs import SUFFIX as GRAPH_SUFFIX
from ..pipelines.bench.resident import RAW_FUSED_PREFIX
from .plots import figure_bytes, figure_class


def format_table(report: dict) -> str:
    """The results as a human-readable table (what the CLI prints); on CUDA with a ``dev ms`` column
    (device-resident p50) and, beside a raw fused model, what the bundle adds to it under a CUDA graph."""
    bundle, settings = report["bundle"], report["settings"]
    on_cuda = settings["device"] == "cuda"
    lines = [
        f"bench {bundle['path']}",
        f"  {bundle['arch']} {bundle['precision']} {bundle['backend']} (target {bundle['target']}), input {'x'.join(map(str, bundle['input_shape']))}; "
        f"{report['machine']['description']}, {settings['threads']} thread(s)",
        f"  {settings['iters']} timed iterations per point ({settings['warmup']} warm-up), host batch to host logits"
        + ("; dev ms: input already on the GPU, logits left there (CUDA events)" if on_cuda else ""),
        "",
        f"  {'variant':<28}{'batch':>6}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}{'img/s':>10}{'peak MB':>9}{'speedup':>9}"
        + (f"{'dev ms':>10}" if on_cuda else ""),
    ]
    for entry in sorted(report["results"], key=lambda e: (e["batch"], e["variant"] != BASELINE_VARIANT, e["variant"])):
        speedup = "n/a" if entry["speedup"] is None else f"{entry['speedup']:.2f}x"
        memory = "n/a" if entry["peak_mem_mb"] is None else f"{entry['peak_mem_mb']:.0f}"
        throughput = "n/a" if entry["throughput"] is None else f"{entry['throughput']:.1f}"
        lines.append(
            f"  {entry['variant']:<28}{entry['batch']:>6}{entry['p50_ms']:>10.3f}{entry['p90_ms']:>10.3f}{entry['p99_ms']:>10.3f}"
            f"{throughput:>10}{memory:>9}{speedup:>9}" + (f"{_device_p50(entry):>10}" if on_cuda else "")
        )
    lines += _overhead_lines(report)
    for name, reason in report.get("failed_variants", {}).items():
        lines.append(f"  {name}: not measured ({reason})")
    if bundle.get("random_weights"):
        lines.append("  (random-weights bundle: speed only)")
    return "\n".join(lines)


def _device_p50(entry: dict) -> str:
    resident = entry.get("device_ms")
    return "n/a" if not resident else f"{resident['p50']:.3f}"


def _overhead_lines(report: dict) -> list[str]:
    """Per batch size: the bundle's device-resident p50 against the raw fused model's, both as CUDA
    graphs when measured so (else both eager): what the bundle's padding, casts and layout changes cost."""
    bundle = report["bundle"]
    by_name = {(entry["variant"], entry["batch"]): entry for entry in report["results"] if entry.get("device_ms")}
    lines = []
    for suffix in (GRAPH_SUFFIX, ""):
        ours_name, raw_name = f"{bundle['backend']}-{bundle['precision']}{suffix}", f"{RAW_FUSED_PREFIX}{bundle['precision']}{suffix}"
        for size in report["settings"]["batch_sizes"]:
            ours, raw = by_name.get((ours_name, size)), by_name.get((raw_name, size))
            if ours is None or raw is None:
                continue
            over = ours["device_ms"]["p50"] / raw["device_ms"]["p50"] - 1 if raw["device_ms"]["p50"] else float("nan")
            lines.append(f"  batch {size}: {ours_name} {ours['device_ms']['p50']:.3f} ms device-resident vs {raw_name} "
                         f"{raw['device_ms']['p50']:.3f} ms: the bundle adds {over:+.1%}")
        if lines:
            return lines
    return lines


def render_plot(report: dict, fmt: str = "png") -> bytes:
    """Latency (p50, with the p90-p99 band) and throughput against batch size, one line per variant."""
    figure = figure_class()(figsize=(10, 4.2), layout="constrained")
    latency_ax, throughput_ax = figure.subplots(1, 2)
    for name in dict.fromkeys(entry["variant"] for entry in report["results"]):
        entries = sorted((e for e in report["results"] if e["variant"] == name), key=lambda e: e["batch"])
        batches = [e["batch"] for e in entries]
        style = "--" if name == BASELINE_VARIANT else "-"
        (line,) = latency_ax.plot(batches, [e["p50_ms"] for e in entries], style, marker="o", label=name)
        latency_ax.fill_between(batches, [e["p90_ms"] for e in entries], [e["p99_ms"] for e in entries], color=line.get_color(), alpha=0.15)
        throughput_ax.plot(batches, [e["throughput"] or 0 for e in entries], style, marker="o", color=line.get_color(), label=name)
    sizes = report["settings"]["batch_sizes"]
    for ax, label in ((latency_ax, "latency p50 per batch (ms); band: p90-p99"), (throughput_ax, "throughput (images/s)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch size")
        ax.set_ylabel(label)
        ax.set_xticks(sizes, [str(b) for b in sizes])
        ax.grid(True, alpha=0.3)
        ax.legend()
    bundle = report["bundle"]
    figure.suptitle(
        f"{bundle['arch']} {bundle['precision']} {bundle['backend']} vs eager FP32 - {report['machine']['description']}, "
        f"{report['settings']['threads']} thread(s)",
        fontsize=9,
    )
    return figure_bytes(figure, fmt)


def format_profile(section: dict) -> str:
    """The ``profile`` section as a table: milliseconds and share of the profiled run per block, in execution order."""
    if not section.get("supported"):
        return f"profile: not available ({section.get('reason', 'no profiler')})"
    lines = [
        f"profile ({section['backend']}'s profiler, batch {section['batch']}, mean of {section['iters']} runs; "
        f"profiler overhead included, the sweep above is the figure of record)",
        f"  {'block':<16}{'ms':>10}{'share':>8}",
    ]
    for row in section["blocks"]:
        share = "n/a" if row["percent"] is None else f"{row['percent']:.1f}%"
        lines.append(f"  {row['block']:<16}{row['ms']:>10.3f}{share:>8}")
    lines.append(f"  {'total':<16}{section['total_ms']:>10.3f}")
    if section.get("missing"):
        lines.append(f"  no time charged to: {', '.join(section['missing'])} (fused into a neighbour)")
    return "\n".join(lines)


def describe_conditions(conditions: dict | None) -> list[str]:
    """A bench report's ``conditions`` as lines for the bench table (none for a report without conditions)."""
    if not conditions:
        return []
    cpu = conditions["cpu"]
    freq = cpu["cur_khz"]
    lines = [f"conditions: {cpu['model']}, governor {cpu['governor'] or '?'}, "
             f"{'%d-%d MHz' % (freq['min'] // 1000, freq['max'] // 1000) if freq else '? MHz'} (max {cpu['max_khz'] // 1000 if cpu['max_khz'] else '?'} MHz), "
             f"{conditions['threads']} thread(s), load {conditions['load_before']} -> {conditions['load_after']}"]
    jetson = conditions.get("jetson")
    if jetson is not None:
        gpu, emc = jetson.get("gpu") or {}, jetson.get("emc") or {}
        mode = jetson.get("nvpmodel") or {}
        hottest = max(jetson["temperatures_c"].values(), default=None)
        lines.append(f"jetson: L4T {jetson['l4t']}, nvpmodel {mode.get('id')} ({mode.get('name')}), jetson_clocks "
                     f"{'on' if jetson['jetson_clocks'] else 'off'}, GPU {gpu.get('cur_hz', 0) // 1_000_000} MHz, "
                     f"EMC {emc.get('rate_hz', 0) // 1_000_000} MHz, hottest {hottest} C, throttle {jetson['throttle'] or 'none'}")
    return lines


def describe_scenario(result: dict) -> list[str]:
    """A ``bench --scenario`` result as lines for the terminal."""
    name = result["scenario"]
    head = f"scenario {name}" + (" (scaled down with --quick: not a valid MLPerf-style result)" if result["scaled_down"] else "")
    if name == "single-stream":
        body = f"  p90 {result['p90_ms']:.3f} ms over {result['queries']} queries in {result['seconds']:.1f} s"
    elif name == "offline":
        body = f"  {result['throughput']:.1f} img/s at batch {result['best_batch']} (by batch: {result['throughput_by_batch']})"
    else:
        held = "held" if result["bound_held"] else "NOT held"
        body = (f"  p99 {result['p99_ms']:.3f} ms at {result['target_qps']} QPS (achieved {result['achieved_qps']}): "
                f"latency bound {result['latency_bound_ms']} ms {held}")
    lines = [head, body]
    energy = result.get("energy")
    if energy:
        lines.append(f"  energy: {energy['joules_per_image']} J/image" if energy["joules"] is not None else f"  energy: {energy['note']}")
    return lines
