"""An evaluation output to inspect (`froster serve --run RUN_DIR`): every folder under
RUN_DIR that holds a ``metrics.json`` (a `froster eval` output is one; a `froster
benchmark` output has one per split), read from what evaluation wrote: metrics.json
(summary, per-class accuracy, failed videos), confusion.csv (the most confused pairs) and
predictions.jsonl (each video's top-5, so the misclassified ones can be listed and played).

Videos are named by their record's number in predictions.jsonl, never by a path from the
client; only the files the evaluation itself lists are served.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from ..errors import MissingFileError
from ..engine.predictions import PREDICTIONS_FILE, read_predictions

__all__ = ["RunFolder"]


class RunFolder:
    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise MissingFileError(f"--run {self.folder}: not a folder")
        found = sorted(p.parent for p in self.folder.rglob("metrics.json"))
        if not found:
            raise MissingFileError(f"--run {self.folder}: no metrics.json in it or below; give "
                                    "the output folder of froster eval or froster benchmark")
        self.evaluations = {_name(p, self.folder): p for p in found}
        self._predictions: dict[str, list[dict]] = {}

    def summaries(self) -> list[dict]:
        out = []
        for name, folder in self.evaluations.items():
            metrics = _metrics(folder)
            out.append({"name": name, **{k: metrics.get(k) for k in (
                "top1", "top5", "mean_class_accuracy", "evaluated", "total", "failed")},
                "predictions": (folder / PREDICTIONS_FILE).is_file()})
        return out

    def predictions(self, name: str) -> list[dict]:
        if name not in self._predictions:
            path = self.evaluations[name] / PREDICTIONS_FILE
            self._predictions[name] = read_predictions(path) if path.is_file() else []
        return self._predictions[name]

    def detail(self, name: str, pairs: int = 20, misclassified: int = 500) -> dict:
        """Everything the Inspect tab shows of one evaluation (KeyError: no such name)."""
        folder = self.evaluations[name]
        metrics = _metrics(folder)
        per_class = [{"label": label, "accuracy": accuracy, "videos": None}
                     for label, accuracy in (metrics.get("per_class") or {}).items()]
        confusion = _confusion(folder / "confusion.csv")
        if confusion:
            classes, rows = confusion
            for entry, row in zip(per_class, rows):
                entry["videos"] = sum(row)
            confused = sorted(((rows[i][j], classes[i], classes[j])
                               for i in range(len(rows)) for j in range(len(rows[i]))
                               if i != j and rows[i][j] > 0), key=lambda x: (-x[0], x[1], x[2]))
            confused = [{"true": t, "predicted": p, "videos": n} for n, t, p in confused[:pairs]]
        else:
            confused = []
        records = self.predictions(name)
        wrong = [{"index": i, "video": r["video"], "label": r["label"], "top5": r["top5"]}
                 for i, r in enumerate(records) if not r.get("correct")]
        return {"name": name, "summary": {k: metrics.get(k) for k in (
                    "top1", "top5", "mean_class_accuracy", "evaluated", "total", "failed",
                    "list", "class_file", "checkpoint")},
                "per_class": per_class, "confused": confused,
                "failed_videos": metrics.get("failed_videos") or [],
                "predictions": bool(records), "misclassified_total": len(wrong),
                "misclassified": wrong[:misclassified]}

    def video(self, name: str, index: int) -> Path | None:
        """The file of record `index` of the evaluation's predictions.jsonl, if it exists."""
        records = self.predictions(name)
        if not 0 <= index < len(records):
            return None
        path = Path(records[index]["video"])
        return path if path.is_file() else None


def _name(folder: Path, root: Path) -> str:
    rel = folder.relative_to(root).as_posix()
    return rel if rel != "." else root.name


def _metrics(folder: Path) -> dict:
    try:
        return json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _confusion(path: Path):
    """(class names, rows of counts) of a confusion.csv, or None."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            table = list(csv.reader(f))
    except OSError:
        return None
    if len(table) < 2:
        return None
    classes = table[0][1:]
    rows = [[int(v) for v in row[1:]] for row in table[1:]]
    return classes, rows
