"""froster's own checkpoint folder: `model.safetensors` (the student's CLIP weights) +
`config.json` (what rebuilds it: `StudentSpec` fields, QuickGELU, and under "extra" the
run's config), and optionally `projectors.safetensors` (FROSTER's heads, kept by
`froster import` for `train init=`). Written by `froster.checkpoint`; read here like any
other format, so a command that takes a checkpoint takes a folder or a file alike."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import FrosterError, MissingFileError
from ..student_spec import StudentSpec
from .imported import ImportedStudent

FORMAT = "froster"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
PROJECTORS_FILE = "projectors.safetensors"  # FROSTER's heads, when imported with them


def folder_of(path: str | os.PathLike) -> Path | None:
    """The checkpoint folder `path` names (the folder, or one of its files), else None."""
    path = Path(path)
    if path.is_dir():
        return path
    if path.name in (CONFIG_FILE, WEIGHTS_FILE, PROJECTORS_FILE):
        return path.parent
    return None


def read_config(path: str | os.PathLike) -> dict | None:
    """The folder's config.json as written, or None when `path` is not a checkpoint folder
    (or has no config.json)."""
    folder = folder_of(path)
    if folder is None or not (folder / CONFIG_FILE).is_file():
        return None
    try:
        return json.loads((folder / CONFIG_FILE).read_text())
    except json.JSONDecodeError as err:
        raise FrosterError(f"{folder / CONFIG_FILE} is not valid JSON: {err}") from None


def run_config(path: str | os.PathLike) -> dict | None:
    """The training run's config the folder records ("extra" -> "config"), if any."""
    config = read_config(path)
    return None if config is None else (config.get("extra") or {}).get("config")


def read(path: str | os.PathLike) -> ImportedStudent:
    """The student of a checkpoint folder (spec, weights, heads, recorded config)."""
    from safetensors.torch import load_file

    folder = folder_of(path)
    config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
    for needed in (config_path, weights_path):
        if not needed.is_file():
            raise MissingFileError(
                f"{needed} not found: a froster checkpoint is a folder with {CONFIG_FILE} and "
                f"{WEIGHTS_FILE} (made by `froster train`, `froster average`, `froster export` "
                f"or `froster import`)")
    config = read_config(folder)
    spec = StudentSpec.from_dict(config)
    spec.pretrained = None  # the weights come from the checkpoint, not a download
    heads = load_file(str(folder / PROJECTORS_FILE)) if (folder / PROJECTORS_FILE).is_file() else None
    extra = config.get("extra") or {}
    return ImportedStudent(spec=spec, weights=load_file(str(weights_path)), heads=heads,
                           kind="froster checkpoint", source=str(weights_path), format=FORMAT,
                           config=extra.get("config") or {}, saved=config)
