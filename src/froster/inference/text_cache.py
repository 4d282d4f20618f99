"""Disk cache of class-text embeddings, so that a repeated run skips the text tower.

An entry is keyed by a hash of (model identity, every prompt of every class in order). The
model identity names the exact weights: a checkpoint's file hash, an open_clip tag, or a
hash of the weights themselves (see `api.model_identity`). Entries live under the cache
directory: ``--cache-dir``, else ``$FROSTER_CACHE``, else ``$XDG_CACHE_HOME/froster``
(``~/.cache/froster``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import torch

from ..files import atomic_write

_SCHEMA = 1  # bump when the meaning of a cached embedding changes


def default_cache_dir() -> Path:
    if os.environ.get("FROSTER_CACHE"):
        return Path(os.environ["FROSTER_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "froster"


def text_key(identity: str, prompts: Sequence[str], extra: Sequence[str] = ()) -> str:
    """Key of the embeddings of `prompts` (every prompt of every class, in order) by the
    model named `identity`; `extra` distinguishes how prompts are grouped into classes."""
    payload = json.dumps({"schema": _SCHEMA, "model": identity, "prompts": list(prompts),
                          "extra": list(extra)}, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class TextCache:
    """``get``/``put`` of (C, D) float32 embeddings by key. Writes are atomic; a damaged
    entry is treated as missing. ``hits`` and ``misses`` count lookups."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = Path(directory).expanduser() if directory else default_cache_dir()
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path:
        return self.directory / "text" / key[:2] / f"{key}.safetensors"

    def get(self, key: str) -> torch.Tensor | None:
        from safetensors.torch import load_file

        path = self.path(key)
        try:
            embeddings = load_file(str(path))["embeddings"]
        except Exception:  # noqa: BLE001 - absent, unreadable or truncated: recompute
            self.misses += 1
            return None
        self.hits += 1
        return embeddings

    def put(self, key: str, embeddings: torch.Tensor) -> None:
        from safetensors.torch import save_file

        path = self.path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tensor = embeddings.detach().to("cpu", torch.float32).contiguous()
            atomic_write(path, lambda p: save_file({"embeddings": tensor}, p))
        except OSError:  # a read-only or full cache must not stop a prediction
            pass
