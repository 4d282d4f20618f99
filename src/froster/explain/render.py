"""Pictures of attention maps (Pillow; PyAV for MP4).

The grid: a title, then one row of the frames as the model saw them, then one row per
model: its caption (model, label, probability) on the left, one column per frame, the map
drawn over the frame in the jet colours (blue low, red high). A row's maps sum to 1 over
the clip, and each row is coloured on its own scale, 0 to the row's largest value, so the
frames of one model compare with each other (a frame the model barely uses stays blue).
Small frames (the demo's 32 px) are enlarged to at least `MIN_CELL` pixels, frames with
nearest-neighbour so that their pixels stay visible, maps bilinearly.

The animation (GIF or MP4): one picture per frame, the models side by side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from ..drawing import default_font

MIN_CELL = 128      # smallest cell side, in pixels
OVERLAY_ALPHA = 0.5  # weight of the colours over the frame
CAPTION_WIDTH = 230
GAP = 4
BACKGROUND = (255, 255, 255)


@dataclass
class MapRow:
    """One model's row: caption lines, its frames (T, S, S, 3) uint8 and maps (T, h, w)."""

    caption: Sequence[str]
    frames: torch.Tensor | np.ndarray
    maps: torch.Tensor | np.ndarray


def jet(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> uint8 RGB in the jet colours (dark blue, cyan, yellow, dark red)."""
    x = np.clip(values, 0.0, 1.0)[..., None]
    rgb = np.clip(1.5 - np.abs(4.0 * x - np.array([3.0, 2.0, 1.0])), 0.0, 1.0)
    return (rgb * 255).round().astype(np.uint8)


def cell_size(frame_size: int) -> int:
    return frame_size * max(1, math.ceil(MIN_CELL / frame_size))


def overlays(frames, maps, scale: float | None = None) -> np.ndarray:
    """(T, S, S, 3) uint8 frames and (T, h, w) maps -> (T, C, C, 3) uint8 pictures of side
    C = `cell_size(S)`; colours on the scale 0..`scale` (default: the maps' maximum)."""
    frames = torch.as_tensor(np.asarray(frames))
    maps = torch.as_tensor(np.asarray(maps, dtype=np.float32))
    side = cell_size(frames.shape[1])
    big_frames = frames.permute(0, 3, 1, 2).float()
    big_frames = F.interpolate(big_frames, size=(side, side), mode="nearest").permute(0, 2, 3, 1)
    big_maps = F.interpolate(maps[:, None], size=(side, side), mode="bilinear", align_corners=False)[:, 0]
    top = float(maps.max()) if scale is None else scale
    heat = (big_maps / top).numpy() if top > 0 else np.zeros(big_maps.shape, np.float32)
    mixed = (1 - OVERLAY_ALPHA) * big_frames.numpy() + OVERLAY_ALPHA * jet(heat).astype(np.float32)
    return mixed.round().clip(0, 255).astype(np.uint8)


def enlarge(frames) -> np.ndarray:
    """(T, S, S, 3) uint8 -> (T, C, C, 3), nearest-neighbour."""
    frames = torch.as_tensor(np.asarray(frames)).permute(0, 3, 1, 2).float()
    side = cell_size(frames.shape[-1])
    return F.interpolate(frames, size=(side, side), mode="nearest").permute(0, 2, 3, 1) \
        .round().to(torch.uint8).numpy()


def colour_bar(width: int, height: int) -> Image.Image:
    return Image.fromarray(np.repeat(jet(np.linspace(0, 1, width))[None], height, axis=0))


def draw_grid(rows: Sequence[MapRow], title: str = "", frame_caption: str = "frames") -> Image.Image:
    """The PNG grid: frames on top, one row per model (see the module's docstring)."""
    if not rows:
        raise ValueError("no rows to draw")
    frames_row = enlarge(rows[0].frames)
    count, side = frames_row.shape[0], frames_row.shape[1]
    font, small = default_font(15), default_font(13)
    header, footer = 52, 40
    width = CAPTION_WIDTH + count * (side + GAP)
    height = header + (len(rows) + 1) * (side + GAP) + footer
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((8, 8), title, fill="black", font=font)
    for t in range(count):
        draw.text((CAPTION_WIDTH + t * (side + GAP) + 4, header - 20), f"frame {t + 1}",
                  fill="black", font=small)
    lines_and_cells = [((frame_caption,), frames_row)]
    lines_and_cells += [(row.caption, overlays(row.frames, row.maps)) for row in rows]
    for r, (caption, cells) in enumerate(lines_and_cells):
        y = header + r * (side + GAP)
        for i, line in enumerate(_wrap(caption, draw, small, CAPTION_WIDTH - 16)):
            draw.text((8, y + 6 + 18 * i), line, fill="black", font=small)
        for t in range(count):
            image.paste(Image.fromarray(cells[t]), (CAPTION_WIDTH + t * (side + GAP), y))
    y = height - footer + 10
    image.paste(colour_bar(160, 12), (CAPTION_WIDTH, y + 2))
    draw.text((8, y), "relevance", fill="black", font=small)
    draw.text((CAPTION_WIDTH + 168, y), "0 to the row's maximum (each row's maps sum to 1 "
              "over the clip)", fill="black", font=small)
    return image


def animation(rows: Sequence[MapRow], title: str = "") -> list[Image.Image]:
    """One picture per frame: the frame, then each model's map over it, side by side."""
    frames = enlarge(rows[0].frames)
    cells = [overlays(row.frames, row.maps) for row in rows]
    count, side = frames.shape[0], frames.shape[1]
    font, small = default_font(14), default_font(12)
    header = 44 + 18 * max(len(row.caption) for row in rows)
    width = (len(rows) + 1) * (side + GAP) + GAP
    width += width % 2
    height = header + side + GAP + (header + side + GAP) % 2
    pictures = []
    for t in range(count):
        image = Image.new("RGB", (width, height), BACKGROUND)
        draw = ImageDraw.Draw(image)
        draw.text((GAP, 6), f"{title}  frame {t + 1}/{count}", fill="black", font=font)
        columns = [(("frames",), frames[t])] + [(row.caption, c[t]) for row, c in zip(rows, cells)]
        for k, (caption, cell) in enumerate(columns):
            x = GAP + k * (side + GAP)
            for i, line in enumerate(_wrap(caption, draw, small, side)):
                draw.text((x, 28 + 18 * i), line, fill="black", font=small)
            image.paste(Image.fromarray(cell), (x, header))
        pictures.append(image)
    return pictures


def save_gif(pictures: Sequence[Image.Image], path, fps: float = 2.0) -> Path:
    path = Path(path)
    pictures[0].save(path, format="GIF", save_all=True, append_images=list(pictures[1:]),
                     duration=int(round(1000 / fps)), loop=0)
    return path


def save_mp4(pictures: Sequence[Image.Image], path, fps: float = 2.0) -> Path:
    """H.264 MP4 (yuv420p, plays everywhere) at `fps` pictures per second."""
    import av

    path = Path(path)
    width, height = pictures[0].size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for picture in pictures:
            frame = av.VideoFrame.from_ndarray(np.asarray(picture.convert("RGB")), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _wrap(lines: Sequence[str], draw: ImageDraw.ImageDraw, font, width: int) -> list[str]:
    """Each line broken at spaces to fit `width` pixels."""
    out = []
    for line in lines:
        words, current = str(line).split(" "), ""
        for word in words:
            trial = f"{current} {word}".strip()
            if current and draw.textlength(trial, font=font) > width:
                out.append(current)
                current = word
            else:
                current = trial
        out.append(current)
    return out
