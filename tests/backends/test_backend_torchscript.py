"""TorchScript backend: frozen scripted modules that plain torch.jit.load (libtorch) runs."""

import warnings

import pytest
import torch

from resnet_edge import bundle
from resnet_edge.backends import BuildConfig, Predictor, get_backend
from resnet_edge.core.errors import UsageError
from resnet_edge.models import create_model
from resnet_edge.ops import fused_ops_status
from resnet_edge.pipelines.compile import CompileOptions, compile_bundle

FUSED_OK, FUSED_REASON = fused_ops_status()


def build(tmp_path, arch, **changes):
    options = dict(arch=arch, random_weights=True, precision="fp32", backend="torchscript", fused=False, out=tmp_path / "b")
    options.update(changes)
    return compile_bundle(CompileOptions(**options))


@pytest.mark.parametrize("arch", ["resnet20", "resnet18", pytest.param("resnet50", marks=pytest.mark.slow)])
def test_fp32_module_is_frozen_and_matches_eager(tmp_path, arch):
    result = build(tmp_path, arch)
    assert result.manifest["artifacts"] == {"model": "model.pt"} and result.manifest["fused"] is False
    assert result.manifest["requires"]["fused_ops"] is False
    size = 224 if arch != "resnet20" else 32
    images = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    with torch.inference_mode():
        expected = create_model(arch).eval()(images)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(str(result.path / "model.pt"))  # what a libtorch app does
    with torch.inference_mode():
        raw = module(images)
    assert (raw - expected).abs().max() <= 1e-4 * expected.abs().max()
    assert not any(name.endswith("running_mean") for name, _ in module.named_buffers())  # frozen, BN folded
    assert torch.allclose(bundle.load(result.path).predict(images), raw, rtol=1e-5, atol=1e-5)


def test_backend_contract_directly(tmp_path, caplog):
    """build -> load without compile: the predictor runs on the CPU and hands out its module."""
    backend = get_backend("torchscript")
    assert backend.display_name == "TorchScript"
    torch.manual_seed(0)
    model = create_model("resnet20").eval()
    config = BuildConfig(arch="resnet20", precision="fp32", target="cpu", input_shape=(3, 32, 32))
    backend.check_config(config)
    with caplog.at_level("INFO", logger="resnet_edge"):
        result = backend.build(model, config, tmp_path)
    deprecation = [r.getMessage() for r in caplog.records if "deprecated upstream" in r.getMessage()]
    assert len(deprecation) == 1 and "--backend aoti" in deprecation[0]  # one line, naming the successor
    assert result.artifacts == {"model": "model.pt"} and result.manifest["requires"]["fused_ops"] is False
    predict = backend.load(tmp_path, {"artifacts": result.artifacts, "precision": "fp32", "target": "cpu"}, "auto")
    assert isinstance(predict, Predictor) and predict.device == torch.device("cpu")
    assert isinstance(predict.module, torch.jit.ScriptModule)
    images = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        expected = model(images)
    assert (predict(images) - expected).abs().max() <= 1e-4 * expected.abs().max()


@pytest.mark.skipif(not FUSED_OK, reason=f"fused ops unavailable: {FUSED_REASON}")
def test_fused_module_matches_eager_and_records_the_ops_requirement(tmp_path):
    result = build(tmp_path, "resnet20", fused=True)
    assert result.manifest["fused"] is True and result.manifest["requires"]["fused_ops"] is True
    assert result.manifest["check"]["max_rel_diff"] < 1e-3


@pytest.mark.skipif(FUSED_OK, reason="the fused ops are built here")
def test_fused_is_refused_with_the_reason_when_the_ops_are_missing(tmp_path):
    with pytest.raises(UsageError, match="--fused needs the fused ops: .*pass --no-fused"):
        build(tmp_path, "resnet20", fused=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="FP16 TorchScript needs a CUDA GPU")
@pytest.mark.cuda
def test_fp16_on_cuda_takes_float32_in_and_out(tmp_path):
    result = build(tmp_path, "resnet18", precision="fp16", target="datacenter")
    loaded = bundle.load(result.path)
    images = torch.randn(2, 3, 224, 224)
    logits = loaded.predict(images)
    assert logits.dtype == torch.float32 and result.manifest["requires"]["device"] == "cuda"
