"""Frames of a video file or a live stream, decoded once, in order, as they arrive.

A source is a file path, a URL (``rtsp://``, ``http://``, ... anything FFmpeg opens), a
capture device (``/dev/video0``, opened with v4l2 unless ``input_format`` says otherwise),
``-`` for a pipe on stdin, or a binary file object. Frames come out in presentation order
with their time in seconds since the first frame, taken from their timestamps (so a
variable frame rate is followed exactly); nothing is ever seeked.

Damage is handled as a viewer would: a packet the decoder rejects is skipped and
counted (``corrupt_packets``) and decoding goes on; a stream that stops delivering data
with an error (a dropped connection, a read error), or a file that ends well before its
header says, ends the frames and leaves the reason in ``error``. A source that cannot be
opened at all raises `VideoDecodeError` naming it.
"""

from __future__ import annotations

import heapq
import os
import stat
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import av
import numpy as np

from . import pipe
from .decode import VideoDecodeError, error_text, rotate_frame

__all__ = ["StreamFrame", "FrameStream", "is_live_source"]

#: seconds to wait for a network source to open or to deliver data before giving up
NETWORK_TIMEOUT_S = 10.0
#: frames held back to sort decode-order timestamps into presentation order
REORDER = 4


@dataclass
class StreamFrame:
    index: int             # frames of the stream before this one
    time: Fraction         # seconds since the first frame, from the timestamp
    frame: av.VideoFrame   # as decoded (not rotated)


def _is_url(source: str) -> bool:
    return "://" in source or source.startswith(("pipe:", "rtmp:", "udp:"))


def _is_device(source: str) -> bool:
    return source.startswith("/dev/")


def is_live_source(source) -> bool:
    """A source that delivers frames as they happen (pipe, URL, device), not a stored file."""
    if not isinstance(source, (str, os.PathLike)):
        return True  # a file object: read as a stream
    source = os.fspath(source)
    if source == "-" or _is_url(source) or _is_device(source):
        return True
    try:
        return not stat.S_ISREG(os.stat(source).st_mode)  # a named pipe, a socket
    except OSError:
        return False


def _name(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return "stdin" if os.fspath(source) == "-" else os.fspath(source)
    return getattr(source, "name", None) or type(source).__name__


class FrameStream:
    """Open `source` now (errors raise `VideoDecodeError`), iterate `StreamFrame`s once.

    ``input_format`` is FFmpeg's demuxer name (``-f``: v4l2, mpegts, ...), ``options``
    FFmpeg's input options (e.g. ``{"rtsp_transport": "tcp", "video_size": "640x480"}``).
    """

    def __init__(self, source, input_format: str | None = None, options: dict | None = None,
                 timeout: float | None = NETWORK_TIMEOUT_S, threads: int = 0,
                 apply_rotation: bool = True):
        self.name = _name(source)
        self.live = is_live_source(source)
        self.apply_rotation = apply_rotation
        self.decoded = 0           # frames that came out of the decoder (each decoded once)
        self.frames = 0            # of which placed in time and handed out
        self.corrupt_packets = 0   # packets the decoder rejected (skipped)
        self.dropped = 0           # frames without a usable timestamp order (skipped)
        self.error: str | None = None  # why the stream ended early, if it did
        self.end_time: Fraction | None = None  # time just after the last frame
        self._iterated = False
        target, input_format = self._target(source, input_format)
        self._reader = target if isinstance(target, pipe.PipeReader) else None
        open_options = {"options": dict(options or {}), "metadata_errors": "ignore"}
        if input_format:
            open_options["format"] = input_format
        if isinstance(target, str) and _is_url(target) and not target.startswith("pipe:") and timeout:
            open_options["timeout"] = timeout
        try:
            self.container = av.open(target, "r", **open_options)
        except Exception as e:  # PyAV raises many error types; all mean "cannot be read"
            if self._reader is not None:
                self._reader.restore_handler()
                if self._reader.interrupted:
                    raise KeyboardInterrupt from None
            raise VideoDecodeError(f"{self.name}: cannot open ({error_text(e)})") from None
        if not self.container.streams.video:
            self.close()
            raise VideoDecodeError(f"{self.name}: no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.stream.thread_count = threads
        self.time_base = self.stream.time_base or Fraction(1, 1000)
        rate = self.stream.average_rate or self.stream.guessed_rate or self.stream.base_rate
        self.fps = float(rate) if rate and float(rate) > 0 else None
        self.expected_frames = self.stream.frames or None  # what the header says, if anything
        if self.stream.duration:
            self.duration = float(self.stream.duration * self.time_base)
        elif self.container.duration:
            self.duration = self.container.duration / av.time_base
        else:
            self.duration = None
        self._frames = self._decode()
        try:  # decode the first frame now: it validates the stream and carries the rotation
            self._first = next(self._frames, None)
        except KeyboardInterrupt:
            self.close()
            raise
        if self._first is None:
            why = f" ({self.error})" if self.error else ""
            self.close()
            raise VideoDecodeError(f"{self.name}: no decodable video frames{why}")
        self.rotation = (self._first.rotation or 0) if apply_rotation else 0
        width, height = self._first.width, self._first.height
        if int(round(self.rotation / 90.0)) % 2:
            width, height = height, width
        self.width, self.height = width, height  # as displayed

    def _target(self, source, input_format):
        if not isinstance(source, (str, os.PathLike)):
            if not hasattr(source, "read"):
                raise VideoDecodeError(f"{self.name}: not a path, URL or binary file object")
            return source, input_format
        source = os.fspath(source)
        if source == "-":
            return pipe.PipeReader(0), input_format
        if _is_url(source):
            return source, input_format
        if _is_device(source):
            if not os.path.exists(source):
                raise VideoDecodeError(f"{source}: no such capture device")
            return source, input_format or ("v4l2" if source.startswith("/dev/video") else None)
        if not os.path.exists(source):
            raise VideoDecodeError(f"{source}: file not found")
        if os.path.isdir(source):
            raise VideoDecodeError(f"{source}: is a directory, not a video")
        if not self.live and os.path.getsize(source) == 0:
            raise VideoDecodeError(f"{source}: empty file (0 bytes)")
        return source, input_format

    # -- decoding ------------------------------------------------------------------------
    def _decode(self) -> Iterator[av.VideoFrame]:
        """Every frame once, in order; corrupt packets skipped; a broken stream stops."""
        packets = self.container.demux(self.stream)
        while True:
            try:
                packet = next(packets)
            except (StopIteration, av.error.EOFError, EOFError):
                if self._reader is not None and self._reader.interrupted:
                    raise KeyboardInterrupt from None  # Ctrl-C while waiting for data
                return
            except Exception as e:  # the stream itself failed: keep what we have
                self.error = f"the stream broke: {error_text(e)}"
                return
            try:
                frames = packet.decode()
            except (av.error.EOFError, EOFError):
                return
            except av.error.FFmpegError:
                self.corrupt_packets += 1
                continue
            self.decoded += len(frames)
            yield from frames

    def __iter__(self) -> Iterator[StreamFrame]:
        """Frames in the decoder's (presentation) order, each with the next of the
        timestamps seen so far in increasing order, delayed by `REORDER` frames: some
        containers (AVI with B-frames) attach decode-order timestamps to presentation-order
        frames (1, 2, 4, 3, 5, 7, 6, ...); sorting them back gives each frame its own."""
        if self._iterated:
            raise RuntimeError("a FrameStream is read once")
        self._iterated = True
        step = Fraction(1) / Fraction(self.fps).limit_denominator(1001) if self.fps else Fraction(1, 30)
        stamps: list[int] = []       # a min-heap of timestamps not yet given out
        waiting: deque = deque()     # frames waiting for their timestamp
        origin = None                # the first frame's timestamp: time 0
        previous: Fraction | None = None
        last_duration = step
        frame = self._first
        while frame is not None or waiting:
            if frame is not None:
                if frame.pts is not None:
                    heapq.heappush(stamps, frame.pts)
                waiting.append(frame)
                frame = next(self._frames, None)
                if frame is not None and len(waiting) <= REORDER:
                    continue
            out = waiting.popleft()
            pts = heapq.heappop(stamps) if stamps else None
            if pts is not None:
                origin = pts if origin is None else origin
                time = Fraction(pts - origin) * self.time_base
            else:  # no timestamp: one nominal frame after the previous one
                time = Fraction(0) if previous is None else previous + step
            if previous is not None and time <= previous:
                self.dropped += 1  # cannot be placed after the previous frame
                continue
            if out.duration:
                last_duration = Fraction(out.duration) * self.time_base
            yield StreamFrame(self.frames, time, out)
            self.frames += 1
            previous = time
            self.end_time = time + last_duration
        self._check_truncated()

    def _check_truncated(self) -> None:
        """A stored file that stops well before its header's frame count or duration."""
        if self.error is not None or self.live or self.end_time is None:
            return
        seen = self.decoded + self.corrupt_packets
        if self.expected_frames and seen < self.expected_frames - max(3, 0.05 * self.expected_frames):
            self.error = (f"truncated or corrupt: decoding stopped after {self.frames} frames "
                          f"({float(self.end_time):.2f} s) but the header says "
                          f"{self.expected_frames} frames")
        elif not self.expected_frames and self.duration and \
                float(self.end_time) < 0.95 * self.duration - 1.0:
            self.error = (f"truncated or corrupt: decoding stopped at {float(self.end_time):.2f} s "
                          f"but the header says {self.duration:.2f} s")

    def to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        """uint8 (H, W, 3) as displayed (rotation applied unless turned off)."""
        return rotate_frame(frame.to_ndarray(format="rgb24", threads=1), self.rotation)

    def close(self) -> None:
        if getattr(self, "_reader", None) is not None:
            self._reader.restore_handler()
        if getattr(self, "container", None) is not None:
            self.container.close()
            self.container = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
