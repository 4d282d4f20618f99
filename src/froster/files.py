"""Writing files safely and naming their contents: atomic replacement and SHA-256 hashes.
A leaf module: everything that writes a checkpoint, a report or a cache uses it."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(target: str | os.PathLike, write: Callable[[str], object]) -> None:
    """`write(tmp)` writes a temporary file beside `target`, then it replaces `target` in
    one rename: a crash leaves the old file or the new one, never a half-written one.
    Durable too: the file's bytes reach the disk (fsync) before the rename, and the folder's
    entry after it, so that a power loss or a killed node cannot leave a renamed but empty
    file (which a rename alone allows on ext4/xfs with delayed allocation)."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes owner-only files; keep the usual mode
    try:
        write(tmp)
        fsync_path(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_path(target.parent)


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file's bytes (or a folder's entries) to the disk. A folder that cannot be
    opened or flushed (some network file systems, Windows) is left to the file system."""
    folder = os.path.isdir(path)
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if folder else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if folder:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not folder:
            raise
    finally:
        os.close(fd)


def file_sha256(*paths: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """One SHA-256 over the bytes of `paths`, in order."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            while block := f.read(chunk):
                digest.update(block)
    return digest.hexdigest()
