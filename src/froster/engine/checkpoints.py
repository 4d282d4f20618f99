"""Training checkpoints: everything needed to continue a run exactly (student and
projector weights, optimiser, grad scaler, step, epoch, RNG states, resolved config),
written atomically so that a crash mid-write leaves the previous checkpoint intact.

Layout of a run folder:
    config.yaml              the resolved config
    log.jsonl                one JSON object per log line
    checkpoints/last.pt      training state after the last finished epoch, or after a step in
                             the middle of one (save_every_minutes, a SIGTERM/SIGUSR1), with
                             the running weight sum of the epochs averaged so far
                             (resume=latest / resume=auto continue from it)
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


def restore_rng(state: dict, template_rng: random.Random) -> list[str]:
    """Set the RNGs as `state` holds them; returns notes on what could not be (the CUDA
    states of devices this process does not see, e.g. resumed on fewer GPUs)."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    template_rng.setstate(state["templates"])
    saved = state.get("cuda") or []
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    for index, device_state in enumerate(saved[:visible]):
        torch.cuda.set_rng_state(device_state, index)
    if len(saved) > visible:
        return [f"the state holds the CUDA random states of {len(saved)} devices and this "
                f"process sees {visible}: those of devices {visible}..{len(saved) - 1} are not "
                "restored (training draws no random numbers there; a model that does would "
                "draw other ones)"]
    return []


def load_scaler(scaler, saved: dict) -> list[str]:
    """Load the grad scaler's state; a state saved under another precision resumes with a
    note: a disabled scaler (bf16/fp32) saves nothing, so fp16 starts a fresh scaler (as a
    new run does: scale 65536, found again within a few steps), and fp16's scale is not
    needed without fp16."""
    if scaler.is_enabled() and not saved:
        return ["the state was saved without an fp16 grad scaler (precision bf16 or fp32); "
                "this fp16 run starts a fresh one (scale 65536), as a new run does"]
    if not scaler.is_enabled():
        return ["the state's fp16 grad scaler is not used under this precision"] if saved else []
    scaler.load_state_dict(saved)
    return []


def save_training_state(path: str | Path, *, model, optimizer, scaler, epoch: int, step: int,
                        template_rng: random.Random, config: dict,
                        average: dict | None = None, ranks: list | None = None,
                        progress: dict | None = None) -> Path:
    """`model` is the Froster module (not DDP-wrapped); `epoch` = epochs finished; `step` =
    optimiser steps taken; `average` the running weight sum (`WeightSum.state_dict()`), if
    the run averages; `ranks` each rank's part (its RNG states and, mid-epoch, its share of
    the epoch's sums and failures); `progress` where the unfinished epoch stands (None at
    an epoch's end: `Trainer.save_state`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scaler": scaler.state_dict(), "epoch": epoch, "step": step,
             "rng": rng_state(template_rng), "config": config, "froster_version": __version__,
             "average": average, "ranks": ranks, "progress": progress}
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


RESUME_HELP = ("continue it with resume=latest (or resume=auto, which also starts when "
               "there is nothing to resume: for requeued jobs), or start over with "
               "overwrite=true (which replaces its state, log and exports)")


def resolve_resume(resume: str, output_dir: str | Path) -> Path | None:
    """`latest` / `auto` -> the run's last.pt if there is one (else start fresh); a path
    must exist."""
    if not resume or resume.lower() in ("none", "false", "no"):
        return None
    if resume in ("latest", "auto"):
        last = Path(output_dir) / LAST
        return last if last.is_file() else None
    path = Path(resume)
    if path.is_dir():
        path = path / LAST if (path / LAST).is_file() else path / "last.pt"
    if not path.is_file():
        raise MissingFileError(f"resume={resume}: no training checkpoint there (expected a "
                               f"file like <output_dir>/{LAST}, or resume=latest)")
    return path


def start_or_resume(resume: str, output_dir: str | Path, overwrite: bool = False) -> Path | None:
    """The state a run continues from (None: it starts), refusing to start over a state
    already in `output_dir` (which the first save would overwrite) unless `overwrite`."""
    path = resolve_resume(resume, output_dir)
    last = Path(output_dir) / LAST
    if overwrite or not last.is_file():
        return path
    if path is None:
        raise FrosterError(f"{output_dir} already holds a training state ({last}); "
                           + RESUME_HELP)
    if path.resolve() != last.resolve():
        raise FrosterError(f"resume={resume} would write over the training state that "
                           f"{output_dir} holds ({last}); resume=latest continues that one, "
                           "another output_dir keeps both, overwrite=true replaces it")
    return path


#: what a run writes into its folder; a fresh start (overwrite=true) removes them
RUN_FILES = (LAST, "log.jsonl", "tensorboard", "epochs", "average", "eval",
             "failed_videos.txt")
#: what a run appends to; a fresh start where no state was saved removes them
APPENDED_FILES = ("log.jsonl", "tensorboard")


def clear_run(output_dir: str | Path, overwrite: bool = False) -> list[str]:
    """Before a fresh start (rank 0): with `overwrite`, the files of the run that was there;
    else the log of an attempt that saved no state (which the new run would append to).
    Returns the names removed."""
    removed = []
    for name in RUN_FILES if overwrite else APPENDED_FILES:
        path = Path(output_dir) / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(name)
    return removed
