"""TensorRT backend: Torch-TensorRT (``ir="dynamo"``) engines for Jetson and datacenter GPUs, built on the
GPU that runs them (``backend``), with ``--dla-core`` builds through TensorRT's builder (``dla``) and a
probe engine for ``diagnose`` (``probe``). How a build runs, step by step: docs/tensorrt-backend.md.
"""

from .backend import TensorRTBackend, TensorRTOptions

__all__ = ["TensorRTBackend", "TensorRTOptions"]
