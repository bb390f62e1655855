"""DataLoader construction shared by training and validation."""

from __future__ import annotations

from torch.utils.data import DataLoader, Dataset, Sampler

# Workers are started from a clean forkserver process, not forked from this one: by the time a loader
# starts its workers this process already runs OpenMP, oneDNN, ONNX Runtime and tqdm threads, and a fork
# can copy a lock one of them holds, leaving the worker hung forever (Python 3.14 made this the default).
WORKER_START_METHOD = "forkserver"


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    workers: int,
    shuffle: bool = False,
    sampler: Sampler | None = None,
    pin_memory: bool = False,
    drop_last: bool = False,
) -> DataLoader:
    """A DataLoader whose ``workers`` processes (if any) start safely and persist across epochs."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        num_workers=workers,
        pin_memory=pin_memory,
        drop_last=drop_last,
        persistent_workers=workers > 0,
        multiprocessing_context=WORKER_START_METHOD if workers > 0 else None,
    )
