"""TensorRT bundles' AOTInductor package, ``model.aoti.pt2``: the C++ artifact that needs no TorchScript.

``torch_tensorrt.save(module, path, output_format="aot_inductor")`` (torch-tensorrt 2.8 and later)
exports the compiled module (its TensorRT engines are calls to Torch-TensorRT's
``tensorrt::execute_engine`` op) and compiles the graph around them with AOTInductor; a C++ app
runs it with libtorch's ``AOTIModelPackageLoader`` once ``libtorchtrt_runtime.so`` is loaded, and
libresnet_edge prefers it to ``model.ts`` (csrc/lib/aoti_runner.cpp). The name keeps ``.pt2``
(AOTInductor requires it) without taking ``model.pt2``, the exported program's file.

Saved with ``retrace=False`` like the exported program (``formats``: ``retrace=True`` would pin the
batch to the example's size), reloaded with ``torch._inductor.aoti_load_package`` and compared with
the compiled module at the batch's min, opt and max. Written against torch-tensorrt 2.14's
``_compile.save``; where ``save`` does not know the format (before 2.8), or no C++ compiler is
found, the bundle goes without it and says so in the log.
"""

from __future__ import annotations

import inspect
import logging
import os
import shutil
import typing
from pathlib import Path

import torch
import torch._inductor

from .formats import SAVE_CHECK_TOLERANCE, CompileJob, SavedFormats, compare_at_each_batch

log = logging.getLogger(__name__)

AOTI_FILE = "model.aoti.pt2"
ROLE = "aoti_package"
FORMAT = "aot_inductor"


def save_supports_aoti(save) -> bool:
    """Whether ``torch_tensorrt.save`` takes ``output_format="aot_inductor"`` (its Literal annotation lists it)."""
    annotation = inspect.signature(save).parameters.get("output_format")
    if annotation is None:
        return False
    return FORMAT in typing.get_args(annotation.annotation) or FORMAT in str(annotation.annotation)


def _keywords(save) -> dict:
    keywords: dict = {"output_format": FORMAT, "inductor_configs": {"compile_threads": max(1, os.cpu_count() or 1)}}
    if "retrace" in inspect.signature(save).parameters:
        keywords["retrace"] = False
    return keywords


def save_aoti_package(job: CompileJob, out_dir: Path, saved: SavedFormats) -> None:
    """Write ``model.aoti.pt2`` beside the other formats, check it at every batch, add its artifact role."""
    save = job.torch_tensorrt.save
    if not save_supports_aoti(save):
        log.info("torch-tensorrt's save has no aot_inductor format (2.8 or later has): no model.aoti.pt2 for C++ apps")
        return
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        log.warning("no C++ compiler (g++ or $CXX): the bundle goes without model.aoti.pt2; C++ apps use model.ts")
        return
    path = Path(out_dir) / AOTI_FILE
    log.info(f"saving the AOTInductor package ({AOTI_FILE}) for C++ apps")
    save(job.compiled, str(path), **_keywords(save))
    package = torch._inductor.aoti_load_package(str(path))

    def run(batch: torch.Tensor) -> torch.Tensor:
        outputs = package(batch.to(job.example.device))
        return outputs[0] if isinstance(outputs, (list, tuple)) else outputs

    saved.checks[FORMAT] = compare_at_each_batch(run, job.checks, "AOTInductor package", SAVE_CHECK_TOLERANCE)
    saved.artifacts[ROLE] = AOTI_FILE
