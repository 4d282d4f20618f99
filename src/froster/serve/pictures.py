"""Small pictures the page shows: the frames the model saw, a library video's thumbnail."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from ..data.decode import decode_frames, read_video_info
from ..explain.render import enlarge

GAP = 2


def frame_sheet(views: torch.Tensor, quality: int = 88) -> bytes:
    """JPEG of uint8 test views (V, T, 3, S, S): one row per view, one column per frame, as
    the model saw them (resized, centre-cropped; small frames enlarged without smoothing)."""
    rows = [enlarge(view.permute(0, 2, 3, 1).contiguous()) for view in views]
    count, side = rows[0].shape[0], rows[0].shape[1]
    sheet = np.full((len(rows) * (side + GAP) - GAP, count * (side + GAP) - GAP, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for t in range(count):
            y, x = r * (side + GAP), t * (side + GAP)
            sheet[y:y + side, x:x + side] = row[t]
    buffer = io.BytesIO()
    Image.fromarray(sheet).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def thumbnail(path, width: int = 320, quality: int = 85) -> bytes:
    """JPEG of the frame a third of the way into the video (displayed orientation)."""
    info = read_video_info(path)
    frame = decode_frames(path, [max(0, info.num_frames // 3 - 1)])[0].numpy()
    image = Image.fromarray(frame)
    height = max(1, round(image.height * width / image.width))
    buffer = io.BytesIO()
    image.resize((width, height), Image.BILINEAR).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
