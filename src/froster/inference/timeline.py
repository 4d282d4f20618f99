"""What happens when in a long video or a live stream: the model run window by window.

A *window* is one clip as the model sees it: ``T`` frames (the recognizer's
``num_frames``, 8) ``step`` seconds apart, where ``step = sampling_rate / target_fps``
(16 / 30 s) unless ``window`` seconds are asked for (then ``step = window / T``). Its span
is ``T * step`` (4.27 s by default) whatever the video's frame rate. Window ``k`` starts
at ``k * stride`` seconds (time 0 is the first frame) and ends at ``start + T * step``;
its sample ``j`` is at ``start + j * step``.

Which frame a sample takes: the frame *shown* at that time, i.e. the last frame whose
timestamp is at most the sample time. Timestamps are taken as exact to half a tick of
the stream's time base, so that the millisecond timestamps of MKV/WebM (frame 2 at 30 fps
is stored as 67 ms, not 66.67 ms) do not move a sample by a frame. A window exists when
its last sample is not after the last frame; a stream shorter than one window gives one
window whose late samples repeat the last frame.

Each frame is decoded once, in order; a frame that some sample takes is converted,
rotated as displayed and resized/cropped to the model's input right away (exactly as
`Recognizer.classify` transforms a frame tensor), and held only until the windows that
use it have run. Complete windows are batched through the visual tower against the
classifier built once (text cache); a window's logits are those of
``Recognizer.logits(frames, labels)`` on its (T, H, W, 3) frames.

Per window: ``probabilities`` = softmax of the logits over the labels; ``scores`` = their
mean over the last ``smooth`` windows (the window itself and up to ``smooth - 1`` before
it, as mmaction2's webcam demo averages); ``top`` = labels ranked by score; ``label`` =
the top label when its score is at least ``threshold``, else None ("no action").
A *segment* is a run of consecutive windows with the same label (None included). Windows
overlap, so a segment's time is cut halfway between the centres of its first/last window
and its neighbours' (each window stands for the ``stride`` seconds around its centre); the
first segment starts at the first window's start, the last ends at the last window's end
(or the stream's end, if earlier).
"""

from __future__ import annotations

import math
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterable, Iterator, Sequence

import torch

from ..data.stream import FrameStream
from ..data.transforms import test_transform
from ..prompts import ClassText
from .api import _label_texts, rank

__all__ = ["Timeline", "Window", "Segment", "SegmentBuilder", "segments", "WindowSampler",
           "WindowScorer", "seconds"]

def seconds(value) -> Fraction:
    """A time in seconds as an exact fraction (1.0 -> 1, 0.1 -> 1/10)."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    return Fraction(str(float(value)))


@contextmanager
def _one_thread():
    """Small per-frame tensor work on one intra-op thread. Waking torch's other threads for
    a 224 px crop costs more than the work itself (5-15x slower with 2 threads on a loaded
    2-core machine, found with bench/timeline.py); each output pixel is computed alone,
    so the result is the same."""
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class WindowSampler:
    """Which sample slots (window k, sample j) the frame shown during a time span fills."""

    def __init__(self, num_frames: int, step: Fraction, stride: Fraction,
                 tolerance: Fraction = Fraction(0)):
        if num_frames < 1 or step <= 0 or stride <= 0:
            raise ValueError("num_frames, step and stride must be positive")
        self.num_frames, self.step, self.stride, self.tolerance = num_frames, step, stride, tolerance

    def start(self, window: int) -> Fraction:
        return window * self.stride

    def sample_time(self, window: int, sample: int) -> Fraction:
        return window * self.stride + sample * self.step

    def slots(self, begin: Fraction, until: Fraction | None,
              last_window: int | None = None) -> list[tuple[int, int]]:
        """Slots whose time t has ``begin <= t + tolerance < until``: what the frame with
        timestamp `begin` fills when the next frame's timestamp is `until`. With ``until``
        None (the last frame) every later slot of windows up to `last_window`."""
        out = []
        for j in range(self.num_frames):
            offset = j * self.step
            first = max(0, math.ceil((begin - self.tolerance - offset) / self.stride))
            if until is None:
                last = last_window if last_window is not None else first - 1
            else:
                last = math.ceil((until - self.tolerance - offset) / self.stride) - 1
            out += [(k, j) for k in range(first, last + 1)]
        return sorted(out)

    def last_complete_window(self, last_frame_time: Fraction) -> int:
        """The last window whose last sample is not after the last frame (-1: none)."""
        last_offset = (self.num_frames - 1) * self.step
        return math.floor((last_frame_time + self.tolerance - last_offset) / self.stride)


@dataclass
class _Sample:
    frame: int          # the frame's number in the stream
    time: Fraction      # its timestamp
    pixels: object      # what the converter made of it (the model input)


class _WindowAssembler:
    """Fills windows from frames in order; a window is handed out once all its samples are
    known (known at the next frame: a frame is shown until the next one starts)."""

    def __init__(self, sampler: WindowSampler):
        self.sampler = sampler
        self.open: dict[int, list[_Sample | None]] = {}
        self.previous: tuple[int, Fraction, object] | None = None
        self.next_window = 0

    def add(self, index: int, time: Fraction, frame, convert) -> list[tuple[int, list[_Sample]]]:
        ready = []
        if self.previous is not None:
            ready = self._place(self.previous, self.sampler.slots(self.previous[1], time), convert)
        self.previous = (index, time, frame)
        return ready

    def finish(self, convert) -> list[tuple[int, list[_Sample]]]:
        """The windows the last frame completes (one window for a stream shorter than one)."""
        if self.previous is None:
            return []
        last = self.sampler.last_complete_window(self.previous[1])
        if last < 0 and self.next_window == 0:
            last = 0
        return self._place(self.previous, self.sampler.slots(self.previous[1], None, last), convert)

    def _place(self, frame, slots, convert) -> list[tuple[int, list[_Sample]]]:
        if slots:
            sample = _Sample(frame[0], frame[1], convert(frame[2]))
            for k, j in slots:
                if k >= self.next_window:
                    self.open.setdefault(k, [None] * self.sampler.num_frames)[j] = sample
        ready = []
        while self.next_window in self.open and all(self.open[self.next_window]):
            ready.append((self.next_window, self.open.pop(self.next_window)))
            self.next_window += 1
        return ready


@dataclass
class Window:
    index: int
    start: float                 # seconds since the first frame
    end: float                   # start + span
    frames: list[int]            # the sampled frames' numbers in the stream (0 = first)
    frame_times: list[float]     # their timestamps (seconds since the first frame)
    logits: torch.Tensor         # (C,) as Recognizer.logits on the same frames
    probabilities: torch.Tensor  # (C,) softmax over the labels
    scores: torch.Tensor         # (C,) probabilities averaged over the last `smooth` windows
    top: list[tuple[str, float]]  # labels ranked by score (top_k of them)
    label: str | None            # top label, or None below the threshold ("no action")
    score: float                 # the top label's score

    @property
    def centre(self) -> float:
        return (self.start + self.end) / 2

    def record(self) -> dict:
        """The window as written to JSON."""
        return {"window": self.index, "start": round(self.start, 6), "end": round(self.end, 6),
                "label": self.label, "probability": round(self.score, 6),
                "top": [{"label": name, "probability": round(p, 6)} for name, p in self.top],
                "frames": self.frames}


class WindowScorer:
    """Probabilities, smoothing over the last `smooth` windows, ranking and threshold."""

    def __init__(self, names: Sequence[str], threshold: float = 0.0, smooth: int = 1,
                 top_k: int | None = None):
        if smooth < 1:
            raise ValueError(f"smooth must be at least 1 window, got {smooth}")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be a probability in [0, 1], got {threshold}")
        if top_k is not None and top_k < 0:
            raise ValueError(f"top_k must not be negative, got {top_k}")
        self.names = list(names)
        self.threshold, self.smooth = threshold, smooth
        self.top_k = min(top_k, len(self.names)) if top_k else len(self.names)
        self.history: deque[torch.Tensor] = deque(maxlen=smooth)

    def __call__(self, logits: torch.Tensor):
        """(probabilities, scores, top, label) of the next window in order."""
        probabilities = logits.float().softmax(dim=-1)
        self.history.append(probabilities)
        scores = torch.stack(list(self.history)).mean(dim=0)
        top = rank(self.names, scores, self.top_k)
        label = top[0][0] if top[0][1] >= self.threshold else None
        return probabilities, scores, top, label


@dataclass
class Segment:
    start: float
    end: float
    label: str | None  # None: no action (every window below the threshold)
    probability: float  # mean over its windows of the top score
    windows: int
    first_window: int
    last_window: int

    def record(self) -> dict:
        return {"start": round(self.start, 6), "end": round(self.end, 6), "label": self.label,
                "probability": round(self.probability, 6), "windows": self.windows,
                "first_window": self.first_window, "last_window": self.last_window}


class SegmentBuilder:
    """Merges windows (in order) into segments as they come; keeps only the open one."""

    def __init__(self):
        self.segments: list[Segment] = []
        self._open: list | None = None  # [label, start, score sum, count, first, last window]
        self._last: Window | None = None

    def add(self, window: Window) -> Segment | None:
        """Add the next window; returns the segment it closes, if any."""
        closed = None
        if self._open is not None and window.label == self._open[0]:
            self._open[2] += window.score
            self._open[3] += 1
            self._open[5] = window.index
        else:
            if self._open is not None:
                cut = (self._last.centre + window.centre) / 2
                closed = self._close(cut)
                start = cut
            else:
                start = window.start
            self._open = [window.label, start, window.score, 1, window.index, window.index]
        self._last = window
        return closed

    def _close(self, end: float) -> Segment:
        label, start, total, count, first, last = self._open
        segment = Segment(start, end, label, total / count, count, first, last)
        self.segments.append(segment)
        self._open = None
        return segment

    def finish(self, end_time: float | None = None) -> list[Segment]:
        """Close the last segment (at the last window's end, or `end_time` if earlier)."""
        if self._open is not None:
            end = self._last.end if end_time is None else min(self._last.end, end_time)
            self._close(max(end, self._open[1]))
        return self.segments


def segments(windows: Iterable[Window], end_time: float | None = None) -> list[Segment]:
    """Segments of windows given in order (see the module's docstring)."""
    builder = SegmentBuilder()
    for window in windows:
        builder.add(window)
    return builder.finish(end_time)


class Timeline:
    """Windows of `source` against `labels`, as an iterator (see the module's docstring).

        >>> for w in rec.timeline("match.mp4", ["serve", "rally", "crowd"], stride=1.0):
        ...     print(f"{w.start:7.2f} {w.end:7.2f} {w.label}")

    The source is opened here (an unreadable one raises VideoDecodeError at once). After
    iterating, ``stream.error`` says why a stream ended early (None if it did not),
    ``interrupted`` whether Ctrl-C or `stop()` ended it; ``end_time`` is the time just
    after the last frame. ``on_frame(StreamFrame)`` sees every decoded frame (the
    annotated video uses it); when ``flush_when()`` returns True the complete windows are
    run without waiting for a full batch.
    """

    def __init__(self, recognizer, source, labels: Sequence[str | ClassText],
                 window: float | None = None, stride: float = 1.0, threshold: float = 0.0,
                 smooth: int = 1, top_k: int | None = None, templates: Sequence[str] | None = None,
                 batch_size: int | None = None, input_format: str | None = None,
                 input_options: dict | None = None, apply_rotation: bool | None = None,
                 on_frame: Callable | None = None, flush_when: Callable[[], bool] | None = None):
        classes = _label_texts(labels)
        self.recognizer = recognizer
        self.names = [c.name for c in classes]
        self.num_frames = recognizer.num_frames
        if window is not None and float(window) <= 0:
            raise ValueError(f"window must be a positive number of seconds, got {window}")
        if float(stride) <= 0:
            raise ValueError(f"stride must be a positive number of seconds, got {stride}")
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be at least 1, got {self.num_frames}")
        if window is not None:
            self.step = seconds(window) / self.num_frames
        else:
            self.step = seconds(recognizer.sampling_rate) / seconds(recognizer.target_fps)
        self.stride = seconds(stride)
        self.span = self.step * self.num_frames
        self.batch_size = batch_size or max(1, recognizer.batch_size * recognizer.num_views)
        self.scorer = WindowScorer(self.names, threshold, smooth, top_k)
        self.on_frame, self.flush_when = on_frame, flush_when
        self.classifier = recognizer.label_embeddings(classes, templates)  # built once
        if isinstance(source, FrameStream):  # opened by the caller (e.g. to fail before loading a model)
            self.stream = source
        else:
            if apply_rotation is None:  # as the recognizer decodes files (default: applied)
                apply_rotation = getattr(recognizer, "apply_rotation", True)
            self.stream = FrameStream(source, input_format, input_options,
                                      apply_rotation=apply_rotation)
        self.sampler = WindowSampler(self.num_frames, self.step, self.stride,
                                     tolerance=Fraction(self.stream.time_base) / 2)
        self.interrupted = False
        self._stop = False
        self._started = False
        self._assembler = _WindowAssembler(self.sampler)
        self._pending: list[tuple[int, list[_Sample]]] = []  # complete, not yet run

    @property
    def threshold(self) -> float:
        return self.scorer.threshold

    @property
    def end_time(self) -> float | None:
        return None if self.stream.end_time is None else float(self.stream.end_time)

    def settings(self) -> dict:
        """What produced the windows (written at the top of the outputs)."""
        return {"source": self.stream.name, "labels": self.names,
                "frames_per_window": self.num_frames, "step": float(self.step),
                "window": float(self.span), "stride": float(self.stride),
                "threshold": self.scorer.threshold, "smooth": self.scorer.smooth,
                "top_k": self.scorer.top_k, "model": self.recognizer.identity,
                "size": self.recognizer.size}

    @property
    def held_frames(self) -> int:
        """Sampled frames held now (by windows not yet complete or not yet run)."""
        held = {id(s) for samples in self._assembler.open.values() for s in samples if s}
        held |= {id(s) for _, samples in self._pending for s in samples}
        return len(held)

    def stop(self) -> None:
        """End after the windows already complete (e.g. from a Ctrl-C handler)."""
        self._stop = True

    def _convert(self, frame) -> torch.Tensor:
        """A sampled frame as the model input: displayed RGB, short side resized, centre crop."""
        with _one_thread():
            pixels = torch.from_numpy(self.stream.to_rgb(frame))
            return test_transform(pixels[None], self.recognizer.size, 1)[0, 0]

    def __iter__(self) -> Iterator[Window]:
        if self._started:
            raise RuntimeError("a Timeline is iterated once; make a new one")
        self._started = True
        assembler, pending = self._assembler, self._pending
        try:
            try:
                for item in self.stream:
                    if self.on_frame is not None:
                        self.on_frame(item)
                    pending += assembler.add(item.index, item.time, item.frame, self._convert)
                    if self._stop:
                        break
                    if pending and self._due(pending):
                        yield from self._run(pending)
                        if self._stop:
                            break
                else:
                    pending += assembler.finish(self._convert)
            except KeyboardInterrupt:
                self.interrupted = True
            if self._stop:
                self.interrupted = True
            yield from self._run(pending)
        finally:
            self.stream.close()

    def _due(self, pending) -> bool:
        """Run the complete windows now? A file fills its batches; a live source runs them
        at once (the next frame may be long in coming: a camera stalls, a pipe waits)."""
        if len(pending) >= self.batch_size or self.stream.live:
            return True
        return self.flush_when is not None and self.flush_when()

    def _run(self, pending: list) -> Iterator[Window]:
        """Run the pending windows in batches, yielding each (removed from `pending` as it goes)."""
        while pending:
            chunk = pending[: self.batch_size]
            with _one_thread():
                video = torch.stack([torch.stack([s.pixels for s in samples])
                                     for _, samples in chunk])
            frames = self.recognizer.encode(video[:, None])  # one view per window
            logits = self.recognizer.view_logits(frames, self.classifier).cpu()
            for i in range(len(chunk)):
                index, samples = pending.pop(0)
                probabilities, scores, top, label = self.scorer(logits[i])
                start = self.sampler.start(index)
                yield Window(index, float(start), float(start + self.span),
                             [s.frame for s in samples], [float(s.time) for s in samples],
                             logits[i], probabilities, scores, top, label, top[0][1])
