"""Decoding by timestamp, as the reference's PyAV decoder does (``pyav_decode_stream``).

A window [start_pts, end_pts] (stream time base): seek backward to a keyframe at or
before ``max(start_pts - 1024, 0)``, decode; drop frames with pts < start_pts, keep
frames with pts <= end_pts, keep the first frame after end_pts as well and stop. Frames
are keyed by pts (a later frame with the same pts replaces the earlier one) and ordered
by pts, even where the decoder's output order differs (AVI with packed B-frames).

The reference keeps every frame of the window. Only a few are sampled, and their places
in pts order are known before decoding (all but the last, which is the window's last
frame), so `decode_window` keeps those, plus a short queue of recent frames whose place
may still change: decoders emit frames almost in pts order. A frame whose pts is earlier
than one already out of the queue makes it decode the window again keeping every frame:
the same frames come out, only memory differs.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from ..decode import VideoDecodeError

SEEK_MARGIN = 1024  # pts; the reference seeks this far before the window start
REORDER_DEPTH = 16  # frames held while their place in pts order may still change


class NoTimestamps(Exception):
    """A decoded frame has no pts (the reference fails comparing it)."""


class _SeekLandedLate(Exception):
    def __init__(self, pts: int):
        self.pts = pts


class _ReorderedTooFar(Exception):
    pass


@dataclass
class Window:
    """The frames of one window: ``pts`` (distinct, ascending) and the frames of every
    position that can be sampled (``frames`` by pts). ``inside``: how many lie in
    [start_pts, end_pts]; ``restarted``: why it was decoded from the file's start;
    ``error``: the FFmpeg error that ended decoding before the window was complete."""

    pts: list[int] = field(default_factory=list)
    frames: dict = field(default_factory=dict)
    inside: int = 0
    restarted: str | None = None
    error: str | None = None

    def frame_at(self, position: int):
        return self.frames[self.pts[position]]


def decode_windows(video, bounds: list[tuple[int, int]], positions: set[int],
                   depth: int | None = REORDER_DEPTH) -> list[Window]:
    """`decode_window` for each (start_pts, end_pts) in ``bounds``.

    Windows whose seeks land on the same packet share one decoding pass: after the seek
    and flush the decoder gets the same packets from the same point, so each window gets
    the frames its own pass would give. Anything unusual in a shared pass (a late landing,
    frames out of order beyond the queue, an FFmpeg error) decodes those windows one by one.
    """
    if len(bounds) == 1:
        return [decode_window(video, *bounds[0], positions, depth)]
    landings = [video.seek_landing(max(start - SEEK_MARGIN, 0)) for start, _ in bounds]
    windows: list[Window] = []
    i = 0
    while i < len(bounds):
        j = i + 1
        while j < len(bounds) and landings[i] is not None and landings[j] == landings[i]:
            j += 1
        group = bounds[i:j]
        shared = _shared_pass(video, group, positions, depth) if len(group) > 1 else None
        windows += shared or [decode_window(video, s, e, positions, depth) for s, e in group]
        i = j
    return windows


def decode_window(video, start_pts: int, end_pts: int, positions: set[int],
                  depth: int | None = REORDER_DEPTH) -> Window:
    """The reference's window [start_pts, end_pts] of an open video (froster.data.decode).

    ``positions``: places in pts order that may be sampled (the last frame always may).
    ``depth=None`` keeps every frame. A seek that fails, or lands after ``start_pts``
    when earlier frames exist (a broken index), is replaced by decoding from the start
    of the file, which gives the frames the reference asks for; ``restarted`` says so.
    FFmpeg errors end the frames early (``error``).
    """
    seek = max(start_pts - SEEK_MARGIN, 0)
    restarted = None
    while True:
        try:
            frames = video.decode_from(seek if restarted is None else None)
        except VideoDecodeError as e:
            restarted = f"the seek to pts {seek} failed ({e}); decoded from the start"
            continue
        collector = _Collector(start_pts, end_pts, positions, depth)
        try:
            _run(frames, [collector], video.first_pts if restarted is None else None)
        except _SeekLandedLate as late:
            restarted = (f"the seek to pts {seek} landed at pts {late.pts}, after the window "
                         f"start {start_pts}; decoded from the start")
            continue
        except _ReorderedTooFar:
            depth = None  # decode this window again, keeping every frame
            continue
        return collector.window(restarted, video.error)


def _shared_pass(video, bounds, positions, depth) -> list[Window] | None:
    try:
        frames = video.decode_from(max(bounds[0][0] - SEEK_MARGIN, 0))
    except VideoDecodeError:
        return None
    collectors = [_Collector(start, end, positions, depth) for start, end in bounds]
    try:
        _run(frames, collectors, video.first_pts)
    except (_SeekLandedLate, _ReorderedTooFar):
        return None
    if video.error:
        return None
    return [c.window(None, None) for c in collectors]


def _run(frames, collectors, first_pts) -> None:
    """Feed decoded frames to the window collectors until each has seen its last frame.
    ``first_pts``: the stream's first pts, to check where a seek landed (None: no check)."""
    for frame in frames:
        if frame.pts is None:
            raise NoTimestamps
        if first_pts is not None:  # the first frame after the seek
            if frame.pts > collectors[0].start_pts and frame.pts > first_pts:
                raise _SeekLandedLate(frame.pts)
            first_pts = None
        for collector in collectors:
            if not collector.done:
                collector.feed(frame)
        if all(c.done for c in collectors):
            return


class _Collector:
    """One window, as pyav_decode_stream keeps it (see the module's docstring)."""

    def __init__(self, start_pts: int, end_pts: int, positions: set[int], depth: int | None):
        self.start_pts, self.end_pts, self.positions, self.depth = start_pts, end_pts, positions, depth
        self.seen: list[int] = []   # distinct pts so far, ascending
        self.recent: dict = {}      # pts -> frame, place in pts order not final yet
        self.kept: dict = {}        # pts -> frame, final place is in `positions`
        self.settled = None         # largest pts whose place is final
        self.done = False           # a frame after end_pts was seen

    def feed(self, frame) -> None:
        pts = frame.pts
        if pts < self.start_pts:
            return
        if pts in self.recent:
            self.recent[pts] = frame
        elif pts in self.kept:
            self.kept[pts] = frame
        elif self.settled is None or pts > self.settled:
            bisect.insort(self.seen, pts)
            self.recent[pts] = frame
        elif not _contains(self.seen, pts):
            raise _ReorderedTooFar  # a new pts before one already settled
        # else: a repeat of a settled frame that is never sampled
        if self.depth is not None and len(self.recent) > self.depth:
            oldest = min(self.recent)
            frame_out = self.recent.pop(oldest)
            self.settled = oldest
            if bisect.bisect_left(self.seen, oldest) in self.positions:
                self.kept[oldest] = frame_out
        if pts > self.end_pts:
            self.done = True

    def window(self, restarted: str | None, error: str | None) -> Window:
        return Window(self.seen, {**self.kept, **self.recent},
                      inside=bisect.bisect_right(self.seen, self.end_pts), restarted=restarted,
                      error=None if self.done else error)


def _contains(ascending: list[int], value: int) -> bool:
    i = bisect.bisect_left(ascending, value)
    return i < len(ascending) and ascending[i] == value


def decoding_order(video) -> list:
    """Pass 1 of the reference's decode-everything path: every frame's pts in the
    decoder's output order, from ``seek(0)`` as the reference starts (or from the
    file's start if that seek fails). Frames are not kept."""
    try:
        frames = video.decode_from(0)
    except VideoDecodeError:
        frames = video.decode_from(None)
    return [frame.pts for frame in frames]


def frames_in_order(video, indices: set[int], expected: list) -> dict:
    """Pass 2: the frames at output positions ``indices``, decoding as `decoding_order`
    did; raises VideoDecodeError if the decoder does not repeat its timestamps."""
    try:
        frames = video.decode_from(0)
    except VideoDecodeError:
        frames = video.decode_from(None)
    out, last = {}, max(indices)
    for i, frame in enumerate(frames):
        if i >= len(expected) or frame.pts != expected[i]:
            raise VideoDecodeError(f"{video.path}: decoding the stream twice gave different "
                                   f"frames (at frame {i})")
        if i in indices:
            out[i] = frame
        if i >= last:
            break
    missing = indices - out.keys()
    if missing:
        raise VideoDecodeError(f"{video.path}: frame {min(missing)} of {len(expected)} could "
                               f"not be decoded again{f' ({video.error})' if video.error else ''}")
    return out
