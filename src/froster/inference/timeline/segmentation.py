"""Segments: runs of consecutive windows with the same label (None, "no action",
included), cut halfway between the centres of the windows on either side of a change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .scoring import Window

__all__ = ["Segment", "SegmentBuilder", "segments"]


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


@dataclass
class OpenSegment:
    """The segment the windows are still extending."""

    label: str | None
    start: float
    score_sum: float
    windows: int
    first_window: int
    last_window: int

    def close(self, end: float) -> Segment:
        return Segment(self.start, end, self.label, self.score_sum / self.windows, self.windows,
                       self.first_window, self.last_window)


class SegmentBuilder:
    """Merges windows (in order) into segments as they come; keeps only the open one."""

    def __init__(self):
        self.segments: list[Segment] = []
        self.open: OpenSegment | None = None
        self.last: Window | None = None

    def add(self, window: Window) -> Segment | None:
        """Add the next window; returns the segment it closes, if any."""
        closed = None
        if self.open is not None and window.label == self.open.label:
            self.open.score_sum += window.score
            self.open.windows += 1
            self.open.last_window = window.index
        else:
            start = window.start
            if self.open is not None:
                start = (self.last.centre + window.centre) / 2  # cut between the centres
                closed = self._close(start)
            self.open = OpenSegment(window.label, start, window.score, 1, window.index,
                                    window.index)
        self.last = window
        return closed

    def _close(self, end: float) -> Segment:
        segment = self.open.close(end)
        self.segments.append(segment)
        self.open = None
        return segment

    def finish(self, end_time: float | None = None) -> list[Segment]:
        """Close the last segment (at the last window's end, or `end_time` if earlier)."""
        if self.open is not None:
            end = self.last.end if end_time is None else min(self.last.end, end_time)
            self._close(max(end, self.open.start))
        return self.segments


def segments(windows: Iterable[Window], end_time: float | None = None) -> list[Segment]:
    """Segments of windows given in order."""
    builder = SegmentBuilder()
    for window in windows:
        builder.add(window)
    return builder.finish(end_time)
