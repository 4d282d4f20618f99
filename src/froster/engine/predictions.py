"""``predictions.jsonl``: what an evaluation predicted for each video, beside its metrics.

One JSON object per evaluated video, in the order of the video list:
``{"video": path, "label": true class name, "label_index": int, "correct": top-1 is
right, "top5": [{"label", "index", "probability", "logit"}, ...]}``. ``logit`` is the
view-summed logit the metrics rank by; ``probability`` its softmax over all the classes,
the number `froster predict` prints for the video with the same class file. Videos that
could not be loaded are not here; they are in ``failed_videos.txt``. Written by rank 0 from
every rank's results (`evaluate` gathers them by video index).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from ..files import atomic_write

PREDICTIONS_FILE = "predictions.jsonl"
TOP_K = 5


def prediction_records(videos: Sequence[str], labels: torch.Tensor, logits: torch.Tensor,
                       class_names: Sequence[str], top_k: int = TOP_K) -> list[dict]:
    """The records of `videos` with their true `labels` (N,) and summed `logits` (N, C)."""
    logits = logits.float()
    probabilities = logits.softmax(dim=-1)
    k = min(top_k, logits.shape[1])
    top = probabilities.topk(k, dim=1)
    records = []
    for n, video in enumerate(videos):
        label = int(labels[n])
        ranked = [{"label": class_names[i], "index": i,
                   "probability": round(float(probabilities[n, i]), 6),
                   "logit": round(float(logits[n, i]), 4)}
                  for i in top.indices[n].tolist()]
        records.append({"video": video, "label": class_names[label], "label_index": label,
                        "correct": ranked[0]["index"] == label, "top5": ranked})
    return records


def write_predictions(folder: str | os.PathLike, videos: Sequence[str], labels: torch.Tensor,
                      logits: torch.Tensor, class_names: Sequence[str]) -> Path:
    """Write the records to FOLDER/predictions.jsonl (atomically: a reader never sees half)."""
    path = Path(folder) / PREDICTIONS_FILE
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n"
                    for r in prediction_records(videos, labels, logits, class_names))
    atomic_write(path, lambda p: Path(p).write_text(lines, encoding="utf-8"))
    return path


def read_predictions(path: str | os.PathLike) -> list[dict]:
    """The records of a predictions.jsonl file (a line that is not a record is skipped)."""
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "video" in record and "top5" in record:
                records.append(record)
    return records
