"""The interleaved timing loop the benchmark scripts share (the package's own, ``resnet_edge.core.timing``),
and ``ProcessRunners``: one process per runner."""

from __future__ import annotations

from typing import Callable

import torch

from resnet_edge.core.timing import time_interleaved as interleaved
from resnet_edge.core.timing import timed_calls as core_timed_calls
from resnet_edge.core.timing import warm_up


def time_interleaved(runners: dict[str, Callable], batch: torch.Tensor, rounds: int, iters: int, warmup: int) -> dict[str, list[float]]:
    """Milliseconds per call of each runner, ``rounds`` x ``iters`` samples (``resnet_edge.core.timing``'s
    loop: the runners take turns round by round, so background load on a shared machine hits all alike)."""
    warm_up(runners, batch, lambda _name: warmup)
    wall, _ = interleaved(runners, batch, [iters] * rounds)
    return wall


def timed_calls(run: Callable, batch: torch.Tensor, iters: int) -> list[float]:
    """Milliseconds of each of ``iters`` calls ``run(batch)``."""
    return core_timed_calls(run, batch, iters)[0]


def _serve(connection, factory: Callable, recipe: dict, threads: int) -> None:
    """A worker process: build one runner from ``recipe`` with ``factory``, then time it on request."""
    torch.set_num_threads(threads)
    run = factory(recipe)
    connection.send("ready")
    with torch.inference_mode():
        while (request := connection.recv()) is not None:
            batch, iters, warmup = request
            for _ in range(warmup):
                run(batch)
            connection.send(timed_calls(run, batch, iters))


class ProcessRunners:
    """One process per runner, timed in turns: only one process runs at a time, the others block on
    their pipe, so no runtime's thread pool (OpenMP, ONNX Runtime's spinning workers, OpenVINO's
    streams) competes with another's. ``factory(recipe) -> callable(batch)`` must be importable by a
    spawned process (a module-level function of the benchmark script)."""

    def __init__(self, recipes: dict[str, dict], factory: Callable, threads: int) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.workers = {}
        for name, recipe in recipes.items():
            parent, child = context.Pipe()
            process = context.Process(target=_serve, args=(child, factory, recipe, threads), daemon=True)
            process.start()
            self.workers[name] = (parent, process)
        for name, (parent, _) in self.workers.items():
            if parent.recv() != "ready":
                raise RuntimeError(f"runner {name} failed to start")

    def time(self, batch: torch.Tensor, rounds: int, iters: int, warmup: int) -> dict[str, list[float]]:
        """Milliseconds per call of each runner, ``rounds`` x ``iters`` samples, runners in turns round by round."""
        samples: dict[str, list[float]] = {name: [] for name in self.workers}
        for index in range(rounds):
            for name, (parent, _) in self.workers.items():
                parent.send((batch, iters, warmup if index == 0 else 0))
                samples[name].extend(parent.recv())
        return samples

    def close(self) -> None:
        for parent, process in self.workers.values():
            parent.send(None)
            process.join(timeout=30)

    def __enter__(self) -> "ProcessRunners":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
