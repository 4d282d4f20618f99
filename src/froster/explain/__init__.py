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

from ..registry import Registry

#: name -> module of this package that defines
#: `relevance(model, video, classifier, target, head_fusion)`
METHODS = Registry("method", __name__, {
    "gradient": "gradient",  # Chefer et al. 2021: R += mean_h relu(dy/dA * A) @ R
    "rollout": "rollout",    # Abnar & Zuidema 2020: R = norm(fuse_h(A) + I) @ R
})
#: how the heads of one attention are fused into one matrix
HEAD_FUSIONS = ("mean", "max")

names = METHODS.names
get = METHODS.get
