"""Which frames make which window: window k starts at k * stride seconds, its sample j is
at start + j * step, and a sample takes the frame shown at its time (the last frame whose
timestamp is not after it, timestamps exact to half a tick of the time base). See the
package's docstring for the whole rule."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["seconds", "WindowSampler", "Sample", "WindowAssembler"]


def seconds(value) -> Fraction:
    """A time in seconds as an exact fraction (1.0 -> 1, 0.1 -> 1/10)."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    return Fraction(str(float(value)))


class WindowSampler:
    """Which sample slots (window k, sample j) the frame shown during a time span fills."""

    def __init__(self, num_frames: int, step: Fraction, stride: Fraction,
                 tolerance: Fraction = Fraction(0)):
        if num_frames < 1 or step <= 0 or stride <= 0:
            raise ValueError("num_frames, step and stride must be positive")
        self.num_frames, self.step, self.stride, self.tolerance = num_frames, step, stride, tolerance

    def start(self, window: int) -> Fraction:
        return window * self.stride

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
class Sample:
    frame: int          # the frame's number in the stream
    time: Fraction      # its timestamp
    pixels: object      # what the converter made of it (the model input)


class WindowAssembler:
    """Fills windows from frames in order; a window is handed out once all its samples are
    known (known at the next frame: a frame is shown until the next one starts)."""

    def __init__(self, sampler: WindowSampler):
        self.sampler = sampler
        self.open: dict[int, list[Sample | None]] = {}
        self.previous: tuple[int, Fraction, object] | None = None
        self.next_window = 0

    def add(self, index: int, time: Fraction, frame, convert) -> list[tuple[int, list[Sample]]]:
        ready = []
        if self.previous is not None:
            ready = self._place(self.previous, self.sampler.slots(self.previous[1], time), convert)
        self.previous = (index, time, frame)
        return ready

    def finish(self, convert) -> list[tuple[int, list[Sample]]]:
        """The windows the last frame completes (one window for a stream shorter than one)."""
        if self.previous is None:
            return []
        last = self.sampler.last_complete_window(self.previous[1])
        if last < 0 and self.next_window == 0:
            last = 0
        return self._place(self.previous, self.sampler.slots(self.previous[1], None, last), convert)

    def _place(self, frame, slots, convert) -> list[tuple[int, list[Sample]]]:
        if slots:
            sample = Sample(frame[0], frame[1], convert(frame[2]))
            for k, j in slots:
                if k >= self.next_window:
                    self.open.setdefault(k, [None] * self.sampler.num_frames)[j] = sample
        ready = []
        while self.next_window in self.open and all(self.open[self.next_window]):
            ready.append((self.next_window, self.open.pop(self.next_window)))
            self.next_window += 1
        return ready
