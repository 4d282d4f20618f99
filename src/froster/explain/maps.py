"""Attention maps of clips: the one entry point that `Recognizer.explain`, `froster
explain` and the demo share (`explain_clips`), and the per-video result (`Explanation`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import FrosterError
from . import HEAD_FUSIONS, get, joint


@dataclass
class ClipMaps:
    logits: torch.Tensor  # (B, C) logits computed while explaining (the plain forward's, to rounding)
    target: torch.Tensor  # (B,) index of the label explained
    maps: torch.Tensor    # (B, T, h, w) relevance of each frame's patches; each clip sums to 1


@dataclass
class Explanation:
    """One video explained: `Recognizer.explain`'s result."""

    frames: torch.Tensor      # uint8 (T, S, S, 3): the view as the model saw it (resized, cropped)
    maps: torch.Tensor        # (T, h, w) at the patch grid; the clip's maps sum to 1
    pixel_maps: torch.Tensor  # (T, S, S): `maps` upsampled bilinearly to the frames, summing to 1
    label: str                # the label explained
    probability: float        # its probability: softmax over the labels of this view's logits
    labels: list[str]         # every label's name, in the order of `logits`
    logits: torch.Tensor      # (C,) this view's logits
    view: int                 # which test view was explained (of `views`)
    views: int
    method: str
    head_fusion: str


def explain_clips(model, video: torch.Tensor, classifier: torch.Tensor, target=None,
                  method: str = "gradient", head_fusion: str = "mean") -> ClipMaps:
    """Maps of normalised float clips (B, T, 3, S, S) for a froster `VideoCLIP` against a
    (C, D) classifier (`Recognizer.label_embeddings`). `target`: the label index to explain
    per clip (an int or (B,)); default each clip's top label. The model's own kernel is
    back in place when this returns."""
    joint.check_supported(model)
    if head_fusion not in HEAD_FUSIONS:
        raise FrosterError(f"head fusion must be one of {', '.join(HEAD_FUSIONS)}, not {head_fusion!r}")
    relevance = get(method).relevance
    if video.dim() != 5:
        raise ValueError(f"clips must be (batch, frames, 3, H, W), got shape {tuple(video.shape)}")
    classifier = classifier.detach().clone()  # a cached classifier may be an inference tensor
    if target is not None:
        target = torch.as_tensor(target, device=video.device).view(-1).expand(video.shape[0])
        if int(target.min()) < 0 or int(target.max()) >= classifier.shape[0]:
            raise FrosterError(f"label index out of range 0..{classifier.shape[0] - 1}")
    logits, target, row = relevance(model, video, classifier.to(video.dtype), target, head_fusion)
    return ClipMaps(logits.float(), target, joint.patch_maps(row.float(), joint.patch_grid(model)))


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(T, h, w) maps -> (T, H, W), bilinear, with the same total as `maps`."""
    big = F.interpolate(maps[:, None].float(), size=size, mode="bilinear", align_corners=False)[:, 0]
    total = big.sum()
    return big * (maps.sum() / total) if total > 0 else big
