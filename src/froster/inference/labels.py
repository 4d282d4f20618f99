"""Labels as users give them ("juggling", "Abseiling: descending a rock face on a rope")
and ranked results over them."""

from __future__ import annotations

from typing import Sequence

from ..errors import FrosterError
from ..prompts import ClassText


def label_texts(labels: Sequence[str | ClassText]) -> list[ClassText]:
    """Each label as a ClassText (name + text); an empty list is an error."""
    texts = [c if isinstance(c, ClassText) else ClassText.parse(c) for c in labels]
    if not texts:
        raise FrosterError("no labels given")
    return texts


def label_names(labels: Sequence[str | ClassText]) -> list[str]:
    return [c.name for c in label_texts(labels)]


def label_index(names: Sequence[str], label: str) -> int:
    """The index of `label` among the label names: exact, else the one name equal to it
    ignoring case and spacing; an error that lists the names otherwise."""
    if label in names:
        return list(names).index(label)
    folded = [i for i, name in enumerate(names) if " ".join(name.split()).casefold()
              == " ".join(str(label).split()).casefold()]
    if len(folded) == 1:
        return folded[0]
    shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
    raise FrosterError(f"label {label!r} is not one of the {len(names)} labels given ({shown})")


def rank(names: Sequence[str], scores, top_k: int | None = None) -> list[tuple[str, float]]:
    """[(name, score)] sorted by score, highest first (ties keep the label order)."""
    values = [float(s) for s in scores.tolist()] if hasattr(scores, "tolist") else \
        [float(s) for s in scores]
    order = sorted(range(len(names)), key=lambda i: -values[i])
    return [(names[i], values[i]) for i in order[: top_k or len(names)]]
