"""Attention maps of the video student: which patches of which frames a label's score
comes from (`Recognizer.explain`, `froster explain`; docs/explain.md).

Methods, one file each, looked up by name:

- ``rollout``: attention rollout (Abnar & Zuidema, 2020), no gradients;
- ``gradient``: gradient-weighted relevance (Chefer et al., 2021), the default.

Both run on the attention probabilities recorded by `record.AttentionRecorder` (the
visual tower's kernel, swapped in only while explaining) and follow them through the
joint relevance over all T x L tokens of a clip (`joint`), so under `neighbor` attention
a frame's map can credit patches of its neighbours.

This file imports no torch, so the command line can list the names cheaply.
"""

from __future__ import annotations

import importlib

#: name -> module (in this package) that defines `relevance(...)`
_REGISTRY = {
    "gradient": "gradient",  # Chefer et al. 2021: R += mean_h relu(dy/dA * A) @ R
    "rollout": "rollout",    # Abnar & Zuidema 2020: R = norm(fuse_h(A) + I) @ R
}
#: how the heads of one attention are fused into one matrix
HEAD_FUSIONS = ("mean", "max")


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get(name: str):
    """The module of method `name` (it has `relevance(model, video, classifier, target, head_fusion)`)."""
    if name not in _REGISTRY:
        raise ValueError(f"explanation method must be one of {', '.join(_REGISTRY)}, not {name!r}")
    return importlib.import_module(f"{__name__}.{_REGISTRY[name]}")
