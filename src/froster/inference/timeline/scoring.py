"""A window's scores: probabilities over the labels, smoothed over the last windows,
ranked, and cut at the threshold ("no action" below it)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Sequence

import torch

from ...errors import FrosterError
from ..labels import rank

__all__ = ["Window", "WindowScorer"]


@dataclass
class Window:
    index: int
    start: float                 # seconds since the first frame
    end: float                   # start + span
    frames: list[int]            # the sampled frames' numbers in the stream (0 = first)
    frame_times: list[float]     # their timestamps (seconds since the first frame)
    logits: torch.Tensor         # (C,) as Recognizer.logits on the same frames
    probabilities: torch.Tensor  # (C,) softmax over the labels
    scores: torch.Tensor         # (C,) probabilities averaged over the last `smooth` windows
    top: list[tuple[str, float]]  # labels ranked by score (top_k of them)
    label: str | None            # top label, or None below the threshold ("no action")
    score: float                 # the top label's score

    @property
    def centre(self) -> float:
        return (self.start + self.end) / 2

    def record(self) -> dict:
        """The window as written to JSON."""
        return {"window": self.index, "start": round(self.start, 6), "end": round(self.end, 6),
                "label": self.label, "probability": round(self.score, 6),
                "top": [{"label": name, "probability": round(p, 6)} for name, p in self.top],
                "frames": self.frames}


class WindowScorer:
    """Probabilities, smoothing over the last `smooth` windows, ranking and threshold."""

    def __init__(self, names: Sequence[str], threshold: float = 0.0, smooth: int = 1,
                 top_k: int | None = None):
        if smooth < 1:
            raise FrosterError(f"smooth must be at least 1 window, got {smooth}")
        if not 0.0 <= threshold <= 1.0:
            raise FrosterError(f"threshold must be a probability in [0, 1], got {threshold}")
        if top_k is not None and top_k < 0:
            raise FrosterError(f"top_k must not be negative, got {top_k}")
        self.names = list(names)
        self.threshold, self.smooth = threshold, smooth
        self.top_k = min(top_k, len(self.names)) if top_k else len(self.names)
        self.history: deque[torch.Tensor] = deque(maxlen=smooth)

    def __call__(self, logits: torch.Tensor):
        """(probabilities, scores, top, label) of the next window in order."""
        probabilities = logits.float().softmax(dim=-1)
        self.history.append(probabilities)
        scores = torch.stack(list(self.history)).mean(dim=0)
        top = rank(self.names, scores, self.top_k)
        label = top[0][0] if top[0][1] >= self.threshold else None
        return probabilities, scores, top, label
