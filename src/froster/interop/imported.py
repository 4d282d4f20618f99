"""What every reader returns: a student ready to build, in froster's own terms."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..student_spec import StudentSpec
from .temporal_types import NAMES


@dataclass
class ImportedStudent:
    """A student read from a checkpoint file of any supported kind.

    - `spec`: architecture (open_clip name), QuickGELU, temporal type; `pretrained` is None
      (the weights are all here).
    - `weights`: the CLIP's state dict in open_clip names (`student.clip.state_dict()`).
    - `heads`: FROSTER's projector heads in froster names (`projector_v.fc1.weight`, ...)
      when the file has them (training checkpoints), else None.
    - `config`: froster config keys the source records (num_frames, sampling_rate, ...).
    - `kind`: the format in words; `dropped`: what was left out, in words; `warnings`.
    - `saved`: for a froster export folder, its config.json as written.
    """

    spec: StudentSpec
    weights: dict[str, torch.Tensor]
    kind: str
    source: str
    format: str
    heads: dict[str, torch.Tensor] | None = None
    config: dict = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    saved: dict | None = None  # a froster export's whole config.json

    def describe(self, heads_used: bool = False) -> str:
        """One line: "FROSTER reference checkpoint, ViT-B-16 (QuickGELU), neighbour attention
        (VCLIP), 8 frames, teacher skipped, FROSTER heads dropped"."""
        parts = [self.kind, self.spec.model + (" (QuickGELU)" if self.spec.quick_gelu else ""),
                 NAMES.get(self.spec.temporal, self.spec.temporal)]
        if self.config.get("num_frames"):
            parts.append(f"{self.config['num_frames']} frames")
        parts += self.dropped
        if self.heads:
            parts.append("FROSTER heads " + ("kept" if heads_used else "dropped"))
        return ", ".join(parts + self.notes)

    def record(self, heads_used: bool = False) -> dict:
        """What a froster export's config.json says about where the weights came from."""
        return {"format": self.format, "kind": self.kind, "path": self.source,
                "summary": self.describe(heads_used)}
