"""Pictures of a timeline: the annotated video and the chart (Pillow, PyAV).

Annotated video: every input frame, as displayed (rotation applied), scaled so that its
short side is at most 720 px (and at least 360 px, so that a small input's text stays
readable), with a panel showing the time, the current label ("no action" below the
threshold) and bars of the top labels' scores; H.264 in MP4, the input's timestamps kept
(same frames, same rate). The current window of a frame at time t is the one whose centre
is nearest to t (each window stands for the `stride` seconds around its centre), as the
segments are cut; frames wait in a small buffer until that window is known.

Chart: each label's score over time (at the window centres), the threshold dashed, and
the segments as a coloured band under the time axis.
"""

from __future__ import annotations

import math
from collections import deque
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import numpy as np
from PIL import Image, ImageDraw

from ...data.decode import rotate_frame
from ...drawing import default_font

__all__ = ["AnnotatedVideo", "draw_timeline_chart", "label_colour", "format_time",
           "output_size", "NO_ACTION", "NO_ACTION_COLOUR"]

PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207), (127, 127, 127))
NO_ACTION = "no action"
NO_ACTION_COLOUR = (200, 200, 200)


def label_colour(index: int | None) -> tuple[int, int, int]:
    """The colour of the label at `index` in the label list (None: no action)."""
    return NO_ACTION_COLOUR if index is None else PALETTE[index % len(PALETTE)]


def format_time(t: float) -> str:
    """Seconds as H:MM:SS.s (or M:SS.s under an hour)."""
    t = max(0.0, float(t))
    hours, rest = divmod(t, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 1:
        return f"{int(hours)}:{int(minutes):02d}:{secs:04.1f}"
    return f"{int(minutes)}:{secs:04.1f}"


def output_size(width: int, height: int, short_max: int = 720, short_min: int = 360) -> tuple[int, int]:
    """(width, height) with the short side clamped to [short_min, short_max], even numbers."""
    short = min(width, height)
    scale = min(short_max, max(short_min, short)) / short
    return (max(2, int(round(width * scale / 2)) * 2), max(2, int(round(height * scale / 2)) * 2))


class AnnotatedVideo:
    """Writes the annotated video of a `Timeline`: give it every frame (`add_frame`, the
    timeline's ``on_frame``) and every window (`add_window`), then `close()`."""

    def __init__(self, path, stream, names: Sequence[str], stride: float, span: float,
                 threshold: float = 0.0, bars: int = 3, crf: int = 23, preset: str = "veryfast"):
        self.path = Path(path)
        self.names = list(names)
        self.index_of = {name: i for i, name in enumerate(self.names)}
        self.stride, self.span, self.threshold = float(stride), float(span), threshold
        self.bars = max(1, min(bars, len(self.names)))
        self.rotation = stream.rotation
        self.width, self.height = output_size(stream.width, stream.height)
        quarter = int(round(self.rotation / 90.0)) % 2
        self.decode_size = (self.height, self.width) if quarter else (self.width, self.height)
        self.time_base = Fraction(stream.time_base)
        self.frames: deque = deque()   # (time, frame at output size) waiting for their window
        self.windows: dict = {}        # index -> window, the ones buffered frames may need
        self.last_index = -1
        self.written = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(self.path), "w")
        rate = Fraction(stream.fps).limit_denominator(1001) if stream.fps else Fraction(30)
        self.out = self.container.add_stream("libx264", rate=rate,
                                             options={"crf": str(crf), "preset": preset})
        self.out.width, self.out.height, self.out.pix_fmt = self.width, self.height, "yuv420p"
        self.out.codec_context.time_base = self.out.time_base = self.time_base
        self.font_size = max(11, self.height // 24)
        self.font = default_font(self.font_size)
        self.big_font = default_font(int(self.font_size * 1.4))
        self._last_pts = None

    # -- feeding -----------------------------------------------------------------------
    def add_frame(self, item) -> None:
        width, height = self.decode_size
        self.frames.append((item.time, item.frame.reformat(width=width, height=height,
                                                           format="yuv420p")))

    def add_window(self, window) -> None:
        self.windows[window.index] = window
        self.last_index = window.index
        self._drain(final=False)

    @property
    def backlog_seconds(self) -> float:
        """Seconds of video waiting for their window."""
        return float(self.frames[-1][0] - self.frames[0][0]) if len(self.frames) > 1 else 0.0

    def window_index(self, t: float) -> int:
        """The window whose centre is nearest to time t (ties go to the later one)."""
        return max(0, math.floor((t - self.span / 2 + self.stride / 2) / self.stride))

    def _drain(self, final: bool) -> None:
        while self.frames:
            t, frame = self.frames[0]
            k = self.window_index(float(t))
            if k > self.last_index and not final:
                break
            self.frames.popleft()
            self._write(t, frame, self.windows.get(min(k, self.last_index)))
            for old in [i for i in self.windows if i < min(k, self.last_index)]:
                del self.windows[old]

    def close(self) -> None:
        """Write the frames still waiting (with the last window) and finish the file."""
        if self.container is None:
            return
        try:
            self._drain(final=True)
            for packet in self.out.encode():
                self.container.mux(packet)
        finally:
            self.container.close()
            self.container = None

    # -- drawing ---------------------------------------------------------------------------
    def _write(self, t: Fraction, frame, window) -> None:
        rgb = rotate_frame(frame.to_ndarray(format="rgb24"), self.rotation)
        image = Image.fromarray(np.ascontiguousarray(rgb))
        self.draw(image, float(t), window)
        out = av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24")
        pts = int(round(t / self.time_base))
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
        out.pts, out.time_base, self._last_pts = pts, self.time_base, pts
        for packet in self.out.encode(out):
            self.container.mux(packet)
        self.written += 1

    def draw(self, image: Image.Image, t: float, window) -> None:
        """The panel: time, current label, bars of the top labels' scores."""
        pad = max(4, self.font_size // 3)
        row = self.font_size + pad
        bar_w = max(40, min(image.width // 3, 14 * self.font_size))
        text_w = max(int(self.font.getlength(f"{name} 0.00")) for name in self.names) + 2 * pad
        panel_w = min(image.width, bar_w + text_w + 2 * pad)
        lines = 1 + (self.bars if window is not None else 0)
        panel_h = min(image.height, 2 * pad + int(self.font_size * 1.6) + lines * row)
        region = image.crop((0, 0, panel_w, panel_h))
        shade = Image.new("RGB", region.size, (0, 0, 0))
        image.paste(Image.blend(region, shade, 0.6), (0, 0))
        draw = ImageDraw.Draw(image)
        y = pad
        if window is None:
            title, colour = "waiting for the first window", None
        elif window.label is None:
            title, colour = f"{NO_ACTION} ({window.score:.2f} < {self.threshold:g})", NO_ACTION_COLOUR
        else:
            title, colour = f"{window.label}  {window.score:.2f}", label_colour(self.index_of.get(window.label))
        swatch = int(self.font_size * 1.1)
        if colour is not None:
            draw.rectangle([pad, y + 3, pad + swatch, y + 3 + swatch], fill=colour)
        draw.text((2 * pad + swatch, y), title, fill=(255, 255, 255), font=self.big_font)
        y += int(self.font_size * 1.6)
        draw.text((pad, y), format_time(t), fill=(255, 255, 255), font=self.font)
        y += row
        if window is None:
            return
        for name, score in window.top[: self.bars]:
            x0 = pad
            length = int(round(bar_w * max(0.0, min(1.0, score))))
            draw.rectangle([x0, y + 2, x0 + bar_w, y + row - 3], outline=(90, 90, 90))
            if length > 0:
                draw.rectangle([x0, y + 2, x0 + length, y + row - 3],
                               fill=label_colour(self.index_of.get(name)))
            draw.text((x0 + bar_w + pad, y), f"{name} {score:.2f}", fill=(255, 255, 255),
                      font=self.font)
            y += row


# -- the chart ---------------------------------------------------------------------------------
def _tick_step(duration: float, ticks: int = 10) -> float:
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400):
        if duration / step <= ticks:
            return step
    return 86400.0


def draw_timeline_chart(path, times: Sequence[float], scores, names: Sequence[str],
                        segments: Sequence, threshold: float = 0.0, title: str = "",
                        size=(1000, 460), max_labels: int = 10) -> Path:
    """Each label's score at the window centres `times` ((N, C) `scores`), the threshold,
    and the segments as a band under the time axis. With many labels only those that are
    on top somewhere (then the highest-scoring) are drawn, at most `max_labels`."""
    scores = np.asarray(scores, dtype=np.float64).reshape(len(times), len(names))
    times = np.asarray(times, dtype=np.float64)
    shown = _labels_to_show(scores, segments, names, max_labels)
    legend_rows = math.ceil(len(shown) / 4) + (1 if len(shown) < len(names) else 0)
    width, height = size[0], size[1] + 18 * max(0, legend_rows - 1)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font, small = default_font(14), default_font(12)
    left, right, top = 60, width - 25, 40
    bottom = height - 104 - 18 * max(0, legend_rows - 1)
    band_top, band_bottom = bottom + 40, bottom + 60
    draw.text((left, 12), title or "label scores over time", fill="black", font=font)
    end = max([float(s.end) for s in segments] + [float(times.max()) if len(times) else 1.0, 1e-6])
    start = min([float(s.start) for s in segments] + [0.0])

    def x_of(t: float) -> float:
        return left + (right - left) * (t - start) / max(end - start, 1e-9)

    def y_of(p: float) -> float:
        return bottom - (bottom - top) * p

    for p in (0.0, 0.25, 0.5, 0.75, 1.0):
        draw.line([(left, y_of(p)), (right, y_of(p))], fill=(232, 232, 232))
        draw.text((left - 34, y_of(p) - 7), f"{p:.2f}", fill="black", font=small)
    draw.text((8, top - 22), "score", fill="black", font=small)
    step = _tick_step(end - start)
    tick = math.ceil(start / step) * step
    while tick <= end + 1e-9:
        x = x_of(tick)
        draw.line([(x, bottom), (x, bottom + 5)], fill="black")
        label = format_time(tick)
        if step >= 1:
            label = label.rsplit(".", 1)[0]  # whole seconds: no decimals
        draw.text((x - draw.textlength(label, font=small) / 2, bottom + 7), label, fill="black", font=small)
        tick += step
    if threshold > 0:
        y = y_of(threshold)
        for x in range(left, right, 12):
            draw.line([(x, y), (min(x + 6, right), y)], fill=(90, 90, 90), width=1)
        draw.text((right - 110, y - 15), f"threshold {threshold:g}", fill=(90, 90, 90), font=small)
    for c in shown:
        points = [(x_of(t), y_of(p)) for t, p in zip(times, scores[:, c])]
        if len(points) == 1:
            x, y = points[0]
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=label_colour(c))
        elif points:
            draw.line(points, fill=label_colour(c), width=2)
    draw.line([(left, top), (left, bottom), (right, bottom)], fill="black", width=1)
    # segments band
    index_of = {name: i for i, name in enumerate(names)}
    for segment in segments:
        x0, x1 = x_of(float(segment.start)), x_of(float(segment.end))
        colour = label_colour(index_of.get(segment.label) if segment.label is not None else None)
        draw.rectangle([x0, band_top, max(x0 + 1, x1 - 1), band_bottom], fill=colour)
        text = segment.label if segment.label is not None else NO_ACTION
        if draw.textlength(text, font=small) + 6 < x1 - x0:
            ink = "black" if sum(colour) > 450 else "white"
            draw.text((x0 + 3, band_top + 3), text, fill=ink, font=small)
    draw.text((left, band_top - 15), "segments", fill="black", font=small)
    # legend
    y = band_bottom + 12
    column = (right - left) / 4
    for n, c in enumerate(shown):
        x = left + (n % 4) * column
        yy = y + 18 * (n // 4)
        draw.rectangle([x, yy + 3, x + 12, yy + 13], fill=label_colour(c))
        name = names[c]
        while len(name) > 4 and draw.textlength(name, font=small) > column - 22:
            name = name[:-2]
        draw.text((x + 16, yy + 1), name if name == names[c] else name + "…", fill="black", font=small)
    if len(shown) < len(names):
        draw.text((left, y + 18 * math.ceil(len(shown) / 4)),
                  f"{len(names) - len(shown)} more labels not drawn (never on top, lower scores)",
                  fill=(90, 90, 90), font=small)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG", optimize=True)
    return path


def _labels_to_show(scores: np.ndarray, segments, names, max_labels: int) -> list[int]:
    if len(names) <= max_labels:
        return list(range(len(names)))
    on_top = set(int(i) for i in scores.argmax(axis=1)) if len(scores) else set()
    on_top |= {names.index(s.label) for s in segments if s.label is not None}
    peak = scores.max(axis=0) if len(scores) else np.zeros(len(names))
    ranked = sorted(range(len(names)), key=lambda c: (c not in on_top, -peak[c]))
    return sorted(ranked[:max_labels])
