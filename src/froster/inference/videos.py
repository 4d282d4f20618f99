"""Finding the videos in a folder."""

from __future__ import annotations

import os
from pathlib import Path

#: File name endings taken as videos when a folder is scanned (explicit files are always taken).
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".gif", ".mpg", ".mpeg",
                    ".wmv", ".flv", ".3gp", ".ts", ".mts", ".ogv")


def find_videos(folder: str | os.PathLike) -> list[Path]:
    """Video files under `folder` (recursive, sorted), skipping hidden files and folders."""
    folder = Path(folder)
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root) / f for f in files
                  if not f.startswith(".") and f.lower().endswith(VIDEO_EXTENSIONS)]
    return sorted(found)
