"""`st_adapter` (ST-Adapter, the reference's zero-init variant `STAdaptZeroInitAttentionBlock`).

Before each visual block's attention, on the patch tokens only (CLS untouched):
x_p = x_p + Up(DWConv_t(Down(x_p))), with Down a 1x1 convolution D -> D/2 (with bias),
DWConv_t a depthwise convolution of kernel 3 along time with zero "same" padding (with
bias), and Up a 1x1 convolution D/2 -> D whose weight and bias start at zero. Then the
block's usual attention and MLP, each frame on its own.

The parameters are the reference's `nn.Conv2d` modules, `stadapt_down_1`,
`stadapt_conv3d_1` (kernel (3, 1), groups D/2) and `stadapt_up_1` (7.1 M for ViT-B/16),
so its checkpoints load as they are. The reference runs them on (B*P, D, T, 1) tensors;
we apply the same weights as matrix products and a 3-tap sum over time on (B, T, P, D)
tokens, which is the same arithmetic without the transposes.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ..temporal import plain_attention, residual_block
from .base import Backbone


def pointwise(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution applied to the channels of (..., C) tokens."""
    return F.linear(x, conv.weight.flatten(1), conv.bias)


def temporal_depthwise(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """The (3, 1) depthwise convolution with zero 'same' padding along time, on (B, T, P, C):
    out[t] = w0 x[t-1] + w1 x[t] + w2 x[t+1] + b, with x[-1] = x[T] = 0."""
    weight = conv.weight.view(-1, 3)
    padded = F.pad(x, (0, 0, 0, 0, 1, 1))
    return (padded[:, :-2] * weight[:, 0] + padded[:, 1:-1] * weight[:, 1]
            + padded[:, 2:] * weight[:, 2] + conv.bias)


def st_adapter_block(block: nn.Module, x: torch.Tensor, frames: int, kernel) -> torch.Tensor:
    bt, length, width = x.shape
    patches = x[:, 1:]
    z = pointwise(block.stadapt_down_1, patches)
    z = temporal_depthwise(block.stadapt_conv3d_1, z.view(bt // frames, frames, length - 1, -1))
    z = pointwise(block.stadapt_up_1, z).view(bt, length - 1, width)
    x = torch.cat([x[:, :1], patches + z], dim=1)
    return residual_block(block, x, partial(plain_attention, kernel=kernel))


class STAdapter(Backbone):
    name = "st_adapter"
    block_modules = ("stadapt_down_1", "stadapt_conv3d_1", "stadapt_up_1")

    def new_block_modules(self, width):
        half = width // 2
        down = nn.Conv2d(width, half, kernel_size=(1, 1), padding="same")
        conv = nn.Conv2d(half, half, kernel_size=(3, 1), padding="same", groups=half)
        up = nn.Conv2d(half, width, kernel_size=(1, 1), padding="same")
        nn.init.zeros_(up.weight)
        nn.init.zeros_(up.bias)
        return {"stadapt_down_1": down, "stadapt_conv3d_1": conv, "stadapt_up_1": up}

    def step(self, frames, kernel):
        return partial(st_adapter_block, frames=frames, kernel=kernel)


BACKBONE = STAdapter
