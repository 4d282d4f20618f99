"""What every backbone is: how the visual tower runs a clip, and what it adds to the CLIP."""

from __future__ import annotations

from functools import partial
from typing import Callable

import torch
from torch import nn

from ..temporal import plain_attention, residual_block


class Backbone:
    """A way of running the CLIP ViT on a clip of T frames, tokens (B*T, L, D).

    Subclasses say which modules they add (`block_modules`: new attributes of every visual
    residual block; `visual_modules`: new attributes of the visual tower) and override
    `step` (one residual block) and/or `fuse` (a post-network over the (B, T, E) frame
    embeddings). The added modules are attached to the CLIP itself, so they are saved,
    loaded, averaged and moved with it; open_clip's own forward ignores them.
    """

    name = ""
    block_modules: tuple[str, ...] = ()
    visual_modules: tuple[str, ...] = ()
    #: at initialisation the per-frame features equal plain CLIP's (zero-initialised adapters)
    starts_as_clip = True
    #: runs the ViT block by block (all but `mean` need open_clip's plain VisionTransformer)
    needs_standard_vit = True

    def __init__(self, neighbor_padding: str = "zeros"):
        self.neighbor_padding = neighbor_padding

    @property
    def adds_parameters(self) -> bool:
        return bool(self.block_modules or self.visual_modules)

    # -- the modules it adds -------------------------------------------------------
    def new_block_modules(self, width: int) -> dict[str, nn.Module]:
        """{attribute: module} added to a residual block of `width` channels."""
        return {}

    def new_visual_modules(self, clip: nn.Module) -> dict[str, nn.Module]:
        """{attribute: module} added to `clip.visual`."""
        return {}

    def attach(self, clip: nn.Module) -> None:
        """Add the modules to `clip` where they are missing (so a CLIP that already has
        them, e.g. being wrapped a second time, keeps its weights)."""
        visual = clip.visual
        like = visual.conv1.weight
        targets = [(block, self.new_block_modules(block.ln_1.weight.shape[0]))
                   for block in visual.transformer.resblocks] if self.block_modules else []
        if self.visual_modules:
            targets.append((visual, self.new_visual_modules(clip)))
        for owner, modules in targets:
            for name, module in modules.items():
                if not hasattr(owner, name):
                    owner.add_module(name, module.to(device=like.device, dtype=like.dtype))

    def added_modules(self, clip: nn.Module) -> list[nn.Module]:
        visual = clip.visual
        found = [getattr(visual, n) for n in self.visual_modules if hasattr(visual, n)]
        if self.block_modules:
            found += [getattr(block, n) for block in visual.transformer.resblocks
                      for n in self.block_modules if hasattr(block, n)]
        return found

    def detach(self, clip: nn.Module) -> None:
        """Remove the added modules (what is left is the plain CLIP)."""
        visual = clip.visual
        for name in self.visual_modules:
            if hasattr(visual, name):
                delattr(visual, name)
        if self.block_modules:
            for block in visual.transformer.resblocks:
                for name in self.block_modules:
                    if hasattr(block, name):
                        delattr(block, name)

    # -- the forward pass ----------------------------------------------------------
    def step(self, frames: int, kernel: Callable) -> Callable[[nn.Module, torch.Tensor], torch.Tensor]:
        """`step(block, x)`: one residual block on (B*T, L, D) tokens. Default: CLIP's
        block with plain attention, each frame on its own."""
        return partial(residual_block, attend=partial(plain_attention, kernel=kernel))

    def fuse(self, visual: nn.Module, features: torch.Tensor, kernel: Callable,
             grad_checkpointing: bool = False) -> torch.Tensor:
        """(B, T, E) frame embeddings (before normalisation) -> (B, T, E). Default: as they are."""
        return features
