"""Which frames make a clip. One file per rule, looked up by the config's ``sampling``:

- ``reference`` (default): the frames the FROSTER reference's PyAV decoder gives,
  by timestamps on files whose stream reports a duration (reference.py);
- ``uniform``: even sampling over the whole clip by frame number (uniform.py).

Each rule has ``train_clip(video, spec, rng, start=None)`` and ``test_views(video,
spec)``, taking an open video (froster.data.decode.open_video) and returning Sampled.
"""

from __future__ import annotations

from types import ModuleType

from . import reference, uniform
from .clip import ClipSpec, Sampled
from .uniform import clip_size, clip_indices, test_view_indices, train_clip_indices

SAMPLINGS: dict[str, ModuleType] = {"reference": reference, "uniform": uniform}

__all__ = ["SAMPLINGS", "ClipSpec", "Sampled", "get_sampling", "clip_size", "clip_indices",
           "test_view_indices", "train_clip_indices"]


def get_sampling(name: str) -> ModuleType:
    """The module of sampling rule ``name``."""
    try:
        return SAMPLINGS[name]
    except KeyError:
        raise ValueError(f"sampling={name!r}: expected one of {', '.join(SAMPLINGS)}") from None
