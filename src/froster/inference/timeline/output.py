"""Writing a timeline: window records as they come, segments at the end, the annotated
video and the chart, the segment table; Ctrl-C ends a run with everything written.

Formats (``-o`` file, chosen by its suffix or ``fmt``):
  jsonl  one JSON object per line, flushed as soon as it is known: first
         {"type": "timeline", settings...}, then {"type": "window", "window", "start",
         "end", "label", "probability", "top": [{"label", "probability"}], "frames"} per
         window, then {"type": "segment", "start", "end", "label", "probability",
         "windows", ...} per segment and a last {"type": "end", counts, "error",
         "interrupted"}. This is the one to follow a live stream with (``tail -f``).
  json   the same as one document {"timeline", "windows", "segments", "end"}
         (streamed, valid once the run has ended).
  csv    columns type,index,start,end,label,rank,candidate,probability: a "window" row
         per ranked label (`candidate` at `rank`, with its probability; `label` is the
         window's label), flushed per window, then a "segment" row per segment (rank and
         candidate empty, probability the segment's mean score).
"label" is null (empty in CSV) for "no action"; "probability" is the smoothed score.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ..formats import TIMELINE_FORMATS, format_for
from .render import NO_ACTION, AnnotatedVideo, draw_timeline_chart, format_time
from .runner import Timeline
from .scoring import Window
from .segmentation import Segment, SegmentBuilder

__all__ = ["run_timeline", "TimelineReport", "segment_table"]


class _Writer:
    def __init__(self, path: Path, settings: dict):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file: IO[str] = open(path, "w", encoding="utf-8", newline="")
        self.start(settings)

    def start(self, settings: dict) -> None: ...
    def window(self, window: Window) -> None: ...
    def finish(self, segments: list[Segment], end: dict) -> None: ...

    def close(self, segments: list[Segment], end: dict) -> None:
        try:
            self.finish(segments, end)
        finally:
            self.file.close()


class _JsonLines(_Writer):
    def _line(self, record: dict) -> None:
        self.file.write(json.dumps(record, ensure_ascii=False) + "\n")

    def start(self, settings):
        self._line({"type": "timeline", **settings})
        self.file.flush()

    def window(self, window):
        self._line({"type": "window", **window.record()})
        self.file.flush()

    def finish(self, segments, end):
        for segment in segments:
            self._line({"type": "segment", **segment.record()})
        self._line({"type": "end", **end})


class _Json(_Writer):
    def start(self, settings):
        self.file.write('{"timeline": ' + json.dumps(settings, ensure_ascii=False) + ',\n"windows": [')
        self.first = True

    def window(self, window):
        self.file.write(("\n" if self.first else ",\n") + json.dumps(window.record(), ensure_ascii=False))
        self.first = False

    def finish(self, segments, end):
        body = ",\n".join(json.dumps(s.record(), ensure_ascii=False) for s in segments)
        self.file.write("],\n\"segments\": [\n" + body + "],\n\"end\": "
                        + json.dumps(end, ensure_ascii=False) + "}\n")


class _Csv(_Writer):
    COLUMNS = ("type", "index", "start", "end", "label", "rank", "candidate", "probability")

    def start(self, settings):
        self.csv = csv.writer(self.file, lineterminator="\n")
        self.csv.writerow(self.COLUMNS)

    def window(self, window):
        for rank, (name, p) in enumerate(window.top, start=1):
            self.csv.writerow(["window", window.index, f"{window.start:.6f}", f"{window.end:.6f}",
                               window.label or "", rank, name, f"{p:.6f}"])
        self.file.flush()

    def finish(self, segments, end):
        for i, s in enumerate(segments):
            self.csv.writerow(["segment", i, f"{s.start:.6f}", f"{s.end:.6f}", s.label or "",
                               "", "", f"{s.probability:.6f}"])


_WRITERS = {"jsonl": _JsonLines, "json": _Json, "csv": _Csv}


@dataclass
class TimelineReport:
    source: str
    windows: int = 0
    segments: list[Segment] = field(default_factory=list)
    frames_decoded: int = 0
    corrupt_packets: int = 0
    dropped_frames: int = 0
    end_time: float | None = None
    error: str | None = None
    interrupted: bool = False
    written: list[str] = field(default_factory=list)

    def end_record(self) -> dict:
        return {"windows": self.windows, "frames_decoded": self.frames_decoded,
                "corrupt_packets": self.corrupt_packets, "dropped_frames": self.dropped_frames,
                "end_time": None if self.end_time is None else round(self.end_time, 6),
                "error": self.error, "interrupted": self.interrupted}

    def summary(self) -> str:
        length = format_time(self.end_time) if self.end_time is not None else "nothing"
        text = (f"{_count(self.windows, 'window')} over {length} of video "
                f"({self.frames_decoded} frames decoded once")
        if self.corrupt_packets or self.dropped_frames:
            text += (f"; {self.corrupt_packets} corrupt packets and {self.dropped_frames} "
                     "out-of-order frames skipped")
        text += f"), {_count(len(self.segments), 'segment')}"
        if self.written:
            text += "; wrote " + ", ".join(self.written)
        if self.interrupted:
            text += "\ninterrupted: everything up to here is written"
        if self.error:
            text += (f"\nerror: {self.source}: {self.error}; the {self.windows} windows before "
                     "it are written")
        return text


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def segment_table(segments: list[Segment]) -> str:
    """The segments as a text table."""
    if not segments:
        return "no complete window: the stream ended before one window (nothing to show)\n"
    names = [s.label if s.label is not None else f"({NO_ACTION})" for s in segments]
    width = max(5, *(len(n) for n in names))
    lines = [f"{'start':>10}  {'end':>10}  {'duration':>9}  {'label':<{width}}  {'score':>5}  windows"]
    for s, name in zip(segments, names):
        lines.append(f"{format_time(s.start):>10}  {format_time(s.end):>10}  "
                     f"{s.end - s.start:>7.1f} s  {name:<{width}}  {s.probability:5.2f}  {s.windows:>7}")
    return "\n".join(lines) + "\n"


def run_timeline(timeline: Timeline, output=None, fmt: str | None = None, video=None, chart=None,
                 progress: bool | None = None) -> TimelineReport:
    """Iterate `timeline`, writing each window to `output` as it comes; then the segments,
    the annotated `video` and the `chart`. Ctrl-C (KeyboardInterrupt) stops the stream and
    still writes everything known so far (``report.interrupted``)."""
    from tqdm import tqdm

    stream = timeline.stream
    report = TimelineReport(stream.name)
    writer = _WRITERS[format_for(output, fmt, TIMELINE_FORMATS, default=None)](Path(output), timeline.settings()) if output else None
    annotated = None
    if video:
        annotated = AnnotatedVideo(video, stream, timeline.names, timeline.stride, timeline.span,
                                   timeline.threshold, bars=min(3, len(timeline.names)))
        timeline.on_frame = annotated.add_frame
        limit = float(timeline.span) / 2 + 2 * float(timeline.stride)  # bounded frame buffer
        timeline.flush_when = lambda: annotated.backlog_seconds > limit
    builder = SegmentBuilder()
    times, scores = [], []
    total = None if stream.live or not stream.duration else round(stream.duration, 1)
    bar = tqdm(total=total, unit="s", desc="timeline", dynamic_ncols=True,
               disable=not progress if progress is not None else None,
               bar_format="{l_bar}{bar}| {n:.1f}/{total_fmt} s [{elapsed}<{remaining}]{postfix}"
               if total else "{desc}: {n:.1f} s of video [{elapsed}]{postfix}")
    windows = iter(timeline)
    try:
        while True:
            try:
                for window in windows:
                    report.windows += 1
                    if writer is not None:
                        writer.window(window)
                    builder.add(window)
                    if annotated is not None:
                        annotated.add_window(window)
                    if chart:
                        times.append(window.centre)
                        scores.append(window.scores.numpy().astype("float32"))
                    bar.update(max(0.0, min(window.end, total or window.end) - bar.n))
                    bar.set_postfix_str(window.label or NO_ACTION, refresh=False)
                break
            except KeyboardInterrupt:  # Ctrl-C in our code: stop reading, finish what is known
                timeline.stop()
    finally:
        bar.close()
        report.interrupted = timeline.interrupted
        report.error = stream.error
        report.frames_decoded, report.corrupt_packets = stream.decoded, stream.corrupt_packets
        report.dropped_frames, report.end_time = stream.dropped, timeline.end_time
        report.segments = builder.finish(report.end_time)
        if writer is not None:
            writer.close(report.segments, report.end_record())
            report.written.append(str(output))
        if annotated is not None:
            annotated.close()
            report.written.append(f"{video} ({annotated.written} frames)")
    if chart:
        import numpy as np

        draw_timeline_chart(chart, times, np.stack(scores) if scores else np.zeros((0, len(timeline.names))),
                            timeline.names, report.segments, timeline.threshold,
                            title=f"{stream.name}: label scores per window (smoothed over "
                                  f"{timeline.scorer.smooth}), segments below")
        report.written.append(str(chart))
    return report
