"""TensorRT backend: Torch-TensorRT (``ir="dynamo"``) engines for Jetson and datacenter GPUs.

Build (on the GPU that will run the engine; see ``resnet_edge.core.targets``), in ``backend.py``:

1. BatchNorm is folded into the convolutions (``fuse.fold.fold_batchnorm``), or with ``--fused`` the
   blocks are swapped for the ``resnet_edge::`` ops, whose Torch-TensorRT converters
   (``resnet_edge.ops.tensorrt_converters``) are imported first (``graph``). INT8 with ``--fused``
   swaps the blocks after calibration, for ``resnet_edge::int8_residual_block`` ops that carry the ranges.
2. INT8 (``int8``): ModelOpt calibrates the folded model on the calibration images and inserts explicit
   Q/DQ, the residual adds included (``resnet_edge.quantize.modelopt_ptq``); the quantized model is saved
   with ``modelopt.torch.opt.save`` so the CPU can simulate the engine's exact scales later.
3. ``torch.export`` (INT8: under ModelOpt's ``export_torch_mode``) with a dynamic batch dimension
   when ``--dynamic-batch`` is given, then ``torch_tensorrt.dynamo.compile`` with the arguments of
   the installed API generation (``api``): ``enabled_precisions`` on torch-tensorrt 2.8-2.12
   (JetPack 6), a strongly typed graph on 2.13+ (TensorRT 11).
4. Saved three ways (``TensorRTOptions.formats`` picks; ``formats``): ``model.ts`` for libtorch C++ apps
   linking ``libtorchtrt_runtime`` (an ExportedProgram cannot be loaded from C++); ``model.pt2`` for
   Python (saved with ``retrace=False``: its batch stays dynamic); and ``model.engine``, the plain TensorRT plan for DeepStream / pure TensorRT apps
   (``runner.EngineRunner`` runs it from Python). Each file is loaded back and compared with the
   compiled module at the batch's min, opt and max before the bundle is written. ``--dla-core``
   builds the engine alone, with TensorRT's builder API (``dla``).

``diagnose`` reads block outputs from a *probe engine* (``probe``): the same build again with the
residual-block outputs marked as engine outputs, since a saved engine exposes only its logits.

A saved module only loads with the torch-tensorrt and TensorRT versions that built it: the manifest
records them (``tensorrt.versions``, ``requires.tensorrt``) and ``load`` refuses a mismatch.
"""

from .backend import TensorRTBackend, TensorRTOptions

__all__ = ["TensorRTBackend", "TensorRTOptions"]
