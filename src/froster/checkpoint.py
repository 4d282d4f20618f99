"""The student alone, exported for inference: `model.safetensors` + `config.json` in a
folder. The teacher and the projectors are training-only and never exported."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from . import __version__
from .clip import create_clip
from .model import VideoCLIP

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


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


def build_student(spec: StudentSpec, device="cpu"):
    """(VideoCLIP, tokenizer) from a spec, with the CLIP weights it names."""
    clip, tokenizer = create_clip(spec.model, spec.pretrained, spec.quick_gelu, device=device)
    return VideoCLIP(clip, spec.temporal, spec.neighbor_padding), tokenizer


def uses_quick_gelu(student: VideoCLIP) -> bool:
    blocks = student.clip.visual.transformer.resblocks if hasattr(student.clip.visual, "transformer") else []
    return any(type(b.mlp.gelu).__name__ == "QuickGELU" for b in blocks if hasattr(b, "mlp"))


def student_config(student: VideoCLIP, spec: StudentSpec, extra: dict | None = None) -> dict:
    """The config.json of a student checkpoint: what `load_student` rebuilds it from."""
    config = asdict(spec) | {"quick_gelu": uses_quick_gelu(student), "froster_version": __version__}
    if extra:
        config["extra"] = extra
    return config


def write_checkpoint(folder: str | os.PathLike, weights: dict, config: dict) -> Path:
    """Write CLIP weights and their config.json atomically into `folder`."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _atomic(folder / WEIGHTS_FILE, lambda p: save_file(weights, p))
    _atomic(folder / CONFIG_FILE, lambda p: Path(p).write_text(json.dumps(config, indent=2)))
    return folder


def export_student(student: VideoCLIP, spec: StudentSpec, folder: str | os.PathLike,
                   extra: dict | None = None) -> Path:
    """Write the student's weights and config atomically into `folder`."""
    state = {k: v.detach().contiguous().cpu() for k, v in student.clip.state_dict().items()}
    return write_checkpoint(folder, state, student_config(student, spec, extra))


def load_student(path: str | os.PathLike, device="cpu"):
    """(VideoCLIP, tokenizer, config dict) from an exported folder (or its config/weights file)."""
    from safetensors.torch import load_file

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    for needed in (config_path, weights_path):
        if not needed.is_file():
            raise FileNotFoundError(
                f"{needed} not found: a froster checkpoint is a folder with {CONFIG_FILE} and "
                f"{WEIGHTS_FILE} (made by `froster train`, `froster average` or `froster export`)")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_path} is not valid JSON: {err}") from None
    spec = StudentSpec.from_dict(config)
    spec.pretrained = None  # the weights come from the checkpoint, not a download
    student, tokenizer = build_student(spec)
    state = load_file(str(weights_path))
    result = student.clip.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f"{weights_path} does not fit {spec.model}: missing "
                         f"{result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]}")
    return student.to(device).eval(), tokenizer, config


def _atomic(target: Path, write) -> None:
    """Write to a temporary file beside `target`, then rename: a crash leaves the old file."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes owner-only files; keep the usual mode
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
