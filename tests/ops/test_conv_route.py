"""The CUDA convolution routes (csrc/ops/conv_route.h): the choice and the cuDNN plan-cache key are
plain C++ checked here on the CPU; the routes themselves run in the `cuda` tests at the bottom."""

from __future__ import annotations

import os

import pytest
import torch

from helpers.ops_cases import SHORTCUTS, make_case, reference
from resnet_edge import ops  # noqa: F401  (loads the extension)

ROUTES = ("cudnn_graph", "aten_fused", "epilogue")
cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; none is visible")


def route() -> str:
    return torch.ops.resnet_edge._conv_route()


def plan_key(x, weight, stride=1, residual=True, relu=True) -> str:
    return torch.ops.resnet_edge._cudnn_plan_key(x, weight, stride, residual, relu)


def nhwc(*shape, dtype=torch.float32):
    return torch.empty(shape, dtype=dtype, memory_format=torch.channels_last)


def graph_route_built() -> bool:
    """Whether this build has the cuDNN graph route: asking for it by name is refused where it has not."""
    previous = os.environ.get("RESNET_EDGE_CONV_ROUTE")
    os.environ["RESNET_EDGE_CONV_ROUTE"] = "cudnn_graph"
    try:
        return route() == "cudnn_graph"
    except RuntimeError:
        return False
    finally:
        os.environ.pop("RESNET_EDGE_CONV_ROUTE")
        if previous is not None:
            os.environ["RESNET_EDGE_CONV_ROUTE"] = previous


def test_default_route_is_the_epilogue_until_the_graph_route_is_measured(monkeypatch):
    """The cuDNN graph route has not run on a GPU yet: the default is the GPU-verified epilogue."""
    monkeypatch.delenv("RESNET_EDGE_CONV_ROUTE", raising=False)
    assert route() == "epilogue"
    monkeypatch.setenv("RESNET_EDGE_CONV_ROUTE", "")
    assert route() == "epilogue"


@pytest.mark.parametrize("name", ["aten_fused", "epilogue"])
def test_route_is_read_from_the_environment_on_every_call(monkeypatch, name):
    monkeypatch.setenv("RESNET_EDGE_CONV_ROUTE", name)
    assert route() == name


def test_unknown_route_is_refused_with_the_choices(monkeypatch):
    monkeypatch.setenv("RESNET_EDGE_CONV_ROUTE", "cudnn")
    with pytest.raises(RuntimeError, match=r"RESNET_EDGE_CONV_ROUTE must be cudnn_graph, aten_fused or epilogue .* not 'cudnn'"):
        route()


def test_cudnn_graph_route_asked_for_by_name(monkeypatch):
    """Honoured where built; refused (not silently replaced) where not, so an A/B run cannot mislead."""
    built = graph_route_built()
    monkeypatch.setenv("RESNET_EDGE_CONV_ROUTE", "cudnn_graph")
    if built:
        assert route() == "cudnn_graph"
    else:
        with pytest.raises(RuntimeError, match="has no cuDNN graph route"):
            route()


def test_plan_key_describes_every_field():
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False, deterministic=False):
        key = plan_key(nhwc(2, 16, 9, 8), nhwc(32, 16, 3, 3), stride=2)
    assert key == "cpu Float NHWC x[2,16,9,8] w[32,16,3,3] stride 2 pad 1 +bias +residual relu ieee nondeterministic"


def test_plan_key_ignores_data_and_follows_metadata():
    x, weight = nhwc(2, 16, 9, 8), nhwc(32, 16, 3, 3)
    base = plan_key(x, weight)
    assert plan_key(torch.randn(2, 16, 9, 8).contiguous(memory_format=torch.channels_last), weight.clone()) == base
    different = [
        plan_key(nhwc(1, 16, 9, 8), weight),  # batch size
        plan_key(nhwc(2, 16, 9, 9), weight),  # spatial size
        plan_key(x, nhwc(32, 16, 1, 1)),  # kernel (and so padding)
        plan_key(x, weight, stride=2),
        plan_key(x, weight, residual=False),
        plan_key(x, weight, relu=False),
        plan_key(nhwc(2, 16, 9, 8, dtype=torch.float16), nhwc(32, 16, 3, 3, dtype=torch.float16)),
    ]
    assert base not in different and len(set(different)) == len(different)


def test_plan_key_follows_the_cudnn_flags_that_change_the_plan():
    x, weight = nhwc(2, 16, 9, 8), nhwc(32, 16, 3, 3)
    half = (nhwc(2, 16, 9, 8, dtype=torch.float16), nhwc(32, 16, 3, 3, dtype=torch.float16))
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=True, deterministic=False):
        fp32_tf32, fp16_tf32 = plan_key(x, weight), plan_key(*half)
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False, deterministic=True):
        fp32_ieee, fp16_ieee = plan_key(x, weight), plan_key(*half)
    assert " tf32 nondeterministic" in fp32_tf32 and " ieee deterministic" in fp32_ieee
    assert " ieee " in fp16_tf32  # TF32 concerns FP32 data only: FP16 plans are shared
    assert fp16_tf32.replace("nondeterministic", "deterministic") == fp16_ieee


def test_plan_key_needs_the_contract_layout():
    with pytest.raises(RuntimeError, match="channels_last-contiguous input"):
        plan_key(torch.empty(2, 16, 9, 8), nhwc(32, 16, 3, 3))


@pytest.mark.cuda
@cuda_only
@pytest.mark.parametrize("name", ROUTES)
@pytest.mark.parametrize("op", ["basic", "bottleneck"])
@pytest.mark.parametrize("shortcut", SHORTCUTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_cuda_route_matches_reference(monkeypatch, name, op, shortcut, dtype):
    if name == "cudnn_graph" and not graph_route_built():
        pytest.skip("this build has no cuDNN graph route (no cuDNN frontend headers)")
    monkeypatch.setenv("RESNET_EDGE_CONV_ROUTE", name)
    torch.manual_seed(0)
    target, args = make_case(op, shortcut, device="cuda", dtype=dtype, in_channels=32)
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        out, expected = target(*args), reference(target, args)
    tolerance = 1e-4 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(out.float(), expected, rtol=tolerance, atol=tolerance)
    assert out.stride() == torch.empty(out.shape, memory_format=torch.channels_last, device="meta").stride()


@pytest.mark.cuda
@cuda_only
@pytest.mark.parametrize("name", ROUTES)
def test_cuda_route_replays_in_a_cuda_graph(monkeypatch, name):
    """Warm up (plans built, autotuned with cudnn.benchmark), capture, then replay on new input: no host
    sync or allocation in the route may break the capture, and the replay must compute the new input."""
    if name == "cudnn_graph" and not graph_route_built():
        pytest.skip("this build has no cuDNN graph route (no cuDNN frontend headers)")
    monkeypatch.setenv("RESNET_EDGE_CONV_ROUTE", name)
    torch.manual_seed(0)
    target, args = make_case("bottleneck", "projection", device="cuda", dtype=torch.float16, in_channels=64)
    static_x = args[0].contiguous(memory_format=torch.channels_last)
    args = (static_x, *args[1:])
    with torch.backends.cudnn.flags(enabled=True, benchmark=True):
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                target(*args)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = target(*args)
    static_x.copy_(torch.randn_like(static_x))
    graph.replay()
    torch.cuda.synchronize()
    torch.testing.assert_close(static_out.float(), reference(target, args), rtol=2e-2, atol=2e-2)
