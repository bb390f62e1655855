"""Reading residual-block outputs out of a deployed artifact, for ``resnet-edge diagnose``.

Only the block outputs are exposed (the tensor after each block's add + ReLU), never every layer:
they are where TensorRT and ONNX Runtime fuse conv + add + ReLU, so marking them keeps the fusion
(Polygraphy's ``mark all`` breaks it and changes what is measured).

* ONNX: the exporter records each node's module path (``pkg.torch.onnx.name_scopes`` metadata,
  e.g. ``['', 'layer1', 'layer1.0', 'add_35']``); a block's output is the output of its last node. In
  a Q/DQ graph that tensor feeds a ``QuantizeLinear``: its int8 output is what the engine really
  produces, so that is what is read (and dequantized here with the node's own scale and zero point).
  Without the metadata, the ReLUs fed by an ``Add`` are taken in graph order.
* TorchScript: a frozen module has its blocks inlined (hooks no longer reach them), so its graph is
  copied and returns the block outputs as well: each ``resnet_edge::fused_*_block`` op, or each ReLU
  fed by an add, in order.
* OpenVINO: the residual adds of the IR in execution order, each followed through its ReLU /
  FakeQuantize (``openvino_block_outputs``), added as results of the model before it is compiled.
* TensorRT: the engine rebuilt with the block outputs marked (``backends/tensorrt/probe.py``).

A probe is a callable: NCHW float32 CPU batch -> ``{block name: float32 CPU tensor}``, in block order.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..core.errors import CheckFailed

Probe = Callable[[torch.Tensor], dict[str, torch.Tensor]]

SCOPES_KEY = "pkg.torch.onnx.name_scopes"
_QDQ = ("QuantizeLinear", "DequantizeLinear")


def _onnx():
    import onnx

    return onnx


def _scopes(node) -> list[str]:
    for prop in node.metadata_props:
        if prop.key == SCOPES_KEY:
            text = prop.value.strip("[]")
            return [part.strip().strip("'\"") for part in text.split(",")]
    return []


def _by_order(graph, blocks: Sequence[str]) -> dict[str, str]:
    producers = {out: node for node in graph.node for out in node.output}
    found = [node.output[0] for node in graph.node
             if node.op_type == "Relu" and node.input[0] in producers and producers[node.input[0]].op_type == "Add"]
    if len(found) != len(blocks):
        raise CheckFailed(f"found {len(found)} block outputs in the ONNX graph for {len(blocks)} blocks; cannot map them")
    return dict(zip(blocks, found))


def onnx_block_tensors(graph, blocks: Sequence[str]) -> dict[str, str]:
    """Block name -> the name of its output tensor in ``graph`` (float, before any QuantizeLinear)."""
    last: dict[str, str] = {}
    for node in graph.node:
        if node.op_type in _QDQ:
            continue
        scopes = _scopes(node)
        for block in blocks:
            if block in scopes:
                last[block] = node.output[0]
    if len(last) == len(blocks):
        return {block: last[block] for block in blocks}
    return _by_order(graph, blocks)


def _initializer(graph, name: str):
    onnx = _onnx()
    for init in graph.initializer:
        if init.name == name:
            return onnx.numpy_helper.to_array(init)
    for node in graph.node:  # a Constant node
        if node.op_type == "Constant" and node.output[0] == name:
            return onnx.numpy_helper.to_array(node.attribute[0].t)
    return None


def onnx_probe_model(model, blocks: Sequence[str]) -> tuple[object, dict[str, tuple[str, object, object]]]:
    """A copy of ``model`` that also outputs each block's output; block -> (output name, scale, zero point).

    Where the block output is quantized, its QuantizeLinear output (int8) is read: scale and zero point
    say how to dequantize it; (name, None, None) for a float output.
    """
    onnx = _onnx()
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    graph = probe.graph
    tensors = onnx_block_tensors(graph, blocks)
    inferred = onnx.shape_inference.infer_shapes(probe).graph
    types = {info.name: info.type.tensor_type.elem_type for info in list(inferred.value_info) + list(inferred.output)}
    quantizers = {node.input[0]: node for node in graph.node if node.op_type == "QuantizeLinear"}
    existing = {out.name for out in graph.output}
    reads: dict[str, tuple[str, object, object]] = {}
    for block, tensor in tensors.items():
        q = quantizers.get(tensor)
        if q is not None:
            scale = _initializer(graph, q.input[1])
            zero = _initializer(graph, q.input[2]) if len(q.input) > 2 and q.input[2] else np.zeros((), np.int8)
            name, elem = q.output[0], onnx.helper.np_dtype_to_tensor_dtype(np.asarray(zero).dtype)
            reads[block] = (name, scale, zero)
        else:
            name, elem = tensor, types.get(tensor, onnx.TensorProto.FLOAT)
            reads[block] = (name, None, None)
        if name not in existing:
            graph.output.append(onnx.helper.make_tensor_value_info(name, elem, None))
            existing.add(name)
    return probe, reads


def _dequantized(array: np.ndarray, scale, zero) -> torch.Tensor:
    if scale is None:
        return torch.from_numpy(np.asarray(array, dtype=np.float32))
    scale, zero = np.asarray(scale, np.float32), np.asarray(zero).astype(np.float32)
    if scale.ndim == 1:  # per-channel (axis 1 of NCHW)
        scale, zero = scale.reshape(1, -1, 1, 1), zero.reshape(1, -1, 1, 1)
    return torch.from_numpy((array.astype(np.float32) - zero) * scale)


def ort_probe(model_path: Path, manifest: dict, blocks: Sequence[str], make_session: Callable[[Path], object]) -> Probe:
    """A probe running ``model_path`` with the block outputs added; ``make_session(path)`` opens it
    exactly as the backend opens the artifact (providers, optimisation level)."""
    onnx = _onnx()
    probe, reads = onnx_probe_model(onnx.load(str(model_path)), blocks)
    with tempfile.TemporaryDirectory(prefix="resnet-edge-probe-") as work:
        path = Path(work) / "probe.onnx"
        onnx.save(probe, str(path))
        session = make_session(path)
    input_name = manifest["input"]["name"]
    names = list(dict.fromkeys(name for name, _, _ in reads.values()))

    def run(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        array = batch.detach().to("cpu", torch.float32).contiguous().numpy()
        values = dict(zip(names, session.run(names, {input_name: array})))
        return {block: _dequantized(values[name], scale, zero) for block, (name, scale, zero) in reads.items()}

    return run


def _is_block_output(node) -> bool:
    kind = node.kind()
    if kind.startswith("resnet_edge::") and "block" in kind:
        return True
    return kind in ("aten::relu", "aten::relu_") and node.inputsAt(0).node().kind() in ("aten::add", "aten::add_")


def torchscript_probe(module: torch.jit.ScriptModule, blocks: Sequence[str], device: torch.device) -> Probe:
    """A probe running a copy of ``module``'s forward graph that returns the block outputs too."""
    graph = module.forward.graph.copy()
    values = [node.output() for node in graph.nodes() if _is_block_output(node)]
    if len(values) != len(blocks):
        raise CheckFailed(f"found {len(values)} block outputs in the TorchScript graph for {len(blocks)} blocks; cannot map them")
    outputs = list(graph.outputs())
    pack = graph.create("prim::TupleConstruct", outputs + values)
    pack.insertBefore(graph.return_node())
    pack.output().setType(torch._C.TupleType([value.type() for value in outputs + values]))
    graph.eraseOutput(0)
    graph.registerOutput(pack.output())
    function = torch._C._create_function_from_graph("block_probe", graph)

    def run(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = function(module._c, batch.to(device, torch.float32))
        return {block: tensor.float().cpu() for block, tensor in zip(blocks, result[len(outputs):])}

    return run


def module_probe(module: torch.nn.Module, blocks: Sequence[str], device: torch.device | str = "cpu") -> Probe:
    """A probe of an eager module (the FP32 reference, a fake-quant simulator): forward hooks on its blocks."""
    captured: dict[str, torch.Tensor] = {}
    for block in blocks:
        module.get_submodule(block).register_forward_hook(
            lambda _m, _i, output, name=block: captured.__setitem__(name, output.detach().float().cpu().clone()))

    def run(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        captured.clear()
        with torch.no_grad():
            module(batch.to(device, torch.float32))
        return {block: captured[block] for block in blocks}

    return run


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
