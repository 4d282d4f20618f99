"""The searchable library (`froster serve --library DIR`): the folder's `VideoIndex`
(embedded once, cached beside the videos as `froster search` caches it), and the only
files of it the server hands out.

A file is served only when it is one of the indexed videos and its real path (symbolic
links followed) is a regular file inside the library's real path; a name is looked up in
the index, never joined to a path as given, so ``../`` and absolute names find nothing.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ..inference.search import VideoIndex

__all__ = ["Library"]


class Library:
    def __init__(self, folder: str | os.PathLike, recognizer, index_file=None):
        self.folder = Path(folder)
        self.root = self.folder.resolve()
        self.index = VideoIndex(self.folder, recognizer, index_file)
        self.report = None
        self._videos: set[str] = set()
        self._thumbnails: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def update(self, progress: bool | None = None):
        """Embed new and changed videos (model work: run it in the model thread)."""
        self.report = self.index.update(progress=progress)
        self._videos = set(self.index.videos)
        return self.report

    def search(self, query: str, top_k: int | None = None) -> list[tuple[str, float]]:
        """[(relative path, cosine similarity)], best first (text tower: model thread)."""
        return self.index.search(query, top_k)

    def path(self, name: str) -> Path | None:
        """The file of the indexed video `name` (relative, '/'-separated), or None."""
        if name not in self._videos:
            return None
        real = (self.folder / name).resolve()
        if not real.is_relative_to(self.root) or not real.is_file():
            return None
        return real

    def thumbnail(self, name: str) -> bytes | None:
        from .pictures import thumbnail

        path = self.path(name)
        if path is None:
            return None
        with self._lock:
            cached = self._thumbnails.get(name)
        if cached is None:
            cached = thumbnail(path)
            with self._lock:
                self._thumbnails[name] = cached
        return cached
