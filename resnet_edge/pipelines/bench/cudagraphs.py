"""``--cuda-graphs``: a variant that replays a captured CUDA graph of another variant's device-resident
work (``Variant.resident``: for the bundle its padding, casts and artifact; for eager PyTorch the model)."""

from __future__ import annotations

import torch

from .variants import DeviceEntry, Variant

SUFFIX = "-cudagraphs"


class GraphRunner:
    """Replays a CUDA graph of ``entry.run`` captured per batch size (static input and output buffers).

    Called with a host batch it copies it into the static input (the copy casts and lays it out as the
    variant's own input is), replays, and copies the logits back; ``resident`` is the replay alone."""

    def __init__(self, entry: DeviceEntry, shape: tuple[int, ...]) -> None:
        self.entry = entry
        self.shape = shape
        self.graphs: dict[int, tuple] = {}

    def _capture(self, size: int):
        static_in = self.entry.prepare(torch.zeros((size, *self.shape)))
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.inference_mode():  # warm up off the default stream, as capture requires
            for _ in range(3):
                self.entry.run(static_in)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), torch.inference_mode():
            static_out = self.entry.run(static_in)
        return graph, static_in, static_out

    def _graph(self, size: int) -> tuple:
        if size not in self.graphs:
            self.graphs[size] = self._capture(size)
        return self.graphs[size]

    def fill(self, batch: torch.Tensor) -> torch.Tensor:
        """The static input of ``batch``'s size (captured on first use), holding ``batch``."""
        _, static_in, _ = self._graph(batch.shape[0])
        static_in.copy_(batch)
        return static_in

    def replay(self, static_in: torch.Tensor) -> torch.Tensor:
        """Replay the graph whose static input is ``static_in`` (from ``fill``); its static output, on the device."""
        graph, _, static_out = self._graph(static_in.shape[0])
        graph.replay()
        return static_out

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return self.replay(self.fill(batch)).float().cpu()

    @property
    def resident(self) -> DeviceEntry:
        return DeviceEntry(self.fill, self.replay)


def is_graph_variant(variant: Variant) -> bool:
    """Whether ``variant`` replays a CUDA graph (one that cannot be captured is left out, not fatal)."""
    return variant.name.endswith(SUFFIX)


def base_name(name: str) -> str:
    """The variant a graph variant replays (its memory figures are that variant's)."""
    return name.removesuffix(SUFFIX)


def graph_variants(variants: list[Variant], shape: tuple[int, ...]) -> list[Variant]:
    """One graph-replay variant for every variant with device-resident work on the GPU."""
    graphs = []
    for variant in variants:
        if variant.resident is not None:
            runner = GraphRunner(variant.resident, shape)
            graphs.append(Variant(f"{variant.name}{SUFFIX}", f"{variant.description}, replayed as a CUDA graph", variant.device,
                                  runner, variant.batch_range, runner.resident))
    return graphs
