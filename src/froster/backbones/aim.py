"""`aim` (AIM, "Adapt Image Models", as the reference's `AIM` block builds it on CLIP).

Each visual block, on tokens x of shape (B*T, L, D):

1. temporal attention: the block's own ln_1 and attention weights applied along time (for
   each token position, a sequence of the T frames), through a T-adapter:
   x = x + A_t(attn_t(ln_1 x));
2. spatial attention as usual, through an S-adapter that keeps a skip:
   x = x + a + A_s(a), a = attn(ln_1 x);
3. the MLP with a parallel adapter: x = x + mlp(ln_2 x) + 0.5 * A_m(ln_2 x).

Each adapter is Linear(D, D/4) -> GELU -> Linear(D/4, D) with the last layer's weight and
bias zero-initialised (the reference's `AIM_Adapter`), so the block starts as CLIP's.
Parameters: `t_adapter.adapter.{0,2}`, `s_adapter.adapter.{0,2}`, `ffn_adapter.adapter.{0,2}`
in every visual resblock (3 x 2 x (D^2/4) + biases: 10.6 M for ViT-B/16).
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from ..temporal import plain_attention
from .base import Backbone

#: weight of the MLP adapter's output (the reference's `* 0.5`)
MLP_ADAPTER_SCALE = 0.5


class Adapter(nn.Module):
    """Linear(D, D/4) -> GELU -> Linear(D/4, D), the last layer zero-initialised, so the
    adapter starts as the zero map (the reference's `AIM_Adapter`, also AdaptFormer's)."""

    def __init__(self, width: int):
        super().__init__()
        self.adapter = nn.Sequential(nn.Linear(width, width // 4), nn.GELU(),
                                     nn.Linear(width // 4, width))
        nn.init.zeros_(self.adapter[2].weight)
        nn.init.zeros_(self.adapter[2].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter(x)


def along_time(x: torch.Tensor, frames: int) -> torch.Tensor:
    """(B*T, L, D) -> (B*L, T, D): for each token position, the sequence of its frames."""
    bt, length, width = x.shape
    return x.view(bt // frames, frames, length, width).transpose(1, 2).reshape(-1, frames, width)


def along_space(x: torch.Tensor, length: int) -> torch.Tensor:
    """The inverse of `along_time`: (B*L, T, D) -> (B*T, L, D)."""
    bl, frames, width = x.shape
    return x.view(bl // length, length, frames, width).transpose(1, 2).reshape(-1, length, width)


def aim_block(block: nn.Module, x: torch.Tensor, frames: int, kernel) -> torch.Tensor:
    attend = partial(plain_attention, kernel=kernel)
    temporal = attend(block, block.ln_1(along_time(x, frames)))
    x = x + block.t_adapter(along_space(temporal, x.shape[1]))
    spatial = block.ls_1(attend(block, block.ln_1(x)))
    x = x + spatial + block.s_adapter(spatial)
    hidden = block.ln_2(x)
    return x + block.ls_2(block.mlp(hidden)) + MLP_ADAPTER_SCALE * block.ffn_adapter(hidden)


class AIM(Backbone):
    name = "aim"
    block_modules = ("t_adapter", "s_adapter", "ffn_adapter")

    def new_block_modules(self, width):
        return {name: Adapter(width) for name in self.block_modules}

    def step(self, frames, kernel):
        return partial(aim_block, frames=frames, kernel=kernel)


BACKBONE = AIM
