"""Training checkpoints: everything needed to continue a run exactly (student and
projector weights, optimiser, grad scaler, step, epoch, RNG states, resolved config),
written atomically so that a crash mid-write leaves the previous checkpoint intact.

Layout of a run folder:
    config.yaml              the resolved config
    log.jsonl                one JSON object per log line
    checkpoints/last.pt      training state after the last finished epoch (resume=latest),
                             with the running weight sum of the epochs averaged so far
    epochs/epoch_NNN/        the student after epoch NNN (model.safetensors + config.json),
                             the last `keep_epochs` of them (none by default)
    average/                 uniform average of the epochs >= average_from_epoch
    eval/epoch_NNN/          reports of evaluations during training (eval_every), the same
                             number as the exports kept (at least the latest)
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import torch

from .. import __version__
from ..errors import FrosterError, MissingFileError
from ..files import atomic_write

LAST = "checkpoints/last.pt"


def epoch_folder(output_dir: str | Path, epoch: int) -> Path:
    """Folder of the student exported after `epoch` (1-based)."""
    return Path(output_dir) / "epochs" / f"epoch_{epoch:03d}"


def epoch_folders(output_dir: str | Path) -> dict[int, Path]:
    """{epoch: folder} of every exported epoch of a run, sorted."""
    found = {}
    for folder in (Path(output_dir) / "epochs").glob("epoch_*"):
        if (folder / "model.safetensors").is_file() and folder.name[6:].isdigit():
            found[int(folder.name[6:])] = folder
    return dict(sorted(found.items()))


def prune_epoch_folders(parent: str | Path, keep: int | None, last_epoch: int) -> list[Path]:
    """Remove `parent/epoch_NNN` folders of epochs <= last_epoch - keep (keep None: none)."""
    removed = []
    if keep is None:
        return removed
    for folder in sorted(Path(parent).glob("epoch_*")):
        if folder.is_dir() and folder.name[6:].isdigit() and int(folder.name[6:]) <= last_epoch - keep:
            shutil.rmtree(folder)
            removed.append(folder)
    return removed


def rng_state(template_rng: random.Random) -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "templates": template_rng.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict, template_rng: random.Random) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    template_rng.setstate(state["templates"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_state(path: str | Path, *, model, optimizer, scaler, epoch: int, step: int,
                        template_rng: random.Random, config: dict,
                        average: dict | None = None) -> Path:
    """`model` is the Froster module (not DDP-wrapped); `epoch` = epochs finished;
    `average` the running weight sum (`WeightSum.state_dict()`), if the run averages."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scaler": scaler.state_dict(), "epoch": epoch, "step": step,
             "rng": rng_state(template_rng), "config": config, "froster_version": __version__,
             "average": average}
    atomic_write(path, lambda tmp: torch.save(state, tmp))
    return path


def load_training_state(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"training checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - a truncated or foreign file
        raise FrosterError(f"{path} is not a readable froster training checkpoint ({err})") from None


def resolve_resume(resume: str, output_dir: str | Path) -> Path | None:
    """`latest` -> the run's last.pt if there is one (else start fresh); a path must exist."""
    if not resume or resume.lower() in ("none", "false", "no"):
        return None
    if resume == "latest":
        last = Path(output_dir) / LAST
        return last if last.is_file() else None
    path = Path(resume)
    if path.is_dir():
        path = path / LAST if (path / LAST).is_file() else path / "last.pt"
    if not path.is_file():
        raise MissingFileError(f"resume={resume}: no training checkpoint there (expected a "
                               f"file like <output_dir>/{LAST}, or resume=latest)")
    return path
