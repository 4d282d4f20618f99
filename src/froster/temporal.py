"""Attention for the CLIP towers, run block by block through one attention kernel
(fused `scaled_dot_product_attention` by default), with VCLIP's neighbour-frame widening
for video.

We run open_clip's residual blocks with our own loop instead of patching them, so the
same weights serve the image CLIP (teacher), the video student and the text tower.

A *kernel* is any function ``kernel(q, k, v, attn_mask=None, is_causal=False) -> out``
on (N, heads, L, head_dim) tensors, as `F.scaled_dot_product_attention`. Every attention
here takes its kernel as an argument; the student chooses it in one place
(`VideoCLIP.attention_kernel`), so a kernel that records attention maps sees them all.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .errors import FrosterError

NEIGHBOR_PADDINGS = ("zeros", "masked")


def split_heads(block: nn.Module, x: torch.Tensor):
    """Project (N, L, D) tokens to q, k, v of shape (N, heads, L, head_dim)."""
    attn = block.attn
    if not isinstance(attn, nn.MultiheadAttention):
        raise FrosterError(
            f"froster's attention runs on open_clip's standard ResidualAttentionBlock; "
            f"this architecture uses {type(attn).__name__}. Use temporal='mean' instead.")
    n, length, width = x.shape
    heads = attn.num_heads
    qkv = F.linear(x, attn.in_proj_weight, attn.in_proj_bias)
    qkv = qkv.view(n, length, 3, heads, width // heads).permute(2, 0, 3, 1, 4)
    return qkv[0], qkv[1], qkv[2]


def merge_heads(block: nn.Module, out: torch.Tensor) -> torch.Tensor:
    n, heads, length, head_dim = out.shape
    out = out.transpose(1, 2).reshape(n, length, heads * head_dim)
    return block.attn.out_proj(out)


def unfused_attention(q, k, v, attn_mask=None, is_causal=False):
    """softmax(q k^T / sqrt(d)) v written out, as the reference computes it (for comparison)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if is_causal:
        length = q.shape[-2]
        causal = torch.ones(length, length, dtype=torch.bool, device=q.device).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


FUSED = F.scaled_dot_product_attention


def default_kernel(fused: bool = True) -> Callable:
    """The fused kernel, or the reference's unfused form (same result, for comparison)."""
    return FUSED if fused else unfused_attention


def plain_attention(block: nn.Module, x: torch.Tensor, kernel: Callable = FUSED) -> torch.Tensor:
    q, k, v = split_heads(block, x)
    return merge_heads(block, kernel(q, k, v))


def causal_attention(block: nn.Module, x: torch.Tensor, kernel: Callable = FUSED) -> torch.Tensor:
    q, k, v = split_heads(block, x)
    return merge_heads(block, kernel(q, k, v, is_causal=True))


def widen_to_neighbors(t: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(B*T, H, L, d) keys or values -> (B*T, H, 3L, d): frames t+1, t-1, t.

    A missing neighbour at either end of the clip is all zeros (the reference's behaviour).
    """
    bt, heads, length, dim = t.shape
    t = t.view(bt // num_frames, num_frames, heads, length, dim)
    zero = t.new_zeros(t.shape[0], 1, heads, length, dim)
    following = torch.cat([t[:, 1:], zero], dim=1)
    preceding = torch.cat([zero, t[:, :-1]], dim=1)
    return torch.cat([following, preceding, t], dim=3).view(bt, heads, 3 * length, dim)


def neighbor_mask(batch: int, num_frames: int, length: int, device) -> torch.Tensor:
    """Boolean (B*T, 1, 1, 3L) mask that drops the missing neighbours at the clip ends."""
    keep = torch.ones(num_frames, 3, length, dtype=torch.bool, device=device)
    keep[-1, 0] = False  # the last frame has no following frame
    keep[0, 1] = False   # the first frame has no preceding frame
    return keep.view(1, num_frames, 1, 1, 3 * length).expand(batch, -1, -1, -1, -1).reshape(
        batch * num_frames, 1, 1, 3 * length)


def neighbor_attention(num_frames: int, padding: str = "zeros", kernel: Callable = FUSED) -> Callable:
    """Attention in which the queries of frame t see the keys/values of t+1, t-1 and t.

    A one-frame video has no neighbours. Under ``zeros`` it still attends to two all-zero
    key/value blocks, as the reference does (its expand_temporal_view fills the missing
    neighbours with zeros whatever T is), so it is NOT encoded as the image CLIP encodes the
    frame; under ``masked`` it is plain attention, exactly the image CLIP.
    """
    if padding not in NEIGHBOR_PADDINGS:
        raise ValueError(f"neighbor padding must be one of {NEIGHBOR_PADDINGS}, not {padding!r}")
    if num_frames == 1 and padding == "masked":
        return partial(plain_attention, kernel=kernel)

    def attend(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
        q, k, v = split_heads(block, x)
        k = widen_to_neighbors(k, num_frames)
        v = widen_to_neighbors(v, num_frames)
        mask = None
        if padding == "masked":
            mask = neighbor_mask(x.shape[0] // num_frames, num_frames, x.shape[1], x.device)
        return merge_heads(block, kernel(q, k, v, attn_mask=mask))

    return attend


def run_blocks(blocks, x: torch.Tensor, step: Callable, grad_checkpointing: bool = False):
    """`x = step(block, x)` for each block; with `grad_checkpointing`, each block's
    activations are recomputed in the backward pass instead of kept."""
    for block in blocks:
        if grad_checkpointing and torch.is_grad_enabled():
            x = checkpoint(step, block, x, use_reentrant=False)
        else:
            x = step(block, x)
    return x


def residual_block(block: nn.Module, x: torch.Tensor, attend: Callable) -> torch.Tensor:
    """open_clip's pre-norm residual block with `attend(block, x)` as its attention."""
    x = x + block.ls_1(attend(block, block.ln_1(x)))
    return x + block.ls_2(block.mlp(block.ln_2(x)))
