"""Validation images held in memory, and a model's top-1, agreement and KL against the FP32 model on them.

Used by ``sensitivity`` and the precision ``fallback``, which measure the same images many times:
the images are preprocessed once (``EvalSet``) and the FP32 logits computed once (``Evaluator``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Iterable

import torch
from torch import nn

from ..core.errors import UsageError
from ..metrics import mean_kl, top1_correct


@dataclass
class EvalSet:
    """Preprocessed validation images and labels, held in memory as CPU batches."""

    batches: list[tuple[torch.Tensor, torch.Tensor]]

    @classmethod
    def from_loader(cls, loader: Iterable, limit: int | None = None) -> "EvalSet":
        """The first ``limit`` (default: all) images of ``loader``'s (images, labels) batches."""
        batches, seen = [], 0
        for images, labels in loader:
            if limit is not None and seen + len(images) > limit:
                images, labels = images[: limit - seen], labels[: limit - seen]
            if len(images):
                batches.append((images.float().cpu(), torch.as_tensor(labels).long().cpu()))
                seen += len(images)
            if limit is not None and seen >= limit:
                break
        if not batches:
            raise UsageError("the validation data yielded no images")
        return cls(batches)

    @property
    def num_images(self) -> int:
        return sum(len(labels) for _, labels in self.batches)


@dataclass
class Measurement:
    top1: float  # percent
    agreement: float  # fraction of images with the FP32 model's top-1
    kl: float  # mean KL(p_fp32 || p_model), nats


class Evaluator:
    """Top-1, agreement and KL of a model on an ``EvalSet``, against the FP32 logits computed once."""

    def __init__(self, eval_set: EvalSet, reference: nn.Module, device: torch.device | str = "cpu") -> None:
        self.eval_set = eval_set
        self.device = torch.device(device)
        self.evaluations = 0
        if any(p.device != self.device for p in reference.parameters()):
            reference = copy.deepcopy(reference).to(self.device)  # never move the caller's model
        reference = reference.float().eval()
        self.reference_logits = [self._logits(reference, images) for images, _ in eval_set.batches]
        correct = sum(top1_correct(logits, labels) for logits, (_, labels) in zip(self.reference_logits, eval_set.batches))
        self.fp32_top1 = 100.0 * correct / eval_set.num_images

    def _logits(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model(images.to(self.device)).float().cpu()

    def measure(self, model: nn.Module) -> Measurement:
        """``model``'s top-1 (percent), agreement with FP32 and mean KL from FP32 on the set."""
        self.evaluations += 1
        correct = agree = 0
        kl_sum = 0.0
        for reference, (images, labels) in zip(self.reference_logits, self.eval_set.batches):
            logits = self._logits(model, images)
            correct += top1_correct(logits, labels)
            agree += top1_correct(logits, reference.argmax(1))
            kl_sum += mean_kl(reference, logits) * len(labels)
        total = self.eval_set.num_images
        return Measurement(100.0 * correct / total, agree / total, kl_sum / total)
