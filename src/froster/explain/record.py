"""Recording the visual tower's attention probabilities, only while explaining.

`VideoCLIP.attention_kernel("visual")` is the one place every attention of the visual
tower gets its kernel (each block of every backbone, both of AIM's attentions, ActionCLIP's
fusion). `recording(model)` swaps in an `AttentionRecorder` there for the duration of a
`with` block and puts the previous kernel (normally None: fused SDPA) back afterwards, so
the fast path is untouched whenever nothing is explained.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch


class AttentionRecorder:
    """A kernel ``(q, k, v, attn_mask=None, is_causal=False) -> out`` computing
    softmax(q kᵀ/√d [+ mask]) v written out, as the reference's unfused attention, and
    keeping every call's probabilities, (N, heads, L_q, L_k), in call order.

    The probabilities are kept as computed: inside the autograd graph when gradients are
    on, so `torch.autograd.grad(logit, recorder.probabilities)` gives dy/dA per layer.
    """

    def __init__(self):
        self.probabilities: list[torch.Tensor] = []

    def __call__(self, q, k, v, attn_mask=None, is_causal=False):
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        if is_causal:
            length = q.shape[-2]
            causal = torch.ones(length, length, dtype=torch.bool, device=q.device).tril()
            scores = scores.masked_fill(~causal, float("-inf"))
        if attn_mask is not None:
            scores = scores.masked_fill(~attn_mask, float("-inf")) if attn_mask.dtype == torch.bool \
                else scores + attn_mask
        probabilities = scores.softmax(dim=-1)
        self.probabilities.append(probabilities)
        return probabilities @ v


@contextmanager
def recording(model):
    """`with recording(student) as recorder:` every visual attention of `student` runs
    through a fresh `AttentionRecorder`. Gradient checkpointing is off inside (it would
    run the kernel again in the backward pass), and the parameters do not require grad
    (dy/dA needs no weight gradients, so autograd keeps less); all is restored on exit."""
    recorder = AttentionRecorder()
    kernel, checkpointing = model.visual_kernel, model.grad_checkpointing
    trainable = [p for p in model.parameters() if p.requires_grad]
    model.visual_kernel, model.grad_checkpointing = recorder, False
    for p in trainable:
        p.requires_grad_(False)
    try:
        yield recorder
    finally:
        model.visual_kernel, model.grad_checkpointing = kernel, checkpointing
        for p in trainable:
            p.requires_grad_(True)
