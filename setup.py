"""Package build: the Python package plus its operator library ``resnet_edge._C`` (csrc/ops).

The CUDA kernels are compiled whenever a CUDA toolkit is found (``CUDA_HOME``/``CUDA_PATH``, the
toolkit of the ``nvcc`` on ``PATH``, or ``/usr/local/cuda``) and torch itself was built with CUDA.
No GPU is needed to compile them. Environment knobs:

* ``RESNET_EDGE_CUDA=0`` skips the CUDA kernels; ``=1`` fails the build when no toolkit is found.
* ``RESNET_EDGE_CUDNN_GRAPH=0`` leaves out the cuDNN graph route of the CUDA kernels, which is built
  whenever the cuDNN frontend headers are found (``CUDNN_FRONTEND_INCLUDE``, else the pinned
  ``nvidia-cudnn-frontend`` wheel's).
* ``TORCH_CUDA_ARCH_LIST`` overrides the GPU architectures (default ``DEFAULT_CUDA_ARCHS``).
* ``MAX_JOBS`` bounds parallel compile jobs (torch's ``BuildExtension``).
"""

from __future__ import annotations

import glob
import importlib.metadata
import importlib.util
import os
import shutil
from pathlib import Path

import torch
from setuptools import setup

OPS_DIR = "csrc/ops"
# A100 (8.0), A10/A40/RTX 30 (8.6), Jetson Orin (8.7), L4/L40 (8.9), H100 (9.0); the PTX of 9.0
# lets newer GPUs JIT-compile the kernels.
DEFAULT_CUDA_ARCHS = "8.0;8.6;8.7;8.9;9.0+PTX"


def _sources(*patterns: str) -> list[str]:
    # setuptools wants source paths relative to this file.
    here = os.path.dirname(os.path.abspath(__file__))
    return sorted(os.path.relpath(path, here) for pattern in patterns for path in glob.glob(os.path.join(here, pattern)))


def _find_cuda_toolkit() -> str | None:
    """The root of a complete CUDA toolkit (``bin/nvcc`` and ``include/cuda_runtime.h``), or None.

    Torch takes the parent of the ``nvcc`` on ``PATH`` for the toolkit, which is wrong when that
    ``nvcc`` is a wrapper script (``/usr/local/bin/nvcc`` on the dev machines); such candidates
    are skipped here.
    """
    nvcc = shutil.which("nvcc")
    candidates = [
        os.environ.get("CUDA_HOME"),
        os.environ.get("CUDA_PATH"),
        os.path.dirname(os.path.dirname(os.path.realpath(nvcc))) if nvcc else None,
        "/usr/local/cuda",
    ]
    for root in filter(None, candidates):
        if os.path.isfile(os.path.join(root, "bin", "nvcc")) and os.path.isfile(
            os.path.join(root, "include", "cuda_runtime.h")
        ):
            return root
    return None


def _cuda_toolkit() -> str | None:
    """The CUDA toolkit to compile with, or None for a CPU-only build."""
    wanted = os.environ.get("RESNET_EDGE_CUDA", "auto").lower()
    if wanted in ("0", "false", "no"):
        return None
    toolkit = _find_cuda_toolkit() if torch.version.cuda is not None else None
    if toolkit is None and wanted in ("1", "true", "yes"):
        raise RuntimeError("RESNET_EDGE_CUDA=1, but no CUDA toolkit was found or torch lacks CUDA support")
    return toolkit


def _pip_nvidia_include_dirs() -> list[str]:
    """Header folders of the pip ``nvidia-*`` wheels (cuBLAS, cuSPARSE, cuDNN, ...).

    ATen's CUDA headers include cuBLAS/cuSPARSE/cuSOLVER headers that a minimal toolkit (nvcc and
    cudart only) lacks; the wheels torch depends on ship them.
    """
    return sorted(str(path) for root in _nvidia_roots() for path in Path(root).glob("*/include") if path.is_dir())


def _nvidia_roots() -> list[str]:
    """The ``nvidia`` namespace package's folders (where torch's nvidia-* wheels install)."""
    spec = importlib.util.find_spec("nvidia")
    return list(spec.submodule_search_locations or []) if spec is not None else []


def _cudnn_frontend_include_dir() -> str | None:
    """The folder holding ``cudnn_frontend.h``: ``CUDNN_FRONTEND_INCLUDE``, else the nvidia-cudnn-frontend wheel's."""
    candidates = [os.environ.get("CUDNN_FRONTEND_INCLUDE")]
    try:
        candidates.append(str(importlib.metadata.distribution("nvidia-cudnn-frontend").locate_file("include")))
    except importlib.metadata.PackageNotFoundError:
        pass
    return next((path for path in filter(None, candidates) if os.path.isfile(os.path.join(path, "cudnn_frontend.h"))), None)


def _cudnn_graph_options() -> dict:
    """Extension options for the cuDNN graph route, or {} (the route left out, with the reason printed)."""
    if os.environ.get("RESNET_EDGE_CUDNN_GRAPH", "auto").lower() in ("0", "false", "no"):
        print("resnet-edge: cuDNN graph route left out (RESNET_EDGE_CUDNN_GRAPH=0)")
        return {}
    include = _cudnn_frontend_include_dir()
    if include is None:
        print("resnet-edge: cuDNN graph route left out: no cuDNN frontend headers (pip install nvidia-cudnn-frontend); "
              "the epilogue route serves CUDA")
        return {}
    print(f"resnet-edge: cuDNN graph route with the cuDNN frontend headers in {include}")
    # No library to link: the frontend dlopens the libcudnn torch already loaded (cuda/cudnn_graph_conv.cpp).
    return {"include_dirs": [include], "define_macros": [("RESNET_EDGE_HAVE_CUDNN_FRONTEND", "1")]}


CUDA_TOOLKIT = _cuda_toolkit()
if CUDA_TOOLKIT is not None:
    os.environ["CUDA_HOME"] = CUDA_TOOLKIT  # torch.utils.cpp_extension reads it once, on import
from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension  # noqa: E402


def _extension(toolkit: str | None):
    sources = _sources(f"{OPS_DIR}/*.cpp", f"{OPS_DIR}/cpu/*.cpp", f"{OPS_DIR}/python/*.cpp")
    cxx_flags = ["-O3"]
    if toolkit is None:
        print("resnet-edge: building the CPU kernels only (no CUDA toolkit found, or RESNET_EDGE_CUDA=0)")
        return CppExtension("resnet_edge._C", sources, extra_compile_args={"cxx": cxx_flags})
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", DEFAULT_CUDA_ARCHS)
    print(f"resnet-edge: building CPU and CUDA kernels with {toolkit} for {os.environ['TORCH_CUDA_ARCH_LIST']}")
    # The toolkit's own headers come first, so the wheels only fill in what it lacks.
    graph = _cudnn_graph_options()
    include_dirs = [os.path.join(toolkit, "include"), *_pip_nvidia_include_dirs(), *graph.get("include_dirs", [])]
    return CUDAExtension(
        "resnet_edge._C",
        sources + _sources(f"{OPS_DIR}/cuda/*.cpp", f"{OPS_DIR}/cuda/*.cu"),
        include_dirs=include_dirs,
        define_macros=graph.get("define_macros", []),
        extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3"]},
    )


setup(ext_modules=[_extension(CUDA_TOOLKIT)], cmdclass={"build_ext": BuildExtension})
