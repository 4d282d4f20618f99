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
    one rename: a crash leaves the old file or the new one, never a half-written one."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes owner-only files; keep the usual mode
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_sha256(*paths: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """One SHA-256 over the bytes of `paths`, in order."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            while block := f.read(chunk):
                digest.update(block)
    return digest.hexdigest()
