"""Videos that could not be loaded: what travels with a batch, and the epoch summary.

Workers are separate processes, so each sample carries its own failures
(``Failure(path, message)``) through the collate into the batch's ``failed`` list;
the main process adds every batch's list to a ``FailureLog``.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, NamedTuple

__all__ = ["Failure", "FailureLog"]


class Failure(NamedTuple):
    path: str
    message: str


class FailureLog:
    """Collects failures in the main process; ``report()`` is the text for the log."""

    def __init__(self) -> None:
        self.failures: list[Failure] = []

    def add(self, failures: Iterable | dict) -> None:
        """Add a batch (its ``failed`` entry is read) or a list of failures."""
        if isinstance(failures, dict):
            failures = failures.get("failed", [])
        self.failures.extend(Failure(*f) for f in failures)

    def clear(self) -> None:
        self.failures.clear()

    def __len__(self) -> int:
        return len(self.failures)

    @property
    def paths(self) -> list[str]:
        """Distinct failed paths, in the order they first failed."""
        return list(dict.fromkeys(f.path for f in self.failures))

    def report(self, total: int | None = None) -> str:
        """Summary. With ``total`` (evaluation): over how many videos metrics were computed."""
        counts = Counter(f.path for f in self.failures)
        messages = {f.path: f.message for f in self.failures}
        if total is not None:
            ok = total - len(counts)
            head = f"metrics computed over {ok} of {total} videos; {len(counts)} failed to load"
        elif not counts:
            return "no video failed to load"
        else:
            head = (
                f"{len(self.failures)} video loads failed ({len(counts)} distinct videos); "
                "each was skipped and replaced by another video"
            )
        lines = [head + (":" if counts else "")]
        for path, n in counts.items():
            times = f" (x{n})" if n > 1 else ""
            lines.append(f"  {messages[path]}{times}")
        return "\n".join(lines)
