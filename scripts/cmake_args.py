"""Print the CMake cache arguments that point a build at this Python's torch (libtorch).

    cmake -S . -B build/cpp -DCMAKE_BUILD_TYPE=Release $(.venv/bin/python scripts/cmake_args.py)

* ``CMAKE_PREFIX_PATH``: ``torch.utils.cmake_prefix_path``.
* For a CUDA build of torch, whose CMake config enables CUDA and looks for the toolkit even when
  nothing is compiled for the GPU: ``CMAKE_CUDA_COMPILER`` and ``CUDA_TOOLKIT_ROOT_DIR`` from
  ``CUDA_HOME``/``/usr/local/cuda`` (the ``nvcc`` first on ``PATH`` may be a wrapper outside the
  toolkit), and ``CUDA_nvrtc_LIBRARY`` from the pip ``nvidia-*`` wheels when the toolkit lacks nvrtc.
* ``TENSORRT_LIBS_DIR``: the pip TensorRT wheel's ``tensorrt_libs`` package directory when this
  Python has one, so a build against pip torch-tensorrt links and runs without ``LD_LIBRARY_PATH``
  (csrc/lib/cmake/TensorRTLibs.cmake). JetPack's TensorRT is a system library: nothing is printed.
* ``OpenVINO_DIR``: the openvino pip wheel's ``openvino/cmake`` (OpenVINOConfig.cmake; the wheel
  ships the C++ runtime and headers too), found without importing it, so libresnet_edge runs
  OpenVINO bundles. Nothing is printed when this Python has no openvino.

Used by ``make cpp`` and tests/test_cpp_infer.py so both configure the same way.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shlex
from pathlib import Path


def tensorrt_libs_dir() -> str | None:
    """The ``tensorrt_libs`` package directory of this Python (pip TensorRT), found without
    importing it (its ``__init__`` loads the libraries), or None."""
    try:
        spec = importlib.util.find_spec("tensorrt_libs")
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    return str(Path(locations[0]).resolve()) if locations else None


def openvino_cmake_dir() -> str | None:
    """The openvino wheel's CMake config directory (``openvino/cmake``) in this Python, or None."""
    try:
        spec = importlib.util.find_spec("openvino")
    except (ImportError, ValueError):
        return None
    for location in list(spec.submodule_search_locations or []) if spec is not None else []:
        config = Path(location, "cmake", "OpenVINOConfig.cmake")
        if config.is_file():
            return str(config.parent.resolve())
    return None


def cmake_args() -> list[str]:
    import torch

    args = [f"-DCMAKE_PREFIX_PATH={torch.utils.cmake_prefix_path}"]
    openvino_dir = openvino_cmake_dir()
    if openvino_dir is not None:
        args.append(f"-DOpenVINO_DIR={openvino_dir}")
    trt_libs = tensorrt_libs_dir()
    if trt_libs is not None:
        args.append(f"-DTENSORRT_LIBS_DIR={trt_libs}")
    if torch.version.cuda is None:
        return args
    for root in filter(None, (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda")):
        if Path(root, "bin", "nvcc").is_file():
            args += [f"-DCMAKE_CUDA_COMPILER={Path(root, 'bin', 'nvcc')}", f"-DCUDA_TOOLKIT_ROOT_DIR={root}"]
            if not glob.glob(f"{root}/lib64/libnvrtc.so*") and not glob.glob(f"{root}/lib/libnvrtc.so*"):
                site = Path(torch.__file__).resolve().parents[1]
                wheels = sorted(p for p in glob.glob(f"{site}/nvidia/*/lib/libnvrtc.so*") if "builtins" not in p and ".alt." not in p)
                if wheels:
                    args.append(f"-DCUDA_nvrtc_LIBRARY={wheels[0]}")
            break
    return args


if __name__ == "__main__":
    print(" ".join(shlex.quote(arg) for arg in cmake_args()))
