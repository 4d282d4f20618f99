"""``gradient``: gradient-weighted attention relevance (Chefer, Gur & Wolf, 2021, "Generic
Attention-model Explainability for Interpreting Bi-Modal and Encoder-Decoder
Transformers"; the method ViFi-CLIP's figures use).

R starts as the identity; per layer, first to last, R = R + Ā R with
Ā = fuse_heads(relu(dy/dA ⊙ A)) (mean over heads in the paper; max on request), where y
is the explained label's logit against the prompt-ensemble classifier (the video's logit:
per-frame logits averaged) and dy/dA the gradient of y with respect to that layer's
attention probabilities. The video's relevance row (`joint.readout`) times R is the map.

One forward pass with a graph and one backward pass to the attention probabilities (no
weight gradients: `record.recording` freezes the parameters while it runs).
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
    video = video.detach().requires_grad_(True)  # the graph needs one input that wants grad
    with torch.enable_grad(), recording(model) as recorder:
        logits = model(video, classifier)
        if target is None:
            target = logits.argmax(dim=-1)
        score = logits.gather(1, torch.as_tensor(target, device=logits.device).view(-1, 1)).sum()
        grads = torch.autograd.grad(score, recorder.probabilities, allow_unused=True)
    kinds = joint.call_kinds(model, frames)
    tokens = joint.token_count(model)
    joint.check_calls(recorder.probabilities, kinds, batch, frames, tokens, model.temporal)
    row = joint.readout(model, batch, frames, tokens, video.device)
    layers = list(zip(kinds, recorder.probabilities, grads))
    for kind, probabilities, grad in reversed(layers):
        if grad is None:  # this attention does not reach the logit
            continue
        weighted = (grad.float() * probabilities.detach().float()).clamp_min(0)
        row = row + joint.propagate(row, joint.fuse_heads(weighted, head_fusion), kind)
    return logits.detach(), target, row
