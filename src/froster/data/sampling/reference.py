"""``sampling: reference``: the frames the reference's PyAV decoder gives.

The reference (slowfast/datasets/decoder.py: pyav_decode, pyav_decode_stream,
get_start_end_idx, temporal_sampling) has two paths, chosen by whether the video
stream reports a duration (method.md, "Frame sampling as the reference runs it").
T = frames per clip, r = sampling rate, F = target fps, fps = the stream's average
rate, N = the stream's frame count, V = test views.

Path A, a duration (MP4, AVI: Kinetics, UCF101, HMDB51): a window of
W = max(1, ceil(r (T - 1) / F * fps)) frames starts at s = uniform(0, delta) in
training and at delta * i / V for test view i (delta = max(N - W, 0); no offset rule
on this path); it is decoded by timestamps (start_pts = int(s * duration / N),
end_pts = int((s + W - 1) * duration / N); see `timestamps.decode_window`), and of its
D frames, in pts order, the clip takes linspace(0, S - 1, T) clamped to [0, D - 1] and
truncated, S = max(1, r T / F * fps).

Path B, no duration (MKV, WebM: SSv2): every frame with pts >= 0, in pts order (D
frames); starts by the offset rule (one view: floor(delta / 2); V views:
i * floor(delta / (V - 1)); training: uniform(0, delta)), delta = max(D - S, 0);
indices linspace(s, s + S - 1, T), clamped and truncated.

The index arithmetic is the reference's: Python floats where it uses floats, int()
truncation, float32 torch.linspace. Only the sampled frames are converted to RGB (the
reference converts every decoded frame: same pixels). Display rotation is applied only
when asked (the reference ignores it).

Where the reference fails or misbehaves, this takes another way and says why in
``Sampled.fallback`` (the run's data report counts such videos):

- the header has no average frame rate, no frame count, or a duration <= 0 (the
  reference calls float() on the rate, divides by the count, or puts every window at
  pts 0): path B;
- timestamps that start more than half a window after 0 (its windows are measured
  from pts 0, so its first windows would be short or empty): path B. Smaller offsets
  stay as the reference has them: AVI pts that start at 1, the MP4 B-frame delay of a
  frame or two;
- a frame without a timestamp (the reference fails comparing None): path B, in the
  decoder's order;
- a window that holds fewer than half the frames it spans, min(W, N) (a header that
  overstates the frame count or duration, a gap in the timestamps; the reference fails
  on an empty window and repeats the last frame of a short one): path B;
- an FFmpeg error inside a window (the reference drops the video): path B, over the
  frames decoded before the error;
- a seek that fails or lands after the window start (a broken index): the window is
  decoded from the start of the file, which gives the frames the reference asks for;
- in path B, frames with negative pts are dropped as the reference drops them, unless
  none would be left (then all are used); an FFmpeg error ends the video early (the
  reference drops it): the frames before it are used, unless the header promised more
  than 5 % (at least 3) frames more, which is an error (VideoDecodeError), as with
  ``sampling: uniform``.
"""

from __future__ import annotations

import math
import random
from typing import Callable

import torch

from ..decode import VideoDecodeError
from ..views import ViewSpec
from .sampled import Sampled
from .timestamps import NoTimestamps, decode_windows, decoding_order, frames_in_order

__all__ = ["window_size", "clip_span", "temporal_positions", "window_pts", "view_starts",
           "offset_starts", "train_clip", "test_views"]


class _Fallback(Exception):
    """Path A cannot be followed for this video; the message says why."""


# -- the reference's arithmetic ------------------------------------------------------
def window_size(fps: float, spec: ViewSpec) -> float:
    """W: frames path A decodes, max(1, ceil(r * (T - 1) / F * fps))."""
    return max(1.0, float(math.ceil(spec.sampling_rate * (spec.num_frames - 1)
                                    / spec.target_fps * fps)))


def clip_span(fps: float, spec: ViewSpec) -> float:
    """S: the span the T samples are spread over, max(1, r * T / F * fps)."""
    return max(1.0, spec.sampling_rate * spec.num_frames / spec.target_fps * fps)


def temporal_positions(start: float, end: float, num_frames: int, num_decoded: int) -> list[int]:
    """temporal_sampling: linspace(start, end, T) in float32, clamped to the decoded
    frames, truncated by .long()."""
    index = torch.linspace(start, end, num_frames)
    return torch.clamp(index, 0, num_decoded - 1).long().tolist()


def window_pts(start: float, size: float, duration: int, num_frames: int) -> tuple[int, int]:
    """(start_pts, end_pts) of the window of ``size`` frames at frame ``start``."""
    timebase = duration / num_frames
    end = start + size - 1
    return int(start * timebase), int(end * timebase)


def view_starts(delta: float, num_views: int) -> list[float]:
    """Path A's test starts: delta * i / V."""
    return [delta * i / num_views for i in range(num_views)]


def offset_starts(delta: float, num_views: int) -> list[float]:
    """Path B's test starts, the offset rule (USE_OFFSET_SAMPLING)."""
    if num_views == 1:
        return [math.floor(delta / 2)]
    return [i * math.floor(delta / (num_views - 1)) for i in range(num_views)]


# -- the sampler ---------------------------------------------------------------------
Starts = Callable[[float], list[float]]


def train_clip(video, spec: ViewSpec, rng: random.Random, start: float | None = None) -> Sampled:
    """One training clip of an open video (froster.data.decode): a start drawn with
    ``rng.uniform(0, delta)``, or ``start`` (in the path's frame units) when given."""
    def starts(delta: float) -> list[float]:
        return [rng.uniform(0, delta) if start is None else start]

    return _sample(video, spec, starts, starts)


def test_views(video, spec: ViewSpec) -> Sampled:
    """The ``spec.num_views`` test views of an open video, one after another."""
    return _sample(video, spec, lambda delta: view_starts(delta, spec.num_views),
                   lambda delta: offset_starts(delta, spec.num_views))


test_views.__test__ = False  # a library function, not a test for pytest to collect


def _sample(video, spec: ViewSpec, starts_a: Starts, starts_b: Starts) -> Sampled:
    if video.stream.duration is None:
        return _path_b(video, spec, starts_b, None)
    try:
        return _path_a(video, spec, starts_a)
    except _Fallback as why:
        return _path_b(video, spec, starts_b, str(why))


def _path_a(video, spec: ViewSpec, starts: Starts) -> Sampled:
    stream = video.stream
    if not stream.average_rate:
        raise _Fallback("no average frame rate in the header")
    if stream.frames <= 0:
        raise _Fallback("the header gives a duration but no frame count")
    if stream.duration <= 0:
        raise _Fallback(f"the header's duration is {stream.duration}")
    if video.first_pts is None:
        raise _Fallback("frames without timestamps")
    fps, count, duration = float(stream.average_rate), stream.frames, stream.duration
    size, span = window_size(fps, spec), clip_span(fps, spec)
    if video.first_pts > duration / count * size / 2:
        raise _Fallback(f"timestamps start at pts {video.first_pts}, more than half a window "
                        "after 0")
    sampled = set(torch.linspace(0.0, span - 1, spec.num_frames).long().tolist())
    bounds = [window_pts(start, size, duration, count) for start in starts(max(count - size, 0))]
    try:
        windows = decode_windows(video, bounds, sampled)
    except NoTimestamps:
        raise _Fallback("frames without timestamps") from None
    clips, note = [], None
    for (start_pts, end_pts), window in zip(bounds, windows):
        if window.error:
            raise _Fallback(f"FFmpeg error inside the window at pts {start_pts}..{end_pts}: "
                            f"{window.error}")
        if window.inside < min(size, count) / 2:
            raise _Fallback(f"the window at pts {start_pts}..{end_pts} holds {window.inside} "
                            f"frames of {min(size, count):g} (the header says {count} frames, "
                            f"duration {duration})")
        note = note or window.restarted
        positions = temporal_positions(0.0, span - 1, spec.num_frames, len(window.pts))
        clips.append(video.to_rgb([window.frame_at(p) for p in positions]))
    return Sampled(torch.cat(clips), note)


def _path_b(video, spec: ViewSpec, starts: Starts, reason: str | None) -> Sampled:
    stream = video.stream
    fps = float(stream.average_rate) if stream.average_rate else video.fps
    if not stream.average_rate:
        reason = reason or "no average frame rate in the header"
    order = decoding_order(video)
    if not order:
        why = f" ({video.error})" if video.error else ""
        raise VideoDecodeError(f"{video.path}: no decodable video frames{why}")
    if video.error:
        promised = stream.frames
        if promised and len(order) < promised - max(3, int(0.05 * promised)):
            raise VideoDecodeError(f"{video.path}: truncated or corrupt: decoding stopped after "
                                   f"{len(order)} of the {promised} frames the header gives "
                                   f"(FFmpeg: {video.error})")
        reason = reason or f"FFmpeg error after {len(order)} frames: {video.error}"
    if any(pts is None for pts in order):
        reason = reason or "frames without timestamps"
        keys = list(range(len(order)))  # each frame is its own place, in decoding order
    else:
        keys = order
    last_at = {key: i for i, key in enumerate(keys) if key >= 0}  # a repeated pts: the last wins
    if not last_at:
        reason = reason or "every timestamp is negative"
        last_at = {key: i for i, key in enumerate(keys)}
    ordered = sorted(last_at)
    span = clip_span(fps, spec)
    clips = [temporal_positions(s, s + span - 1, spec.num_frames, len(ordered))
             for s in starts(max(len(ordered) - span, 0))]
    wanted = {last_at[ordered[p]] for clip in clips for p in clip}
    frames = frames_in_order(video, wanted, order)
    return Sampled(torch.cat([video.to_rgb([frames[last_at[ordered[p]]] for p in clip])
                              for clip in clips]), reason)
