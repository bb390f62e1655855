"""``resnet-edge diagnose`` on TensorRT bundles: refused at the door without a GPU (one line, exit 1);
a backend that cannot expose block outputs still refused (exit 2); and, on a GPU with torch-tensorrt,
INT8 and FP16 bundles diagnosed end to end through their probe engines (skipped here with the reason).
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from resnet_edge import bundle as bundle_io
from resnet_edge.backends.base import Backend
from resnet_edge.cli import main
from resnet_edge.core.errors import CheckFailed, UsageError
from resnet_edge.pipelines.diagnose import run as diagnose_pipeline

REPO = Path(__file__).resolve().parents[2]
DEMO_SET = REPO / "calibration" / "shapes-demo.json"
BLOCKS = [f"layer{s}.{b}" for s in (1, 2, 3) for b in range(3)]


def _why_no_gpu_run() -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA GPU is visible"
    if importlib.util.find_spec("torch_tensorrt") is None:
        return "torch-tensorrt is not installed"
    if importlib.util.find_spec("modelopt") is None:
        return "nvidia-modelopt is not installed"
    return None


GPU_REASON = _why_no_gpu_run()
needs_gpu = pytest.mark.skipif(GPU_REASON is not None, reason=f"needs torch-tensorrt and a CUDA GPU: {GPU_REASON}")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a host without a GPU")
def test_tensorrt_bundle_without_a_gpu_is_one_line_exit_1(tmp_path):
    pytest.importorskip("modelopt.torch.quantization", reason="nvidia-modelopt is not installed")
    from helpers.tensorrt_bundles import tensorrt_int8_bundle

    bundle, _, _ = tensorrt_int8_bundle(tmp_path / "trt-int8")
    result = CliRunner().invoke(main, ["diagnose", str(bundle), "--data", "shapes", "--images", "8", "--report", str(tmp_path / "d.json")])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and "needs a CUDA GPU" in lines[0] and "Traceback" not in result.output
    assert not (tmp_path / "d.json").exists()


def test_a_backend_without_block_outputs_is_still_refused(tmp_path):
    """The base ``Backend.block_probe`` returns None: diagnose says so (a UsageError: exit 2)."""
    loaded = bundle_io.Bundle(tmp_path, {"artifacts": {}}, Backend(), predictor=None)
    loaded.backend.name = "plain"
    with pytest.raises(UsageError, match="the plain backend cannot expose block outputs yet"):
        diagnose_pipeline._probes(loaded, BLOCKS, "cpu", reference=None)


class _ProbeBuildFails(Backend):
    """A backend whose probe cannot be built (as a TensorRT build failing on the probe graph would)."""

    name = "failing"

    def block_probe(self, *args, **kwargs):
        raise RuntimeError("builder returned no engine\n(TensorRT's log follows)")


def test_a_probe_that_fails_to_build_is_one_line_check_failed(tmp_path):
    loaded = bundle_io.Bundle(tmp_path, {"artifacts": {}}, _ProbeBuildFails(), predictor=None)
    with pytest.raises(CheckFailed) as failed:
        diagnose_pipeline._probes(loaded, BLOCKS, "cpu", reference=None)
    assert str(failed.value) == "the artifact could not be read with its block outputs exposed (RuntimeError: builder returned no engine)"


# ------------------------------------------------------------------------------------- on a GPU
@pytest.fixture(scope="module")
def trt_bundles(trained_resnet20_checkpoint, tmp_path_factory) -> dict[str, Path]:
    from resnet_edge.pipelines.compile import CompileOptions, compile_bundle

    root = tmp_path_factory.mktemp("diagnose-trt")
    out = {}
    for precision in ("int8", "fp16"):
        calib = dict(calib_set=DEMO_SET, calib_method="entropy") if precision == "int8" else {}
        compile_bundle(CompileOptions(arch="resnet20", weights=trained_resnet20_checkpoint, out=root / precision, precision=precision,
                                      backend="tensorrt", batch=8, **calib))
        out[precision] = root / precision
    return out


@pytest.mark.tensorrt
@needs_gpu
@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_tensorrt_bundles_are_diagnosed_through_their_probe_engines(trt_bundles, precision, tmp_path):
    result = CliRunner().invoke(main, ["diagnose", str(trt_bundles[precision]), "--data", "shapes", "--images", "32",
                                       "--report", str(tmp_path / "d.json")])
    assert result.exit_code == 0, result.output
    assert "artifact read as: TensorRT engine rebuilt from" in result.output
    report = json.loads((tmp_path / "d.json").read_text())
    assert [row["block"] for row in report["rows"]] == BLOCKS and "marked as engine outputs" in report["artifact_reading"]
    for row in report["rows"]:
        assert math.isfinite(row["artifact_sqnr_db"]) and row["artifact_cosine"] > 0.99
        if precision == "int8":
            assert math.isfinite(row["simulator_sqnr_db"]) and row["artifact_vs_simulator_sqnr_db"] > 20
        else:
            assert row["artifact_sqnr_db"] > 40  # FP16 rounding only
    assert report["verdict"]["source"] == "none"


@pytest.mark.tensorrt
@needs_gpu
def test_int8_probe_engine_logits_match_the_saved_engine(trt_bundles):
    from resnet_edge.backends.tensorrt.formats import engine_tolerance, max_rel_diff
    from resnet_edge.data import ShapesDataset, eval_transform, get_preset
    from resnet_edge.pipelines.reference import load_reference

    loaded = bundle_io.load(trt_bundles["int8"])
    reference, _ = load_reference(loaded, None)
    probe = loaded.backend.block_probe(loaded.path, loaded.manifest, BLOCKS, reference=reference.float().eval())
    dataset = ShapesDataset(8, split="val", transform=eval_transform(get_preset("cifar")))
    images = torch.stack([dataset[i][0] for i in range(8)])
    logits, blocks = probe.outputs(images)
    assert list(blocks) == BLOCKS and all(torch.isfinite(value).all() for value in blocks.values())
    assert max_rel_diff(logits, loaded.predictor(images)) < engine_tolerance("int8")
