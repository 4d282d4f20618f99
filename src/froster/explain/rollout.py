"""``rollout``: attention rollout (Abnar & Zuidema, 2020, "Quantifying Attention Flow in
Transformers").

Per layer, the heads are fused (mean, or max as TC-CLIP's figures use), the residual
connection is modelled by adding the identity, and rows are renormalised:
Â = (A + I) / rowsum(A + I); the layers are multiplied through, R = Â_n ··· Â_1, and the
video's relevance row (`joint.readout`) times R is the map. Under neighbour attention the
missing neighbour's columns are dropped before the identity is added (`joint`).

It needs no gradients (one forward pass under `no_grad`) and does not depend on the label:
it shows where information flows from, for any class.
"""

from __future__ import annotations

import torch

from . import joint
from .record import recording


def relevance(model, video: torch.Tensor, classifier: torch.Tensor, target=None,
              head_fusion: str = "mean"):
    """(logits (B, C), target (B,), token relevance (B, T, L)) of normalised float clips
    (B, T, 3, S, S) against a (C, D) classifier; `target` defaults to the top label."""
    batch, frames = video.shape[:2]
    with torch.no_grad(), recording(model) as recorder:
        logits = model(video, classifier)
    if target is None:
        target = logits.argmax(dim=-1)
    kinds = joint.call_kinds(model, frames)
    tokens = joint.token_count(model)
    joint.check_calls(recorder.probabilities, kinds, batch, frames, tokens, model.temporal)
    row = joint.readout(model, batch, frames, tokens, video.device)
    for kind, probabilities in zip(reversed(kinds), reversed(recorder.probabilities)):
        weights = joint.fuse_heads(probabilities.float(), head_fusion)
        scaled = row / (joint.row_sums(weights, kind, batch, frames, tokens) + 1.0)
        row = joint.propagate(scaled, weights, kind) + scaled
    return logits, target, row
