"""Generated videos whose frames say which frame they are (for tests and benchmarks).

Frame ``i`` is filled with one colour that encodes ``i`` in 16 levels per channel,
so the index survives lossy codecs, resizing, cropping and flipping:
``read_frame_index`` recovers it from any part of the frame.
"""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Callable, Sequence

import av
import numpy as np

__all__ = ["index_color", "read_frame_index", "write_video"]


def index_color(i: int) -> tuple[int, int, int]:
    """RGB encoding frame index ``i`` (0 <= i < 4096)."""
    return 8 + 16 * (i % 16), 8 + 16 * (i // 16 % 16), 8 + 16 * (i // 256 % 16)


def read_frame_index(frame) -> int:
    """Index encoded by ``index_color`` in an (H, W, 3) or (3, H, W) uint8 frame."""
    a = np.asarray(frame, dtype=np.float64)
    channel_axis = 0 if a.shape[0] == 3 and a.shape[-1] != 3 else -1
    rgb = a.mean(axis=tuple(d for d in range(a.ndim) if d != channel_axis % a.ndim))
    r, g, b = (int(np.clip(v // 16, 0, 15)) for v in rgb)
    return r + 16 * g + 256 * b


def _index_frame(i: int, width: int, height: int) -> np.ndarray:
    return np.broadcast_to(np.array(index_color(i), np.uint8), (height, width, 3)).copy()


def write_video(
    path: str | os.PathLike,
    num_frames: int,
    width: int = 64,
    height: int = 48,
    fps: float = 30,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict | None = None,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    rotation: float | None = None,
    frame: Callable[[int, int, int], np.ndarray] = _index_frame,
    container_options: dict | None = None,
) -> str:
    """Write ``num_frames`` frames ``frame(i, width, height)`` and return the path.

    ``pts`` (in ``time_base`` units) gives variable frame rate timestamps;
    ``rotation`` writes a display matrix (degrees counter-clockwise).
    """
    path = os.fspath(path)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(path, "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=rate, options=options or {})
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if time_base is not None:
            stream.codec_context.time_base = stream.time_base = time_base
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i in range(num_frames):
            image = av.VideoFrame.from_ndarray(frame(i, width, height), format="rgb24")
            if pts is not None:
                image.pts = int(pts[i])
                image.time_base = time_base or stream.time_base
            for packet in stream.encode(image):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
