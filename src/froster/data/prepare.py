"""`froster data prepare`: a copy of a dataset that decodes several times faster.

Every video is re-encoded with H.264 (libx264 through PyAV) at a given short side (the
other side in proportion, both even) with a keyframe every ``keyint`` frames (scene-cut
keyframes off, so seeks land at most ``keyint - 1`` frames before a clip), tuned for fast
decoding by default (x264's ``fastdecode``: CAVLC, no deblocking filter, no weighted
prediction; decoding about 2x faster than x264's defaults, files ~15 % larger,
bench/data.py). Kept from the
original: every decoded frame, in presentation order, with its timestamp (the stream's
time base and pts, so the reference's timestamp windows and its seek margin of 1024 pts
mean the same time), the average frame rate, the display rotation (frames are scaled as
stored, as the reference decodes them) and the sample aspect ratio. Audio is dropped.

Outputs keep their input's relative path and file name, so the lists and class files are
used unchanged with ``data_root=DST_ROOT``. The container: MP4 (with its index at the
front), or, with ``container="auto"`` (default), Matroska for Matroska/WebM inputs, so
that the reference rule samples the copy by the same path as the original (path B: no
stream duration; an MP4 copy would take path A). A file keeps its name whatever it holds:
FFmpeg opens files by their content.

Each output is written to a hidden ``.NAME.partial`` beside it and renamed when complete.
Finished files are logged in ``DST_ROOT/prepare_log.jsonl`` (froster.data.jobs): a killed
run goes on where it stopped. Inputs that cannot be read are listed and skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

from ..errors import FrosterError, MissingFileError
from .annotations import read_annotations
from .check import error_kind
from .jobs import JobLog, cpu_cores, file_stamp, run_jobs, write_atomic

__all__ = ["PrepareSettings", "PrepareResult", "prepare_video", "prepare_dataset",
           "output_size", "OutputError", "VIDEO_EXTENSIONS", "LOG_FILE", "REPORT_FILE"]

VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif", ".mpg", ".mpeg",
                    ".flv", ".wmv", ".3gp", ".ts", ".mts", ".ogv")
TEXT_EXTENSIONS = (".csv", ".txt", ".json")  # lists and class files, copied unchanged
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
           "slower", "veryslow")
TUNES = ("fastdecode", "none")
LOG_FILE, REPORT_FILE = "prepare_log.jsonl", "prepare_report.json"
REORDER_DEPTH = 16  # frames held to put the decoder's output in pts order


class OutputError(Exception):
    """An output could not be written (disk full, no permission): the run stops."""


@dataclass(frozen=True)
class PrepareSettings:
    short_side: int = 320
    keyint: int = 16
    crf: int = 23
    preset: str = "medium"
    tune: str = "fastdecode"  # fastdecode (x264's: CAVLC, no deblocking filter) | none
    container: str = "auto"  # auto (Matroska for Matroska/WebM inputs, else MP4) | mp4

    def validate(self) -> None:
        if self.short_side < 2 or self.short_side % 2:
            raise FrosterError(f"--short-side {self.short_side}: give an even number of pixels "
                               "(H.264 in 4:2:0 needs even sides)")
        if self.keyint < 1:
            raise FrosterError(f"--keyint {self.keyint}: give at least 1 frame")
        if not 0 <= self.crf <= 51:
            raise FrosterError(f"--crf {self.crf}: expected 0 (lossless) .. 51")
        if self.preset not in PRESETS:
            raise FrosterError(f"--preset {self.preset!r}: expected one of {', '.join(PRESETS)}")
        if self.tune not in TUNES:
            raise FrosterError(f"--tune {self.tune!r}: expected one of {', '.join(TUNES)}")
        if self.container not in ("auto", "mp4"):
            raise FrosterError(f"--container {self.container!r}: expected auto or mp4")


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the short side ``short_side`` and the long one in proportion,
    rounded to an even number."""
    def even(x: float) -> int:
        return max(2, int(round(x / 2)) * 2)

    if width <= height:
        return short_side, even(height * short_side / width)
    return even(width * short_side / height), short_side


def prepare_video(src: str | os.PathLike, dst: str | os.PathLike,
                  settings: PrepareSettings = PrepareSettings()) -> dict:
    """Re-encode ``src`` into ``dst`` (atomically). Returns {"frames", "width", "height",
    "bytes"}. Raises VideoDecodeError (its message names ``src``) when the input cannot
    be read, OutputError when the output cannot be written."""
    from .decode import open_video

    src, dst = os.fspath(src), Path(dst)
    failed: OutputError | None = None
    with open_video(src, threads=1, apply_rotation=False) as video:
        try:
            result = _reencode(video, dst, settings)
        except OutputError as e:  # open_video would report it as a decoding error
            failed = e
    if failed is not None:
        raise failed
    return result


def _reencode(video, dst: Path, settings: PrepareSettings) -> dict:
    from .decode import VideoDecodeError

    first = video.first[1]
    stream = video.stream
    width, height = output_size(first.width, first.height, settings.short_side)
    layout = {"time_base": stream.time_base,
              "rate": stream.average_rate or Fraction(video.fps).limit_denominator(1001),
              "rotation": first.rotation or 0, "sar": stream.sample_aspect_ratio,
              "matroska": "matroska" in video.container.format.name}
    promised = stream.frames
    tmp = dst.with_name(f".{dst.name}.partial")
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{dst.parent}: cannot create the folder ({e.strerror})") from None
    try:
        decoded, written = _encode(video.decode_from(None), tmp, width, height, layout, settings)
        short = promised and decoded < promised - max(3, int(0.05 * promised))
        if video.error and short:
            raise VideoDecodeError(f"{video.path}: truncated or corrupt: decoding stopped after "
                                   f"{decoded} of the {promised} frames the header gives "
                                   f"(FFmpeg: {video.error})")
        if written == 0:
            raise VideoDecodeError(f"{video.path}: no decodable video frames")
        _fsync(tmp)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {"frames": written, "width": width, "height": height, "bytes": dst.stat().st_size}


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _encode(frames, tmp: Path, width: int, height: int, layout: dict,
            settings: PrepareSettings) -> tuple[int, int]:
    """Encode the decoder's ``frames`` into ``tmp``, in pts order (a repeated pts: the
    later frame, as the reference keeps it); (frames decoded, frames written)."""
    import av

    tb = layout["time_base"]
    matroska = settings.container == "auto" and layout["matroska"]
    options = {} if matroska else {  # the original's time base, exactly, and the index first
        "movflags": "+faststart", "video_track_timescale": str(tb.denominator),
        "movie_timescale": str(tb.denominator)}
    try:
        out = av.open(os.fspath(tmp), "w", format="matroska" if matroska else "mp4",
                      container_options=options)
    except OSError as e:
        raise OutputError(f"{tmp}: cannot write ({e})") from None
    decoded = written = 0
    with out:
        options = {"crf": str(settings.crf), "preset": settings.preset,
                   "x264-params": f"keyint={settings.keyint}:scenecut=0"}
        if settings.tune != "none":
            options["tune"] = settings.tune
        stream = out.add_stream("libx264", rate=layout["rate"], options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1  # the worker processes are the parallelism
        stream.time_base = stream.codec_context.time_base = tb
        if layout["sar"] and layout["sar"] != 1:
            stream.codec_context.sample_aspect_ratio = layout["sar"]
        if layout["rotation"]:
            stream.set_display_rotation(layout["rotation"])
        step = max(1, round(1 / (float(layout["rate"]) * float(tb))))  # one frame, in pts
        waiting: dict[int, object] = {}
        durations: dict[int, int] = {}  # pts -> the original packet's duration
        last = [None]

        def emit(pts: int, frame) -> None:
            nonlocal written
            if last[0] is not None and pts <= last[0]:
                return  # arrived after a later frame was written: dropped
            image = frame.reformat(width, height, format="yuv420p", interpolation="BICUBIC",
                                   threads=1)
            image.pts, image.time_base = pts, tb
            image.pict_type = 0  # NONE: the original's I-frames would force keyframes
            if frame.duration:
                image.duration = durations[pts] = frame.duration
            _write(out, stream.encode(image), tmp, durations)
            last[0] = pts
            written += 1

        previous = None
        for frame in frames:
            decoded += 1
            pts = frame.pts if frame.pts is not None else \
                (0 if previous is None else previous + step)
            previous = pts
            waiting[pts] = frame
            if len(waiting) > REORDER_DEPTH:
                earliest = min(waiting)
                emit(earliest, waiting.pop(earliest))
        for pts in sorted(waiting):
            emit(pts, waiting[pts])
        _write(out, stream.encode(None), tmp, durations)
    return decoded, written


def _write(out, packets, tmp: Path, durations: dict) -> None:
    """Mux ``packets``, each with the duration of the original's packet of the same pts
    (the last one sets the stream's duration, which the reference rule divides by)."""
    try:
        for packet in packets:
            if packet.pts in durations:
                packet.duration = durations[packet.pts]
            out.mux(packet)
    except OSError as e:
        raise OutputError(f"{tmp}: cannot write ({e})") from None


# -- a whole dataset ---------------------------------------------------------------------
@dataclass
class PrepareResult:
    report: dict                # what DST_ROOT/prepare_report.json holds
    resumed: int = 0            # videos finished by earlier runs
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return self.report["failed"]


def _prepare_task(task: tuple) -> dict:
    """Worker: (relative path, src, dst, settings) -> the log record."""
    from .decode import VideoDecodeError

    _, src, dst, settings = task
    stamp = file_stamp(src)
    try:
        return {"stamp": stamp, "status": "done",
                **prepare_video(src, dst, PrepareSettings(**settings))}
    except VideoDecodeError as e:
        kind, message = error_kind(src, str(e))
        return {"stamp": stamp, "status": "failed", "kind": kind, "message": message}
    except OutputError:
        raise
    except Exception as e:  # noqa: BLE001 - an input FFmpeg cannot re-encode
        return {"stamp": stamp, "status": "failed", "kind": "undecodable",
                "message": f"cannot re-encode ({type(e).__name__}: {e})"}


def _crashed(task: tuple, why: str) -> dict:
    return {"stamp": file_stamp(task[1]), "status": "failed", "kind": "decoder_crash",
            "message": why}


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _videos_and_texts(src_root: Path, dst_root: Path, lists) -> tuple[list[str], list[str]]:
    """Relative paths of the videos to prepare and of the text files to copy."""
    if lists:
        videos = []
        for list_file in lists:
            for item in read_annotations(list_file, None):
                if os.path.isabs(item.path) or ".." in Path(item.path).parts:
                    raise FrosterError(f"{list_file}:{item.line}: {item.path} is not a path "
                                       f"inside SRC_ROOT; prepare needs relative paths")
                videos.append(item.path)
        texts = [os.path.relpath(Path(f).resolve(), src_root.resolve()) for f in lists
                 if _inside(Path(f), src_root)]
        return list(dict.fromkeys(videos)), texts
    videos, texts = [], []
    skip = dst_root.resolve()
    for folder, dirs, files in os.walk(src_root):
        dirs[:] = sorted(d for d in dirs if (Path(folder) / d).resolve() != skip)
        for name in sorted(files):
            rel = os.path.relpath(os.path.join(folder, name), src_root)
            if name.startswith("."):
                continue
            if name.lower().endswith(VIDEO_EXTENSIONS):
                videos.append(rel)
            elif name.lower().endswith(TEXT_EXTENSIONS):
                texts.append(rel)
    return videos, texts


def _copy_texts(src_root: Path, dst_root: Path, texts: list[str]) -> None:
    for rel in texts:
        target = dst_root / rel
        if target.resolve() == (src_root / rel).resolve():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.partial")
        shutil.copy2(src_root / rel, tmp)
        os.replace(tmp, target)


def prepare_dataset(src_root: str | os.PathLike, dst_root: str | os.PathLike, lists=(),
                    settings: PrepareSettings = PrepareSettings(), workers: int | None = None,
                    progress: bool | None = True, restart: bool = False) -> PrepareResult:
    """Re-encode the videos of ``src_root`` (those the ``lists`` name, or every video
    file under it) into ``dst_root`` at the same relative paths, in ``workers`` processes
    (default: one per core). Lists inside ``src_root`` (without lists: every .csv, .txt
    and .json file) are copied unchanged. Writes DST_ROOT/prepare_report.json."""
    start = time.perf_counter()
    settings.validate()
    src_root, dst_root = Path(src_root), Path(dst_root)
    if not src_root.is_dir():
        raise MissingFileError(f"SRC_ROOT {src_root} is not a folder")
    if dst_root.resolve() == src_root.resolve():
        raise FrosterError("DST_ROOT is SRC_ROOT: give another folder (the originals are never "
                           "overwritten)")
    for list_file in lists:
        if not Path(list_file).is_file():
            raise MissingFileError(f"--list {list_file}: file not found")
    videos, texts = _videos_and_texts(src_root, dst_root, lists)
    if not videos:
        raise FrosterError(f"no videos to prepare in {src_root}" +
                           ("" if lists else f" (files ending in {', '.join(VIDEO_EXTENSIONS)})"))
    try:
        dst_root.mkdir(parents=True, exist_ok=True)
        _copy_texts(src_root, dst_root, texts)
    except OSError as e:
        raise FrosterError(f"cannot write to {dst_root} ({e})") from None
    header = {"prepare": 1, "src_root": str(src_root.resolve()), "settings": asdict(settings)}
    with JobLog(dst_root / LOG_FILE, header, restart=restart) as log:
        if log.previous_header is not None:
            before = log.previous_header.get("settings", log.previous_header)
            raise FrosterError(f"{dst_root} holds a copy prepared with other settings or from "
                               f"another SRC_ROOT ({json.dumps(before)}); give the same ones to "
                               "go on, another DST_ROOT, or --restart to redo every video")
        todo = []
        for rel in videos:
            done = log.done.get(rel)
            src, dst = src_root / rel, dst_root / rel
            if done is not None and done["stamp"] == file_stamp(src) and \
                    (done["status"] == "failed" or dst.is_file()):
                continue
            todo.append((rel, str(src), str(dst), asdict(settings)))
        resumed = len(videos) - len(todo)
        try:
            run_jobs(_prepare_task, todo, lambda task, record: log.add(task[0], record),
                     cpu_cores() if workers is None else workers, _crashed,
                     desc="data prepare", progress=progress, total=len(videos),
                     initial=resumed)
        except OutputError as e:
            raise FrosterError(f"{e}; fix it and run the same command again to go on") from None
        records = {rel: log.done[rel] for rel in videos}
    report = _report(src_root, dst_root, settings, videos, texts, records)
    write_atomic(dst_root / REPORT_FILE, json.dumps(report, indent=1) + "\n")
    return PrepareResult(report, resumed, time.perf_counter() - start, _lines(report))


def _report(src_root, dst_root, settings, videos, texts, records) -> dict:
    done = [r for r in records.values() if r["status"] == "done"]
    failures = [{"path": rel, "kind": r["kind"], "message": r["message"]}
                for rel, r in records.items() if r["status"] == "failed"]
    return {"src_root": str(src_root), "dst_root": str(dst_root), "settings": asdict(settings),
            "videos": len(videos), "written": len(done), "failed": len(failures),
            "output_bytes": sum(r["bytes"] for r in done), "copied_text_files": texts,
            "failures": failures}


def _lines(report: dict, first: int = 10) -> list[str]:
    s = report["settings"]
    lines = [f"{report['dst_root']}: {report['written']} of {report['videos']} videos "
             f"re-encoded (H.264, short side {s['short_side']}, a keyframe every "
             f"{s['keyint']} frames), {report['output_bytes'] / 2**20:.1f} MiB"]
    if report["failed"]:
        lines.append(f"{report['failed']} unreadable inputs skipped (all in "
                     f"{Path(report['dst_root']) / REPORT_FILE}):")
        lines += [f"  {f['path']}: {f['kind']}: {f['message']}" for f in report["failures"][:first]]
        if report["failed"] > first:
            lines.append(f"  ... and {report['failed'] - first} more")
    return lines
