"""Open-VCLIP's test-time weight patching: each weight the plain CLIP has becomes
`ratio * clip + (1 - ratio) * fine_tuned` (tools/test_net.py with TEST.PATCHING_MODEL True;
Open-VCLIP's released models are tested with TEST.PATCHING_RATIO 0.5, FROSTER's with none).
Weights CLIP lacks (the adapters of other backbones) are kept as they are."""

from __future__ import annotations

import torch

from ..errors import FrosterError


def patch_with_clip(imported, clip_weights: dict, ratio: float, clip_name: str):
    """Interpolate `imported`'s weights towards `clip_weights` in place; returns `imported`."""
    if not 0.0 <= ratio <= 1.0:
        raise FrosterError(f"the patching ratio must be in [0, 1], got {ratio}")
    missing = [k for k in clip_weights if k not in imported.weights]
    if missing:
        raise FrosterError(f"{clip_name} does not fit {imported.source}: it has weights the "
                           f"checkpoint lacks (e.g. {missing[:3]})")
    for key, original in clip_weights.items():
        tuned = imported.weights[key]
        if original.shape != tuned.shape:
            raise FrosterError(f"{clip_name} does not fit {imported.source}: {key} is "
                               f"{tuple(original.shape)} there and {tuple(tuned.shape)} here")
        imported.weights[key] = (ratio * original.to(torch.float32)
                                 + (1.0 - ratio) * tuned.to(torch.float32))
    imported.notes.append(f"interpolated with {clip_name} (patching ratio {ratio:g})")
    return imported
