"""TorchScript backend: the (fused) model, scripted and frozen, for libtorch C++ applications.

FP32 on the CPU or a CUDA GPU; FP16 on a CUDA GPU (the half-precision weights are frozen into the
module; ``FloatIO`` casts the float32 input to half and the logits back to float32, so the C++
app feeds the same tensor at every precision). With ``--fused`` (the default once the extension is
built) the blocks are swapped for ``torch.ops.resnet_edge.*`` ops by ``resnet_edge.fuse.fuse_model``:
the C++ app must then link the ops library, and the manifest says so (``requires.fused_ops``).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from ...core.errors import CheckFailed, UsageError
from ...fuse import fuse_model
from ...fuse.fold import fold_batchnorm
from ...ops import fused_ops_status
from ..base import Backend, BuildConfig, BuildResult, CallablePredictor, Predictor
from ..common import FloatIO
from .probe import torchscript_probe
from .profile import torchscript_profile

log = logging.getLogger(__name__)

MODEL_FILE = "model.pt"


def _script(prepared: nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    """``prepared`` scripted (traced where scripting fails) and frozen."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            scripted = torch.jit.script(prepared)
        except Exception as error:
            log.info(f"torch.jit.script failed ({type(error).__name__}); tracing instead")
            scripted = torch.jit.trace(prepared, example)
        return torch.jit.freeze(scripted.eval())


def _load_device(bundle_dir: Path, manifest: dict, device: str) -> torch.device:
    """Where to run: ``auto`` is the GPU for FP16 or GPU-target bundles when one is visible, else the CPU."""
    if device == "auto":
        wants_gpu = manifest["precision"] == "fp16" or manifest.get("target") != "cpu"
        device = "cuda" if wants_gpu and torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CheckFailed(f"bundle {bundle_dir} needs a CUDA GPU to run and none is visible")
    if manifest["precision"] == "fp16" and not device.startswith("cuda"):
        raise CheckFailed(f"bundle {bundle_dir} is FP16 TorchScript, which runs on a CUDA GPU only; use device cuda")
    return torch.device(device)


class TorchScriptBackend(Backend):
    name = "torchscript"
    display_name = "TorchScript"
    precisions = ("fp32", "fp16")
    can_fuse = True

    def default_fused(self) -> bool:
        return fused_ops_status()[0]

    def available(self) -> tuple[bool, str]:
        device = "CUDA " + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
        return True, f"torch {torch.__version__} on {device}"

    def check_config(self, config: BuildConfig) -> None:
        if config.precision == "int8":
            raise UsageError("the torchscript backend does not build int8; use --backend onnxruntime (or tensorrt on a GPU) for INT8")
        super().check_config(config)
        if config.precision == "fp16" and not config.device.startswith("cuda"):
            raise UsageError("FP16 TorchScript runs on a CUDA GPU and none is visible here; use --fp32, or --backend onnxruntime --fp16")
        if config.fused:
            ok, reason = fused_ops_status()
            if not ok:
                raise UsageError(f"--fused needs the fused ops: {reason}; pass --no-fused")

    def build(self, model: nn.Module, config: BuildConfig, out_dir: Path) -> BuildResult:
        # One line, not a warning: JetPack users still need this artifact, but they should know its future.
        log.info("note: TorchScript is deprecated upstream (torch.export replaces it); "
                 "--backend aoti writes a Python-free AOTInductor package for the same C++ app")
        device = torch.device(config.device)
        if config.fused:
            log.info("fusing blocks into resnet_edge ops")
            prepared = fuse_model(model.eval())  # a fused copy; model stays as it is
        else:
            prepared = fold_batchnorm(model)
        prepared = prepared.to(device).eval()
        if config.precision == "fp16":
            prepared = FloatIO(prepared.half(), torch.float16)
        frozen = _script(prepared, config.example_input().to(device))
        frozen.save(str(Path(out_dir) / MODEL_FILE))
        requires = {
            "device": "cuda" if config.precision == "fp16" else "any",
            "gpu": None,
            "tensorrt": None,
            "fused_ops": bool(config.fused),
        }
        extra = {
            "torchscript": {"torch": torch.__version__, "frozen": True, "built_on": str(device), "scripted": hasattr(frozen, "code")},
            "requires": requires,
        }
        return BuildResult({"model": MODEL_FILE}, extra)

    def load(self, bundle_dir: Path, manifest: dict, device: str = "auto") -> Predictor:
        if manifest.get("requires", {}).get("fused_ops"):
            ok, reason = fused_ops_status()
            if not ok:
                raise CheckFailed(f"bundle {bundle_dir} uses the fused resnet_edge ops: {reason}")
        run_on = _load_device(bundle_dir, manifest, str(device))
        path = Path(bundle_dir) / manifest["artifacts"]["model"]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch 2.14 deprecates TorchScript; libtorch still runs it
                module = torch.jit.load(str(path), map_location=run_on).eval()
        except Exception as error:
            raise CheckFailed(f"cannot load {path} with torch {torch.__version__} ({str(error).splitlines()[0][:200]})") from None

        def predict(batch: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return module(batch.to(run_on, torch.float32)).float().cpu()

        return CallablePredictor(predict, run_on, module)

    def block_probe(self, bundle_dir: Path, manifest: dict, blocks: list[str], device: str = "auto",
                    simulated: bool = False, reference=None):
        """The loaded module's frozen graph, copied to also return each block's output (no simulator)."""
        if simulated:
            return None
        predictor = self.load(bundle_dir, manifest, device)
        return torchscript_probe(predictor.module, blocks, predictor.device)

    def profile_blocks(self, bundle_dir: Path, manifest: dict, blocks: list[str], batch: torch.Tensor, iters: int,
                       device: str = "auto") -> dict[str, float] | None:
        """torch.profiler over the loaded module, its ops cut at the block outputs (``profile``)."""
        predictor = self.load(bundle_dir, manifest, device)
        return torchscript_profile(predictor.module, predictor.device, blocks, batch, iters)
