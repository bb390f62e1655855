"""What the DLA build does to, and reads from, TensorRT's parsed ``INetworkDefinition``: the implicit INT8
ranges, the builder flags, and the layer table the placement check maps the engine back to.

Written against the 10.3.0, 10.13.3.9, 11.1.0.106 and 11.4.0.106 bindings: ``ITensor.set_dynamic_range(min,
max)`` (10.x only; returns False on failure), ``INetworkDefinition.num_inputs / get_input / num_layers /
get_layer``, ``ILayer.name / type / num_outputs / get_output``, ``ITensor.name / dtype``, and
``IBuilderConfig.set_flag(trt.BuilderFlag.X)``.
"""

from __future__ import annotations

from collections import Counter

from ...core.errors import CheckFailed


def network_tensors(network) -> dict:
    """Tensor name -> ``ITensor`` for the network inputs and every layer output. The ONNX parser names each
    tensor after its ONNX tensor (onnx-tensorrt ``ImporterContext::registerTensor``), so ONNX names find them."""
    tensors = {network.get_input(i).name: network.get_input(i) for i in range(network.num_inputs)}
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        for slot in range(layer.num_outputs):
            tensors[layer.get_output(slot).name] = layer.get_output(slot)
    return tensors


def apply_dynamic_ranges(network, ranges: dict[str, float]) -> int:
    """Give each tensor named in ``ranges`` the symmetric dynamic range ``[-amax, amax]`` (TensorRT 10's
    implicit INT8); the number set. ``CheckFailed`` naming a tensor the network lacks or that refuses it:
    a build without that range would not be the quantization the simulator reproduces."""
    tensors = network_tensors(network)
    missing = sorted(name for name in ranges if name not in tensors)
    if missing:
        raise CheckFailed(f"TensorRT's network has no tensor {missing[0]!r} (of {len(missing)} quantized tensors): cannot give it its INT8 range")
    for name, amax in ranges.items():
        if not tensors[name].set_dynamic_range(-float(amax), float(amax)):
            raise CheckFailed(f"TensorRT refused the dynamic range +-{amax:.6g} for tensor {name!r}")
    return len(ranges)


def apply_flags(builder_flag, config, names: list[str]) -> list[str]:
    """``config.set_flag`` for each ``BuilderFlag`` name; ``CheckFailed`` naming one the installed bindings
    lack (TensorRT 11 removed FP16 / INT8) instead of an ``AttributeError`` after the export."""
    missing = [name for name in names if not hasattr(builder_flag, name)]
    if missing:
        raise CheckFailed(f"the installed TensorRT has no BuilderFlag.{missing[0]}; this DLA build needs {', '.join(names)}")
    for name in names:
        config.set_flag(getattr(builder_flag, name))
    return list(names)


def _kind(value) -> str:
    """An enum member's name (``LayerType.CONVOLUTION`` -> ``CONVOLUTION``, ``DataType.HALF`` -> ``HALF``)."""
    return str(getattr(value, "name", value)).rsplit(".", 1)[-1]


def layer_table(network) -> list[list[str]]:
    """``[[layer name, layer type], ...]`` in network order: what ``ForeignNode[first...last]`` ranges index."""
    return [[network.get_layer(i).name, _kind(network.get_layer(i).type)] for i in range(network.num_layers)]


def tensor_types(network) -> dict:
    """The network's I/O dtypes and how many layer outputs have each dtype (the strongly typed network's
    precision; a weakly typed one stays FLOAT here and the builder flags decide)."""
    outputs = Counter(_kind(network.get_layer(i).get_output(s).dtype)
                      for i in range(network.num_layers) for s in range(network.get_layer(i).num_outputs))
    return {
        "input": {network.get_input(i).name: _kind(network.get_input(i).dtype) for i in range(network.num_inputs)},
        "output": {network.get_output(i).name: _kind(network.get_output(i).dtype) for i in range(network.num_outputs)},
        "layer_outputs": dict(sorted(outputs.items())),
    }
