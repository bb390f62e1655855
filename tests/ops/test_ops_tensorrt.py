"""The Torch-TensorRT converters of the fused ops.

The real test builds TensorRT engines and runs where torch-tensorrt and a GPU exist. Everywhere, the
converters' layer plan is also checked against a stand-in of torch-tensorrt whose "layers" are the
equivalent torch functions, so argument binding, strides, padding and the shortcut are covered
even on hosts without TensorRT.
"""

from __future__ import annotations

import enum
import importlib.util
import sys
import types

import pytest
import torch
import torch.nn.functional as F

import resnet_edge.ops.tensorrt_converters as converters
from helpers.ops_cases import SHORTCUTS, int8_args, make_case
from resnet_edge.fuse import fuse_model
from resnet_edge.models import create_model
from resnet_edge.ops.int8_block import fake_quantize


def _tensorrt_skip_reason() -> str | None:
    if importlib.util.find_spec("torch_tensorrt") is None:
        return "needs torch-tensorrt, which is not installed"
    if not torch.cuda.is_available():
        return "needs a CUDA GPU for TensorRT; none is visible"
    return None


def test_import_without_tensorrt_is_harmless():
    assert converters.AVAILABLE == (importlib.util.find_spec("torch_tensorrt") is not None)


def _slice(ctx, target, source_ir, name, x, dim, start, stop, step):
    return x[(slice(None),) * dim + (slice(start, stop, step),)]


@pytest.fixture
def stand_in_converters(monkeypatch):
    """tensorrt_converters loaded against a torch-backed stand-in of torch-tensorrt: {op: converter}."""
    registry = {}

    def dynamo_tensorrt_converter(key, **options):
        def register(function):
            registry[key] = function
            return function

        return register

    impl = types.SimpleNamespace(
        conv=types.SimpleNamespace(
            convNd=lambda ctx, target, source_ir, name, is_conv1d, input, weight, bias, stride, padding, dilation, groups: (
                F.conv2d(input, weight, bias, stride, padding, dilation, groups)
            )
        ),
        elementwise=types.SimpleNamespace(add=lambda ctx, target, source_ir, name, lhs, rhs: lhs + rhs),
        activation=types.SimpleNamespace(relu=lambda ctx, target, source_ir, name, x: F.relu(x)),
        slice=types.SimpleNamespace(slice_op=_slice),
        pad=types.SimpleNamespace(constant_padNd=lambda ctx, target, source_ir, name, x, pad, value=0: F.pad(x, pad, value=value)),
        quantize=types.SimpleNamespace(
            quantize=lambda ctx, target, source_ir, name, x, amax, num_bits, exponent_bits: fake_quantize(x, amax)
        ),
    )
    stand_ins = {
        "tensorrt": {"ITensor": torch.Tensor},
        "torch_tensorrt": {},
        "torch_tensorrt.dynamo": {},
        "torch_tensorrt.dynamo._SourceIR": {"SourceIR": enum.Enum("SourceIR", "ATEN UNKNOWN")},
        "torch_tensorrt.dynamo.conversion": {"impl": impl},
        "torch_tensorrt.dynamo.conversion._ConverterRegistry": {"dynamo_tensorrt_converter": dynamo_tensorrt_converter},
        "torch_tensorrt.dynamo.conversion.converter_utils": {"enforce_tensor_types": lambda types: lambda function: function},
    }
    for name, attributes in stand_ins.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, name, module)
    # A private copy of the module, so the real one (and its registrations) stay untouched.
    spec = importlib.util.spec_from_file_location("resnet_edge.ops._converters_under_test", converters.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.AVAILABLE
    return registry


@pytest.mark.parametrize("op", ["basic", "bottleneck"])
@pytest.mark.parametrize("shortcut", SHORTCUTS)
def test_layer_plan_matches_the_op(stand_in_converters, op, shortcut):
    torch.manual_seed(0)
    target, args = make_case(op, shortcut)
    convert = stand_in_converters[target.default]
    # Keywords too: a graph may pass any argument by name.
    out = convert(None, target.default, args[:-2], {"stride": args[-2], "residual": args[-1]}, "block")
    torch.testing.assert_close(out, target(*args), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("op", ["basic", "bottleneck"])
@pytest.mark.parametrize("shortcut", SHORTCUTS)
def test_int8_layer_plan_carries_every_qdq(stand_in_converters, op, shortcut):
    torch.manual_seed(0)
    _, case_args = make_case(op, shortcut)
    args = int8_args(op, case_args)
    target = torch.ops.resnet_edge.int8_residual_block.default
    out = stand_in_converters[target](None, target, args[:-1], {"residual": args[-1]}, "block")
    torch.testing.assert_close(out, target(*args), rtol=1e-5, atol=1e-5)


@pytest.mark.tensorrt
@pytest.mark.skipif(_tensorrt_skip_reason() is not None, reason=_tensorrt_skip_reason() or "")
@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet20", "plain20"])
def test_fused_model_compiles_to_one_engine(name):
    import torch_tensorrt

    assert converters.AVAILABLE
    model = create_model(name).eval().cuda()
    fused = fuse_model(model)
    size = 64 if model.family == "imagenet" else 32
    x = torch.randn(2, 3, size, size, device="cuda")
    program = torch.export.export(fused, (x,))
    compiled = torch_tensorrt.dynamo.compile(program, arg_inputs=[x], min_block_size=1)
    children = [child for child, _ in compiled.named_children()]
    assert len([child for child in children if child.startswith("_run_on_acc")]) == 1, children
    assert not [child for child in children if child.startswith("_run_on_gpu")], children
    with torch.inference_mode():
        expected = fused(x)
        scale = max(expected.abs().max().item(), 1.0)
        torch.testing.assert_close(compiled(x), expected, rtol=1e-2, atol=1e-2 * scale)  # TensorRT may use TF32
