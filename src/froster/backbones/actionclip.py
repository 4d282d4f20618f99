"""`actionclip` (ActionCLIP's "Transf" post-network, sallymmx/ActionCLIP
modules/Visual_Prompt.py, re-written here).

Frames are encoded independently by the CLIP ViT; then, on the (B, T, E) frame embeddings
f (after CLIP's projection, before normalisation):

    out = f + TemporalTransformer(f + P[:T])

with P a learned frame position embedding and the transformer a stack of CLIP residual
blocks over the T frames. ActionCLIP's settings, kept: 6 blocks of width E (the
embedding size: 512 for ViT-B/16), heads = text width // 64 (8), QuickGELU MLPs of
ratio 4, LayerNorm eps 1e-12, a position table of the text context length (77 frames at
most); init: every Linear and the position table N(0, 0.02) with zero biases, LayerNorms
(1, 0), the attention's input projection as nn.MultiheadAttention leaves it (Xavier).
The fusion is not zero-initialised (as in ActionCLIP), so the student does not start as
plain CLIP; the per-frame features before it do.

ActionCLIP then averages `out` over time; froster keeps `out` per frame (normalised) and
averages the per-frame logits, as for every backbone, so the FROSTER distillation
compares each fused frame with the teacher's frame (docs/backbones.md says why).

Module: `clip.visual.temporal_fusion` with ActionCLIP's key names below it
(`frame_position_embeddings.weight`, `transformer.resblocks.N.{ln_1,attn,ln_2,mlp}`).
"""

from __future__ import annotations

from functools import partial

from open_clip.transformer import LayerNorm, QuickGELU, ResidualAttentionBlock
from torch import nn

from ..temporal import plain_attention, residual_block, run_blocks
from .base import Backbone

LAYERS = 6
HEAD_WIDTH = 64
LAYER_NORM_EPS = 1e-12
INIT_STD = 0.02


class TemporalTransformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.resblocks = nn.Sequential(*[
            ResidualAttentionBlock(width, heads, act_layer=QuickGELU,
                                   norm_layer=partial(LayerNorm, eps=LAYER_NORM_EPS))
            for _ in range(layers)])


class TemporalFusion(nn.Module):
    def __init__(self, width: int, heads: int, max_frames: int, layers: int = LAYERS):
        super().__init__()
        self.frame_position_embeddings = nn.Embedding(max_frames, width)
        self.transformer = TemporalTransformer(width, layers, heads)
        self.apply(_init)

    @property
    def max_frames(self) -> int:
        return self.frame_position_embeddings.num_embeddings


def _init(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class ActionCLIP(Backbone):
    name = "actionclip"
    visual_modules = ("temporal_fusion",)
    starts_as_clip = False

    def new_visual_modules(self, clip):
        width = clip.visual.output_dim
        heads = max(1, clip.ln_final.weight.shape[0] // HEAD_WIDTH)
        if width % heads:
            raise ValueError(f"actionclip: the embedding size {width} does not split into "
                             f"{heads} heads (text width // {HEAD_WIDTH})")
        max_frames = clip.positional_embedding.shape[0]
        return {"temporal_fusion": TemporalFusion(width, heads, max_frames)}

    def fuse(self, visual, features, kernel, grad_checkpointing=False):
        fusion = visual.temporal_fusion
        frames = features.shape[1]
        if frames > fusion.max_frames:
            raise ValueError(f"actionclip's frame position table has {fusion.max_frames} "
                             f"entries; a clip of {frames} frames is too long")
        x = features + fusion.frame_position_embeddings.weight[:frames].to(features.dtype)
        step = partial(residual_block, attend=partial(plain_attention, kernel=kernel))
        x = run_blocks(fusion.transformer.resblocks, x, step, grad_checkpointing)
        return features + x.to(features.dtype)


BACKBONE = ActionCLIP
