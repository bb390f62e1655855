"""Runners timed each in its own process: ``ProcessRunner`` (one) and ``ProcessRunners`` (several, in turns).

Two runtimes in one process disturb each other: PyTorch's OpenMP pool, ONNX Runtime's spinning workers
and OpenVINO's streams all stay alive between calls (``bench`` measured about 10% high at batch 1 that
way). A runner here is built, called and timed inside its own spawned process; only one process runs
at a time, the others block on their pipe. ``timing.timed_calls`` lets such a runner time itself, so
it takes its turn in ``timing.time_interleaved`` beside in-process runners.
"""

from __future__ import annotations

import multiprocessing
from typing import Callable

import torch

from .timing import timed_calls, time_interleaved, warm_up

Factory = Callable[[dict], Callable | None]  # recipe -> runner, or None when it cannot be built here


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0][:200] if text else ''}"


def _serve(connection, factory: Factory, recipe: dict, threads: int) -> None:
    """The worker: build the runner, say whether it is ready, then run or time it on request until None."""
    torch.set_num_threads(threads)
    try:
        run = factory(recipe)
    except Exception as error:
        connection.send(("error", _one_line(error)))
        return
    connection.send(("ready", None) if run is not None else ("unavailable", None))
    with torch.inference_mode():
        while (request := connection.recv()) is not None:
            kind, array, count = request
            batch = torch.from_numpy(array)
            try:
                if kind == "run":
                    for _ in range(count):
                        run(batch)
                    connection.send(("ok", None))
                else:
                    connection.send(("ok", timed_calls(run, batch, count)))
            except Exception as error:
                connection.send(("error", _one_line(error)))


class ProcessRunner:
    """``factory(recipe)`` run in a spawned process (``factory`` must be a module-level function, which
    the new process imports). Calling it runs the runner there once; ``timed`` times ``iters`` calls
    there, so the pipe's cost is not in the figures."""

    def __init__(self, factory: Factory, recipe: dict, threads: int) -> None:
        context = multiprocessing.get_context("spawn")  # never fork a process whose thread pools are running
        self._pipe, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, factory, recipe, threads), daemon=True)
        self._process.start()
        child.close()
        self.status: str | None = None  # "ready", "unavailable" (the factory returned None) or "error"
        self.reason: str | None = None

    def wait_ready(self) -> bool:
        """Wait for the worker to build its runner; whether it is ready (else ``status``/``reason`` say why)."""
        if self.status is None:
            self.status, self.reason = self._receive_start()
        return self.status == "ready"

    def _receive_start(self) -> tuple[str, str | None]:
        try:
            return self._pipe.recv()
        except EOFError:
            return "error", f"the worker process exited with code {self._process.exitcode} before its runner was built"

    def _ask(self, kind: str, batch: torch.Tensor, count: int):
        # As a numpy array, pickled through the pipe: a tensor would travel through torch's shared-memory
        # files instead, which fail under a file-size limit (`ulimit -f`) that has nothing to do with timing.
        self._pipe.send((kind, batch.numpy(), count))
        try:
            status, value = self._pipe.recv()
        except EOFError:
            raise RuntimeError(f"the worker process exited with code {self._process.exitcode}") from None
        if status != "ok":
            raise RuntimeError(value)
        return value

    def __call__(self, batch: torch.Tensor) -> None:
        self._ask("run", batch, 1)

    def timed(self, batch: torch.Tensor, iters: int, cuda: bool = False) -> tuple[list[float], list[float]]:
        """(host-to-result ms, CUDA-event ms) of ``iters`` calls, measured in the worker (CPU runners: no CUDA figures)."""
        return self._ask("time", batch, iters)

    def close(self) -> None:
        """Stop the worker (it exits on the next request it reads); wait for it, then end it if it hangs."""
        if self._process.is_alive():
            try:
                self._pipe.send(None)
            except (BrokenPipeError, OSError):
                pass
            self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
        self._pipe.close()


class ProcessRunners:
    """One process per recipe, started together, every one required to start (a ``RuntimeError`` naming
    the first that did not). ``time``: the runners in turns round by round (``timing.time_interleaved``),
    warmed up first. What the benchmark scripts use; ``bench`` interleaves single ``ProcessRunner``s
    with its in-process variants instead."""

    def __init__(self, recipes: dict[str, dict], factory: Factory, threads: int) -> None:
        self.runners = {name: ProcessRunner(factory, recipe, threads) for name, recipe in recipes.items()}
        for name, runner in self.runners.items():
            if not runner.wait_ready():
                self.close()
                raise RuntimeError(f"runner {name} failed to start: {runner.reason or runner.status}")

    def time(self, batch: torch.Tensor, rounds: int, iters: int, warmup: int) -> dict[str, list[float]]:
        """Milliseconds per call of each ready runner, ``rounds`` x ``iters`` samples."""
        warm_up(self.runners, batch, lambda _name: warmup)
        wall, _ = time_interleaved(self.runners, batch, [iters] * rounds)
        return wall

    def close(self) -> None:
        for runner in self.runners.values():
            runner.close()

    def __enter__(self) -> "ProcessRunners":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
