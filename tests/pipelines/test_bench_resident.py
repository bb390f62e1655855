"""``bench``'s device-resident latency: the report's ``device_ms``, the ``dev ms`` column (CUDA only), the
bundle's device entry (padding, no host copy) and, on a GPU, the real figures beside the raw fused model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from resnet_edge.backends import BatchSpec, CallablePredictor, get_backend
from resnet_edge.backends.base import device_call
from resnet_edge.bundle import Bundle
from resnet_edge.bundle import load as load_bundle
from resnet_edge.pipelines.bench import BenchOptions, run_bench
from resnet_edge.pipelines.bench.report import result_entry
from resnet_edge.pipelines.bench.variants import Variant
from resnet_edge.reports.bench import format_table

STATS = {"p50", "p90", "p99", "mean", "min"}


def _entry(variant: str, batch: int, p50: float, device_p50: float | None) -> dict:
    resident = None if device_p50 is None else {"p50": device_p50, "p90": device_p50, "p99": device_p50, "mean": device_p50, "min": device_p50}
    return {"variant": variant, "batch": batch, "p50_ms": p50, "p90_ms": p50, "p99_ms": p50, "throughput": batch * 1e3 / p50,
            "peak_mem_mb": None, "speedup": None, "device_ms": resident}


def _report(device: str, results: list[dict]) -> dict:
    return {"bundle": {"path": "/b", "arch": "resnet50", "precision": "fp16", "backend": "torchscript", "target": "datacenter",
                       "input_shape": [3, 224, 224]},
            "machine": {"description": "a host"}, "results": results, "failed_variants": {},
            "settings": {"device": device, "threads": 1, "iters": 4, "warmup": 1, "batch_sizes": [1]}}


def test_entry_has_device_stats_only_when_measured():
    variant = Variant("torchscript-fp16", "bundle", "cuda", lambda batch: batch)
    measured = result_entry(variant, 1, [2.0, 3.0, 4.0], [1.5, 2.5, 3.5], {}, "kind", [0.5, 0.7, 0.6])
    assert set(measured["device_ms"]) == STATS
    assert measured["device_ms"]["p50"] == pytest.approx(0.6) and measured["device_ms"]["min"] == pytest.approx(0.5)
    assert measured["device_ms"]["p50"] < measured["p50_ms"] == pytest.approx(3.0)
    assert result_entry(variant, 1, [2.0], [], {}, "kind")["device_ms"] is None


def test_dev_ms_column_and_overhead_line_only_on_cuda():
    results = [_entry("torchscript-fp16", 1, 0.655, 0.52), _entry("torchscript-fp16-cudagraphs", 1, 0.60, 0.50),
               _entry("fused-fp16-cudagraphs", 1, 0.55, 0.473), _entry("fused-fp16", 1, 0.7, 0.6)]
    table = format_table(_report("cuda", results))
    assert "dev ms" in table.splitlines()[4] and "0.473" in table
    # both under a graph when both were measured so: 0.50 / 0.473 - 1 = +5.7%
    assert "batch 1: torchscript-fp16-cudagraphs 0.500 ms device-resident vs fused-fp16-cudagraphs 0.473 ms: the bundle adds +5.7%" in table
    assert "the bundle adds" in format_table(_report("cuda", [results[0], results[3]]))  # eager against eager without graphs
    cpu = format_table(_report("cpu", [_entry("onnxruntime-fp32", 1, 1.0, None)]))
    assert "dev ms" not in cpu and "the bundle adds" not in cpu


class _Doubler(nn.Module):
    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.flatten(1)[:, :2] * 2


def _bundle(predictor, batch: BatchSpec) -> Bundle:
    manifest = {"input": {"shape": [batch.opt, 3, 2, 2], "batch": batch.to_dict()}, "num_classes": 2, "backend": "torchscript"}
    return Bundle(Path("/b"), manifest, get_backend("torchscript"), predictor)


def test_device_entry_defaults_to_the_module_on_cuda_and_prefers_the_hook():
    module = _Doubler()
    assert device_call(CallablePredictor(module, torch.device("cpu"), module)) is None  # a CPU runtime: none
    assert device_call(CallablePredictor(module, torch.device("cuda"), module)) is module  # no GPU needed to decide
    assert device_call(CallablePredictor(module, torch.device("cuda"), None)) is None  # a raw engine

    class WithHook(CallablePredictor):
        def on_device(self, batch):
            return batch

    hooked = WithHook(module, torch.device("cuda"), module)
    assert device_call(hooked) == hooked.on_device


def test_bundle_device_runner_pads_splits_and_leaves_logits_where_they_are():
    seen: list[tuple[int, ...]] = []

    class Resident(CallablePredictor):
        def on_device(self, batch):
            seen.append(tuple(batch.shape))
            return _Doubler()(batch).half()  # the artifact's own dtype: the entry returns float32

    bundle = _bundle(Resident(lambda b: b, torch.device("cpu")), BatchSpec(4, 4, 4))
    runner = bundle.device_runner()
    batch = torch.arange(6 * 12, dtype=torch.float32).reshape(6, 3, 2, 2)
    logits = runner(batch)
    assert seen == [(4, 3, 2, 2), (4, 3, 2, 2)]  # 6 -> 4 + (2 padded to 4)
    assert logits.dtype == torch.float32 and logits.shape == (6, 2)
    assert torch.equal(logits, batch.flatten(1)[:, :2] * 2)
    assert _bundle(CallablePredictor(lambda b: b), BatchSpec()).device_runner() is None


def test_raw_fused_model_is_wanted_beside_fused_float_bundles_and_runs_as_its_device_entry():
    from resnet_edge.pipelines.bench.resident import raw_fused_variant, raw_fused_wanted

    assert raw_fused_wanted({"fused": True, "precision": "fp16"}) and not raw_fused_wanted({"fused": False, "precision": "fp16"})
    assert not raw_fused_wanted({"fused": True, "precision": "int8"})
    variant = raw_fused_variant({"arch": "resnet20", "num_classes": 10, "precision": "fp32"}, torch.device("cpu"))
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    prepared = variant.resident.prepare(images)
    assert variant.name == "fused-fp32" and prepared.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(variant.resident.run(prepared), variant.run(images))


def test_cpu_bench_has_no_device_figures(tmp_path):
    """On the CPU every entry's ``device_ms`` is null and the table has no ``dev ms`` column."""
    from resnet_edge.pipelines.compile import CompileOptions, compile_bundle

    out = compile_bundle(CompileOptions(arch="resnet20", random_weights=True, precision="fp32", backend="torchscript", fused=False,
                                        out=tmp_path / "b")).path
    report = run_bench(BenchOptions(bundle=out, batch_sizes=(1,), warmup=0, iters=2, rounds=1, memory=False, runtimes=False,
                                    device="cpu", cuda_graphs=True)).report
    assert [entry["device_ms"] for entry in report["results"]] == [None, None]
    assert "dev ms" not in format_table(report)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_device_resident_figures_beside_the_raw_fused_model(tmp_path):
    from resnet_edge.ops import fused_ops_status
    from resnet_edge.pipelines.compile import CompileOptions, compile_bundle

    if not fused_ops_status()[0]:
        pytest.skip(f"fused ops not built: {fused_ops_status()[1]}")
    out = compile_bundle(CompileOptions(arch="resnet20", random_weights=True, precision="fp16", backend="torchscript", fused=True,
                                        target="datacenter", out=tmp_path / "r20-fp16")).path
    report = run_bench(BenchOptions(bundle=out, batch_sizes=(1, 8), warmup=2, iters=20, rounds=2, device="cuda", cuda_graphs=True,
                                    memory=False)).report
    assert report["failed_variants"] == {}
    by_name = {(entry["variant"], entry["batch"]): entry for entry in report["results"]}
    for name in ("pytorch-fp32", "torchscript-fp16", "fused-fp16"):
        for variant in (name, f"{name}-cudagraphs"):
            for batch in (1, 8):
                entry = by_name[(variant, batch)]
                assert set(entry["device_ms"]) == STATS, variant
                assert 0 < entry["device_ms"]["min"] <= entry["device_ms"]["p50"] <= entry["device_ms"]["p99"]
                # no host copies, no Python between the events and the work: never above host-to-host
                assert entry["device_ms"]["p50"] <= entry["p50_ms"] * 1.05, variant
    table = format_table(report)
    assert "dev ms" in table and "torchscript-fp16-cudagraphs" in table and "the bundle adds" in table
    # the device entry computes what predict does, without the copies
    loaded = load_bundle(out, device="cuda")
    images = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(loaded.device_runner()(images.cuda()).cpu(), loaded.predict(images))
