"""The ``aoti`` backend: the (fused) model exported with ``torch.export`` and compiled by AOTInductor into
``model.pt2``, which libtorch's ``AOTIModelPackageLoader`` runs from C++ with no Python.

The successor of the TorchScript artifact (``torch.jit`` is deprecated upstream). FP32 on the CPU;
FP32, FP16 and BF16 on a CUDA GPU. The package is native code for this torch, CPU and GPU, recorded
in ``requires`` and checked when it is loaded (``host``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from torch import nn

from ...core.errors import UsageError
from ...ops import fused_ops_status
from ..base import Backend, BuildConfig, BuildResult, Predictor
from . import compiler, graph, host, loader, probe, profile

log = logging.getLogger(__name__)

MODEL_FILE = "model.pt2"


class AotiBackend(Backend):
    name = "aoti"
    display_name = "AOTInductor"
    precisions = ("fp32", "fp16", "bf16")
    can_fuse = True

    def default_fused(self) -> bool:
        return fused_ops_status()[0]

    def available(self) -> tuple[bool, str]:
        cxx = compiler.cxx_compiler()
        if cxx is None:
            return False, "AOTInductor compiles C++ and no C++ compiler was found (g++ or $CXX); install g++"
        device = "CUDA " + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
        return True, f"torch {torch.__version__} AOTInductor with {Path(cxx).name} on {device}"

    def check_config(self, config: BuildConfig) -> None:
        if config.precision == "int8":
            raise UsageError("the aoti backend does not build int8; use --backend onnxruntime or openvino (or tensorrt on a GPU) for INT8")
        super().check_config(config)
        ok, reason = self.available()
        if not ok:
            raise UsageError(reason)
        on_gpu = config.device.startswith("cuda")
        if config.precision != "fp32" and not on_gpu:
            raise UsageError(f"{config.precision.upper()} AOTInductor packages run on a CUDA GPU and none is visible here; use --fp32")
        if config.target != "cpu" and not on_gpu:
            raise UsageError(f"an AOTInductor package for --target {config.target} holds CUDA kernels compiled on that GPU "
                             f"and none is visible here; compile there, or use --target cpu")
        if config.fused and config.precision == "bf16":
            raise UsageError("the fused resnet_edge CUDA kernels run float32 and float16, not bfloat16; pass --no-fused for a BF16 package")
        if config.fused:
            ok, reason = fused_ops_status()
            if not ok:
                raise UsageError(f"--fused needs the fused ops: {reason}; pass --no-fused")

    def build(self, model: nn.Module, config: BuildConfig, out_dir: Path) -> BuildResult:
        device = torch.device(config.device)
        batch = config.batch
        log.info(f"aoti: exporting {config.arch} ({'fused' if config.fused else 'unfused'} {config.precision}, "
                 f"batch {batch.min}..{batch.max}, example batch {graph.example_batch(config)})")
        started = time.monotonic()
        program = graph.export(graph.prepare(model, config), config)
        exported = round(time.monotonic() - started, 1)
        info = compiler.compile_package(program, Path(out_dir) / MODEL_FILE, device, compiler.cxx_compiler())
        info["seconds"] = {"export": exported, **info.get("seconds", {})}
        section = {
            "torch": torch.__version__,
            "built_on": str(device),
            "dynamic_batch": not batch.static,
            "example_batch": graph.example_batch(config),
            **info,
        }
        return BuildResult({"model": MODEL_FILE}, {"requires": host.build_requirements(device, config.fused), "aoti": section})

    def load(self, bundle_dir: Path, manifest: dict, device: str = "auto") -> Predictor:
        return loader.load(Path(bundle_dir), manifest, str(device))

    def block_probe(self, bundle_dir: Path, manifest: dict, blocks: list[str], device: str = "auto",
                    simulated: bool = False, reference: nn.Module | None = None):
        """A probe package compiled from ``reference`` with the bundle's settings, returning the block outputs too."""
        if simulated or reference is None:
            return None
        return probe.block_probe(Path(bundle_dir), manifest, blocks, str(device), reference)

    def block_probe_reading(self, manifest: dict, blocks: list[str]) -> str:
        return probe.reading(manifest, blocks)

    def profile_blocks(self, bundle_dir: Path, manifest: dict, blocks: list[str], batch: torch.Tensor, iters: int,
                       device: str = "auto") -> dict[str, float] | None:
        """torch.profiler over the loaded package: each fused block op is its block's row (fused packages only)."""
        if not (manifest.get("requires") or {}).get("fused_ops"):
            return None
        predictor = self.load(bundle_dir, manifest, device)
        return profile.fused_package_profile(predictor, blocks, batch, iters)
