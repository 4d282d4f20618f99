"""froster's own training checkpoint (`RUN/checkpoints/last.pt`): the student and the
FROSTER heads inside the full training state. `resume=` continues such a run; reading it
here lets every command (and `init=`, `export --to reference`) use its weights."""

from __future__ import annotations

from ..clip import resolve_quick_gelu
from ..errors import FrosterError
from ..student_spec import StudentSpec
from .imported import ImportedStudent

FORMAT = "froster-training"
EXPECTED = "a froster training checkpoint (checkpoints/last.pt: model, optimizer, config, ...)"
_STUDENT = "student.clip."


def looks_like(obj) -> bool:
    return (isinstance(obj, dict) and isinstance(obj.get("model"), dict)
            and isinstance(obj.get("config"), dict) and "optimizer" in obj
            and any(str(k).startswith(_STUDENT) for k in obj["model"]))


def read(obj, source: str, temporal: str | None = None, **_) -> ImportedStudent:
    if not looks_like(obj):
        raise FrosterError(f"{source} is not {EXPECTED}")
    config = obj["config"]
    spec = StudentSpec.from_dict(config)
    spec.quick_gelu = resolve_quick_gelu(spec.model, spec.pretrained, spec.quick_gelu, source)
    spec.pretrained = None
    if temporal:
        spec.temporal = temporal
    weights = {k[len(_STUDENT):]: v for k, v in obj["model"].items() if k.startswith(_STUDENT)}
    heads = {k: v for k, v in obj["model"].items() if k.startswith(("projector_v.", "projector_t."))}
    epoch = obj.get("epoch")
    return ImportedStudent(spec=spec, weights=weights, heads=heads or None,
                           kind="froster training checkpoint"
                                + (f" (after epoch {epoch})" if isinstance(epoch, int) else ""),
                           source=source, format=FORMAT,
                           config=recorded_config(obj, source))


def recorded_config(obj, source: str) -> dict:
    """The run's whole config (as an export folder's extra.config holds it)."""
    return dict(obj["config"]) if looks_like(obj) else {}
