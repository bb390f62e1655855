"""``--cuda-graphs``: a variant that replays a captured CUDA graph of another variant's torch module."""

from __future__ import annotations

import torch

from .variants import Variant

SUFFIX = "-cudagraphs"


class GraphRunner:
    """Replays a CUDA graph of ``module`` captured per batch size (static input and output buffers)."""

    def __init__(self, module: torch.nn.Module, shape: tuple[int, ...]) -> None:
        self.module = module
        self.shape = shape
        self.graphs: dict[int, tuple] = {}

    def _capture(self, size: int):
        static_in = torch.zeros((size, *self.shape), device="cuda")
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.inference_mode():  # warm up off the default stream, as capture requires
            for _ in range(3):
                self.module(static_in)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.inference_mode():
            static_out = self.module(static_in)
        return graph, static_in, static_out

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        size = batch.shape[0]
        if size not in self.graphs:
            self.graphs[size] = self._capture(size)
        graph, static_in, static_out = self.graphs[size]
        static_in.copy_(batch)
        graph.replay()
        return static_out.float().cpu()


def is_graph_variant(variant: Variant) -> bool:
    """Whether ``variant`` replays a CUDA graph (one that cannot be captured is left out, not fatal)."""
    return variant.name.endswith(SUFFIX)


def base_name(name: str) -> str:
    """The variant a graph variant replays (its memory figures are that variant's)."""
    return name.removesuffix(SUFFIX)


def graph_variants(variants: list[Variant], shape: tuple[int, ...]) -> list[Variant]:
    """One graph-replay variant for every variant that runs a torch module on the GPU."""
    return [
        Variant(f"{v.name}{SUFFIX}", f"{v.description}, replayed as a CUDA graph", v.device, GraphRunner(v.module, shape), None, v.batch_range)
        for v in variants
        if v.module is not None
    ]
