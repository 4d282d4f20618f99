"""The student alone, exported for inference: `model.safetensors` + `config.json` in a
folder (the layout: `froster.interop.froster_folder`). The teacher and the projectors are
training-only and never exported by training (`froster import` keeps a foreign file's
heads beside it, in projectors.safetensors, for `train init=`). Every checkpoint, a folder
or another project's file, is read through `froster.interop.read_checkpoint`."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from .clip import create_clip
from .errors import FrosterError
from .files import atomic_write
from .interop import read_checkpoint
from .interop.froster_folder import CONFIG_FILE, PROJECTORS_FILE, WEIGHTS_FILE
from .model import VideoCLIP
from .student_spec import StudentSpec
from .version import __version__


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
    atomic_write(folder / WEIGHTS_FILE, lambda p: save_file(weights, p))
    atomic_write(folder / CONFIG_FILE, lambda p: Path(p).write_text(json.dumps(config, indent=2)))
    return folder


def export_student(student: VideoCLIP, spec: StudentSpec, folder: str | os.PathLike,
                   extra: dict | None = None) -> Path:
    """Write the student's weights and config atomically into `folder`."""
    state = {k: v.detach().contiguous().cpu() for k, v in student.clip.state_dict().items()}
    return write_checkpoint(folder, state, student_config(student, spec, extra))


def build_imported(imported, device="cpu"):
    """(VideoCLIP, tokenizer) with the weights of an `ImportedStudent`."""
    spec = StudentSpec(**{**asdict(imported.spec), "pretrained": None})
    student, tokenizer = build_student(spec)
    load_imported_weights(student.clip, imported.weights,
                          f"{imported.source} does not fit {spec.model} with temporal={spec.temporal}")
    return student.to(device).eval(), tokenizer


def load_imported_weights(clip, weights: dict, does_not_fit: str) -> None:
    """Load `weights` into `clip`, every key matching (logit_bias, which only some CLIPs
    have, may be absent); otherwise a ValueError starting with `does_not_fit`."""
    result = clip.load_state_dict(weights, strict=False)
    missing = [k for k in result.missing_keys if k != "logit_bias"]
    if missing or result.unexpected_keys:
        raise FrosterError(f"{does_not_fit}: {len(missing)} missing weights (e.g. {missing[:3]}), "
                           f"{len(result.unexpected_keys)} unexpected (e.g. "
                           f"{result.unexpected_keys[:3]})")


def load_student(path: str | os.PathLike, device="cpu", trust_pickle: bool = False,
                 announce: bool = True, **options):
    """(VideoCLIP, tokenizer, config dict) from an export folder (or its config/weights
    file), or from another project's checkpoint file (FROSTER reference / Open-VCLIP /
    ViFi-CLIP, froster's last.pt), whose kind is then said in one line on stderr.

    Files are read with `torch.load(weights_only=True)`; `trust_pickle` allows a file that
    needs full unpickling (only for files from a trusted source)."""
    imported = read_checkpoint(path, trust_pickle=trust_pickle, **options)
    student, tokenizer = build_imported(imported, device)
    if imported.saved is not None:
        return student, tokenizer, imported.saved
    if announce and _is_main_process():
        print(f"froster: {path}: {imported.describe()}", file=sys.stderr)
        for warning in imported.warnings:
            print(f"froster: warning: {warning}", file=sys.stderr)
    config = asdict(imported.spec) | {"quick_gelu": uses_quick_gelu(student),
                                      "extra": {"config": imported.config,
                                                "source": imported.record()}}
    return student, tokenizer, config


def export_imported(imported, folder: str | os.PathLike, student=None) -> Path:
    """An `ImportedStudent` as an export folder (+ projectors.safetensors when it has heads)."""
    from safetensors.torch import save_file

    student = student if student is not None else build_imported(imported)[0]
    folder = export_student(student, imported.spec, folder,
                            {"config": imported.config,
                             "source": imported.record(heads_used=bool(imported.heads))})
    target = folder / PROJECTORS_FILE
    if imported.heads:
        heads = {k: v.detach().contiguous().cpu() for k, v in imported.heads.items()}
        atomic_write(target, lambda p: save_file(heads, p))
    elif target.exists():
        target.unlink()
    return folder


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0
