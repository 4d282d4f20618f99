"""Classification metrics over summed view logits: top-k accuracy, mean class accuracy,
per-class accuracy and the confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import FrosterError


@dataclass
class Metrics:
    top1: float
    top5: float
    mean_class_accuracy: float
    per_class: list[float | None]     # None for a class with no evaluated video
    confusion: torch.Tensor           # (C, C) int64: rows = true class, columns = predicted
    evaluated: int                    # videos the metrics were computed over
    total: int                        # videos in the list
    failed: list[str] = field(default_factory=list)
    fallback: list[str] = field(default_factory=list)  # "path: reason", sampled another way
    # What each evaluated video got, for predictions.jsonl (set by `evaluate`):
    videos: list[str] = field(default_factory=list)   # paths, in the row order of `logits`
    labels: torch.Tensor | None = None                # (N,) true classes
    logits: torch.Tensor | None = None                # (N, C) view-summed logits

    def summary(self) -> dict:
        return {"top1": self.top1, "top5": self.top5,
                "mean_class_accuracy": self.mean_class_accuracy,
                "evaluated": self.evaluated, "total": self.total, "failed": len(self.failed),
                "fallback": len(self.fallback)}

    def describe(self) -> str:
        fallback = (f"; {len(self.fallback)} sampled with a fallback" if self.fallback else "")
        return (f"top1 {self.top1:.2f}  top5 {self.top5:.2f}  mean class {self.mean_class_accuracy:.2f}"
                f"  (over {self.evaluated} of {self.total} videos{fallback})")


def compute_metrics(logits: torch.Tensor, labels: torch.Tensor, total: int | None = None,
                    failed=()) -> Metrics:
    """`logits` (N, C), `labels` (N,); accuracies in percent."""
    num, classes = logits.shape
    if num == 0:
        raise FrosterError("no video could be evaluated")
    labels = labels.long()
    ranked = logits.float().topk(min(5, classes), dim=1).indices
    hits = ranked == labels[:, None]
    top1 = hits[:, 0].float().mean().item() * 100
    top5 = hits.any(dim=1).float().mean().item() * 100
    predicted = ranked[:, 0]
    confusion = torch.bincount(labels * classes + predicted, minlength=classes * classes)
    confusion = confusion.view(classes, classes)
    support = confusion.sum(dim=1)
    correct = confusion.diagonal()
    per_class = [(c / s * 100).item() if s > 0 else None for c, s in zip(correct, support)]
    present = [a for a in per_class if a is not None]
    return Metrics(top1, top5, sum(present) / len(present), per_class, confusion,
                   evaluated=num, total=total if total is not None else num, failed=list(failed))
