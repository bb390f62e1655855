"""The OpenVINO block probe for ``diagnose``: the IR's residual adds, each followed through its ReLU /
FakeQuantize, added as results of the model before it is compiled as the backend compiles it."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from ...core.errors import CheckFailed
from ..blocks import Probe


def _consumers(output) -> list:
    return [target.get_node() for target in output.get_target_inputs()]


def _residual_adds(model) -> list:
    """The ``Add`` nodes of two computed tensors, in execution order: a bias add's other operand comes
    from constants only (a ``Constant``, or an INT8 bias's Convert/Multiply of constants)."""
    constant: dict[str, bool] = {}
    adds = []
    for op in model.get_ordered_ops():  # topological: every input is seen before its consumers
        inputs = [op.input_value(i).get_node() for i in range(op.get_input_size())]
        constant[op.get_name()] = op.get_type_name() == "Constant" or (bool(inputs) and all(
            constant.get(node.get_name(), False) for node in inputs))
        if op.get_type_name() == "Add" and not any(constant.get(node.get_name(), False) for node in inputs):
            adds.append(op)
    return adds


def openvino_block_outputs(model, blocks: Sequence[str]) -> dict[str, object]:
    """Block name -> the ``ov.Output`` of ``model`` (an OpenVINO ``Model``) that holds the block's output.

    An IR keeps no module scopes, so the blocks are the residual adds in execution order (one per block
    in every ResNet), each followed through its ``Relu`` and ``FakeQuantize``: a float IR ends a block
    with Add -> Relu; an INT8 IR from the project's Q/DQ ONNX with Add -> FakeQuantize (ONNX Runtime's
    quantizer folds the ReLU into the [0, max] range; OpenVINO turns each activation Q/DQ pair into one
    FakeQuantize, whose output is the dequantized value), the value the runtime really passes on, as
    the ONNX probe reads the QuantizeLinear."""
    found = []
    for op in _residual_adds(model):
        output = op.output(0)
        while len(consumers := _consumers(output)) == 1 and consumers[0].get_type_name() in ("Relu", "FakeQuantize"):
            output = consumers[0].output(0)
        found.append(output)
    if len(found) != len(blocks):
        raise CheckFailed(f"found {len(found)} block outputs in the OpenVINO model for {len(blocks)} blocks; cannot map them")
    return dict(zip(blocks, found))


def openvino_probe(model, blocks: Sequence[str], compile_model: Callable[[object], object]) -> Probe:
    """A probe running ``model`` (an OpenVINO ``Model``, changed in place) with the block outputs added as
    results; ``compile_model(model)`` compiles it exactly as the backend compiles the artifact."""
    outputs = openvino_block_outputs(model, blocks)
    results = model.add_outputs(list(outputs.values()))
    request = compile_model(model).create_infer_request()

    def run(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        request.infer({0: batch.detach().to("cpu", torch.float32).contiguous().numpy()})
        return {block: torch.from_numpy(request.get_tensor(result).data.astype(np.float32)) for block, result in zip(blocks, results)}

    return run
