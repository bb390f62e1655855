"""The TorchScript block probe for ``diagnose``: a frozen module has its blocks inlined (hooks no longer
reach them), so its graph is copied to also return each block's output: each ``resnet_edge::fused_*_block``
op, or each ReLU fed by an add, in order."""

from __future__ import annotations

import warnings
from typing import Sequence

import torch

from ...core.errors import CheckFailed
from ..blocks import Probe


def is_block_output(node) -> bool:
    """Whether a TorchScript graph node ends a residual block (a fused block op, or a ReLU fed by an add)."""
    kind = node.kind()
    if kind.startswith("resnet_edge::") and "block" in kind:
        return True
    return kind in ("aten::relu", "aten::relu_") and node.inputsAt(0).node().kind() in ("aten::add", "aten::add_")


def torchscript_probe(module: torch.jit.ScriptModule, blocks: Sequence[str], device: torch.device) -> Probe:
    """A probe running a copy of ``module``'s forward graph that returns the block outputs too."""
    graph = module.forward.graph.copy()
    values = [node.output() for node in graph.nodes() if is_block_output(node)]
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
