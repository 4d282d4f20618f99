"""A model's identity: a string that names its exact weights and the settings that change
its embeddings. It keys the text-embedding cache and the search indexes, so two models
with different weights never share an entry."""

from __future__ import annotations

import hashlib
import os

import torch

from ..clip import NO_WEIGHTS
from ..files import file_sha256
from ..interop.froster_folder import CONFIG_FILE, WEIGHTS_FILE, folder_of


def weights_sha256(module: torch.nn.Module) -> str:
    """Hash of a module's weights (names, shapes, dtypes, values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def checkpoint_identity(path: str | os.PathLike, temporal: str, neighbor_padding: str) -> str:
    """A froster checkpoint folder by its files' hash; another project's file by its own."""
    folder = folder_of(path)
    if folder is not None:
        return "checkpoint:" + file_sha256(folder / CONFIG_FILE, folder / WEIGHTS_FILE)
    return f"imported:{temporal}:{neighbor_padding}:{file_sha256(path)}"


def pretrained_identity(model: str, pretrained: str | None, settings: str) -> str | None:
    """An open_clip model by its tag or weights file; None for random weights (hashed from
    the weights when needed)."""
    if pretrained in NO_WEIGHTS:
        return None
    if os.path.isfile(str(pretrained)):
        return f"file:{settings}:{file_sha256(pretrained)}"
    return f"open_clip:{settings}:{pretrained}"


def weights_identity(temporal: str, neighbor_padding: str, clip: torch.nn.Module) -> str:
    return f"weights:{temporal}:{neighbor_padding}:{weights_sha256(clip)}"
