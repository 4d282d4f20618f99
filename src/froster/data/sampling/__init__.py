"""Which frames make a clip. One file per rule, looked up by the config's ``sampling``:

- ``reference`` (default): the frames the FROSTER reference's PyAV decoder gives,
  by timestamps on files whose stream reports a duration (reference.py);
- ``uniform``: even sampling over the whole clip by frame number (uniform.py).

Each rule has ``train_clip(video, view, rng, start=None)`` and ``test_views(video,
view)``, taking an open video (froster.data.decode.open_video) and a
`froster.data.views.ViewSpec`, and returning `sampled.Sampled`. This file imports no
torch: the command line lists the names cheaply.
"""

from __future__ import annotations

from ...registry import Registry

SAMPLINGS = Registry("sampling", __name__, {"reference": "reference", "uniform": "uniform"})


def get_sampling(name: str):
    """The module of sampling rule ``name``."""
    return SAMPLINGS.get(name)
