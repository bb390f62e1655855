"""``resnet-edge bench``: the report's fields, ratios to the eager baseline, the plot, and usage errors.

Timing is measured by the command, never asserted here: the tests run a handful of iterations and
check the report's structure only.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from resnet_edge.backends import backend_availability
from resnet_edge.cli import main
from resnet_edge.core.errors import CheckFailed, UsageError
from resnet_edge.core.io import write_atomic
from resnet_edge.core.logs import collect_warnings
from resnet_edge.pipelines.bench import BASELINE_VARIANT, BenchOptions, parse_batch_sizes, run_bench
from resnet_edge.pipelines.bench.timing import warm_up
from resnet_edge.pipelines.bench.variants import Variant
from resnet_edge.pipelines.compile import CompileOptions, compile_bundle
from resnet_edge.reports.bench import format_table, render_plot

REPO = Path(__file__).resolve().parents[2]
# The ONNX Runtime bundle's model.onnx also runs under OpenVINO when it is installed (bench's runtime list).
OTHER_RUNTIMES = ("openvino-fp32-of-onnxruntime",) if backend_availability("openvino")[0] else ()
ENTRY_KEYS = {"variant", "batch", "p50_ms", "p90_ms", "p99_ms", "throughput", "peak_mem_mb", "speedup"}


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory) -> Path:
    """Speed does not depend on the weights: a random-weights FP32 ResNet-20 with ONNX Runtime."""
    out = tmp_path_factory.mktemp("bench") / "r20-fp32"
    compile_bundle(CompileOptions(arch="resnet20", random_weights=True, precision="fp32", backend="onnxruntime", out=out))
    return out


@pytest.fixture(scope="module")
def cli_run(small_bundle, tmp_path_factory):
    directory = tmp_path_factory.mktemp("bench-run")
    result = run_cli("bench", small_bundle, "--batch-sizes", "1,4", "--warmup", 1, "--iters", 4, "--rounds", 2, "--threads", 1,
                     "--report", directory / "bench.json", "--plot", directory / "bench.png")
    return result, directory


def test_report_has_one_entry_per_variant_and_batch(cli_run):
    result, directory = cli_run
    assert result.exit_code == 0, result.output
    report = json.loads((directory / "bench.json").read_text())
    assert report["schema"] == "resnet-edge-bench-report" and report["schema_version"] == 1
    entries = report["results"]
    assert sorted((e["variant"], e["batch"]) for e in entries) == sorted(
        (variant, batch) for variant in (BASELINE_VARIANT, "onnxruntime-fp32", *OTHER_RUNTIMES) for batch in (1, 4)
    )
    for entry in entries:
        assert set(entry) >= ENTRY_KEYS, set(ENTRY_KEYS) - set(entry)
        assert entry["iters"] == 4 and entry["device"] == "cpu"
        assert 0 < entry["p50_ms"] <= entry["p90_ms"] <= entry["p99_ms"]
        assert entry["throughput"] == pytest.approx(entry["batch"] * 1000 / entry["p50_ms"], rel=1e-3)
        assert entry["peak_mem_mb"] is not None and entry["peak_mem_mb"] >= 0
        assert entry["speedup"] > 0 and set(entry["ratios"]) == {"p50", "p90", "p99", "throughput", "peak_mem"}
    for entry in entries:
        if entry["variant"] == BASELINE_VARIANT:
            assert entry["speedup"] == 1.0
        else:
            base = next(e for e in entries if e["variant"] == BASELINE_VARIANT and e["batch"] == entry["batch"])
            assert entry["speedup"] == pytest.approx(base["p50_ms"] / entry["p50_ms"], rel=1e-3)
            assert entry["artifact_calls"] == 1


def test_report_records_machine_and_versions(cli_run):
    _, directory = cli_run
    report = json.loads((directory / "bench.json").read_text())
    assert report["machine"]["cpu"] and report["machine"]["threads"] == 1 and "gpu" in report["machine"]
    assert report["versions"]["torch"] and report["versions"]["onnxruntime"]
    assert report["settings"]["batch_sizes"] == [1, 4] and report["settings"]["rounds"] == 2
    assert report["bundle"]["random_weights"] is True
    doc = (REPO / "docs" / "validate-report.md").read_text().split("## `resnet-edge bench` report")[1].split("## `resnet-edge sensitivity`")[0]
    documented = {name.strip("` ") for line in doc.splitlines() if line.startswith("| `") for name in line.split("|")[1].split(",")}
    assert set(report) <= documented, set(report) - documented
    assert set(report["results"][0]) <= documented | {"ratios"}, set(report["results"][0]) - documented


def test_plot_is_a_png_and_table_is_printed(cli_run):
    result, directory = cli_run
    assert (directory / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "speedup" in result.output and BASELINE_VARIANT in result.output and "onnxruntime-fp32" in result.output
    assert not [p for p in directory.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_api_without_baseline_and_svg_plot(small_bundle, tmp_path):
    result = run_bench(BenchOptions(bundle=small_bundle, batch_sizes=(2,), warmup=0, iters=2, rounds=1, baseline=False, memory=False,
                                     runtimes=False))
    write_atomic(tmp_path / "p.svg", render_plot(result.report, "svg"))  # the CLI's --plot, rendered by reports.bench
    (entry,) = result.report["results"]
    assert entry["variant"] == "onnxruntime-fp32" and entry["speedup"] is None and entry["peak_mem_mb"] is None
    assert (tmp_path / "p.svg").read_text().lstrip().startswith("<?xml")
    assert "n/a" in format_table(result.report)


def test_runtime_list_has_each_other_cpu_runtime_that_reads_the_model(small_bundle):
    from resnet_edge.bundle import read_manifest
    from resnet_edge.pipelines.bench.variants import foreign_runtimes

    variants = [variant for variant in (runtime.load() for runtime in foreign_runtimes(small_bundle, read_manifest(small_bundle)))
                if variant is not None]
    assert [v.name for v in variants] == list(OTHER_RUNTIMES)
    batch = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))

    from resnet_edge import bundle

    expected = bundle.load(small_bundle).predict(batch)
    for variant in variants:
        assert variant.device == "cpu" and variant.batch_range == (1, 64)
        assert (variant.run(batch) - expected).abs().max() <= 1e-4 * expected.abs().max()


def test_runtime_list_loads_nothing_and_each_load_builds_once(small_bundle, monkeypatch):
    """Listing the other runtimes builds no predictor; each load builds exactly one."""
    from resnet_edge.backends import Backend, get_backend, list_backends
    from resnet_edge.bundle import read_manifest
    from resnet_edge.pipelines.bench.variants import foreign_runtimes

    calls: list[str] = []
    for name in list_backends():
        cls = type(get_backend(name))
        original = cls.foreign_predictor if "foreign_predictor" in vars(cls) else Backend.foreign_predictor

        def counted(self, path, manifest, original=original):
            calls.append(self.name)
            return original(self, path, manifest)

        monkeypatch.setattr(cls, "foreign_predictor", counted)
    runtimes = foreign_runtimes(small_bundle, read_manifest(small_bundle))
    assert calls == []
    for runtime in runtimes:
        runtime.load()
    assert sorted(calls) == sorted(runtime.backend for runtime in runtimes)


def test_parse_batch_sizes():
    assert parse_batch_sizes("1, 8,32,8") == (1, 8, 32)
    for bad in ("", "0", "1,x", "-1"):
        with pytest.raises(UsageError):
            parse_batch_sizes(bad)


def test_a_cuda_graph_that_cannot_be_captured_is_left_out_with_a_warning():
    def broken(batch):
        raise RuntimeError("capture failed\nmore detail")

    batch = torch.zeros(2, 3, 4, 4)
    ok = Variant(BASELINE_VARIANT, "eager", "cpu", lambda b: b)
    graph = Variant(f"{BASELINE_VARIANT}-cudagraphs", "replayed", "cuda", broken)
    failed: dict[str, str] = {}
    with collect_warnings() as warnings:
        assert warm_up([ok, graph], batch, 1, failed) == [ok]
    assert failed == {graph.name: "RuntimeError: capture failed"}
    assert warnings == [f"{graph.name} failed at batch 2 and is left out: RuntimeError: capture failed"]
    with pytest.raises(CheckFailed, match="onnxruntime-fp32 failed to run a batch of 2: RuntimeError: capture failed"):
        warm_up([Variant("onnxruntime-fp32", "bundle", "cpu", broken)], batch, 1, {})


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--batch-sizes", "1,0"], "--batch-sizes"),
        (["--iters", "0"], "--iters must be at least 1"),
        (["--warmup", "-1"], "--warmup cannot be negative"),
        (["--threads", "0"], "--threads must be at least 1"),
        (["--plot", "{tmp}/plot.gif"], "must end in"),
    ],
)
def test_usage_errors_exit_2_and_write_nothing(small_bundle, tmp_path, extra, message):
    extra = [part.replace("{tmp}", str(tmp_path)) for part in extra]
    result = run_cli("bench", small_bundle, *extra, "--report", tmp_path / "r.json")
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_not_a_bundle_is_a_usage_error(tmp_path):
    result = run_cli("bench", tmp_path, "--iters", 1)
    assert result.exit_code == 2 and "is not a bundle" in result.output


@pytest.mark.slow  # a bench run plus a spawned worker: about 30 s on 2 shared cores
@pytest.mark.skipif(not OTHER_RUNTIMES, reason="no other CPU runtime reads the ONNX Runtime bundle's model here (openvino not installed)")
def test_other_runtimes_are_timed_in_processes_of_their_own(small_bundle, monkeypatch):
    """Without the memory phase, this process never loads another runtime, yet its variant is timed."""
    from resnet_edge.backends import get_backend

    backend_class = type(get_backend("openvino"))
    loaded_here: list[str] = []
    original = backend_class.foreign_predictor
    monkeypatch.setattr(backend_class, "foreign_predictor", lambda self, *args: loaded_here.append(self.name) or original(self, *args))
    result = run_bench(BenchOptions(bundle=small_bundle, batch_sizes=(1,), warmup=1, iters=3, rounds=3, baseline=False, memory=False,
                                    threads=1))
    (entry,) = [e for e in result.report["results"] if e["variant"] == OTHER_RUNTIMES[0]]
    assert loaded_here == [] and entry["iters"] == 3 and 0 < entry["p50_ms"] <= entry["p99_ms"]
    assert "own process" in entry["description"] and result.report["failed_variants"] == {}


@pytest.mark.slow  # two spawned workers, each importing torch
def test_a_process_runner_says_why_it_did_not_start():
    from resnet_edge.core.process_timing import ProcessRunner
    from resnet_edge.pipelines.bench.variants import foreign_runner

    # torchscript cannot read another bundle's model (None); a backend that does not exist raises.
    cannot = ProcessRunner(foreign_runner, {"backend": "torchscript", "path": "/nonexistent", "manifest": {"backend": "onnxruntime"}}, 1)
    broken = ProcessRunner(foreign_runner, {"backend": "no-such-runtime", "path": "/nonexistent", "manifest": {}}, 1)
    try:
        assert not cannot.wait_ready() and cannot.status == "unavailable"
        assert not broken.wait_ready() and broken.status == "error" and "no-such-runtime" in broken.reason
    finally:
        cannot.close()
        broken.close()
