"""Prediction over many videos: streamed through decoding workers in batches, written
as each video is done, resumable, and never stopped by a bad video.

Output formats (one record per video):
  jsonl  one JSON object per line, written and flushed as each video is done:
         {"video", "status": "ok"|"error", "predictions": [{"label", "probability"}, ...],
         "error", "run"};
  json   the same records as one JSON list (rewritten atomically every few seconds and at
         the end, so the file is always a valid document);
  csv    columns video,status,rank,label,probability,error,run; one row per ranked label,
         one row with an empty rank for a video that failed; flushed per video;
  table  human-readable text.
``run`` is a short hash of what produced the record (model, labels, templates, views,
top-k, prompt form, precision). Rerunning with the same ``--output`` (jsonl, json or csv)
skips the videos already done by the same run; videos that failed are tried again; a file
from a different run is refused unless ``overwrite`` is given.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Sequence

from ..errors import FrosterError
from ..files import atomic_write
from ..prompts import ClassText
from .api import Recognizer
from .labels import rank
from .videos import find_videos

CSV_COLUMNS = ("video", "status", "rank", "label", "probability", "error", "run")
JSON_REWRITE_SECONDS = 2.0  # how often a json output is rewritten while videos come


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
def record(prediction: Prediction, run: str) -> dict:
    return {"video": prediction.video, "status": prediction.status,
            "predictions": [{"label": label, "probability": round(p, 6)}
                            for label, p in prediction.predictions],
            "error": prediction.error, "run": run}


def render(prediction: Prediction, fmt: str, run: str) -> str:
    """The text of one video's record in `fmt` (json: one JSON line, as jsonl)."""
    if fmt in ("json", "jsonl"):
        return json.dumps(record(prediction, run), ensure_ascii=False) + "\n"
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
class ResumeConflict(FrosterError):
    pass


def json_lines(path: Path, fmt: str) -> list[str] | None:
    """The records of a jsonl file as lines, or of a json document as one line each (None:
    a json file that is not a list of records)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if fmt == "jsonl":
        return text.splitlines(keepends=True)
    try:
        records = json.loads(text)
    except ValueError:
        return None
    if not isinstance(records, list):
        return None
    return [json.dumps(r, ensure_ascii=False) + "\n" for r in records]


def read_done(path: Path, fmt: str, run: str, expected_rows: int) -> tuple[list[str], dict[str, str], bool]:
    """(text of each complete ok record of this run, {video: that text}, whether the file
    holds anything else: failed videos, a cut-off last record, another run's records)."""
    done: dict[str, str] = {}
    other_runs: set[str] = set()
    dirty = False
    if fmt in ("json", "jsonl"):
        lines = json_lines(path, fmt)
        if lines is None:
            other_runs.add("?")  # not a froster prediction file
        for line in lines or ():
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
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
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
        raise FrosterError("no labels given")
    names = [c.name for c in classes]
    templates = tuple(templates or recognizer.templates)
    top_k = min(top_k, len(classes)) if top_k and top_k > 0 else len(classes)
    run = run_key(recognizer, [c.text for c in classes], templates, top_k)
    classifier = recognizer.label_embeddings(classes, templates)
    summary = PredictSummary(total=len(videos))

    done: dict[str, str] = {}
    kept: list[str] = []
    if output is not None:
        output = Path(output)
        if fmt != "table" and not overwrite and output.is_file() and output.stat().st_size > 0:
            kept, done, dirty = read_done(output, fmt, run, top_k)
            if dirty and fmt != "json":  # keep only complete ok records: retried videos appear once
                body = header(fmt) + "".join(kept)
                atomic_write(output, lambda p: Path(p).write_text(body, encoding="utf-8"))
        elif fmt != "json":
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(header(fmt), encoding="utf-8")
    out = JsonDocument(output, stream, kept) if fmt == "json" else \
        TextOutput(output, stream, header(fmt) if output is None else "")

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
    finally:
        out.close()
    return summary


class TextOutput:
    """Records appended to a file (or written to a stream), flushed one by one."""

    def __init__(self, path: Path | None, stream: IO[str] | None, start: str = ""):
        self.owned = path is not None
        self.file = open(path, "a", encoding="utf-8", newline="") if self.owned else \
            (stream or sys.stdout)
        self.file.write(start)

    def write(self, text: str) -> None:
        self.file.write(text)
        self.file.flush()

    def close(self) -> None:
        if self.owned:
            self.file.close()


class JsonDocument:
    """Records (one JSON text each) kept as one JSON list: a file is rewritten atomically
    at most every JSON_REWRITE_SECONDS and at the end, so it is always a valid document; a
    stream gets the document at the end."""

    def __init__(self, path: Path | None, stream: IO[str] | None, records: list[str]):
        self.path, self.stream = path, stream or sys.stdout
        self.records = [r.rstrip("\n") for r in records]
        self.written = time.monotonic()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._save()

    def text(self) -> str:
        return "[\n" + ",\n".join(self.records) + ("\n]\n" if self.records else "]\n")

    def _save(self) -> None:
        text = self.text()
        atomic_write(self.path, lambda p: Path(p).write_text(text, encoding="utf-8"))
        self.written = time.monotonic()

    def write(self, line: str) -> None:
        self.records.append(line.rstrip("\n"))
        if self.path is not None and time.monotonic() - self.written >= JSON_REWRITE_SECONDS:
            self._save()

    def close(self) -> None:
        if self.path is not None:
            self._save()
        else:
            self.stream.write(self.text())
            self.stream.flush()
