"""What the demo leaves on disk. Its training runs are never resumed, so once a row is
done their training states (`checkpoints/last.pt`) go, and so do the students of the
rows other than FROSTER; logs, configs and evaluation reports stay. `--keep-runs` keeps
everything, every epoch's export included."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

#: The row whose students (`<run>/average/`) stay, to try with `froster predict`.
KEPT_STUDENTS = "froster"


def folder_bytes(path: str | os.PathLike) -> int:
    """Bytes of the files under `path` (a file: its own size)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def tidy_row(row_dir: str | os.PathLike, keep_students: bool) -> int:
    """Remove each run's training state (and its students unless `keep_students`) under a
    row's folder; returns the bytes freed."""
    return sum(tidy_run(run, keep_students) for run in sorted(Path(row_dir).iterdir()))


def tidy_run(run: str | os.PathLike, keep_students: bool) -> int:
    """`tidy_row` for one run's folder (the default demo's runs end one by one)."""
    run, freed = Path(run), 0
    doomed = [run / "checkpoints"] + ([] if keep_students else [run / "average", run / "epochs"])
    for path in doomed:
        if path.is_dir():
            freed += folder_bytes(path)
            shutil.rmtree(path)
    return freed


def describe(out: str | os.PathLike) -> str:
    """'73.1 MB in /abs/froster_demo (benchmark 17.0 MB, ...)': the total and its parts."""
    out = Path(out)
    parts = {p.name: folder_bytes(p) for p in sorted(out.iterdir())}
    listing = ", ".join(f"{name} {mb(size)}" for name, size in parts.items() if size >= 0.05 * 2**20)
    return f"{mb(sum(parts.values()))} in {out.resolve()} ({listing})"


def mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB"
