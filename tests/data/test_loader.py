"""DataLoader workers start from a forkserver and give the same batches as loading in-process."""

import torch

from resnet_edge.data import ShapesDataset, eval_transform, get_preset
from resnet_edge.data.loader import WORKER_START_METHOD, make_loader


def _batches(workers: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    dataset = ShapesDataset(24, split="val", transform=eval_transform(get_preset("cifar")))
    return list(make_loader(dataset, batch_size=8, workers=workers))


def test_workers_start_from_forkserver_and_match_in_process_loading():
    loader = make_loader(ShapesDataset(8, split="val"), batch_size=4, workers=1)
    assert loader.multiprocessing_context.get_start_method() == WORKER_START_METHOD == "forkserver"
    assert loader.persistent_workers
    in_process, in_workers = _batches(0), _batches(2)
    assert len(in_process) == len(in_workers) == 3
    for (images, labels), (worker_images, worker_labels) in zip(in_process, in_workers):
        assert torch.equal(images, worker_images) and torch.equal(labels, worker_labels)


def test_no_workers_means_no_worker_context():
    loader = make_loader(ShapesDataset(8, split="val"), batch_size=4, workers=0)
    assert loader.multiprocessing_context is None and not loader.persistent_workers
