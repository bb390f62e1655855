"""Torch-TensorRT converters for the fused block ops, so a fused model becomes one TensorRT engine.

Each op is rebuilt from TensorRT convolution, elementwise-sum and ReLU layers (torch-tensorrt's
``impl.conv.convNd``, ``impl.elementwise.add`` and ``impl.activation.relu``) rather than run as a
plugin: TensorRT then fuses bias, residual add and ReLU into its own convolution kernels, picks
tactics per GPU, and can quantize the block. Written against torch-tensorrt 2.14's dynamo API.

Importing this module registers the converters when ``torch_tensorrt`` is importable and does
nothing otherwise (``AVAILABLE`` says which). Import it before ``torch_tensorrt`` compiles a fused
model; the TensorRT backend (``resnet_edge.backends.tensorrt``) does.
"""

from __future__ import annotations

from . import fused_basic_block, fused_bottleneck

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
