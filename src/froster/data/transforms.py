"""Spatial transforms on uint8 clips, as in the reference recipe.

Training: random short side in [224, 256] (rounded), random 224 crop at an offset in
[0, side - 224) (numpy's exclusive bound, as the reference), horizontal flip.
Testing: short side 224 and a centre crop (or 3 crops along the long side).
Workers keep uint8 (4x less to copy between processes); ``normalize`` runs on the
consumer side, on whatever device the batch is on.
"""

from __future__ import annotations

import math
import random
from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = ["short_side_resize", "train_transform", "test_transform", "normalize"]


def _to_tchw(frames: torch.Tensor) -> torch.Tensor:
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
    return frames.permute(0, 3, 1, 2)  # a channels-last view, no copy


def short_side_resize(video: torch.Tensor, short: int) -> torch.Tensor:
    """Bilinear resize of uint8 (T, 3, H, W) so that min(H, W) == short, keeping the aspect.

    As the reference's random_short_side_scale_jitter: the long side is
    floor(long / short_side * short), and a video whose short side already is ``short``
    is left as it is (the formula can give the long side one pixel less)."""
    h, w = video.shape[-2:]
    if min(h, w) == short:
        return video
    if h <= w:
        size = (short, int(math.floor(w / h * short)))
    else:
        size = (int(math.floor(h / w * short)), short)
    # uint8 channels-last bilinear is the fast path in torch on CPU.
    video = video.contiguous(memory_format=torch.channels_last)
    return F.interpolate(video, size=size, mode="bilinear", align_corners=False, antialias=False)


def train_transform(
    frames: torch.Tensor,
    rng: random.Random | torch.Generator | None = None,
    size: int = 224,
    short_side_range: tuple[int, int] = (224, 256),
    flip: bool = True,
) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> uint8 (T, 3, size, size) with random scale, crop and flip."""
    if isinstance(rng, torch.Generator):
        rng = random.Random(int(torch.randint(2**62, (1,), generator=rng)))
    rng = rng or random
    low, high = short_side_range
    if low < size:
        raise ValueError(f"short_side_range {short_side_range} must not go below the crop size {size}")
    video = short_side_resize(_to_tchw(frames), int(round(rng.uniform(low, high))))
    h, w = video.shape[-2:]
    # the reference's np.random.randint(0, side - size): the last offset is never drawn
    y = rng.randrange(h - size) if h > size else 0
    x = rng.randrange(w - size) if w > size else 0
    video = video[..., y : y + size, x : x + size]
    if flip and rng.random() < 0.5:
        video = video.flip(-1)
    return video.contiguous()


def _crop_offsets(h: int, w: int, size: int, num_crops: int) -> list[tuple[int, int]]:
    """Centre crop, or (start, centre, end) along the long side for 3 crops."""
    cy, cx = int(math.ceil((h - size) / 2)), int(math.ceil((w - size) / 2))
    if num_crops == 1:
        return [(cy, cx)]
    if num_crops == 3:
        if h > w:
            return [(0, cx), (cy, cx), (h - size, cx)]
        return [(cy, 0), (cy, cx), (cy, w - size)]
    raise ValueError(f"num_crops must be 1 or 3, got {num_crops}")


def test_transform(frames: torch.Tensor, size: int = 224, num_crops: int = 1) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> uint8 (num_crops, T, 3, size, size)."""
    video = short_side_resize(_to_tchw(frames), size)
    h, w = video.shape[-2:]
    crops = [video[..., y : y + size, x : x + size] for y, x in _crop_offsets(h, w, size, num_crops)]
    return torch.stack(crops).contiguous()


def normalize(
    video: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """uint8 (..., 3, H, W) -> (video / 255 - mean) / std as ``dtype``, on the video's device.

    ``mean`` and ``std`` are on the 0..1 scale, as in the model's config.
    """
    if video.shape[-3] != 3:
        raise ValueError(f"expected channels at dim -3, got shape {tuple(video.shape)}")
    m = torch.as_tensor(mean, dtype=dtype, device=video.device).view(3, 1, 1) * 255
    s = torch.as_tensor(std, dtype=dtype, device=video.device).view(3, 1, 1) * 255
    return (video.to(dtype) - m) / s


test_transform.__test__ = False  # a library function, not a test for pytest to collect
