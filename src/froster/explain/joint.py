"""The joint relevance over all T x L tokens of a clip (L = CLS + h·w patches).

Each recorded attention call is one *layer* of the clip: a (T·L) x (T·L) matrix J that
says how much token (t, i) takes from token (s, j). Its shape depends on the backbone
(`BLOCK_CALLS`), and the matrices are never built densely: `propagate` multiplies a
relevance row by J directly from the recorded (heads-fused) probabilities.

- ``frame`` (mean, AdaptFormer, ST-Adapter, each ViT block of ActionCLIP, neighbor with
  one frame and masked padding): (B·T, L, L), each frame on its own; J is block-diagonal.
- ``neighbor`` (VCLIP): (B·T, L, 3L), the queries of frame t over the keys of frames
  t+1, t-1, t. At the clip ends the missing neighbour is a block of all-zero keys and
  values (the reference's zero padding): it takes probability mass but contributes
  nothing, and there is no token for it, so its columns are **dropped** (the row then
  sums to less than 1; rollout adds the identity and renormalises after dropping, so the
  residual weighs more where attention went to padding). With ``neighbor_padding=masked``
  that mass is already 0. The gradient method gives those columns exactly 0 anyway
  (dy/dA of a zero value is 0).
- ``time`` (AIM's temporal attention, the block's own weights along time): (B·L, T, T),
  token position i of frame t over position i of every frame.
- ``clip`` (ActionCLIP's fusion transformer, after the ViT): (B, T, T), the frame
  embeddings attend to each other; a frame embedding is its CLS token, so J links (t, CLS)
  to (s, CLS) and leaves the patches alone.

The video's logit is the mean over frames of the per-frame logits, and frame s's logit
reads its pooled token (the CLS token, or the mean of the patches for `avg` pooling). So
relevance starts as the row 1/T on every frame's CLS (`readout`), is carried down through
the layers (`propagate`, top layer first), and the map of frame t is the result on its
patches: map[t, j] = mean over s of R[(s, CLS), (t, j)]. A frame's map thus credits
patches that other frames' CLS tokens reached through neighbour (or temporal, or
fusion) attention.
"""

from __future__ import annotations

import torch

from ..errors import FrosterError

#: the attention calls of one visual block, in call order, per backbone
BLOCK_CALLS = {
    "neighbor": ("neighbor",),
    "mean": ("frame",),
    "aim": ("time", "frame"),
    "st_adapter": ("frame",),
    "adaptformer": ("frame",),
    "actionclip": ("frame",),
}
#: backbones whose post-network attends over the frame embeddings (one call per block)
FUSION_CALLS = {"actionclip": "clip"}


def check_supported(model) -> None:
    """Raise ValueError (what and why) when `model`'s maps cannot be computed."""
    from ..model import VideoCLIP

    if not isinstance(model, VideoCLIP):
        raise FrosterError(f"attention maps are computed for froster's VideoCLIP student, not a "
                           f"{type(model).__name__}")
    if model.temporal not in BLOCK_CALLS:
        raise FrosterError(f"attention maps are not defined for temporal={model.temporal!r}: its "
                           f"attention layout is missing from froster/explain/joint.py")
    visual = model.clip.visual
    if not model.standard_vit:
        raise FrosterError(f"attention maps need open_clip's plain ViT (run block by block); this "
                           f"model's visual tower is {type(visual).__name__}")
    if getattr(visual, "attn_pool", None) is not None or visual.pool_type not in ("tok", "avg"):
        raise FrosterError("attention maps need a ViT that reads its CLS token or the mean of its "
                           "patches; this one pools with an attention pooler")


def patch_grid(model) -> tuple[int, int]:
    """(h, w): the patches of one frame."""
    return tuple(model.clip.visual.grid_size)


def token_count(model) -> int:
    """L: the CLS token and the patches of one frame."""
    h, w = patch_grid(model)
    return 1 + h * w


def call_kinds(model, frames: int) -> list[str]:
    """The kind of every attention call of one forward pass, in call order."""
    per_block = BLOCK_CALLS[model.temporal]
    if model.temporal == "neighbor" and frames == 1 and model.neighbor_padding == "masked":
        per_block = ("frame",)  # one frame, masked: plain attention (zeros: two zero blocks)
    kinds = list(per_block) * len(model.clip.visual.transformer.resblocks)
    if model.temporal in FUSION_CALLS:
        fusion = model.clip.visual.temporal_fusion.transformer.resblocks
        kinds += [FUSION_CALLS[model.temporal]] * len(fusion)
    return kinds


def expected_shape(kind: str, batch: int, frames: int, tokens: int) -> tuple[int, ...]:
    """(N, L_q, L_k) of a call's heads-fused weights."""
    return {"frame": (batch * frames, tokens, tokens),
            "neighbor": (batch * frames, tokens, 3 * tokens),
            "time": (batch * tokens, frames, frames),
            "clip": (batch, frames, frames)}[kind]


def check_calls(probabilities, kinds, batch: int, frames: int, tokens: int, temporal: str) -> None:
    """The recorded calls must be the ones the layout expects (else the layout is stale)."""
    shapes = [tuple(p.shape[:1] + p.shape[2:]) for p in probabilities]
    expected = [expected_shape(k, batch, frames, tokens) for k in kinds]
    if shapes != expected:
        raise RuntimeError(f"temporal={temporal}: recorded {len(shapes)} attention calls of "
                           f"shapes {shapes[:4]}..., expected {len(expected)} of shapes "
                           f"{expected[:4]}...: froster/explain/joint.py's layout of this "
                           f"backbone is out of date")


def fuse_heads(weights: torch.Tensor, how: str = "mean") -> torch.Tensor:
    """(N, heads, L_q, L_k) -> (N, L_q, L_k): mean or max over the heads."""
    if how == "mean":
        return weights.mean(dim=1)
    if how == "max":
        return weights.amax(dim=1)
    raise ValueError(f"head fusion must be 'mean' or 'max', not {how!r}")


def readout(model, batch: int, frames: int, tokens: int, device) -> torch.Tensor:
    """(B, T, L) relevance row of the video's logit over the last layer's tokens: 1/T on
    each frame's pooled token (CLS, or the patches' mean for `avg` pooling)."""
    row = torch.zeros(batch, frames, tokens, device=device)
    if model.clip.visual.pool_type == "avg":
        row[:, :, 1:] = 1.0 / (frames * (tokens - 1))
    else:
        row[:, :, 0] = 1.0 / frames
    return row


def propagate(row: torch.Tensor, weights: torch.Tensor, kind: str) -> torch.Tensor:
    """row @ J for (B, T, L) relevance rows and one layer's heads-fused weights; missing
    neighbours' columns are dropped."""
    batch, frames, tokens = row.shape
    if kind == "frame":
        return (row.reshape(batch * frames, 1, tokens) @ weights).view(batch, frames, tokens)
    if kind == "neighbor":
        taken = (row.reshape(batch * frames, 1, tokens) @ weights).view(batch, frames, 3, tokens)
        out = taken[:, :, 2].clone()            # keys of the frame itself
        out[:, 1:] += taken[:, :-1, 0]          # frame t's "following" block is frame t+1
        out[:, :-1] += taken[:, 1:, 1]          # frame t's "preceding" block is frame t-1
        return out
    if kind == "time":
        along_time = row.transpose(1, 2).reshape(batch * tokens, 1, frames)
        return (along_time @ weights).view(batch, tokens, frames).transpose(1, 2)
    if kind == "clip":
        out = torch.zeros_like(row)
        out[:, :, 0] = (row[:, None, :, 0] @ weights)[:, 0]
        return out
    raise ValueError(f"unknown attention kind {kind!r}")


def row_sums(weights: torch.Tensor, kind: str, batch: int, frames: int, tokens: int) -> torch.Tensor:
    """(B, T, L): the sum of each token's row of J (missing neighbours dropped; 0 for the
    tokens a layer does not update)."""
    if kind == "frame":
        return weights.sum(dim=-1).view(batch, frames, tokens)
    if kind == "neighbor":
        blocks = weights.view(batch, frames, tokens, 3, tokens).sum(dim=-1)
        blocks[:, -1, :, 0] = 0  # the last frame has no following frame
        blocks[:, 0, :, 1] = 0   # the first frame has no preceding frame
        return blocks.sum(dim=-1)
    if kind == "time":
        return weights.sum(dim=-1).view(batch, tokens, frames).transpose(1, 2)
    if kind == "clip":
        sums = torch.zeros(batch, frames, tokens, device=weights.device, dtype=weights.dtype)
        sums[:, :, 0] = weights.sum(dim=-1)
        return sums
    raise ValueError(f"unknown attention kind {kind!r}")


def patch_maps(row: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """(B, T, L) relevance -> (B, T, h, w) over the patches, each clip's maps summing to 1
    (all zeros where a clip has no relevance on any patch)."""
    batch, frames, _ = row.shape
    maps = row[:, :, 1:].clamp_min(0).reshape(batch, frames, *grid)
    total = maps.sum(dim=(1, 2, 3), keepdim=True)
    return torch.where(total > 0, maps / total.clamp_min(torch.finfo(maps.dtype).tiny), maps)
