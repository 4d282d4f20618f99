"""FROSTER's residual feature distillation: a frozen CLIP teacher, two residual
projectors and the loss. The projectors serve training only; inference uses the student."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .model import VideoCLIP
from .prompts import PromptBank
from .sharding import gather_shares, local_share


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
        self.encoder._apply(fn)  # torch's hook for .to()/.half(): the teacher follows the student
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
            cached = self.encoder.encode_text(bank.tokens(template_index))
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

    def scalars(self) -> dict[str, torch.Tensor]:
        """The loss terms as 0-d float64 tensors on their device (no host sync; read them
        at log steps): float64, so that sums over steps are what Python floats gave."""
        return {k: getattr(self, k).detach().double() for k in
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
        self._text_plans: dict[tuple, object] = {}  # prompt plans on the device, per template set
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
        self._text_plans.clear()
        if self._teacher is not None:
            self._teacher._apply(fn)
        return self

    def text_plan(self, bank: PromptBank, template_indices, device, share: slice | None = None):
        """The student's prompt plan for these templates (of this rank's `share` of the
        classes), made once and kept on `device`: a step copies no tokens and has no
        host-device sync in the text tower."""
        key = (bank.key, tuple(template_indices), None if share is None else (share.start, share.stop))
        if key not in self._text_plans:
            tokens = bank.stacked(template_indices)
            self._text_plans[key] = self.student.plan_classes(
                tokens if share is None else tokens[share]).to(device)
        return self._text_plans[key]

    def prepare_text(self, bank: PromptBank, device) -> None:
        """Make the plans of every template set training can draw, and the teacher's
        embeddings of their prompts, before the first step (a step then only looks them up)."""
        sets = bank.training_template_sets()
        if self.student.text_trainable:
            share = local_share(len(bank)) if self.text_sharding else None
            for templates in sets:
                self.text_plan(bank, templates, device, share)
        if self._teacher is not None and self._teacher.cache_text:
            for index in sorted({i for templates in sets for i in templates}):
                self._teacher.prompt_embeddings(bank, index)

    def class_embeddings(self, bank: PromptBank, template_indices, device) -> torch.Tensor:
        """(C, D) student classifier of this step's prompts. Under DDP with `text_sharding`
        each rank encodes its share of the classes (exact: sharding.py). With the text tower
        frozen (`train_params: added`) it is a constant of the prompts: computed once
        without a graph and reused."""
        if self.student.text_trainable:
            share = local_share(len(bank)) if self.text_sharding else None
            classes = self.student.encode_classes(self.text_plan(bank, template_indices, device, share))
            return classes if share is None else gather_shares(classes, len(bank))
        key = (bank.key, tuple(template_indices))
        if key not in self._frozen_classes:
            with torch.no_grad():
                self._frozen_classes[key] = self.student.encode_classes(
                    self.text_plan(bank, template_indices, device))
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
