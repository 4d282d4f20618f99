"""`froster data check`: every entry of a video list, checked the way training and
evaluation will load it, before a run finds out hours in.

Each entry is checked by the code the run uses: the file is opened by
`froster.data.decode.open_video`, its test views and the last training clip the
sampling rule can draw are loaded by `VideoDataset.load_test_views` / `load_train_clip`
(the same sampling rule, fallback decisions and decoder), and its label is compared
with the class file. What is found is a *problem kind* (``KINDS``):

- ``broken``: the entry cannot be used (missing, empty, not a video, cut short, no
  video stream, frames that do not decode, a label outside the class file). Broken
  entries are left out of the cleaned list and make the exit status 1.
- ``warning``: the entry loads, but `sampling: reference` cannot follow the reference's
  rule for it and takes another way (the fallbacks training and evaluation count and
  name in their data reports, froster.data.sampling.reference), or the header facts
  that rule relies on (frame count, duration, frame rate) are missing or disagree.
  Kept in the cleaned list unless ``strict``.

Work is spread over processes and logged as it finishes (froster.data.jobs), so a
killed check goes on where it stopped; the report depends only on the list, the files
and the settings, not on how many runs it took.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import FrosterError, MissingFileError
from .annotations import read_annotations, read_class_names
from .jobs import JobLog, cpu_cores, file_stamp, run_jobs, write_atomic
from .views import ViewSpec

__all__ = ["KINDS", "CheckSettings", "CheckResult", "check_list", "check_video",
           "fallback_kind", "error_kind", "format_table", "default_output"]

BROKEN, WARNING = "broken", "warning"

#: problem kind -> (severity, what it means). Fallback kinds are the cases of
#: froster.data.sampling.reference; their messages are the reasons the data reports give.
KINDS: dict[str, tuple[str, str]] = {
    "missing": (BROKEN, "file not found"),
    "empty": (BROKEN, "empty file (0 bytes)"),
    "not_a_video": (BROKEN, "not a video: random bytes, text or a web page (a dead download "
                            "link?)"),
    "truncated": (BROKEN, "cut short: the container's index or its last frames are missing "
                          "(an interrupted download or copy)"),
    "no_video_stream": (BROKEN, "no video stream (audio only?)"),
    "undecodable": (BROKEN, "opens, but its frames do not decode"),
    "decoder_crash": (BROKEN, "the decoding process died on this file"),
    "label_not_in_class_file": (BROKEN, "label outside the class file's indices"),
    "no_frame_count": (WARNING, "no frame count in the header: `sampling: reference` takes "
                                "path B (the whole video is decoded for every clip)"),
    "no_frame_rate": (WARNING, "no average frame rate in the header: path B with the guessed "
                               "rate (the reference drops the video)"),
    "bad_duration": (WARNING, "duration <= 0 in the header: path B"),
    "late_start": (WARNING, "timestamps start more than half a window after 0: path B"),
    "no_timestamps": (WARNING, "frames without timestamps: path B in decoding order"),
    "short_window": (WARNING, "a window holds fewer than half the frames it spans (the header "
                              "overstates the frame count or duration, or a pause in the "
                              "timestamps): path B"),
    "ffmpeg_error": (WARNING, "an FFmpeg error inside the video: the frames before it are used"),
    "seek_failed": (WARNING, "a seek failed or landed after the window (a broken index): the "
                             "window is decoded from the start of the file"),
    "negative_timestamps": (WARNING, "every timestamp is negative: every frame is used"),
    "frames_short_of_duration": (WARNING, "fewer frames than duration x frame rate: cut short, "
                                          "or an audio track longer than the video"),
    "other_fallback": (WARNING, "sampled another way than the reference's rule"),
}

# The fallback reasons of froster.data.sampling.reference, by the words that name them.
_FALLBACK_WORDS = [
    ("no average frame rate", "no_frame_rate"), ("no frame count", "no_frame_count"),
    ("the header's duration is", "bad_duration"), ("timestamps start at pts", "late_start"),
    ("frames without timestamps", "no_timestamps"), ("FFmpeg error", "ffmpeg_error"),
    ("the seek to pts", "seek_failed"), ("every timestamp is negative", "negative_timestamps"),
    ("holds", "short_window"),
]

# VideoDecodeError messages (froster.data.decode, froster.data.sampling), by their words.
_ERROR_WORDS = [
    ("file not found", "missing"), ("empty file", "empty"), ("is a directory", "not_a_video"),
    ("no video stream", "no_video_stream"), ("truncated or corrupt", "truncated"),
]

# First bytes of the containers FFmpeg reads: a file that starts as one but does not
# open has lost its end (an MP4's index is usually written last).
_SIGNATURES = [
    (4, (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"), "MP4/MOV"),
    (0, (b"\x1aE\xdf\xa3",), "Matroska/WebM"),
    (0, (b"RIFF",), "AVI"),
    (0, (b"GIF87a", b"GIF89a"), "GIF"),
    (0, (b"FLV",), "FLV"),
    (0, (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"), "MPEG"),
    (0, (b"\x30\x26\xb2\x75\x8e\x66\xcf\x11",), "ASF/WMV"),
    (0, (b"OggS",), "Ogg"),
]


@dataclass(frozen=True)
class CheckSettings:
    """How training and evaluation will load the videos (the config's keys of the same
    names); ``last_train_clip``: also load the last training clip the rule can draw
    (it reaches the end of the video, where a cut download breaks)."""

    sampling: str = "reference"
    num_frames: int = 8
    sampling_rate: int = 16
    target_fps: float = 30.0
    test_views: int = 3
    apply_rotation: bool = False
    last_train_clip: bool = True

    @classmethod
    def from_config(cls, cfg, **changes) -> "CheckSettings":
        view = cfg.view()
        values = {"sampling": view.sampling, "num_frames": view.num_frames,
                  "sampling_rate": view.sampling_rate, "target_fps": view.target_fps,
                  "test_views": view.num_views, "apply_rotation": view.apply_rotation}
        return cls(**(values | changes))

    @property
    def view(self) -> ViewSpec:
        """The datasets' view of a video (one crop: crops change no decoding)."""
        return ViewSpec(num_frames=self.num_frames, sampling_rate=self.sampling_rate,
                        target_fps=self.target_fps, num_views=self.test_views,
                        sampling=self.sampling, apply_rotation=self.apply_rotation)


def fallback_kind(reason: str) -> str:
    """The problem kind of a `Sampled.fallback` reason."""
    for words, kind in _FALLBACK_WORDS:
        if words in reason:
            return kind
    return "other_fallback"


def _signature(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    for offset, starts, name in _SIGNATURES:
        if head[offset:].startswith(starts) and (name != "AVI" or head[8:12] == b"AVI "):
            return name
    return None


def error_kind(path: str, message: str) -> tuple[str, str]:
    """(kind, message without the path) of a VideoDecodeError about ``path``."""
    text = message[len(path) + 2:] if message.startswith(f"{path}: ") else message
    for words, kind in _ERROR_WORDS:
        if words in text:
            return kind, text
    if "not a readable video" in text:
        container = _signature(path)
        if container:
            return "truncated", (f"starts as a {container} file but does not open ({text}); "
                                 "its end is missing (an interrupted download or copy?)")
        with open(path, "rb") as f:
            head = f.read(64).lstrip().lower()
        if head.startswith((b"<!doctype", b"<html", b"<?xml", b"{")):
            return "not_a_video", f"a web page or text, not a video ({text})"
        return "not_a_video", text
    return "undecodable", text


class _LastStart(random.Random):
    """Draws the largest training start the rule allows (uniform(a, b) gives b): the
    clip nearest the end of the video. Every other draw is an ordinary seeded one."""

    def __init__(self):
        super().__init__(0)

    def uniform(self, a, b):
        return b


def _header_findings(video, sampling: str) -> list[list[str]]:
    """The facts `sampling: reference` relies on that its fallbacks do not name: a
    container without a frame count or duration (MKV, WebM), and a frame count short of
    duration x frame rate. (A header with a duration but no count is a fallback.)"""
    found = []
    stream = video.stream
    if sampling == "reference" and not stream.frames and stream.duration is None:
        found.append(["no_frame_count", f"no frame count or duration in the "
                      f"{video.container.format.name} container: path B, as the reference "
                      "(every clip decodes the whole video)"])
    info = video.info()
    rate = float(stream.average_rate) if stream.average_rate else info.fps
    expected = info.duration * rate
    if info.duration > 0 and info.num_frames < expected * 0.95 - 3:
        found.append(["frames_short_of_duration",
                      f"{info.num_frames} frames, but {info.duration:.2f} s at {rate:g} fps "
                      f"would be {expected:.0f} (cut short, or an audio track longer than "
                      "the video)"])
    return found


def check_video(path: str, settings: CheckSettings = CheckSettings()) -> list[list[str]]:
    """[[kind, message], ...] for one video file (empty: fine)."""
    from .annotations import VideoItem
    from .dataset import VideoDataset
    from .decode import VideoDecodeError, open_video

    item = VideoItem(path=path, label=0, line=0)
    dataset = VideoDataset([item], mode="test", view=settings.view, decode_threads=1)
    found: list[list[str]] = []

    def add(kind: str, message: str) -> None:
        if kind not in {k for k, _ in found}:
            found.append([kind, message])

    try:
        with open_video(path, threads=1, apply_rotation=settings.apply_rotation) as video:
            for kind, message in _header_findings(video, settings.sampling):
                add(kind, message)
        loads = [dataset.load_test_views]
        if settings.last_train_clip:
            loads.append(lambda item: dataset.load_train_clip(item, _LastStart()))
        for load in loads:
            sampled = load(item)
            if sampled.fallback:
                add(fallback_kind(sampled.fallback), sampled.fallback)
    except VideoDecodeError as e:
        add(*error_kind(path, str(e)))
    except Exception as e:  # noqa: BLE001 - whatever breaks here would break the run too
        add("undecodable", f"{type(e).__name__}: {e}")
    return found


def _check_task(task: tuple) -> dict:
    """Worker: (key, file, label, num_classes, class_file, settings) -> the entry's record."""
    _, file, label, num_classes, class_file, settings = task
    stamp = file_stamp(file)
    findings = check_video(file, CheckSettings(**settings))
    if num_classes is not None and label >= num_classes:
        findings.append(["label_not_in_class_file", f"label {label}, but {class_file} has "
                         f"{num_classes} classes (0..{num_classes - 1})"])
    return {"label": label, "stamp": stamp, "findings": findings}


def _crashed(task: tuple, why: str) -> dict:
    file, label = task[1], task[2]
    return {"label": label, "stamp": file_stamp(file), "findings": [["decoder_crash", why]]}


def default_output(list_file: str | os.PathLike) -> Path:
    """``lists/train.csv`` -> ``lists/train_check/``."""
    path = Path(list_file)
    return path.with_name(f"{path.stem}_check")


@dataclass
class CheckResult:
    report: dict                      # what report.json holds
    output: Path                      # folder of report.json, report.txt, the cleaned list
    cleaned_list: Path
    resumed: int = 0                  # entries finished by earlier runs
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)  # the table, as printed

    @property
    def broken(self) -> int:
        return self.report["broken"]

    @property
    def warned(self) -> int:
        return self.report["with_warnings"]

    @property
    def total(self) -> int:
        return self.report["videos"]

    def counts(self, severity: str) -> str:
        """``"2 missing, 1 truncated"`` for one severity."""
        return ", ".join(f"{p['count']} {kind}" for kind, p in self.report["problems"].items()
                         if p["severity"] == severity)


def check_list(list_file: str | os.PathLike, data_root: str | os.PathLike | None = None,
               class_file: str | os.PathLike | None = None,
               settings: CheckSettings = CheckSettings(), workers: int | None = None,
               output: str | os.PathLike | None = None, strict: bool = False,
               restart: bool = False, progress: bool | None = True) -> CheckResult:
    """Check every entry of ``list_file``; write report.json, report.txt and the cleaned
    list into ``output`` (default: beside the list, `default_output`).

    Raises FrosterError when it cannot run (an unreadable list or class file, a data
    root that is not a folder, an output it cannot write). ``workers``: processes
    (default: one per core; 0: this process).
    """
    start = time.perf_counter()
    list_file = Path(list_file)
    if data_root and not Path(data_root).is_dir():
        raise MissingFileError(f"data root {data_root} is not a folder")
    items = read_annotations(list_file, None)
    num_classes = len(read_class_names(class_file)) if class_file else None
    output = Path(output) if output else default_output(list_file)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FrosterError(f"cannot write the report to {output} ({e.strerror}); give "
                           "another folder with --output") from None
    cleaned = output / f"{list_file.stem}_clean{list_file.suffix}"
    if cleaned.resolve() == list_file.resolve():
        raise FrosterError(f"the cleaned list would overwrite {list_file}; give another "
                           "--output")

    def full(path: str) -> str:
        return os.path.join(data_root, path) if data_root else path

    header = {"check": 1, "list": str(list_file.resolve()),
              "data_root": str(Path(data_root).resolve()) if data_root else None,
              "num_classes": num_classes, "settings": asdict(settings)}
    settings_dict = asdict(settings)
    with JobLog(output / "entries.jsonl", header, restart=restart) as log:
        if log.previous_header is not None:
            log.start_over()  # other settings or another list: nothing to reuse
        keys = [f"{item.line}:{item.path}" for item in items]
        todo = []
        for key, item in zip(keys, items):
            done = log.done.get(key)
            if done is None or done["label"] != item.label or \
                    done["stamp"] != file_stamp(full(item.path)):
                todo.append((key, full(item.path), item.label, num_classes,
                             str(class_file) if class_file else None, settings_dict))
        resumed = len(items) - len(todo)
        run_jobs(_check_task, todo, lambda task, record: log.add(task[0], record),
                 cpu_cores() if workers is None else workers, _crashed,
                 desc=f"data check {list_file.name}", progress=progress,
                 total=len(items), initial=resumed)
        records = [log.done[key] for key in keys]

    report = _report(list_file, data_root, class_file, num_classes, settings, items, records,
                     cleaned, strict)
    write_atomic(output / "report.json", json.dumps(report, indent=1) + "\n")
    lines = format_table(report)
    write_atomic(output / "report.txt", "\n".join(lines) + "\n")
    _write_cleaned(list_file, cleaned, items, records, strict)
    return CheckResult(report, output, cleaned, resumed, time.perf_counter() - start, lines)


def _dropped(findings: list, strict: bool) -> bool:
    return any(strict or KINDS[kind][0] == BROKEN for kind, _ in findings)


def _report(list_file, data_root, class_file, num_classes, settings, items, records, cleaned,
            strict) -> dict:
    problems: dict[str, list] = {}
    for item, record in zip(items, records):
        for kind, message in record["findings"]:
            problems.setdefault(kind, []).append(
                {"line": item.line, "path": item.path, "label": item.label, "message": message})
    severity = {item.line: {KINDS[k][0] for k, _ in r["findings"]}
                for item, r in zip(items, records)}
    broken = sum(BROKEN in s for s in severity.values())
    warned = sum(s == {WARNING} for s in severity.values())
    kept = sum(not _dropped(r["findings"], strict) for r in records)
    order = list(KINDS)
    return {
        "list": str(list_file), "data_root": str(data_root) if data_root else None,
        "class_file": str(class_file) if class_file else None, "num_classes": num_classes,
        "settings": asdict(settings), "strict": strict,
        "videos": len(items), "fine": len(items) - broken - warned, "broken": broken,
        "with_warnings": warned,
        "cleaned_list": cleaned.name, "cleaned_videos": kept,
        "problems": {kind: {"severity": KINDS[kind][0], "description": KINDS[kind][1],
                            "count": len(problems[kind]), "entries": problems[kind]}
                     for kind in sorted(problems, key=order.index)},
    }


def format_table(report: dict, first: int = 3) -> list[str]:
    """The report as a few lines: a summary, then one row per problem kind with its count
    and the first files."""
    lines = [f"{report['list']}: {report['videos']} videos: {report['fine']} fine, "
             f"{report['broken']} broken, {report['with_warnings']} with warnings only"]
    problems = report["problems"]
    if problems:
        width = max(len(kind) for kind in problems)
        lines.append(f"  {'problem':<{width}}  {'severity':<8}  {'videos':>6}  first files")
        for kind, p in problems.items():
            files = [e["path"] for e in p["entries"][:first]]
            more = f" (+{p['count'] - first} more)" if p["count"] > first else ""
            lines.append(f"  {kind:<{width}}  {p['severity']:<8}  {p['count']:>6}  "
                         f"{', '.join(files)}{more}")
    if report["broken"] and report["broken"] == report["videos"] and \
            "missing" in problems and problems["missing"]["count"] == report["videos"]:
        lines.append("  no listed file was found: is the data root right?")
    return lines


def _write_cleaned(list_file: Path, cleaned: Path, items, records, strict: bool) -> None:
    """The list's own lines (header and comments included) without the dropped entries."""
    dropped = {item.line for item, r in zip(items, records) if _dropped(r["findings"], strict)}
    text = list_file.read_bytes().decode("utf-8-sig")
    lines = text.splitlines(keepends=True)
    kept = [line for number, line in enumerate(lines, start=1) if number not in dropped]
    if kept and not kept[-1].endswith(("\n", "\r")):
        kept[-1] += "\n"
    write_atomic(cleaned, "".join(kept))
