"""Torch-TensorRT converters for the fused block ops, so a fused model becomes one TensorRT engine.

Each op is rebuilt from TensorRT convolution, elementwise-sum and ReLU layers (torch-tensorrt's
``impl.conv.convNd``, ``impl.elementwise.add`` and ``impl.activation.relu``) rather than run as a
plugin: TensorRT then fuses bias, residual add and ReLU into its own convolution kernels, picks
tactics per GPU, and can quantize the block. Written against torch-tensorrt 2.14's dynamo API.

``resnet_edge::int8_residual_block`` (``resnet_edge.ops.int8_block``) goes the same way with a
quantize/dequantize pair (torch-tensorrt's ``impl.quantize.quantize``, the layers its own
``tensorrt::quantize_op`` converter adds for ModelOpt graphs) on every convolution input, every
weight tensor (per channel) and the shortcut input of the add, so TensorRT builds INT8 kernels
with the residual add fused (NVIDIA/TensorRT#1992).

Importing this module registers the converters when ``torch_tensorrt`` is importable and does
nothing otherwise (``AVAILABLE`` says which). Import it before ``torch_tensorrt`` compiles a fused
model; the TensorRT backend (``resnet_edge.backends.tensorrt``) does.
"""

from __future__ import annotations

import torch

from . import fused_basic_block, fused_bottleneck
from . import int8_block  # noqa: F401  (registers resnet_edge::int8_residual_block)

try:
    from tensorrt import ITensor as TRTTensor
    from torch_tensorrt.dynamo._SourceIR import SourceIR
    from torch_tensorrt.dynamo.conversion import impl
    from torch_tensorrt.dynamo.conversion._ConverterRegistry import dynamo_tensorrt_converter
    from torch_tensorrt.dynamo.conversion.converter_utils import enforce_tensor_types
except ImportError:  # no TensorRT here: nothing to register
    AVAILABLE = False
else:
    AVAILABLE = True

    _SOURCE_IR = SourceIR.UNKNOWN

    def _bind(target, args, kwargs) -> dict:
        """The node's arguments by schema name, whether they came positionally or as keywords."""
        names = [argument.name for argument in target._schema.arguments]
        return {**dict(zip(names, args)), **kwargs}

    def _conv(ctx, target, name, x, weight, bias, stride):
        padding = weight.shape[3] // 2  # 3x3 convolutions pad 1, 1x1 convolutions pad 0
        return impl.conv.convNd(
            ctx,
            target,
            _SOURCE_IR,
            name,
            is_conv1d=False,
            input=x,
            weight=weight,
            bias=bias,
            stride=[stride, stride],
            padding=[padding, padding],
            dilation=[1, 1],
            groups=1,
        )

    def _shortcut(ctx, target, name, params, out_channels):
        """The projection, or option A: subsample by the stride and zero-pad the channels."""
        x, stride = params["x"], params["stride"]
        if params["shortcut_weight"] is not None:
            return _conv(ctx, target, f"{name}_shortcut", x, params["shortcut_weight"], params["shortcut_bias"], stride)
        if stride != 1:
            for dim in (2, 3):
                x = impl.slice.slice_op(ctx, target, _SOURCE_IR, f"{name}_subsample_{dim}", x, dim, 0, None, stride)
        extra = out_channels - params["x"].shape[1]
        if extra:
            # Pad widths in torch order: last dimension first, so (W, H, C) pairs.
            x = impl.pad.constant_padNd(ctx, target, _SOURCE_IR, f"{name}_zero_pad", x, [0, 0, 0, 0, 0, extra], 0)
        return x

    def _block(ctx, target, args, kwargs, name, layers):
        """The convolutions ``layers`` ((conv name, stride), ...) with ReLUs, the shortcut added before the last."""
        params = _bind(target, args, kwargs)
        out = params["x"]
        for index, (conv, stride) in enumerate(layers):
            weight = params[f"{conv}_weight"]
            out = _conv(ctx, target, f"{name}_{conv}", out, weight, params[f"{conv}_bias"], stride)
            if index == len(layers) - 1 and params["residual"]:
                shortcut = _shortcut(ctx, target, name, params, weight.shape[0])
                out = impl.elementwise.add(ctx, target, _SOURCE_IR, f"{name}_add", out, shortcut)
            out = impl.activation.relu(ctx, target, _SOURCE_IR, f"{name}_{conv}_relu", out)
        return out

    @dynamo_tensorrt_converter(fused_basic_block.default, supports_dynamic_shapes=True)
    @enforce_tensor_types({0: (TRTTensor,)})
    def convert_fused_basic_block(ctx, target, args, kwargs, name):
        """``resnet_edge::fused_basic_block`` as TensorRT layers."""
        stride = _bind(target, args, kwargs)["stride"]
        return _block(ctx, target, args, kwargs, name, [("conv1", stride), ("conv2", 1)])

    @dynamo_tensorrt_converter(fused_bottleneck.default, supports_dynamic_shapes=True)
    @enforce_tensor_types({0: (TRTTensor,)})
    def convert_fused_bottleneck(ctx, target, args, kwargs, name):
        """``resnet_edge::fused_bottleneck`` as TensorRT layers (the stride on the 3x3, as in V1.5)."""
        stride = _bind(target, args, kwargs)["stride"]
        return _block(ctx, target, args, kwargs, name, [("conv1", 1), ("conv2", stride), ("conv3", 1)])

    def _qdq(ctx, target, name, tensor, amax):
        """``tensor`` through an INT8 quantize/dequantize pair with range ``amax``; as it is when None."""
        if amax is None:
            return tensor
        return impl.quantize.quantize(ctx, target, _SOURCE_IR, name, tensor, amax, 8, 0)

    @dynamo_tensorrt_converter(torch.ops.resnet_edge.int8_residual_block.default, supports_dynamic_shapes=True)
    @enforce_tensor_types({0: (TRTTensor,)})
    def convert_int8_residual_block(ctx, target, args, kwargs, name):
        """``resnet_edge::int8_residual_block`` as Q/DQ + convolution + add + ReLU layers."""
        params = _bind(target, args, kwargs)
        x, strides = params["x"], params["strides"]
        out = x
        last = len(params["weights"]) - 1
        for index, (weight, bias, stride) in enumerate(zip(params["weights"], params["biases"], strides)):
            layer = f"{name}_conv{index + 1}"
            out = _qdq(ctx, target, f"{layer}_input", out, params["input_amax"][index])
            quantized_weight = _qdq(ctx, target, f"{layer}_weight", weight, params["weight_amax"][index])
            out = _conv(ctx, target, layer, out, quantized_weight, bias, stride)
            if index == last and params["residual"]:
                block_stride = max(strides)
                if params["shortcut_weight"] is not None:
                    shortcut_input = _qdq(ctx, target, f"{name}_shortcut_input", x, params["shortcut_input_amax"])
                    shortcut_weight = _qdq(ctx, target, f"{name}_shortcut_weight", params["shortcut_weight"], params["shortcut_weight_amax"])
                    shortcut = _conv(ctx, target, f"{name}_shortcut", shortcut_input, shortcut_weight, params["shortcut_bias"], block_stride)
                else:
                    shortcut = _shortcut(ctx, target, name, {**params, "stride": block_stride, "shortcut_weight": None}, weight.shape[0])
                shortcut = _qdq(ctx, target, f"{name}_residual", shortcut, params["residual_amax"])
                out = impl.elementwise.add(ctx, target, _SOURCE_IR, f"{name}_add", out, shortcut)
            out = impl.activation.relu(ctx, target, _SOURCE_IR, f"{layer}_relu", out)
        return out
