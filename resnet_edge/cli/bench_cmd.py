"""``resnet-edge bench``: latency, throughput and memory of a bundle against eager FP32 PyTorch."""

from __future__ import annotations

from pathlib import Path

import click

from ..core import defaults
from ..core.io import write_atomic
from ..pipelines.bench import BenchOptions, check_options, parse_batch_sizes, run_bench
from ..pipelines.bench.scenarios import SCENARIOS, ScenarioOptions, scenario_bench
from ..core.errors import UsageError
from ..reports.bench import describe_conditions, describe_scenario, format_profile, format_table, render_plot
from ..reports.plots import check_plot_path, plot_format
from .options import command_line, device_option, report_option


@click.command()
@click.argument("bundle_dir", metavar="BUNDLE", type=click.Path(path_type=Path))
@click.option("--batch-sizes", default=",".join(map(str, defaults.BENCH_BATCH_SIZES)), show_default=True, metavar="N,N,...", help="Batch sizes to measure.")
@click.option("--warmup", default=defaults.BENCH_WARMUP, show_default=True, type=int, metavar="N", help="Untimed iterations per variant and batch size.")
@click.option("--iters", default=defaults.BENCH_ITERS, show_default=True, type=int, metavar="N", help="Timed iterations per variant and batch size.")
@click.option("--threads", type=int, metavar="N", help="CPU threads for PyTorch and ONNX Runtime (default: PyTorch's).")
@report_option()
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.png", help="Plot latency and throughput against batch size (.png, .svg or .pdf).")
@device_option(help="auto: the GPU for GPU-target bundles when one is visible.")
@click.option("--baseline/--no-baseline", default=True, show_default=True, help="Also measure eager FP32 PyTorch of the same arch, and give ratios to it.")
@click.option("--cuda-graphs", is_flag=True, help="On CUDA, also measure each variant's device-resident work replayed as a CUDA graph.")
@click.option("--rounds", default=defaults.BENCH_ROUNDS, show_default=True, type=int, metavar="N", help="Split the timed iterations into N rounds alternating the variants.")
@click.option("--scenario", type=click.Choice(SCENARIOS), help="Run an MLPerf-style scenario instead of the batch sweep.")
@click.option("--quick", is_flag=True, help="With --scenario: scale the minimums down (64 queries, 2 s); the report says so.")
@click.option("--target-qps", type=float, metavar="QPS", help="--scenario server: Poisson arrival rate.")
@click.option("--latency-bound-ms", default=100.0, show_default=True, type=float, metavar="MS", help="--scenario server: the p99 bound.")
@click.option("--energy", is_flag=True, help="With --scenario on a Jetson: joules per image from the INA3221 rails.")
@click.option("--profile", is_flag=True, help="Also a per-block time table (layer2.1...) from the runtime's own profiler, at the smallest batch size.")
def bench(bundle_dir: Path, batch_sizes: str, plot: Path | None, scenario: str | None, quick: bool, target_qps: float | None,
          latency_bound_ms: float, energy: bool, **options) -> None:
    """Measure a compiled BUNDLE the way an application calls it: host batch in, host logits out.

    Reports p50/p90/p99 latency, throughput and peak memory per batch size, for the bundle and for
    eager FP32 PyTorch of the same arch measured in the same run (speedup = its p50 / the bundle's p50).
    On CUDA also the device-resident latency (dev ms: input already on the GPU, logits left there).
    """
    command = command_line(click.get_current_context())
    if scenario is not None:
        if options["profile"]:
            raise UsageError("--profile times the batch sweep's blocks; drop it or --scenario")
        wanted = ScenarioOptions(scenario, quick, target_qps, latency_bound_ms, energy)
        report = scenario_bench(bundle_dir, options["device"], wanted, options["threads"], options["report"], command)
        for line in describe_scenario(report["scenario"]) + describe_conditions(report["conditions"]):
            click.echo(line)
        if options["report"] is not None:
            click.echo(f"report: {options['report']}")
        return
    bench_options = BenchOptions(bundle=bundle_dir, batch_sizes=parse_batch_sizes(batch_sizes), command=command, **options)
    check_options(bench_options)  # every usage error before any work, the plot's last as it always was
    check_plot_path(plot)
    result = run_bench(bench_options)
    written = dict(result.written)
    if plot is not None:
        written["plot"] = write_atomic(plot, render_plot(result.report, plot_format(plot)))
    click.echo(format_table(result.report))
    if "profile" in result.report:
        click.echo(format_profile(result.report["profile"]))
    for line in describe_conditions(result.report.get("conditions")):
        click.echo(line)
    for kind, path in written.items():
        click.echo(f"{kind}: {path}")
