"""How far a compiled classifier is from its FP32 reference: streaming accuracy and output metrics.

``ComparisonMeter`` takes the logits of both models for the same batch (and the labels, when the data
has the model's classes) and accumulates, in float64, everything ``resnet-edge validate`` reports:

* top-1 / top-5 of each model (percent) and the top-1 drop (percentage points);
* top-1 agreement (fraction of images on which both models pick the same class);
* mean and max absolute logit error;
* mean (and minimum) cosine similarity of the logit vectors;
* mean (and maximum) KL divergence KL(p_ref || p_compiled) of the softmax outputs, in nats;
* per-class top-1 of both models, for the classes with the largest drop.

Plain torch ops: every metric here is one or two lines, and a metrics library would add a dependency
without adding a check. Images whose compiled logits are not finite are counted (``nonfinite_images``)
and left out of the error metrics; they still count as disagreements and misclassifications.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _percent(count: float, total: int) -> float | None:
    return round(100.0 * count / total, 4) if total else None


class ComparisonMeter:
    """Accumulates the comparison of reference and compiled logits, batch by batch."""

    def __init__(self, num_classes: int, topk: int = 5) -> None:
        self.num_classes = num_classes
        self.topk = max(1, min(topk, num_classes))
        self.images = 0
        self.labelled = 0
        self.agree = 0
        self.correct = {"reference": [0, 0], "compiled": [0, 0]}  # [top1, topk]
        self.finite = 0
        self.nonfinite = 0
        self.abs_err_sum = 0.0
        self.abs_err_count = 0
        self.abs_err_max = 0.0
        self.cosine_sum = 0.0
        self.cosine_min = float("inf")
        self.kl_sum = 0.0
        self.kl_max = 0.0
        self.class_images = torch.zeros(num_classes, dtype=torch.int64)
        self.class_correct = {"reference": torch.zeros(num_classes, dtype=torch.int64), "compiled": torch.zeros(num_classes, dtype=torch.int64)}

    def update(self, reference: torch.Tensor, compiled: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """Add one batch: ``reference`` and ``compiled`` are ``[N, num_classes]`` logits, ``labels`` ``[N]``."""
        reference = reference.detach().double().cpu()
        compiled = compiled.detach().double().cpu()
        if reference.shape != compiled.shape or reference.dim() != 2 or reference.shape[1] != self.num_classes:
            raise ValueError(f"logits of shape {tuple(reference.shape)} and {tuple(compiled.shape)}; expected [N, {self.num_classes}] both")
        count = reference.shape[0]
        self.images += count
        ref_top1 = reference.argmax(1)
        cmp_top1 = compiled.argmax(1)
        self.agree += int((ref_top1 == cmp_top1).sum())
        if labels is not None:
            labels = labels.detach().cpu().long()
            self.labelled += count
            self.class_images += torch.bincount(labels, minlength=self.num_classes)
            for name, logits in (("reference", reference), ("compiled", compiled)):
                top = logits.topk(self.topk, dim=1).indices
                hit1 = top[:, 0] == labels
                self.correct[name][0] += int(hit1.sum())
                self.correct[name][1] += int((top == labels[:, None]).any(1).sum())
                self.class_correct[name] += torch.bincount(labels[hit1], minlength=self.num_classes)
        finite = torch.isfinite(compiled).all(1)
        self.nonfinite += int((~finite).sum())
        if not finite.any():
            return
        reference, compiled = reference[finite], compiled[finite]
        self.finite += reference.shape[0]
        error = (compiled - reference).abs()
        self.abs_err_sum += float(error.sum())
        self.abs_err_count += error.numel()
        self.abs_err_max = max(self.abs_err_max, float(error.max()))
        cosine = F.cosine_similarity(reference, compiled, dim=1, eps=1e-12)
        self.cosine_sum += float(cosine.sum())
        self.cosine_min = min(self.cosine_min, float(cosine.min()))
        kl = F.kl_div(F.log_softmax(compiled, 1), F.log_softmax(reference, 1), reduction="none", log_target=True).sum(1)
        self.kl_sum += float(kl.sum())
        self.kl_max = max(self.kl_max, float(kl.max()))

    # ----------------------------------------------------------------------------------------- results
    def accuracy(self, name: str) -> dict:
        """``{"top1", "top5"}`` in percent for ``reference`` or ``compiled`` (None without labels)."""
        top1, topk = self.correct[name]
        return {"top1": _percent(top1, self.labelled), "top5": _percent(topk, self.labelled)}

    def per_class(self, classes: list[str]) -> list[dict]:
        """Every class with images: name, index, images, top-1 of both models and the drop (points)."""
        rows = []
        for index in range(self.num_classes):
            images = int(self.class_images[index])
            if not images:
                continue
            ref = 100.0 * int(self.class_correct["reference"][index]) / images
            cmp = 100.0 * int(self.class_correct["compiled"][index]) / images
            rows.append({
                "class": classes[index] if index < len(classes) else str(index),
                "index": index,
                "images": images,
                "reference_top1": round(ref, 4),
                "compiled_top1": round(cmp, 4),
                "drop": round(ref - cmp, 4),
            })
        return rows

    def summary(self, classes: list[str] | None = None, worst: int = 5) -> dict:
        """The metrics as a JSON-ready dict (see docs/validate-report.md for each key)."""
        classes = classes or [str(i) for i in range(self.num_classes)]
        reference, compiled = self.accuracy("reference"), self.accuracy("compiled")
        drop = None
        if reference["top1"] is not None:
            drop = round(reference["top1"] - compiled["top1"], 4)
        per_class = self.per_class(classes) if self.labelled else []
        largest = sorted((row for row in per_class if row["drop"] > 0), key=lambda row: (-row["drop"], row["index"]))[:worst]
        finite = self.finite
        return {
            "num_images": self.images,
            "labelled": bool(self.labelled),
            "topk": self.topk,
            "reference": reference,
            "compiled": compiled,
            "top1_drop": drop,
            "agreement": round(self.agree / self.images, 6) if self.images else None,
            "logit_mean_abs_err": round(self.abs_err_sum / self.abs_err_count, 6) if self.abs_err_count else None,
            "logit_max_abs_err": round(self.abs_err_max, 6) if finite else None,
            "cosine": round(self.cosine_sum / finite, 6) if finite else None,
            "cosine_min": round(self.cosine_min, 6) if finite else None,
            "kl": round(self.kl_sum / finite, 6) if finite else None,
            "kl_max": round(self.kl_max, 6) if finite else None,
            "nonfinite_images": self.nonfinite,
            "largest_class_drops": largest,
            "per_class": per_class,
        }


def top1_correct(logits: torch.Tensor, labels: torch.Tensor) -> int:
    """Images whose arg-max is the label."""
    return int((logits.argmax(1).cpu() == labels.cpu()).sum())


def mean_kl(reference: torch.Tensor, other: torch.Tensor) -> float:
    """Mean KL(softmax(reference) || softmax(other)) over a batch, in nats."""
    reference, other = reference.double(), other.double()
    return float(F.kl_div(F.log_softmax(other, 1), F.log_softmax(reference, 1), reduction="none", log_target=True).sum(1).mean())


def top1_percent(run, batches) -> float:
    """Top-1 accuracy in percent (2 decimals) of ``run`` (batch -> logits) over (images, labels) ``batches``."""
    correct = total = 0
    for images, labels in batches:
        correct += top1_correct(run(images), labels)
        total += int(labels.numel())
    return round(100.0 * correct / max(total, 1), 2)
