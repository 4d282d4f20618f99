"""Reading a checkpoint file without running code from it.

`torch.load(weights_only=True)` rebuilds tensors, numbers, strings and plain containers
only. Released video-CLIP checkpoints hold just that, with one exception: ViFi-CLIP saves
its yacs config object (`yacs.config.CfgNode`, a dict subclass). We read that class as a
plain `OrderedDict` (nothing from yacs runs, and yacs need not be installed). A file that
needs any other class is refused unless the caller trusts it (`--trust-pickle`).
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import torch

from ..clip import is_torchscript_archive
from ..errors import FrosterError, MissingFileError


class CheckpointReadError(FrosterError):
    """A checkpoint file that cannot (or may not) be read; the message names the file."""


class _ConfigAsDict:
    """Stands in for `yacs.config.CfgNode` while unpickling: becomes an OrderedDict
    (SETITEMS fill it, BUILD's attribute state lands in its __dict__, harmlessly)."""

    def __new__(cls, *args):
        return OrderedDict()


#: Classes read as plain data, by the name the pickle gives them.
STAND_INS = [(_ConfigAsDict, "yacs.config.CfgNode")]


def read_torch_file(path: str | Path, trust_pickle: bool = False):
    """The object saved in `path` by `torch.save`, on the CPU, tensors memory-mapped where
    the file format allows (so reading a 1 GB checkpoint twice costs little)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"checkpoint not found: {path} (expected a froster checkpoint "
                               f"folder with config.json + model.safetensors, or a checkpoint "
                               f"file)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            return load_file(str(path))
        except Exception as err:  # noqa: BLE001 - a truncated or foreign file
            raise CheckpointReadError(f"{path} is not a readable .safetensors file ({err})") from None
    if is_torchscript_archive(path):
        raise CheckpointReadError(
            f"{path} is a TorchScript archive (as OpenAI's released CLIP .pt files are), not a "
            f"fine-tuned video checkpoint: use it as plain CLIP weights, e.g. --model ViT-B-16 "
            f"--pretrained {path}")
    with open(path, "rb") as f:
        head = f.read(4)
    if not (head.startswith(b"PK") or head.startswith(b"\x80")):
        raise CheckpointReadError(f"{path} is not a PyTorch checkpoint (it is neither a torch.save "
                                  f"zip archive nor a pickle; it starts with {head!r})")
    if trust_pickle:
        return _load(path, weights_only=False)
    try:
        with torch.serialization.safe_globals(STAND_INS):
            return _load(path, weights_only=True)
    except CheckpointReadError:
        raise
    except Exception as err:  # noqa: BLE001 - the unpickler's refusals come in several types
        reason = _refusal(err)
        if reason is None:
            raise CheckpointReadError(f"{path} is not a readable PyTorch checkpoint "
                                      f"({_first_line(err)})") from None
        raise CheckpointReadError(
            f"{path} was not loaded: it holds Python objects other than tensors, numbers and "
            f"strings ({reason}), and unpickling them could run code from the file. If you "
            f"trust where it came from, pass --trust-pickle (or convert it once with "
            f"`froster import {path} -o DIR --trust-pickle`)") from None


def _load(path: Path, weights_only: bool):
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only, mmap=True)
    except RuntimeError as err:
        if "mmap" not in str(err):  # legacy (pre-zip) files cannot be memory-mapped
            raise
    except ModuleNotFoundError as err:
        raise CheckpointReadError(f"{path} needs the Python module {err.name!r} to be unpickled; "
                                  f"install it, or ask for a weights-only file") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except ModuleNotFoundError as err:
        raise CheckpointReadError(f"{path} needs the Python module {err.name!r} to be unpickled; "
                                  f"install it, or ask for a weights-only file") from None


def _refusal(err: Exception) -> str | None:
    """The weights-only unpickler's reason for refusing, or None for another failure."""
    text = str(err)
    if "Weights only load failed" not in text and "WeightsUnpickler" not in text:
        return None
    for line in text.splitlines():
        if "WeightsUnpickler error:" in line:
            detail = line.split("WeightsUnpickler error:", 1)[1].strip()
            return detail.split(" was not an allowed global")[0].split(". Please")[0] or \
                "an object the safe loader does not rebuild"
    return "an object the safe loader does not rebuild"


def _first_line(err: Exception) -> str:
    lines = [line for line in str(err).splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[0][:300]}" if lines else type(err).__name__
