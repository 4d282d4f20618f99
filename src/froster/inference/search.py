"""Text search over a folder of videos.

The folder's videos are embedded once (`Recognizer.video_embedding`: the mean of the
normalised frame embeddings over all test views, normalised) into an index file beside
them, ``DIR/.froster_index.safetensors``: the embeddings plus, in its metadata, the model
identity, view settings, precision and each video's size and modification time. Later
runs embed only new or changed videos and drop removed ones; a model, view or precision
change rebuilds the index. Videos that cannot be read are remembered with their error
(tried again when the file changes) and reported. The index is saved every few hundred
videos, so an interrupted build goes on from where it stopped.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from ..errors import MissingFileError
from ..files import atomic_write
from .api import Recognizer
from .videos import find_videos

INDEX_FILE = ".froster_index.safetensors"
_SCHEMA = 1


def _stat(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


@dataclass
class UpdateReport:
    total: int = 0
    added: int = 0
    reused: int = 0
    removed: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # relative path -> error
    fallback: dict[str, str] = field(default_factory=dict)  # newly embedded: path -> reason

    def report(self) -> str:
        from ..data.failures import describe_fallbacks

        lines = [f"index: {self.total} videos, {self.added} newly embedded, {self.reused} "
                 f"reused, {self.removed} dropped, {len(self.failed)} unreadable"]
        lines += [f"  failed: {message}" for message in self.failed.values()]
        return "\n".join(lines + describe_fallbacks(self.fallback.items()))


class VideoIndex:
    """Embeddings of the videos in one folder, kept in step with the folder by `update`."""

    def __init__(self, folder: str | os.PathLike, recognizer: Recognizer,
                 index_file: str | os.PathLike | None = None):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise MissingFileError(f"{self.folder}: not a folder")
        self.recognizer = recognizer
        self.path = Path(index_file) if index_file else self.folder / INDEX_FILE
        self.videos: list[str] = []  # relative paths, one per row of `embeddings`
        self.stats: dict[str, tuple[int, int]] = {}
        self.errors: dict[str, dict] = {}  # relative path -> {size, mtime_ns, error}
        self.embeddings = torch.empty(0, recognizer.model.embed_dim)

    # -- storage ---------------------------------------------------------------------
    def _settings(self) -> dict:
        settings = {"schema": _SCHEMA, "model": self.recognizer.identity,
                    "views": self.recognizer.view_settings}
        if self.recognizer.precision != "fp32":  # fp32 indexes stay valid
            settings["precision"] = self.recognizer.precision
        return settings

    def load(self) -> bool:
        """Read the index file if it exists and fits this model; False otherwise."""
        from safetensors import safe_open

        if not self.path.is_file():
            return False
        try:
            with safe_open(str(self.path), framework="pt") as f:
                meta = json.loads(f.metadata()["index"])
                embeddings = f.get_tensor("embeddings")
        except Exception:  # noqa: BLE001 - unreadable or foreign: rebuilt
            return False
        if meta.get("settings") != self._settings() or len(meta["videos"]) != len(embeddings):
            return False
        self.videos = [v["path"] for v in meta["videos"]]
        self.stats = {v["path"]: (v["size"], v["mtime_ns"]) for v in meta["videos"]}
        self.errors = meta.get("errors", {})
        self.embeddings = embeddings.float()
        return True

    def save(self) -> None:
        from safetensors.torch import save_file

        meta = {"settings": self._settings(),
                "videos": [{"path": v, "size": self.stats[v][0], "mtime_ns": self.stats[v][1]}
                           for v in self.videos],
                "errors": self.errors}
        tensors = {"embeddings": self.embeddings.contiguous()}
        atomic_write(self.path, lambda p: save_file(tensors, p, metadata={"index": json.dumps(meta)}))

    # -- keeping in step with the folder ---------------------------------------------
    def update(self, batch_size: int | None = None, num_workers: int | None = None,
               progress: bool | None = None, save_every: int = 256) -> UpdateReport:
        """Embed new and changed videos, drop removed ones, save. Returns what changed."""
        loaded = self.load()
        current = {}
        for path in find_videos(self.folder):
            rel = path.relative_to(self.folder).as_posix()
            try:
                current[rel] = _stat(path)
            except OSError:
                continue  # vanished while scanning
        report = UpdateReport(total=len(current))
        keep = [i for i, v in enumerate(self.videos) if current.get(v) == self.stats.get(v)]
        report.removed = len(self.videos) - len(keep) if loaded else 0
        self.videos = [self.videos[i] for i in keep]
        self.embeddings = self.embeddings[keep]
        self.stats = {v: self.stats[v] for v in self.videos}
        self.errors = {v: e for v, e in self.errors.items()
                       if current.get(v) == (e["size"], e["mtime_ns"])}
        report.reused = len(self.videos)
        indexed = set(self.videos) | set(self.errors)
        todo = [v for v in current if v not in indexed]

        new_rows: list[torch.Tensor] = []
        last_save = time.monotonic()
        changed = not loaded or report.removed > 0 or bool(todo)
        for result in self.recognizer.stream([self.folder / v for v in todo], batch_size,
                                             num_workers, progress, desc="index"):
            rel = todo[result.index]
            if result.ok:
                self.videos.append(rel)
                self.stats[rel] = current[rel]
                new_rows.append(self.recognizer.video_embedding(result.frames).cpu())  # the index lives on disk
                report.added += 1
                if result.fallback:
                    report.fallback[rel] = result.fallback
            else:
                size, mtime = current[rel]
                self.errors[rel] = {"size": size, "mtime_ns": mtime, "error": result.error}
            if len(new_rows) >= save_every or time.monotonic() - last_save > 120:
                self._merge(new_rows)
                self.save()
                last_save = time.monotonic()
        self._merge(new_rows)
        if changed:
            self.save()
        report.failed = {v: e["error"] for v, e in self.errors.items()}
        return report

    def _merge(self, rows: list[torch.Tensor]) -> None:
        if rows:
            self.embeddings = torch.cat([self.embeddings, torch.stack(rows).float()])
            rows.clear()

    # -- querying --------------------------------------------------------------------
    def search(self, query: str, top_k: int | None = None,
               templates: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """[(relative path, cosine similarity)] of the indexed videos, best first."""
        text = self.recognizer.embed_texts([query], **({"templates": templates} if templates else {}))
        scores = self.embeddings @ text[0].cpu().float()
        order = scores.argsort(descending=True, stable=True).tolist()
        return [(self.videos[i], float(scores[i])) for i in order[: top_k or len(order)]]


def search_folder(recognizer: Recognizer, folder: str | os.PathLike, query: str,
                  top_k: int | None = None, templates: Sequence[str] | None = None,
                  index_file: str | os.PathLike | None = None, **update_kwargs):
    """Update the folder's index, then rank its videos by `query`: (ranking, UpdateReport)."""
    index = VideoIndex(folder, recognizer, index_file)
    report = index.update(**update_kwargs)
    return index.search(query, top_k, templates), report
