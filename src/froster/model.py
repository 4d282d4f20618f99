"""The video student: a CLIP whose visual tower encodes a clip through one of the video
backbones of `froster.backbones` (VCLIP's neighbour-frame attention by default), and whose
text tower builds the class classifier."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import partial
from typing import Callable

import open_clip
import torch
import torch.nn.functional as F
from torch import nn

from . import backbones
from .compile import compile_or_eager
from .errors import FrosterError
from .temporal import causal_attention, default_kernel, residual_block, run_blocks

TEMPORAL_MODES = backbones.names()
TRAIN_PARAMS = ("all", "added")


class VideoCLIP(nn.Module):
    """A CLIP ViT run on video by the backbone named `temporal` (`froster.backbones`):

    - ``neighbor`` (VCLIP, the paper's default): every attention layer lets frame t attend
      to frames t+1, t-1 and t. ``neighbor_padding="zeros"`` keeps the reference's zero
      keys/values for the missing neighbour at the clip ends; ``"masked"`` masks them.
    - ``mean``: frames encoded independently (the fine-tuned CLIP baseline).
    - ``aim``, ``st_adapter``, ``adaptformer``, ``actionclip``: the other video models of
      the paper's Table 3; their new modules are added to `clip` (zero-initialised
      adapters start as plain CLIP). See docs/backbones.md.
    Logits are computed per frame and averaged over time.
    """

    def __init__(self, clip: nn.Module, temporal: str = "neighbor",
                 neighbor_padding: str = "zeros", trim_text: bool = True, fused_attention: bool = True):
        super().__init__()
        self.backbone = backbones.get(temporal)(neighbor_padding=neighbor_padding)
        self.clip = clip
        self.temporal = temporal
        self.neighbor_padding = neighbor_padding
        self.trim_text = trim_text
        self.fused_attention = fused_attention
        #: None, or a kernel (q, k, v, attn_mask=None, is_causal=False) -> out that replaces
        #: every attention of the visual tower (see `attention_kernel`)
        self.visual_kernel: Callable | None = None
        self.text_buckets = 4  # length buckets for trimmed text; 1 = trim to the longest
        self.grad_checkpointing = False
        self._standard_vit = _is_standard_vit(clip.visual)
        self._standard_text = (isinstance(clip, open_clip.CLIP) and clip.text_pool_type == "argmax"
                               and clip.attn_mask is not None
                               and _standard_blocks(clip.transformer.resblocks))
        if self.backbone.needs_standard_vit and not self._standard_vit:
            raise FrosterError(
                f"temporal={temporal!r} needs a plain open_clip ViT visual tower; this model's "
                f"is {type(clip.visual).__name__}. Use temporal='mean'.")
        self.backbone.attach(clip)

    @property
    def standard_vit(self) -> bool:
        """Whether the visual tower is open_clip's plain ViT (run block by block here)."""
        return self._standard_vit

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.clip.logit_scale

    @property
    def embed_dim(self) -> int:
        return self.clip.text_projection.shape[-1] if self._standard_text else \
            self.clip.visual.output_dim

    def attention_kernel(self, tower: str = "visual") -> Callable:
        """The kernel of every attention in `tower` ("visual": each block of every backbone
        and ActionCLIP's temporal fusion; "text"), chosen here and nowhere else: fused
        SDPA, or the reference's unfused form with `fused_attention=False`. Setting
        `visual_kernel` replaces the visual one, e.g. by a kernel that records each
        layer's attention probabilities (it is called once per attention, in block order)."""
        if tower == "visual" and self.visual_kernel is not None:
            return self.visual_kernel
        return default_kernel(self.fused_attention)

    def encode_frames(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) normalised float frames -> (B, T, D) L2-normalised embeddings
        (for `actionclip`, the fused per-frame outputs of its temporal transformer)."""
        if video.dim() != 5:
            raise ValueError(f"video must be (batch, frames, 3, H, W), got shape {tuple(video.shape)}")
        return F.normalize(self._visual(video.flatten(0, 1), video.shape[1]), dim=-1)

    def _visual(self, images: torch.Tensor, frames: int) -> torch.Tensor:
        """(B*T, 3, H, W) -> (B, T, E) frame features, before normalisation."""
        if not self._standard_vit:
            features = self.clip.encode_image(images)
            return features.view(-1, frames, features.shape[-1])
        visual = self.clip.visual
        kernel = self.attention_kernel("visual")
        # open_clip's private VisionTransformer._embeds/_pool (open_clip_torch >= 2.32): the
        # tower's own patch/position embedding and read-out, with the blocks run by us
        x = visual._embeds(images.to(visual.conv1.weight.dtype))
        x = run_blocks(visual.transformer.resblocks, x, self.backbone.step(frames, kernel),
                       self.grad_checkpointing)
        features, _ = visual._pool(x)
        features = features @ visual.proj if visual.proj is not None else features
        return self.backbone.fuse(visual, features.view(-1, frames, features.shape[-1]), kernel,
                                  self.grad_checkpointing)

    def plan_text(self, tokens: torch.Tensor) -> "TextPlan":
        """How (N, L) prompt tokens run through the text tower, worked out on the host.

        The text tower is causal and reads the end-of-text token (the largest id), so the
        positions after it change nothing. With `trim_text`, prompts are sorted by length
        into a few buckets and each bucket runs only up to its longest prompt: exact, and
        far less work than padding every prompt to the context length. The plan is made
        from CPU tokens (no host-device sync) and moved to the model's device once."""
        tokens = tokens.cpu()
        if not self._standard_text:
            return TextPlan([(tokens, None)], None)
        eot = tokens.argmax(dim=-1)
        if not self.trim_text:
            return TextPlan([(tokens, eot)], None)
        order = eot.argsort()
        buckets = order.chunk(min(self.text_buckets, -(-len(order) // 32)))
        pieces = [(tokens[idx, : int(eot[idx].max()) + 1], eot[idx]) for idx in buckets]
        return TextPlan(pieces, order.argsort())

    def plan_classes(self, tokens: torch.Tensor) -> "TextPlan":
        """The plan of a (C, P, L) classifier's prompts: repeated prompts are encoded once."""
        classes, prompts, length = tokens.shape
        unique, inverse = torch.unique(tokens.cpu().reshape(-1, length), dim=0, return_inverse=True)
        plan = self.plan_text(unique)
        plan.inverse, plan.classes = inverse, (classes, prompts)
        return plan

    def run_text(self, plan: "TextPlan") -> torch.Tensor:
        """(N, D) L2-normalised embeddings of a plan's prompts (moved to the model's device
        if it is not there yet; keep a moved plan to run it again without copies)."""
        plan = plan.to(self.logit_scale.device)
        if not self._standard_text:
            return F.normalize(self.clip.encode_text(plan.pieces[0][0]), dim=-1)
        out = torch.cat([self._text(tokens, eot) for tokens, eot in plan.pieces])
        return F.normalize(out if plan.restore is None else out[plan.restore], dim=-1)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(N, L) token ids -> (N, D) L2-normalised text embeddings (see `plan_text`)."""
        return self.run_text(self.plan_text(tokens))

    def _text(self, tokens: torch.Tensor, eot: torch.Tensor) -> torch.Tensor:
        clip = self.clip
        length = tokens.shape[1]
        x = clip.token_embedding(tokens) + clip.positional_embedding[:length]
        attend = partial(causal_attention, kernel=self.attention_kernel("text"))
        x = run_blocks(clip.transformer.resblocks, x.to(clip.positional_embedding.dtype),
                       partial(residual_block, attend=attend), self.grad_checkpointing)
        x = clip.ln_final(x)[torch.arange(x.shape[0], device=x.device), eot]
        return clip.text_projection(x) if isinstance(clip.text_projection, nn.Linear) \
            else x @ clip.text_projection

    def encode_classes(self, tokens) -> torch.Tensor:
        """(C, P, L) prompt tokens (or their `plan_classes`) -> (C, D) classifier: each
        prompt normalised, averaged over the P prompts of a class, normalised again."""
        plan = tokens if isinstance(tokens, TextPlan) else self.plan_classes(tokens)
        embeddings = self.run_text(plan)[plan.inverse.to(self.logit_scale.device)]
        return F.normalize(embeddings.view(*plan.classes, -1).mean(dim=1), dim=-1)

    def logits(self, frame_embeddings: torch.Tensor, class_embeddings: torch.Tensor):
        """Per-frame logits averaged over time: (B, T, D), (C, D) -> (B, C)."""
        per_frame = self.logit_scale.exp() * frame_embeddings @ class_embeddings.t()
        return per_frame.mean(dim=1)

    def forward(self, video: torch.Tensor, class_embeddings: torch.Tensor) -> torch.Tensor:
        return self.logits(self.encode_frames(video), class_embeddings)

    # -- what trains ---------------------------------------------------------------
    def added_parameters(self) -> list[nn.Parameter]:
        """The parameters the backbone added to the CLIP (none for neighbor and mean)."""
        return [p for m in self.backbone.added_modules(self.clip) for p in m.parameters()]

    def set_train_params(self, which: str = "all") -> None:
        """"all": every parameter of both towers trains (the reference). "added": the
        pretrained CLIP is frozen, both towers; only the backbone's added modules and
        logit_scale train (the parameter-efficient setting of the AIM and ST-Adapter papers)."""
        if which not in TRAIN_PARAMS:
            raise FrosterError(f"train_params must be one of {', '.join(TRAIN_PARAMS)}, not {which!r}")
        if which == "added" and not self.backbone.adds_parameters:
            raise FrosterError(f"train_params=added trains only what the backbone adds, and "
                               f"temporal={self.temporal} adds nothing; use one of "
                               f"{', '.join(n for n in TEMPORAL_MODES if backbones.get(n)().adds_parameters)}")
        for p in self.clip.parameters():
            p.requires_grad_(which == "all")
        for p in self.added_parameters() + [self.clip.logit_scale]:
            p.requires_grad_(True)

    @property
    def text_trainable(self) -> bool:
        """Whether any parameter of the text tower trains (if not, the classifier of a
        prompt set is a constant and can be cached)."""
        return any(p.requires_grad for name, p in self.clip.named_parameters()
                   if not name.startswith("visual.") and name not in ("logit_scale", "logit_bias"))

    def plain_clip(self) -> nn.Module:
        """A copy of the CLIP without the backbone's added modules: the teacher's CLIP."""
        clone = copy.deepcopy(self.clip)
        self.backbone.detach(clone)
        return clone

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass (both towers)."""
        self.grad_checkpointing = enable

    def enable_compile(self, **compile_kwargs) -> None:
        """Run both towers through `torch.compile`, falling back to eager if it fails."""
        self._visual = compile_or_eager(self._visual, **compile_kwargs)
        self._text = compile_or_eager(self._text, **compile_kwargs)

    @property
    def compiled_calls(self) -> dict[str, int]:
        """Tower calls that ran compiled / fell back to eager since `enable_compile`."""
        totals = {"compiled": 0, "eager": 0}
        for tower in (self._visual, self._text):
            for key, n in getattr(tower, "calls", {}).items():
                totals[key] += n
        return totals


@dataclass
class TextPlan:
    """Prompt tokens laid out for the text tower (`VideoCLIP.plan_text`): per bucket its
    tokens (cut at its longest prompt) and end-of-text positions; `restore` puts the
    buckets' rows back in prompt order; for a classifier, `inverse` maps the unique prompts
    to the (C * P) prompts and `classes` is (C, P)."""

    pieces: list[tuple[torch.Tensor, torch.Tensor | None]]
    restore: torch.Tensor | None
    inverse: torch.Tensor | None = None
    classes: tuple[int, int] | None = None

    def to(self, device) -> "TextPlan":
        if self.pieces[0][0].device == torch.device(device):
            return self
        move = lambda t: None if t is None else t.to(device, non_blocking=True)  # noqa: E731
        return TextPlan([(move(t), move(e)) for t, e in self.pieces], move(self.restore),
                        move(self.inverse), self.classes)


def _standard_blocks(blocks) -> bool:
    return all(isinstance(b, open_clip.transformer.ResidualAttentionBlock) for b in blocks)


def _is_standard_vit(visual: nn.Module) -> bool:
    return (isinstance(visual, open_clip.transformer.VisionTransformer)
            and _standard_blocks(visual.transformer.resblocks))
