"""The model registry against torchvision and the paper's tables."""

import pytest
import torch
import torchvision

from resnet_edge.core.errors import UsageError
from resnet_edge.models import ZeroPadShortcut, create_model, list_models, model_info

IMAGENET_DEPTHS = (18, 34, 50, 101, 152)
# Paper Table 6 (CIFAR-10), parameters in millions, rounded as printed.
PAPER_CIFAR_PARAMS_M = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7, 1202: 19.4}
# Paper Table 1, multiply-adds x 1e9. torchvision's V1.5 bottleneck (stride on the 3x3) costs a bit
# more than the paper's V1 for the bottleneck nets, so the tolerance is 10%.
PAPER_GFLOPS = {18: 1.8, 34: 3.6, 50: 3.8, 101: 7.6, 152: 11.3}


def test_registry_lists_the_papers_family():
    names = set(list_models())
    assert {f"resnet{d}" for d in IMAGENET_DEPTHS} <= names
    assert {f"resnet{d}" for d in PAPER_CIFAR_PARAMS_M} <= names
    assert {"plain18", "plain34", "plain20", "plain32", "plain44", "plain56", "plain110"} <= names


@pytest.mark.parametrize("depth", IMAGENET_DEPTHS)
def test_params_match_torchvision(depth):
    with torch.device("meta"):
        reference = getattr(torchvision.models, f"resnet{depth}")()
    assert model_info(f"resnet{depth}")["params"] == sum(p.numel() for p in reference.parameters())


def test_resnet50_facts_from_the_issue():
    info = model_info("resnet50")
    assert info["params"] == 25_557_032
    assert info["gflops"] == pytest.approx(4.1, abs=0.05)
    assert (info["family"], info["block"], info["depth"], info["input_size"]) == ("imagenet", "bottleneck", 50, 224)


@pytest.mark.parametrize("depth", IMAGENET_DEPTHS)
def test_gflops_near_paper_table_1(depth):
    assert model_info(f"resnet{depth}")["gflops"] == pytest.approx(PAPER_GFLOPS[depth], rel=0.10)


@pytest.mark.parametrize("depth,millions", PAPER_CIFAR_PARAMS_M.items())
def test_cifar_params_match_paper_table_6(depth, millions):
    params = model_info(f"resnet{depth}")["params"]
    assert round(params / 1e6, 2 if millions < 1 else 1) == millions


@pytest.mark.parametrize("depth", (20, 32, 44, 56, 110))
def test_plain_cifar_nets_have_the_residual_nets_parameters(depth):
    # Option A shortcuts are parameter-free, so plain and residual CIFAR nets are the same size (§4.2).
    assert model_info(f"plain{depth}")["params"] == model_info(f"resnet{depth}")["params"]


@pytest.mark.parametrize("depth", IMAGENET_DEPTHS)
def test_torchvision_weights_give_identical_logits(depth, tmp_path):
    from resnet_edge.weights import load_weights

    torch.manual_seed(depth)
    reference = getattr(torchvision.models, f"resnet{depth}")().eval()
    for module in reference.modules():  # non-trivial BN statistics so a key mix-up would show
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    path = tmp_path / f"resnet{depth}.pth"
    torch.save(reference.state_dict(), path)
    ours = create_model(f"resnet{depth}").eval()
    ours.load_state_dict(torch.load(path, weights_only=True), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(ours(x), reference(x))
    loaded = load_weights(path)
    assert loaded.arch == f"resnet{depth}" and loaded.source == "torchvision"


def test_shortcut_options_differ_only_in_projections():
    a, b, c = (create_model("resnet34", shortcut=s) for s in "ABC")
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(a) < count(b) < count(c)
    # B projects exactly where shapes change: 3 stage transitions in ResNet-34.
    assert sum(block.downsample is not None for stage in b.stages() for block in stage) == 3
    assert all(block.downsample is not None for stage in c.stages() for block in stage)
    assert sum(isinstance(block.downsample, ZeroPadShortcut) for stage in a.stages() for block in stage) == 3
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert {m.eval()(x).shape for m in (a, b, c)} == {torch.Size([2, 1000])}


def test_option_a_shortcut_is_parameter_free_zero_padding():
    shortcut = ZeroPadShortcut(16, 32, stride=2)
    x = torch.randn(1, 16, 8, 8)
    y = shortcut(x)
    assert y.shape == (1, 32, 4, 4)
    assert torch.equal(y[:, :16], x[:, :, ::2, ::2]) and not y[:, 16:].any()
    assert not list(shortcut.parameters())


def test_plain_nets_have_no_shortcuts():
    model = create_model("plain18").eval()
    assert all(not block.residual and block.downsample is None for stage in model.stages() for block in stage)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


@pytest.mark.parametrize("name", ["resnet20", "resnet110", "plain56"])
def test_cifar_nets_run_on_32_pixels(name):
    model = create_model(name, num_classes=6).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 6)


def test_models_script_with_torchscript():
    model = create_model("resnet20").eval()
    scripted = torch.jit.script(model)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(scripted(x), model(x))


def test_unknown_arch_and_bad_shortcut_are_usage_errors():
    with pytest.raises(UsageError, match="unknown arch 'resnet19'"):
        create_model("resnet19")
    with pytest.raises(UsageError, match="plain net"):
        create_model("plain18", shortcut="B")
    with pytest.raises(UsageError, match="shortcut option 'D'"):
        create_model("resnet18", shortcut="D")
