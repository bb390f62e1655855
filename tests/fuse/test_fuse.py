"""fuse_model: parity with the unfused model for every registry net, the errors it raises, and the
fused model through TorchScript, torch.export and torch.compile."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from resnet_edge.weights import load_weights
from resnet_edge.data.presets import eval_transform, get_preset
from resnet_edge.data.shapes import ShapesDataset
from resnet_edge.core.errors import UsageError
from resnet_edge.fuse import FusedBasicBlock, FusedBottleneck, fuse_model
from resnet_edge.fuse.fold import fold_batchnorm
from helpers.models import trained_like
from resnet_edge.models import BasicBlock, create_model, get_spec, list_models

SLOW = {"resnet152", "resnet1202"}
OPS = {"resnet_edge.fused_basic_block.default", "resnet_edge.fused_bottleneck.default"}


def small_input(name: str, batch: int = 2) -> torch.Tensor:
    # ImageNet nets at 64x64 (stages on 16, 8, 4, 2 pixels) keep the deep ones quick on two cores.
    size = 64 if get_spec(name).family == "imagenet" else 32
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))


def assert_matches(fused: nn.Module, model: nn.Module, x: torch.Tensor) -> None:
    with torch.inference_mode():
        expected, actual = model(x), fused(x)
    scale = expected.abs().max().item()
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4 * max(scale, 1.0))


@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name for name in list_models()]
)
def test_every_registry_model_matches(name):
    model = trained_like(name)
    fused = fuse_model(model)
    assert_matches(fused, model, small_input(name))
    blocks = [module for module in fused.modules() if isinstance(module, (FusedBasicBlock, FusedBottleneck))]
    assert len(blocks) == sum(get_spec(name).layers)
    assert not any(isinstance(module, nn.BatchNorm2d) for module in fused.modules())


@pytest.mark.parametrize("name, shortcut", [("resnet18", "C"), ("resnet34", "A"), ("resnet50", "A"), ("resnet50", "C"), ("resnet20", "B")])
def test_every_shortcut_option_matches(name, shortcut):
    model = trained_like(name, shortcut)
    assert_matches(fuse_model(model), model, small_input(name))


def test_resnet50_logits_within_1e_3_at_224():
    model = trained_like("resnet50")
    fused = fuse_model(model)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        assert (fused(x) - model(x)).abs().max().item() <= 1e-3


def test_same_top1_on_a_real_batch(trained_resnet20_checkpoint):
    model = load_weights(trained_resnet20_checkpoint).model.eval()
    dataset = ShapesDataset(96, split="val", transform=eval_transform(get_preset("cifar")))
    images = torch.stack([dataset[index][0] for index in range(len(dataset))])
    fused = fuse_model(model)
    with torch.inference_mode():
        expected, actual = model(images), fused(images)
    assert torch.equal(actual.argmax(1), expected.argmax(1))
    assert (actual - expected).abs().max().item() <= 1e-3


def test_keeps_attributes_and_leaves_the_input_model_alone():
    model = trained_like("resnet20")
    before = {key: value.clone() for key, value in model.state_dict().items()}
    fused = fuse_model(model)
    assert (fused.arch, fused.family, fused.shortcut) == ("resnet20", "cifar", "A")
    assert isinstance(model.layer1[0], BasicBlock) and isinstance(model.bn1, nn.BatchNorm2d)
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())
    assert not fused.training


def test_fusing_under_inference_mode_gives_ordinary_buffers():
    """Inference tensors have no version counter, so the CPU kernels could not cache their packing."""
    with torch.inference_mode():
        fused = fuse_model(trained_like("resnet20"))
    assert not any(buffer.is_inference() for buffer in fused.buffers())


@pytest.mark.parametrize("name", ["resnet20", "resnet18", "resnet50"])
def test_fold_batchnorm_keeps_the_outputs_and_the_input_model(name):
    """The unfused fold the backends export: no BatchNorm left, float64 arithmetic, contiguous weights."""
    model = trained_like(name)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    folded = fold_batchnorm(model)
    assert not any(isinstance(module, nn.BatchNorm2d) for module in folded.modules())
    assert all(module.weight.is_contiguous() for module in folded.modules() if isinstance(module, nn.Conv2d))
    x = small_input(name)
    with torch.inference_mode():
        expected, actual = model(x), folded(x)
    assert (actual - expected).abs().max() <= 1e-4 * expected.abs().max()
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())
    assert isinstance(model.bn1, nn.BatchNorm2d) and not folded.training


def test_training_mode_is_refused():
    with pytest.raises(UsageError, match="eval mode"):
        fuse_model(create_model("resnet20"))


def test_unknown_models_and_blocks_are_refused():
    with pytest.raises(UsageError, match="ResNet of the model registry"):
        fuse_model(nn.Sequential(nn.Conv2d(3, 8, 3)).eval())

    class CustomBlock(BasicBlock):
        pass

    model = trained_like("resnet20")
    model.layer2[1].__class__ = CustomBlock
    with pytest.raises(UsageError, match="cannot fuse a block of type CustomBlock"):
        fuse_model(model)
    model = trained_like("resnet18")
    model.layer2[0].downsample = nn.Identity()
    with pytest.raises(UsageError, match="shortcut is a Identity"):
        fuse_model(model)


def test_torchscript_round_trip(tmp_path):
    model = trained_like("resnet18")
    fused = fuse_model(model)
    path = tmp_path / "fused.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 deprecates TorchScript
        torch.jit.script(fused).save(str(path))
        loaded = torch.jit.load(str(path))
    assert str(loaded.inlined_graph).count("resnet_edge::fused_basic_block") == 8
    assert_matches(loaded, model, small_input("resnet18"))


# torch's .pt2 writer warns about any channels_last weight (the fused ones are); the load below
# checks that the round trip is exact anyway.
@pytest.mark.filterwarnings("ignore:No complete tensor found in the group:UserWarning")
def test_torch_export_shows_the_fused_ops(tmp_path):
    model = trained_like("resnet50")
    fused = fuse_model(model)
    x = small_input("resnet50")
    batch = torch.export.Dim("batch", min=1, max=16)
    program = torch.export.export(fused, (x,), dynamic_shapes=({0: batch},))
    targets = [str(node.target) for node in program.graph.nodes if node.op == "call_function"]
    assert targets.count("resnet_edge.fused_bottleneck.default") == 16
    assert not any("batch_norm" in target or "add" in target for target in targets)
    path = tmp_path / "fused.pt2"
    torch.export.save(program, path)
    assert_matches(torch.export.load(path).module(), model, small_input("resnet50", batch=3))


def test_torch_compile_fullgraph_traces_through_the_ops():
    model = trained_like("resnet20")
    compiled = torch.compile(fuse_model(model), fullgraph=True, backend="aot_eager")
    assert_matches(compiled, model, small_input("resnet20"))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; none is visible")
@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet20", "plain20"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_cuda_fused_model_matches(name, dtype):
    model = trained_like(name).cuda()
    fused = fuse_model(model).to(dtype)
    x = small_input(name).cuda()
    with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        expected, actual = model(x), fused(x.to(dtype)).float()
    scale = max(expected.abs().max().item(), 1.0)
    tolerance = 1e-4 if dtype == torch.float32 else 5e-2  # float16 rounds every activation
    torch.testing.assert_close(actual, expected, rtol=tolerance, atol=tolerance * scale)
