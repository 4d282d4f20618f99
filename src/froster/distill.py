"""FROSTER's residual feature distillation: a frozen CLIP teacher, two residual
projectors and the loss. The projectors serve training only; inference uses the student."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .model import VideoCLIP
from .prompts import PromptBank
from .sharding import sharded_encode_classes


class ResidualProjector(nn.Module):
    """z' = z + alpha * W2 GELU(W1 z); W2 starts at zero, so the head starts as the identity."""

    def __init__(self, dim: int, alpha: float = 0.1):
        super().__init__()
        self.alpha = alpha
        self.fc1 = nn.Linear(dim, dim, bias=False)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(dim, dim, bias=False)
        nn.init.kaiming_normal_(self.fc1.weight)
        nn.init.zeros_(self.fc2.weight)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.alpha * self.fc2(self.act(self.fc1(z)))


class FrozenTeacher:
    """A plain CLIP, frozen in one place: no gradients, always eval, and kept out of the
    student's module tree, so it is never in an optimiser, a DDP bucket or a checkpoint.

    Its text embeddings are a pure function of the prompt, so they are computed once per
    class set and template and reused (the reference re-encodes them every step).
    """

    def __init__(self, clip: nn.Module):
        clip = clip.eval()
        for p in clip.parameters():
            p.requires_grad_(False)
        self.encoder = VideoCLIP(clip, temporal="mean").eval()
        self._text_cache: dict[tuple, torch.Tensor] = {}
        self.cache_text = True

    def to(self, *args, **kwargs) -> "FrozenTeacher":
        self.encoder.to(*args, **kwargs)
        self._text_cache.clear()
        return self

    def _apply(self, fn) -> None:
        self.encoder._apply(fn)
        self._text_cache.clear()

    def set_dtype(self, dtype: torch.dtype) -> None:
        """Run the teacher in reduced precision (bf16/fp16) to save time and memory; its
        features are cast back to the student's dtype in the loss."""
        self.encoder.to(dtype)
        self._text_cache.clear()

    @torch.no_grad()
    def encode_frames(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) -> (B*T, D) normalised per-frame features."""
        return self.encoder.encode_frames(video).flatten(0, 1)

    @torch.no_grad()
    def prompt_embeddings(self, bank: PromptBank, template_index: int) -> torch.Tensor:
        """(C, D) normalised embeddings of every class prompt under one template."""
        key = (bank.key, bank.templates[template_index])
        cached = self._text_cache.get(key) if self.cache_text else None
        if cached is None:
            device = self.encoder.clip.logit_scale.device
            cached = self.encoder.encode_text(bank.tokens(template_index).to(device))
            if self.cache_text:
                self._text_cache[key] = cached
        return cached

    @torch.no_grad()
    def class_embeddings(self, bank: PromptBank, template_indices) -> torch.Tensor:
        """(C, D) classifier over the given templates, built like the student's."""
        stacked = torch.stack([self.prompt_embeddings(bank, i) for i in template_indices], dim=1)
        return F.normalize(stacked.mean(dim=1), dim=-1)


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """mean(1 - cos) over rows."""
    return (1.0 - F.cosine_similarity(student, teacher.to(student.dtype), dim=-1)).mean()


@dataclass
class LossTerms:
    loss: torch.Tensor
    ce: torch.Tensor
    distill_visual: torch.Tensor
    distill_text: torch.Tensor
    logits: torch.Tensor

    def scalars(self) -> dict[str, float]:
        return {k: float(getattr(self, k).detach()) for k in
                ("loss", "ce", "distill_visual", "distill_text")}


class Froster(nn.Module):
    """Student + residual projectors (+ the frozen teacher, held outside the module tree).

    `distill=False` gives the plain fine-tuning baseline: CE only, no teacher, no heads.
    The teacher is the plain CLIP whatever the student's backbone: `teacher_clip`, or by
    default a copy of the student's CLIP without the backbone's added modules. Whatever
    the backbone, the visual distillation compares the student's per-frame embeddings
    (for `actionclip`, its fused per-frame outputs) with the teacher's frames.
    """

    def __init__(self, student: VideoCLIP, teacher_clip: nn.Module | None = None,
                 distill: bool = True, distill_weight: float = 2.0, alpha: float = 0.1,
                 text_sharding: bool = False):
        super().__init__()
        self.student = student
        self.distill = distill
        self.distill_weight = distill_weight
        self.text_sharding = text_sharding  # under DDP: each rank encodes its share of classes
        self._teacher = None
        self._frozen_classes: dict[tuple, torch.Tensor] = {}
        if distill:
            if teacher_clip is None:
                teacher_clip = student.plain_clip()
            dim = student.embed_dim
            self.projector_v = ResidualProjector(dim, alpha)
            self.projector_t = ResidualProjector(dim, alpha)
            self._teacher = FrozenTeacher(teacher_clip)

    @property
    def teacher(self) -> FrozenTeacher | None:
        return self._teacher

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self._frozen_classes.clear()
        if self._teacher is not None:
            self._teacher._apply(fn)
        return self

    def class_embeddings(self, bank: PromptBank, template_indices, device) -> torch.Tensor:
        """(C, D) student classifier of this step's prompts. With the text tower frozen
        (`train_params: added`) it is a constant of the prompts: computed once without a
        graph and reused."""
        if self.student.text_trainable:
            tokens = bank.stacked(template_indices).to(device)
            return sharded_encode_classes(self.student, tokens) if self.text_sharding \
                else self.student.encode_classes(tokens)
        key = (bank.key, tuple(template_indices))
        if key not in self._frozen_classes:
            with torch.no_grad():
                tokens = bank.stacked(template_indices).to(device)
                self._frozen_classes[key] = self.student.encode_classes(tokens)
        return self._frozen_classes[key]

    def forward(self, video: torch.Tensor, labels: torch.Tensor, bank: PromptBank,
                template_indices) -> LossTerms:
        """One training step's loss. `video`: normalised (B, T, 3, H, W) frames."""
        frames = self.student.encode_frames(video)
        classes = self.class_embeddings(bank, template_indices, video.device)
        logits = self.student.logits(frames, classes)
        ce = F.cross_entropy(logits, labels)
        zero = ce.new_zeros(())
        if not self.distill:
            return LossTerms(ce, ce.detach(), zero, zero, logits)
        visual = distillation_loss(self.projector_v(frames.flatten(0, 1)),
                                   self._teacher.encode_frames(video))
        text = distillation_loss(self.projector_t(classes),
                                 self._teacher.class_embeddings(bank, template_indices))
        loss = ce + self.distill_weight * (visual + text)
        return LossTerms(loss, ce.detach(), visual.detach(), text.detach(), logits)
