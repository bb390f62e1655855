"""Loading a bundle's ``model.pt2`` in Python: the checks, the device, and the predictor around it."""

from __future__ import annotations

from pathlib import Path

import torch
import torch._inductor

from ...core.errors import CheckFailed
from ...ops import fused_ops_status
from ..base import CallablePredictor, Predictor
from .host import check_requirements


def package_device(bundle_dir: Path, manifest: dict, device: str) -> torch.device:
    """Where the package runs: the device it was compiled for (a CPU package cannot run on a GPU or back)."""
    compiled_for = (manifest.get("requires") or {}).get("device", "cpu")
    wanted = compiled_for if device == "auto" else str(device)
    if wanted.split(":")[0] != compiled_for:
        where = "a CUDA GPU" if compiled_for == "cuda" else "the CPU"
        raise CheckFailed(f"bundle {bundle_dir} is an AOTInductor package compiled for {where} and runs only there, "
                          f"not on {wanted}; recompile it for {wanted}")
    return torch.device(wanted)


def check_package_host(bundle_dir: Path, manifest: dict) -> None:
    """The ops library (fused packages call it) and the torch / CPU the package was compiled for."""
    requires = manifest.get("requires") or {}
    if requires.get("fused_ops"):
        ok, reason = fused_ops_status()
        if not ok:
            raise CheckFailed(f"bundle {bundle_dir} calls the fused resnet_edge ops: {reason}")
    check_requirements(Path(bundle_dir), requires)


def load_package(path: Path, device: torch.device):
    """``torch._inductor.aoti_load_package`` with its failure as one ``CheckFailed`` line."""
    try:
        return torch._inductor.aoti_load_package(str(path), device_index=device.index if device.index is not None else -1)
    except Exception as error:
        text = str(error).strip().splitlines()
        raise CheckFailed(f"cannot load {path} with torch {torch.__version__} ({text[0][:200] if text else type(error).__name__})") from None


def first_output(outputs) -> torch.Tensor:
    """The logits: a package returns a tensor, or a tuple/list whose first element is the logits."""
    return outputs[0] if isinstance(outputs, (tuple, list)) else outputs


def load(bundle_dir: Path, manifest: dict, device: str = "auto") -> Predictor:
    """A predictor running the bundle's package: float32 NCHW on the CPU in, float32 logits on the CPU out."""
    check_package_host(bundle_dir, manifest)
    run_on = package_device(bundle_dir, manifest, device)
    compiled = load_package(Path(bundle_dir) / manifest["artifacts"]["model"], run_on)

    def predict(batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return first_output(compiled(batch.to(run_on, torch.float32).contiguous())).float().cpu()

    return CallablePredictor(predict, run_on, None)
