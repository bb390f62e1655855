"""A TensorRT INT8 bundle directory as far as a CPU host can write one: the ModelOpt model the engine is
built from (``modelopt_int8.pth``, calibrated and saved on the CPU exactly as ``build`` saves it) and the
manifest ``compile`` writes, but no engine file (TensorRT builds engines on a GPU only). What the CPU
can do with such a bundle: the INT8 simulator and its block probe; everything else refuses at the door.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from helpers.calibration import shapes_images
from resnet_edge.backends.tensorrt import api
from resnet_edge.backends.tensorrt.int8 import MODELOPT_FILE, save_quantized
from resnet_edge.core.io import file_sha256
from resnet_edge.fuse.fold import fold_batchnorm
from resnet_edge.models import create_model
from resnet_edge.quantize import modelopt_ptq

CLASSES = ["circle", "square", "triangle", "cross", "ring", "bar", "dot", "star", "arc", "grid"]


def tensorrt_int8_manifest(generation: str = api.STRONGLY_TYPED) -> dict:
    """The manifest of a resnet20 INT8 TensorRT bundle (static batch 8) built with ``generation``'s arguments."""
    arguments = api.compile_arguments(generation, "int8", workspace_mb=1024, timing_cache_path="/x/.tensorrt-timing-cache/t.cache")
    return {
        "schema_version": 1, "created": "2025-01-01T00:00:00+00:00", "arch": "resnet20", "shortcut": "A", "num_classes": 10,
        "classes": CLASSES, "precision": "int8", "backend": "tensorrt", "target": "datacenter", "fused": False,
        "preprocessing": {"name": "cifar", "resize": 32, "crop": 32, "mean": [0.4914, 0.4822, 0.4465], "std": [0.247, 0.2435, 0.2616],
                          "interpolation": "bilinear", "channel_order": "RGB", "layout": "NCHW"},
        "input": {"name": "input", "dtype": "float32", "shape": [8, 3, 32, 32], "batch": {"min": 8, "opt": 8, "max": 8}},
        "output": {"name": "logits", "dtype": "float32", "shape": [8, 10]},
        "artifacts": {"model": "model.engine", "quantized_model": MODELOPT_FILE},
        "build_host": {"gpu": {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}},
        "reference": {"source": "random", "random_weights": True},
        "requires": {"device": "cuda", "gpu": {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}, "tensorrt": "11.1.0"},
        "tensorrt": {"precision": api.precision_plan(generation, "int8").to_manifest(), "dla": None, "timing_cache": "t.cache",
                     "compile_arguments": api.manifest_arguments(arguments.kwargs), "device": "cuda:0"},
    }


def tensorrt_int8_bundle(out: Path) -> tuple[Path, dict, torch.nn.Module]:
    """Write the bundle directory at ``out`` (a random-weights resnet20 calibrated on shapes images):
    (path, manifest, the calibrated fake-quant model that was saved)."""
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    quantized = modelopt_ptq.calibrate(fold_batchnorm(create_model("resnet20").eval()), [shapes_images(32)], modelopt_ptq.PTQConfig())
    save_quantized(quantized, out / MODELOPT_FILE)
    manifest = tensorrt_int8_manifest()
    (out / "labels.txt").write_text("".join(f"{name}\n" for name in CLASSES))
    (out / "model.engine").write_bytes(b"engine placeholder")  # built on a GPU; listed, as a reader requires of every artifact
    manifest["files"] = {name: file_sha256(out / name) for name in ("model.engine", MODELOPT_FILE, "labels.txt")}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out, manifest, quantized
