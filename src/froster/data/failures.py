"""Videos that could not be loaded, or were sampled another way than the sampling rule
says: what travels with a batch, and the epoch summary.

Workers are separate processes, so each sample carries its own failures
(``Failure(path, message)``) and fallbacks (``Fallback(path, reason)``: the reference
sampler could not follow the reference for this video, froster.data.sampling.reference)
through the collate into the batch's ``failed`` and ``fallback`` lists; the main process
adds every batch's lists to a ``FailureLog``.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, NamedTuple

__all__ = ["Failure", "Fallback", "FailureLog", "describe_fallbacks"]


class Failure(NamedTuple):
    path: str
    message: str


class Fallback(NamedTuple):
    path: str
    reason: str


def describe_fallbacks(fallbacks: Iterable) -> list[str]:
    """``["N videos sampled with a fallback:", "  path: reason", ...]``, one line per video
    (its first reason); empty when there are none."""
    reasons: dict[str, str] = {}
    for path, reason in fallbacks:
        reasons.setdefault(path, reason)
    if not reasons:
        return []
    noun = "video" if len(reasons) == 1 else "videos"
    return [f"{len(reasons)} {noun} sampled with a fallback:"] + \
        [f"  {path}: {reason}" for path, reason in reasons.items()]


class FailureLog:
    """Collects failures in the main process; ``report()`` is the text for the log."""

    def __init__(self) -> None:
        self.failures: list[Failure] = []
        self.fallbacks: list[Fallback] = []

    def add(self, failures: Iterable | dict) -> None:
        """Add a batch (its ``failed`` and ``fallback`` entries are read) or a list of
        failures."""
        if isinstance(failures, dict):
            self.add_fallbacks(failures.get("fallback", []))
            failures = failures.get("failed", [])
        self.failures.extend(Failure(*f) for f in failures)

    def add_fallbacks(self, fallbacks: Iterable) -> None:
        self.fallbacks.extend(Fallback(*f) for f in fallbacks)

    def clear(self) -> None:
        self.failures.clear()
        self.fallbacks.clear()

    @property
    def fallback_paths(self) -> list[str]:
        """Distinct paths sampled with a fallback, in the order they first were."""
        return list(dict.fromkeys(f.path for f in self.fallbacks))

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
        fallbacks = describe_fallbacks(self.fallbacks)
        if total is not None:
            ok = total - len(counts)
            head = f"metrics computed over {ok} of {total} videos; {len(counts)} failed to load"
        elif not counts:
            return "\n".join(["no video failed to load"] + fallbacks)
        else:
            head = (
                f"{len(self.failures)} video loads failed ({len(counts)} distinct videos); "
                "each was skipped and replaced by another video"
            )
        lines = [head + (":" if counts else "")]
        for path, n in counts.items():
            times = f" (x{n})" if n > 1 else ""
            lines.append(f"  {messages[path]}{times}")
        return "\n".join(lines + fallbacks)
