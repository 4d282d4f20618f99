"""Uniform weight averaging of exported epoch checkpoints (the reference tests the mean of
epochs 2..last, SWA-style). The result is a checkpoint folder like any other."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..checkpoint import CONFIG_FILE, WEIGHTS_FILE, _atomic
from .checkpoints import epoch_folders


def average_folders(folders, output: str | Path, extra: dict | None = None) -> Path:
    """Average the weights of student folders (model.safetensors + config.json) into `output`.
    Sums run in float64, so the order of the folders does not matter."""
    from safetensors.torch import load_file, save_file

    folders = [Path(f) for f in folders]
    if not folders:
        raise ValueError("no checkpoints to average")
    total, dtypes, config = None, {}, None
    for folder in folders:
        for needed in (folder / WEIGHTS_FILE, folder / CONFIG_FILE):
            if not needed.is_file():
                raise FileNotFoundError(f"{needed} not found: not a froster checkpoint folder")
        state = load_file(str(folder / WEIGHTS_FILE))
        if total is None:
            total = {k: v.double() for k, v in state.items()}
            dtypes = {k: v.dtype for k, v in state.items()}
            config = json.loads((folder / CONFIG_FILE).read_text())
        else:
            if state.keys() != total.keys():
                raise ValueError(f"{folder} holds different weights from {folders[0]}: "
                                 "all checkpoints must come from the same architecture")
            for k, v in state.items():
                total[k] += v.double()
    averaged = {k: (v / len(folders)).to(dtypes[k]).contiguous() for k, v in total.items()}
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    config = dict(config)
    config.setdefault("extra", {})
    config["extra"] = dict(config["extra"] or {}) | {"averaged": [str(f) for f in folders]} \
        | (extra or {})
    _atomic(output / WEIGHTS_FILE, lambda p: save_file(averaged, p))
    _atomic(output / CONFIG_FILE, lambda p: Path(p).write_text(json.dumps(config, indent=2)))
    return output


def average_run(output_dir: str | Path, from_epoch: int = 2, to_epoch: int | None = None,
                output: str | Path | None = None) -> Path:
    """Average a run's epochs from_epoch..to_epoch (default: the last) into `<run>/average`."""
    found = epoch_folders(output_dir)
    if not found:
        raise FileNotFoundError(f"no epoch checkpoints under {Path(output_dir) / 'epochs'} "
                                "(is this a `froster train` output folder?)")
    last = max(found) if to_epoch is None else to_epoch
    chosen = [f for e, f in found.items() if from_epoch <= e <= last]
    if not chosen:
        raise ValueError(f"no epoch checkpoints in {from_epoch}..{last} under {output_dir}; "
                         f"found epochs {list(found)}")
    epochs = [e for e in found if from_epoch <= e <= last]
    return average_folders(chosen, output or Path(output_dir) / "average",
                           extra={"epochs": epochs})
