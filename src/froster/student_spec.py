"""What a student is built from before its weights are loaded. A leaf module: training,
checkpoints and every importer of other projects' files share it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StudentSpec:
    """Everything needed to rebuild a student before loading its weights."""

    model: str = "ViT-B-16"
    pretrained: str | None = "openai"
    quick_gelu: bool | None = None
    temporal: str = "neighbor"
    neighbor_padding: str = "zeros"

    @classmethod
    def from_dict(cls, data: dict) -> "StudentSpec":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)
