"""The reference's temporal modelling types (cfg.MODEL.TEMPORAL_MODELING_TYPE) and
froster's `temporal` names, both ways.

`expand_temporal_view` is VCLIP's neighbour-frame attention (frames t+1, t-1, t), our
`neighbor`; None is plain per-frame CLIP, our `mean`. The adapter backbones of the
paper's Table 3 keep the reference's parameter names inside each visual block, so
their keys map by prefix. The `_step2` / `_step3` variants attend to 2 or 3 neighbours
on each side (5 or 7 x the tokens): froster does not have them.
"""

from __future__ import annotations

from ..errors import FrosterError

#: reference name -> froster name (None: the reference's "no temporal modelling")
TO_FROSTER = {
    None: "mean",
    "expand_temporal_view": "neighbor",
    "aim": "aim",
    "stadapt_zeroinit": "st_adapter",
    "adapter": "adaptformer",
}
TO_REFERENCE = {v: k for k, v in TO_FROSTER.items()}

#: what the reference types froster lacks are, for the error message
UNSUPPORTED = {
    "expand_temporal_view_step2": "attention to 2 neighbouring frames on each side",
    "expand_temporal_view_step3": "attention to 3 neighbouring frames on each side",
    "channel_shift": "temporal channel shift of keys and values",
    "cross_frame_attend": "X-CLIP-style cross-frame message tokens",
}

#: parameter names that only a given reference backbone adds to the visual blocks
_KEY_MARKS = (
    (".t_adapter.", "aim"),
    (".s_adapter.", "aim"),
    (".stadapt_", "stadapt_zeroinit"),
    (".message_", "cross_frame_attend"),
    (".ffn_adapter.", "adapter"),
)

NAMES = {"neighbor": "neighbour attention (VCLIP)", "mean": "per-frame CLIP, mean of frame logits",
         "aim": "AIM adapters", "st_adapter": "ST-Adapter", "adaptformer": "AdaptFormer",
         "actionclip": "ActionCLIP temporal transformer"}


def type_from_keys(keys) -> str | None:
    """The reference type that the visual blocks' extra parameters show, if any."""
    for key in keys:
        for mark, name in _KEY_MARKS:
            if mark in key:
                if name == "adapter" and any(".t_adapter." in k for k in keys):
                    return "aim"
                return name
    return None


def to_froster(reference_type: str | None, source: str) -> str:
    """froster's name for a reference type, or a clear error naming the file."""
    if isinstance(reference_type, str) and reference_type.lower() in ("none", "null", ""):
        reference_type = None
    if reference_type in TO_FROSTER:
        return TO_FROSTER[reference_type]
    what = UNSUPPORTED.get(reference_type)
    raise FrosterError(f"{source}: froster does not have the temporal type {reference_type!r}"
                       + (f" ({what})" if what else "")
                       + f"; it reads {', '.join(repr(k) for k in TO_FROSTER if k)} and None")


def to_reference(temporal: str) -> str | None:
    if temporal not in TO_REFERENCE:
        raise FrosterError(f"the reference code has no temporal type for froster's {temporal!r}; "
                           f"it has {', '.join(sorted(t for t in TO_REFERENCE))}")
    return TO_REFERENCE[temporal]
