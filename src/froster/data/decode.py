"""Decoding selected frames with PyAV (any container and codec FFmpeg reads).

Frame ``i`` is the i-th frame in presentation order, counted from the start of the
stream. Reading from the start counts frames exactly (AVI and GIF timestamps are not
always trustworthy); a clip deep in a long video is reached by seeking to the last
keyframe before it, and the position after the seek is read from the frame's
timestamp (exact for constant frame rate, close for variable frame rate).
Rotation metadata (display matrix) is applied by default, so frames come out as a
player shows them; ``apply_rotation=False`` gives the frames as stored, as the
reference decoder does (training and evaluation default to that, see Config).

The reference sampler (froster.data.sampling.reference) reads frames by timestamp
instead: `_Video.decode_from` gives the decoder's frames after a keyframe seek.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Iterator, Sequence

import av
import numpy as np
import torch

from ..errors import FrosterError

__all__ = ["VideoDecodeError", "VideoInfo", "read_video_info", "decode_frames", "read_clip",
           "open_video"]

# Without a keyframe index, seek only if the clip starts this many seconds ahead.
_SEEK_WITHOUT_INDEX_S = 8.0


class VideoDecodeError(FrosterError):
    """A video could not be read; the message names the path and the problem."""


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    fps: float
    width: int  # after rotation when it is applied, as displayed
    height: int
    duration: float  # seconds


def rotate_frame(frame: np.ndarray, degrees: float) -> np.ndarray:
    """Apply a display-matrix rotation (degrees counter-clockwise, as FFmpeg reports it)."""
    k = int(round(degrees / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(frame, k)) if k else frame


class _Video:
    """One open video: stream facts plus a frame cursor that can seek."""

    def __init__(self, path: str, threads: int = 1, apply_rotation: bool = True):
        self.path = path
        self.threads = threads
        if not os.path.exists(path):
            raise VideoDecodeError(f"{path}: file not found")
        if os.path.isdir(path):
            raise VideoDecodeError(f"{path}: is a directory, not a video")
        if os.path.getsize(path) == 0:
            raise VideoDecodeError(f"{path}: empty file (0 bytes)")
        self.container = None
        self._open_container()
        stream = self.stream
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or float(rate) <= 0 or not stream.time_base:
            self.close()
            raise VideoDecodeError(f"{path}: unknown frame rate or time base")
        self.fps = float(rate)
        self.time_base = float(stream.time_base)
        self.start = stream.start_time or 0
        self.error: str | None = None  # FFmpeg error that ended decoding early, if any
        self.decoded = 0  # frames decoded so far (seeking keeps this small)
        self._keyframe_list: list[tuple[int, int, bool]] | None = None
        # Decode the first frame now: it validates the stream and carries the rotation.
        self.first = self.last = self._restart(None)
        if self.first is None:
            self.close()
            why = f" ({self.error})" if self.error else ""
            raise VideoDecodeError(f"{path}: no decodable video frames{why}")
        self.first_pts = self.first[1].pts
        self.rotation = (self.first[1].rotation or 0) if apply_rotation else 0
        self.duration = self._duration()
        self.num_frames = stream.frames or self._count_frames()

    def _open_container(self) -> None:
        if self.container is not None:
            self.container.close()
        try:
            self.container = av.open(self.path, metadata_errors="ignore")
        except Exception as e:  # PyAV raises many error types; all mean "unreadable"
            raise VideoDecodeError(f"{self.path}: not a readable video ({error_text(e)})") from None
        if not self.container.streams.video:
            self.close()
            raise VideoDecodeError(f"{self.path}: no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_count = self.threads
        self._fresh = True

    def _duration(self) -> float:
        if self.stream.duration:
            return float(self.stream.duration * self.time_base)
        if self.container.duration:
            return self.container.duration / av.time_base
        return 0.0

    def _count_frames(self) -> int:
        """Frame count for containers that do not store it (MKV, WebM), from a packet scan.

        The scan also gives exact frame numbers of the keyframes for seeking, and the
        true average rate of variable frame rate files (their nominal rate can be far
        from frames / duration).
        """
        try:
            with av.open(self.path, metadata_errors="ignore") as container:
                packets = [(p.pts, p.is_keyframe) for p in container.demux(video=0) if p.size]
        except av.error.FFmpegError:
            packets = []
        if not packets:
            return max(1, int(round(self.duration * self.fps)))
        if all(pts is not None for pts, _ in packets):
            number = {pts: i for i, pts in enumerate(sorted(pts for pts, _ in packets))}
            self._keyframe_list = [(number[pts], pts, True) for pts, key in packets if key]
        count = len(packets)
        if self.duration > 0 and abs(count / self.duration - self.fps) > 0.1 * self.fps:
            self.fps = count / self.duration
        return count

    def info(self) -> VideoInfo:
        w, h = self.first[1].width, self.first[1].height
        if int(round(self.rotation / 90.0)) % 2:
            w, h = h, w
        return VideoInfo(self.num_frames, self.fps, w, h, self.duration or self.num_frames / self.fps)

    def close(self) -> None:
        """Free FFmpeg resources now, and break the cursor's reference cycle.

        Garbage left for the cycle collector can be collected in a forked DataLoader
        worker, where freeing an FFmpeg scaler waits forever for the parent's threads.
        """
        if getattr(self, "_cursor", None) is not None:
            self._cursor.close()
        self._cursor = self.first = self.last = None
        if self.container is not None:
            self.container.close()
            self.container = None

    # -- the frame cursor -------------------------------------------------------
    def _frames(self, seek: tuple[int, int, bool] | None) -> Iterator[tuple[int, av.VideoFrame]]:
        """Yield (index, frame) from the start, or from a seek point (index, pts, exact).

        After a seek the first frame's number is looked up by its timestamp among the
        keyframes (exact), or estimated from its time when the container has no index.
        If an exact lookup fails the generator stops, and the caller decodes from the start.
        """
        if seek is not None:
            self.container.seek(seek[1], stream=self.stream, backward=True)
        index = None
        for frame in self.container.decode(self.stream):
            if index is not None:
                index += 1
            elif seek is None:
                index = 0
            elif seek[2]:
                index = {pts: i for i, pts, _ in self._keyframes()}.get(frame.pts)
                if index is None:
                    return
            else:
                index = self._time_to_index(frame.pts) if frame.pts is not None else seek[0]
            yield index, frame

    def next_frame(self) -> tuple[int, av.VideoFrame] | None:
        """The next (index, frame), or None at the end of the stream or on a decode error."""
        try:
            frame = next(self._cursor)
        except (StopIteration, av.error.EOFError):
            return None
        except av.error.FFmpegError as e:  # corrupt data: treat as the end, say why later
            self.error = error_text(e)
            return None
        self.last = frame
        self.decoded += 1
        return frame

    def _restart(self, seek: tuple[int, int, bool] | None) -> tuple[int, av.VideoFrame] | None:
        """Decode again from the start (``None``) or from a seek point; return the first frame."""
        if seek is None and not self._fresh:
            self._open_container()  # reopening is the one rewind every format supports
        self._fresh = False
        self._cursor = self._frames(seek)
        return self.next_frame()

    def _time_to_index(self, pts: int) -> int:
        return int(round((pts - self.start) * self.time_base * self.fps))

    def _keyframes(self) -> list[tuple[int, int, bool]]:
        """Seek points (frame index, timestamp, index is exact) from the container's index.

        MP4 and AVI index every frame, so a keyframe's position in the index is its
        frame number, even at a variable frame rate (MKV/WebM: see _count_frames).
        Otherwise the frame number is estimated from the keyframe's time.
        """
        if self._keyframe_list is None:
            entries = list(self.stream.index_entries)
            exact = 1 < len(entries) == self.stream.frames and self.first[1].pts is not None
            if exact:  # index times are decode times; shift them to presentation times
                shift = self.first[1].pts - entries[0].timestamp
                self._keyframe_list = [
                    (p, e.timestamp + shift, True) for p, e in enumerate(entries) if e.is_keyframe
                ]
            else:
                self._keyframe_list = [
                    (self._time_to_index(e.timestamp), e.timestamp, False)
                    for e in entries if e.is_keyframe
                ]
        return self._keyframe_list

    def seek_point(self, position: int, target: int) -> tuple[int, int, bool] | None:
        """Where to seek to get from frame ``position`` to ``target``; None: decode on."""
        if target - position < 2:
            return None
        keyframes = self._keyframes()
        if len(keyframes) > 1:  # seek only if a keyframe lies in between
            ahead = [k for k in keyframes if position + 1 < k[0] <= target]
            return ahead[-1] if ahead else None
        if (target - position) / self.fps > _SEEK_WITHOUT_INDEX_S:  # no usable index
            return target, self.start + int(target / self.fps / self.time_base), False
        return None

    def read(self, indices: Sequence[int]) -> torch.Tensor:
        """Frames at ``indices`` (any order, repeats allowed) as uint8 (N, H, W, 3)."""
        wanted = sorted(set(int(i) for i in indices))
        if not wanted:
            raise ValueError("no frame indices requested")
        if wanted[0] < 0:
            raise ValueError(f"negative frame index {wanted[0]}")
        got: dict[int, np.ndarray] = {}
        current = self.last if self._cursor is not None else self._restart(None)
        for target in wanted:
            if current[0] > target:  # behind us (only after a seek that landed late)
                current = self._restart(None)
            elif (seek := self.seek_point(current[0], target)) is not None:
                current = self._restart(seek)
                if current is None or current[0] > target:
                    current = self._restart(None)
            while current is not None and current[0] < target:
                current = self.next_frame()
            if current is None:  # the stream ended before the target
                break
            got[target] = self._to_array(current[1])
        missing = [t for t in wanted if t not in got]
        if missing:
            self._check_missing(missing[-1])
            last = self._to_array(self.last[1])  # header counts can be a few frames off
            for t in missing:
                got[t] = last
        return torch.from_numpy(np.stack([got[int(i)] for i in indices]))

    def _check_missing(self, wanted: int) -> None:
        end = self.last[0]
        if wanted - end <= max(3, int(0.05 * self.num_frames)):
            return
        if wanted >= self.num_frames and end + 1 >= self.num_frames:
            raise VideoDecodeError(f"{self.path}: frame {wanted} requested but the video has {end + 1} frames")
        why = f"; FFmpeg: {self.error}" if self.error else ""
        raise VideoDecodeError(
            f"{self.path}: truncated or corrupt: decoding stopped at frame {end} but frame "
            f"{wanted} was requested (the header says {self.num_frames} frames){why}"
        )

    def _to_array(self, frame: av.VideoFrame) -> np.ndarray:
        # one scaler thread: workers are the parallelism (and no thread pool to inherit on fork)
        return rotate_frame(frame.to_ndarray(format="rgb24", threads=1), self.rotation)

    def to_rgb(self, frames: Sequence[av.VideoFrame]) -> torch.Tensor:
        """Decoded frames as uint8 (N, H, W, 3), rotated when rotation is applied.

        The same pixels as the reference's ``frame.to_rgb().to_ndarray()``."""
        return torch.from_numpy(np.stack([self._to_array(f) for f in frames]))

    # -- frames by timestamp (the reference sampler) -------------------------------
    def decode_from(self, seek_pts: int | None) -> Iterator[av.VideoFrame]:
        """The decoder's frames, in its output order, after ``container.seek(seek_pts,
        backward=True)`` to a keyframe (``seek_pts`` in the stream's time base, as the
        reference seeks), or from the start of the file (None: reopened).

        A failed seek raises VideoDecodeError here, before any frame. An FFmpeg error
        in the middle of the stream ends the frames; ``self.error`` then says why.
        """
        if self._cursor is not None:
            self._cursor.close()
            self._cursor = None  # the frame-index cursor is no longer where it was
        self.error = None
        if seek_pts is None:
            self._open_container()
        else:
            try:
                self.container.seek(seek_pts, backward=True, any_frame=False, stream=self.stream)
            except Exception as e:  # noqa: BLE001 - any seek failure has the same remedy
                raise VideoDecodeError(f"{self.path}: seek to {seek_pts} failed ({error_text(e)})") from None
        self._fresh = False
        return self._decoded()

    def seek_landing(self, seek_pts: int) -> tuple | None:
        """Where `decode_from(seek_pts)` starts: the first packet after the seek, as
        (pts, dts, byte position); None if the seek fails or lands at the end."""
        if self._cursor is not None:
            self._cursor.close()
            self._cursor = None
        self._fresh = False
        try:
            self.container.seek(seek_pts, backward=True, any_frame=False, stream=self.stream)
            for packet in self.container.demux(self.stream):
                return None if packet.size == 0 else (packet.pts, packet.dts, packet.pos)
        except Exception:  # noqa: BLE001 - the caller decodes from this seek and sees why
            return None
        return None

    def _decoded(self) -> Iterator[av.VideoFrame]:
        try:
            yield from self.container.decode(self.stream)
        except av.error.EOFError:
            return
        except av.error.FFmpegError as e:
            self.error = error_text(e)


def error_text(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.replace("\n", " ")[:300]


def _open(path: str | os.PathLike, threads: int = 1, apply_rotation: bool = True) -> _Video:
    return _Video(os.fspath(path), threads=threads, apply_rotation=apply_rotation)


@contextlib.contextmanager
def open_video(path: str | os.PathLike, threads: int = 1, apply_rotation: bool = True):
    """An open video (closed on exit). Errors other than VideoDecodeError and ValueError
    raised inside are re-raised as VideoDecodeError naming the file."""
    video = _open(path, threads=threads, apply_rotation=apply_rotation)
    try:
        yield video
    except (VideoDecodeError, ValueError):
        raise
    except Exception as e:
        raise VideoDecodeError(f"{video.path}: decoding failed ({error_text(e)})") from None
    finally:
        video.close()


def read_video_info(path: str | os.PathLike, apply_rotation: bool = True) -> VideoInfo:
    """Frame count, frame rate and displayed size. Decodes one frame to validate the file."""
    with open_video(path, apply_rotation=apply_rotation) as video:
        return video.info()


def read_clip(path, choose_indices, threads: int = 1,
              apply_rotation: bool = True) -> tuple[torch.Tensor, VideoInfo, list[int]]:
    """Open once: ``indices = choose_indices(info)``, then decode them.

    Returns (frames uint8 (N, H, W, 3), info, indices). Every failure, including
    FFmpeg errors in the middle of a stream, is raised as VideoDecodeError.
    """
    with open_video(path, threads=threads, apply_rotation=apply_rotation) as video:
        info = video.info()
        indices = list(choose_indices(info))
        return video.read(indices), info, indices


def decode_frames(path: str | os.PathLike, indices: Sequence[int], threads: int = 1,
                  apply_rotation: bool = True) -> torch.Tensor:
    """Exactly the frames at ``indices`` (repeats allowed) as uint8 (len(indices), H, W, 3)."""
    frames, _, _ = read_clip(path, lambda info: indices, threads=threads,
                             apply_rotation=apply_rotation)
    return frames
