"""Process-group set-up for ``torchrun``: DistributedDataParallel on one or many machines.

``torchrun`` exports RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR; when they are absent the run is a plain
single process. NCCL is used on CUDA and gloo on the CPU (the test suite runs 2 gloo processes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, shows progress bars and writes checkpoints."""
        return self.rank == 0


def init_distributed(device: torch.device) -> DistContext:
    """Join the ``torchrun`` process group if there is one; pin this rank to its GPU on CUDA."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    context = DistContext(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(context.local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return context


def all_reduce_sum(values: list[float], device: torch.device, context: DistContext) -> list[float]:
    """Sum ``values`` over all ranks (identity in a single process)."""
    if not context.enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def barrier(context: DistContext) -> None:
    """Wait for every rank (no-op in a single process)."""
    if context.enabled:
        dist.barrier()


def shutdown(context: DistContext) -> None:
    """Leave the process group."""
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()
