"""`adaptformer` (AdaptFormer, as the reference's `AdapterFormer` block puts it on CLIP):
the usual attention, then the MLP with a parallel adapter,
x = x + mlp(ln_2 x) + 0.5 * A(ln_2 x), A as AIM's adapter (Linear D -> D/4, GELU,
Linear D/4 -> D zero-initialised). Frames are encoded independently: AdaptFormer adds no
temporal modelling. Parameters: `ffn_adapter.adapter.{0,2}` in every visual resblock
(3.5 M for ViT-B/16)."""

from __future__ import annotations

from functools import partial

from torch import nn

from ..temporal import plain_attention
from .aim import MLP_ADAPTER_SCALE, Adapter
from .base import Backbone


def adaptformer_block(block: nn.Module, x, kernel):
    x = x + block.ls_1(plain_attention(block, block.ln_1(x), kernel))
    hidden = block.ln_2(x)
    return x + block.ls_2(block.mlp(hidden)) + MLP_ADAPTER_SCALE * block.ffn_adapter(hidden)


class AdaptFormer(Backbone):
    name = "adaptformer"
    block_modules = ("ffn_adapter",)

    def new_block_modules(self, width):
        return {"ffn_adapter": Adapter(width)}

    def step(self, frames, kernel):
        return partial(adaptformer_block, kernel=kernel)


BACKBONE = AdaptFormer
