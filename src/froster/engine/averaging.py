"""Uniform weight averaging (the reference tests the mean of epochs 2..last, SWA-style).

Training keeps the average as a running float64 sum (`WeightSum`, part of the training
state, so a resumed run continues it), which needs no stored epoch exports;
`average_folders` / `average_run` average exported checkpoint folders afterwards with the
same sum, so both give the same weights for the same epochs. The result is a checkpoint
folder like any other.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..checkpoint import CONFIG_FILE, WEIGHTS_FILE, write_checkpoint
from ..errors import FrosterError, MissingFileError
from .checkpoints import epoch_folders


class WeightSum:
    """Float64 sum of state dicts, added one at a time (e.g. once per epoch), with the tag
    of each (the epoch). `mean()` divides and casts back to the weights' own dtypes."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.dtypes: dict[str, torch.dtype] = {}
        self.tags: list = []

    def __len__(self) -> int:
        return len(self.tags)

    def add(self, state: dict[str, torch.Tensor], tag=None, source: str = "the weights") -> None:
        if not self.sums:
            self.dtypes = {k: v.dtype for k, v in state.items()}
            self.sums = {k: v.detach().to("cpu", torch.float64, copy=True) for k, v in state.items()}
        else:
            if state.keys() != self.sums.keys():
                raise FrosterError(f"{source} holds different weights from those summed before: "
                                   "all checkpoints must come from the same architecture")
            for k, v in state.items():
                self.sums[k] += v.detach().to("cpu", torch.float64)
        self.tags.append(tag)

    def mean(self) -> dict[str, torch.Tensor]:
        if not self.tags:
            raise FrosterError("no weights to average")
        return {k: (v / len(self.tags)).to(self.dtypes[k]).contiguous()
                for k, v in self.sums.items()}

    def state_dict(self) -> dict:
        return {"sums": self.sums, "dtypes": {k: str(d).removeprefix("torch.")
                                              for k, d in self.dtypes.items()},
                "tags": list(self.tags)}

    @classmethod
    def from_state_dict(cls, state: dict) -> "WeightSum":
        total = cls()
        total.sums = dict(state["sums"])
        total.dtypes = {k: getattr(torch, name) for k, name in state["dtypes"].items()}
        total.tags = list(state["tags"])
        return total


def sum_folders(folders, tags=None) -> tuple[WeightSum, dict]:
    """(WeightSum of the folders' weights, config.json of the first folder)."""
    from safetensors.torch import load_file

    folders = [Path(f) for f in folders]
    if not folders:
        raise FrosterError("no checkpoints to average")
    total, config = WeightSum(), None
    for folder, tag in zip(folders, tags or [str(f) for f in folders]):
        for needed in (folder / WEIGHTS_FILE, folder / CONFIG_FILE):
            if not needed.is_file():
                raise MissingFileError(f"{needed} not found: not a froster checkpoint folder")
        if config is None:
            config = json.loads((folder / CONFIG_FILE).read_text())
        total.add(load_file(str(folder / WEIGHTS_FILE)), tag, source=str(folder))
    return total, config


def average_folders(folders, output: str | Path, extra: dict | None = None) -> Path:
    """Average the weights of student folders (model.safetensors + config.json) into `output`.
    Sums run in float64, so the order of the folders does not matter."""
    folders = [Path(f) for f in folders]
    total, config = sum_folders(folders)
    config = dict(config)
    config["extra"] = dict(config.get("extra") or {}) | {"averaged": [str(f) for f in folders]} \
        | (extra or {})
    return write_checkpoint(output, total.mean(), config)


def run_epochs(output_dir: str | Path, from_epoch: int, to_epoch: int | None = None) -> dict:
    """{epoch: folder} of the run's exports from_epoch..to_epoch (default: the last); an error
    that says why when there are none or some in the range were not kept."""
    output_dir = Path(output_dir)
    found = epoch_folders(output_dir)
    if not found:
        hint = (f"; the run kept no epoch exports (keep_epochs), its average is "
                f"{output_dir / 'average'}, written while training"
                if (output_dir / "average").is_dir() else " (is this a `froster train` output folder?)")
        raise MissingFileError(f"no epoch checkpoints under {output_dir / 'epochs'}{hint}")
    last = max(found) if to_epoch is None else to_epoch
    chosen = {e: f for e, f in found.items() if from_epoch <= e <= last}
    if not chosen:
        raise FrosterError(f"no epoch checkpoints in {from_epoch}..{last} under {output_dir}; "
                           f"found epochs {list(found)}")
    missing = [e for e in range(from_epoch, last + 1) if e not in chosen]
    if missing:
        raise FrosterError(f"{output_dir} has no export of epochs {_ranges(missing)} (not kept: "
                           f"keep_epochs); found epochs {list(found)}. Average those with "
                           f"--from-epoch {min(chosen)}, or use {output_dir / 'average'}, the "
                           "average written while training")
    return chosen


def average_run(output_dir: str | Path, from_epoch: int = 2, to_epoch: int | None = None,
                output: str | Path | None = None) -> Path:
    """Average a run's epochs from_epoch..to_epoch (default: the last) into `<run>/average`."""
    chosen = run_epochs(output_dir, from_epoch, to_epoch)
    return average_folders(list(chosen.values()), output or Path(output_dir) / "average",
                           extra={"epochs": list(chosen)})


def _ranges(numbers: list[int]) -> str:
    if len(numbers) > 1 and numbers == list(range(numbers[0], numbers[-1] + 1)):
        return f"{numbers[0]}..{numbers[-1]}"
    return ", ".join(map(str, numbers))
