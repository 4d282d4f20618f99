"""The video student: a CLIP whose visual tower encodes each frame, optionally with
VCLIP's neighbour-frame attention, and whose text tower builds the class classifier."""

from __future__ import annotations

from functools import partial

import open_clip
import torch
import torch.nn.functional as F
from torch import nn

from .compile import compile_or_eager
from .temporal import causal_attention, neighbor_attention, plain_attention, run_blocks

TEMPORAL_MODES = ("neighbor", "mean")


class VideoCLIP(nn.Module):
    """Per-frame CLIP ViT with temporal modelling chosen by name; no new parameters.

    - ``neighbor`` (VCLIP, the paper's default): every attention layer lets frame t attend
      to frames t+1, t-1 and t. ``neighbor_padding="zeros"`` keeps the reference's zero
      keys/values for the missing neighbour at the clip ends; ``"masked"`` masks them.
    - ``mean``: frames encoded independently (the fine-tuned CLIP baseline).
    Logits are computed per frame and averaged over time.
    """

    def __init__(self, clip: nn.Module, temporal: str = "neighbor",
                 neighbor_padding: str = "zeros", trim_text: bool = True, fused_attention: bool = True):
        super().__init__()
        if temporal not in TEMPORAL_MODES:
            raise ValueError(f"temporal must be one of {TEMPORAL_MODES}, not {temporal!r}")
        self.clip = clip
        self.temporal = temporal
        self.neighbor_padding = neighbor_padding
        self.trim_text = trim_text
        self.fused_attention = fused_attention
        self.text_buckets = 4  # length buckets for trimmed text; 1 = trim to the longest
        self.grad_checkpointing = False
        self._standard_vit = _is_standard_vit(clip.visual)
        self._standard_text = (isinstance(clip, open_clip.CLIP) and clip.text_pool_type == "argmax"
                               and clip.attn_mask is not None
                               and _standard_blocks(clip.transformer.resblocks))
        if temporal == "neighbor":
            neighbor_attention(2, neighbor_padding)  # validates the padding name early
            if not self._standard_vit:
                raise NotImplementedError(
                    f"temporal='neighbor' needs a plain open_clip ViT visual tower; this model's "
                    f"is {type(clip.visual).__name__}. Use temporal='mean'.")

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.clip.logit_scale

    @property
    def embed_dim(self) -> int:
        return self.clip.text_projection.shape[-1] if self._standard_text else \
            self.clip.visual.output_dim

    def encode_frames(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) normalised float frames -> (B, T, D) L2-normalised embeddings."""
        if video.dim() != 5:
            raise ValueError(f"video must be (batch, frames, 3, H, W), got shape {tuple(video.shape)}")
        batch, frames = video.shape[:2]
        features = self._visual(video.flatten(0, 1), frames)
        return F.normalize(features, dim=-1).view(batch, frames, -1)

    def _visual(self, images: torch.Tensor, frames: int) -> torch.Tensor:
        if not self._standard_vit:
            return self.clip.encode_image(images)
        visual = self.clip.visual
        fused = self.fused_attention
        attend = partial(plain_attention, fused=fused) if self.temporal == "mean" else \
            neighbor_attention(frames, self.neighbor_padding, fused)
        x = visual._embeds(images.to(visual.conv1.weight.dtype))
        x = run_blocks(visual.transformer.resblocks, x, attend, self.grad_checkpointing)
        features, _ = visual._pool(x)
        return features @ visual.proj if visual.proj is not None else features

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(N, L) token ids -> (N, D) L2-normalised text embeddings.

        The text tower is causal and reads the end-of-text token (the largest id), so the
        positions after it change nothing. With `trim_text`, prompts are sorted by length
        into a few buckets and each bucket runs only up to its longest prompt: exact, and
        far less work than padding every prompt to the context length.
        """
        if not self._standard_text:
            return F.normalize(self.clip.encode_text(tokens), dim=-1)
        eot = tokens.argmax(dim=-1)
        if not self.trim_text:
            return F.normalize(self._text(tokens, eot), dim=-1)
        order = eot.argsort()
        buckets = order.chunk(min(self.text_buckets, -(-len(order) // 32)))
        pieces = [self._text(tokens[idx, : int(eot[idx].max()) + 1], eot[idx]) for idx in buckets]
        return F.normalize(torch.cat(pieces)[order.argsort()], dim=-1)

    def _text(self, tokens: torch.Tensor, eot: torch.Tensor) -> torch.Tensor:
        clip = self.clip
        length = tokens.shape[1]
        x = clip.token_embedding(tokens) + clip.positional_embedding[:length]
        x = run_blocks(clip.transformer.resblocks, x.to(clip.positional_embedding.dtype),
                       partial(causal_attention, fused=self.fused_attention),
                       self.grad_checkpointing)
        x = clip.ln_final(x)[torch.arange(x.shape[0], device=x.device), eot]
        return clip.text_projection(x) if isinstance(clip.text_projection, nn.Linear) \
            else x @ clip.text_projection

    def encode_classes(self, tokens: torch.Tensor) -> torch.Tensor:
        """(C, P, L) prompt tokens -> (C, D) classifier: each prompt normalised, averaged
        over the P prompts of a class, normalised again. Repeated prompts are encoded once."""
        classes, prompts, length = tokens.shape
        unique, inverse = torch.unique(tokens.reshape(-1, length), dim=0, return_inverse=True)
        embeddings = self.encode_text(unique)[inverse].view(classes, prompts, -1)
        return F.normalize(embeddings.mean(dim=1), dim=-1)

    def logits(self, frame_embeddings: torch.Tensor, class_embeddings: torch.Tensor):
        """Per-frame logits averaged over time: (B, T, D), (C, D) -> (B, C)."""
        per_frame = self.logit_scale.exp() * frame_embeddings @ class_embeddings.t()
        return per_frame.mean(dim=1)

    def forward(self, video: torch.Tensor, class_embeddings: torch.Tensor) -> torch.Tensor:
        return self.logits(self.encode_frames(video), class_embeddings)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass (both towers)."""
        self.grad_checkpointing = enable

    def enable_compile(self, **compile_kwargs) -> None:
        """Run both towers through `torch.compile`, falling back to eager if it fails."""
        self._visual = compile_or_eager(self._visual, **compile_kwargs)
        self._text = compile_or_eager(self._text, **compile_kwargs)


def _standard_blocks(blocks) -> bool:
    return all(isinstance(b, open_clip.transformer.ResidualAttentionBlock) for b in blocks)


def _is_standard_vit(visual: nn.Module) -> bool:
    return (isinstance(visual, open_clip.transformer.VisionTransformer)
            and _standard_blocks(visual.transformer.resblocks))
