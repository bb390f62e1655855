"""``resnet_edge::int8_residual_block`` and ``fuse_quantized_model``: INT8 fused blocks that carry
ModelOpt's ranges, on the CPU (their TensorRT engine is tested in test_ops_tensorrt.py where a GPU exists)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("modelopt.torch.quantization", reason="nvidia-modelopt is not installed (pip install -r requirements.txt)")

from helpers.calibration import shapes_images  # noqa: E402
from helpers.ops_cases import SHORTCUTS, int8_args, make_case  # noqa: E402
from resnet_edge import ops  # noqa: E402
from resnet_edge.core.errors import UsageError  # noqa: E402
from resnet_edge.fuse.fold import fold_batchnorm  # noqa: E402
from resnet_edge.fuse.int8 import Int8FusedBlock, count_int8_blocks, fuse_quantized_model  # noqa: E402
from resnet_edge.models import create_model  # noqa: E402
from resnet_edge.quantize import modelopt_ptq as ptq  # noqa: E402


@pytest.mark.parametrize("op", ["basic", "bottleneck"])
@pytest.mark.parametrize("shortcut", SHORTCUTS)
def test_without_ranges_it_is_the_float_fused_block(op, shortcut):
    torch.manual_seed(0)
    target, args = make_case(op, shortcut)
    torch.testing.assert_close(ops.int8_residual_block(*int8_args(op, args, quantize=False)), target(*args), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("op", ["basic", "bottleneck"])
@pytest.mark.parametrize("shortcut", SHORTCUTS)
def test_opcheck_and_quantization_changes_the_result(op, shortcut):
    torch.manual_seed(0)
    _, case_args = make_case(op, shortcut)
    args = int8_args(op, case_args)
    torch.library.opcheck(torch.ops.resnet_edge.int8_residual_block.default, args)
    float_out = ops.int8_residual_block(*int8_args(op, case_args, quantize=False))
    int8_out = ops.int8_residual_block(*args)
    assert int8_out.shape == float_out.shape and not torch.equal(int8_out, float_out)
    assert torch.isfinite(int8_out).all()


def _calibrated(arch: str, keep_fp=(), **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model(arch, num_classes=6, **kwargs).eval()
    size = 32 if model.family == "cifar" else 64
    batches = [torch.nn.functional.interpolate(batch, size=size) for batch in shapes_images(32, "train").split(16)]
    return ptq.calibrate(fold_batchnorm(model), batches, ptq.PTQConfig(method="max", keep_fp=tuple(keep_fp)))


@pytest.mark.parametrize("arch, kwargs", [("resnet20", {}), ("plain20", {}), ("resnet18", {"shortcut": "C"}), ("resnet50", {})])
def test_each_fused_block_computes_what_modelopt_computes(arch, kwargs):
    quantized = _calibrated(arch, **kwargs)
    size = 32 if quantized.family == "cifar" else 64
    with torch.no_grad():
        h = torch.nn.functional.interpolate(shapes_images(4, "val"), size=size)
        h = quantized.relu(quantized.bn1(quantized.conv1(h)))
        if quantized.family == "imagenet":
            h = quantized.maxpool(h)
        for stage in quantized.stages():
            for block in stage:
                expected, got = block(h), Int8FusedBlock(block)(h)
                # The same INT8 grid; a float rounding difference of one ulp before a quantizer may move
                # a single element by one INT8 step, which then spreads through one convolution.
                assert (expected - got).abs().median() < 1e-5
                assert (expected - got).abs().max() <= 0.01 * expected.abs().max()
                h = expected


def test_fused_int8_model_exports_with_one_op_per_block_and_keeps_disabled_layers_in_float():
    # Stem, pooling and classifier in float: their ModelOpt quantizers export only on CUDA (modelopt_ptq's docstring).
    quantized = _calibrated("resnet20", keep_fp=("conv1", "avgpool", "fc", "layer3.2.conv2"))
    fused = fuse_quantized_model(quantized)
    assert fused.layer3[2].weight_amax1 is None and fused.layer3[2].input_amax1 is None
    assert fused.layer3[2].weight_amax0 is not None and fused.layer3[2].residual_amax is not None
    images = shapes_images(96, "val")
    with torch.no_grad():
        expected, got = quantized(images), fused(images)
    assert (expected.argmax(1) == got.argmax(1)).float().mean() >= 0.98
    program = torch.export.export(fused, (images[:2],))
    assert count_int8_blocks(program) == 9
    assert ptq.count_qdq_nodes(program) == 0
    torch.testing.assert_close(program.module()(images[:2]), got[:2])


def test_refusals():
    with pytest.raises(UsageError, match="ResNet of the model registry"):
        fuse_quantized_model(torch.nn.Linear(2, 2))
    model = create_model("resnet20").eval()
    with pytest.raises(UsageError, match="BatchNorm folded"):
        Int8FusedBlock(model.layer1[0])
