"""Prediction over many videos: streamed through decoding workers in batches, written
as each video is done, resumable, and never stopped by a bad video.

Output formats (one record per video, written and flushed as soon as it is done):
  json   JSON Lines: {"video", "status": "ok"|"error", "predictions": [{"label",
         "probability"}, ...], "error", "run"} per line;
  csv    columns video,status,rank,label,probability,error,run; one row per ranked label,
         one row with an empty rank for a video that failed;
  table  human-readable text.
``run`` is a short hash of what produced the record (model, labels, templates, views,
top-k, prompt form, precision). Rerunning with the same ``--output`` (json or csv) skips
the videos already done by the same run; videos that failed are tried again; a file from a
different run is refused unless ``overwrite`` is given.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Sequence

from ..checkpoint import _atomic
from ..prompts import ClassText
from .api import Recognizer, find_videos, rank

FORMATS = ("table", "json", "csv")
CSV_COLUMNS = ("video", "status", "rank", "label", "probability", "error", "run")


def collect_videos(inputs: Iterable[str | os.PathLike]) -> list[str]:
    """Folders are scanned for videos (recursive, sorted); files are taken as given, even
    when missing or not videos, so that they are reported like any bad video."""
    videos: list[str] = []
    for entry in inputs:
        if os.path.isdir(entry):
            videos += [str(p) for p in find_videos(entry)]
        else:
            videos.append(os.fspath(entry))
    return list(dict.fromkeys(videos))  # each video once, first occurrence kept


def format_for(output: str | os.PathLike | None, fmt: str | None) -> str:
    """The format asked for, else the one the output's name ends with, else table."""
    if fmt:
        if fmt == "jsonl":
            return "json"
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
        return fmt
    suffix = Path(output).suffix.lower() if output else ""
    return {".json": "json", ".jsonl": "json", ".csv": "csv"}.get(suffix, "table")


def run_key(recognizer: Recognizer, labels: Sequence[str], templates: Sequence[str],
            top_k: int) -> str:
    payload = [recognizer.identity, list(labels), list(templates), recognizer.view_settings, top_k]
    if recognizer.run_settings != {"clean_prompts": False, "precision": "fp32"}:
        payload.append(recognizer.run_settings)  # the defaults keep earlier outputs resumable
    payload = json.dumps(payload)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


@dataclass
class Prediction:
    video: str
    predictions: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None

    @property
    def status(self) -> str:
        return "ok" if self.error is None else "error"


# -- writers -------------------------------------------------------------------------
def render(prediction: Prediction, fmt: str, run: str) -> str:
    """The text of one video's record in `fmt`."""
    if fmt == "json":
        record = {"video": prediction.video, "status": prediction.status,
                  "predictions": [{"label": label, "probability": round(p, 6)}
                                  for label, p in prediction.predictions],
                  "error": prediction.error, "run": run}
        return json.dumps(record, ensure_ascii=False) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if prediction.error is not None:
            writer.writerow([prediction.video, "error", "", "", "", prediction.error, run])
        for i, (label, p) in enumerate(prediction.predictions, start=1):
            writer.writerow([prediction.video, "ok", i, label, f"{p:.6f}", "", run])
        return buffer.getvalue()
    if prediction.error is not None:
        return f"{prediction.video}\n   ERROR: {prediction.error}\n"
    width = max(len(label) for label, _ in prediction.predictions)
    lines = [prediction.video] + [f"  {i:>2}. {label:<{width}}  {p:.4f}"
                                  for i, (label, p) in enumerate(prediction.predictions, start=1)]
    return "\n".join(lines) + "\n"


def header(fmt: str) -> str:
    return ",".join(CSV_COLUMNS) + "\n" if fmt == "csv" else ""


# -- resuming ------------------------------------------------------------------------
class ResumeConflict(ValueError):
    pass


def read_done(path: Path, fmt: str, run: str, expected_rows: int) -> tuple[list[str], dict[str, str], bool]:
    """(text of each complete ok record of this run, {video: that text}, whether the file
    holds anything else: failed videos, a cut-off last record, another run's records)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    done: dict[str, str] = {}
    other_runs: set[str] = set()
    dirty = False
    if fmt == "json":
        for line in text.splitlines(keepends=True):
            try:
                record = json.loads(line)
                video, status, record_run = record["video"], record["status"], record["run"]
            except (ValueError, KeyError, TypeError):
                dirty = True  # e.g. the last line of a run that was killed mid-write
                continue
            if record_run != run:
                other_runs.add(record_run)
            elif status == "ok" and line.endswith("\n"):
                done[video] = line
            else:
                dirty = True
    else:
        rows: dict[str, list[list[str]]] = {}
        lines = text.splitlines(keepends=True)
        if lines and lines[0].rstrip("\r\n") == ",".join(CSV_COLUMNS):
            lines = lines[1:]
        elif lines:
            other_runs.add("?")  # not a froster prediction file
        for line in lines:
            try:
                row = next(csv.reader([line]))
            except (csv.Error, StopIteration):
                dirty = True
                continue
            if len(row) != len(CSV_COLUMNS) or not line.endswith("\n"):
                dirty = True
                continue
            if row[6] != run:
                other_runs.add(row[6])
            elif row[1] == "ok":
                rows.setdefault(row[0], []).append(row)
            else:
                dirty = True
        for video, video_rows in rows.items():
            ranks = [r[2] for r in video_rows]
            if ranks == [str(i) for i in range(1, expected_rows + 1)]:
                buffer = io.StringIO()
                csv.writer(buffer, lineterminator="\n").writerows(video_rows)
                done[video] = buffer.getvalue()
            else:
                dirty = True  # cut off in the middle of a video's rows
    if other_runs:
        raise ResumeConflict(
            f"{path} holds results of another run (a different model, labels, templates, views "
            f"or top-k); pass --overwrite to replace it, or choose another --output")
    return list(done.values()), done, dirty


@dataclass
class PredictSummary:
    total: int = 0
    ok: int = 0
    skipped: int = 0
    failed: list[Prediction] = field(default_factory=list)
    fallback: list[tuple[str, str]] = field(default_factory=list)  # (video, reason)

    def report(self, output: str | None = None) -> str:
        from ..data.failures import describe_fallbacks

        where = f" (already in {output})" if output else ""
        lines = [f"{self.total} videos: {self.ok} predicted, {len(self.failed)} failed, "
                 f"{self.skipped} skipped{where}"]
        lines += [f"  failed: {p.error}" for p in self.failed]
        return "\n".join(lines + describe_fallbacks(self.fallback))


def predict(recognizer: Recognizer, videos: Sequence[str], labels: Sequence[str],
            top_k: int = 5, templates: Sequence[str] | None = None, fmt: str = "table",
            output: str | os.PathLike | None = None, stream: IO[str] | None = None,
            overwrite: bool = False, batch_size: int | None = None,
            num_workers: int | None = None, progress: bool | None = None) -> PredictSummary:
    """Classify every video in `videos` against `labels` and write a record per video to
    `output` (a file, resumed when it exists) or `stream` (default stdout)."""
    classes = [ClassText.parse(label) for label in labels]
    if not classes:
        raise ValueError("no labels given")
    names = [c.name for c in classes]
    templates = tuple(templates or recognizer.templates)
    top_k = min(top_k, len(classes)) if top_k and top_k > 0 else len(classes)
    run = run_key(recognizer, [c.text for c in classes], templates, top_k)
    classifier = recognizer.label_embeddings(classes, templates)
    summary = PredictSummary(total=len(videos))

    done: dict[str, str] = {}
    out: IO[str]
    if output is not None:
        output = Path(output)
        resumable = fmt in ("json", "csv") and not overwrite and output.is_file() \
            and output.stat().st_size > 0
        if resumable:
            kept, done, dirty = read_done(output, fmt, run, top_k)
            if dirty:  # keep only complete ok records, so that retried videos appear once
                body = header(fmt) + "".join(kept)
                _atomic(output, lambda p: Path(p).write_text(body, encoding="utf-8"))
        else:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(header(fmt), encoding="utf-8")
        out = open(output, "a", encoding="utf-8", newline="")
    else:
        out = stream or sys.stdout
        out.write(header(fmt))

    todo = [v for v in videos if v not in done]
    summary.skipped = len(videos) - len(todo)
    try:
        for result in recognizer.stream(todo, batch_size, num_workers, progress, desc="predict"):
            if result.ok:
                logits = recognizer.view_logits(result.frames[None], classifier)[0]
                prediction = Prediction(result.path, rank(names, logits.softmax(-1), top_k))
                summary.ok += 1
                if result.fallback:
                    summary.fallback.append((result.path, result.fallback))
            else:
                prediction = Prediction(result.path, error=result.error)
                summary.failed.append(prediction)
            out.write(render(prediction, fmt, run))
            out.flush()
    finally:
        if out is not (stream or sys.stdout):
            out.close()
    return summary
