"""`init=FILE`: start training from an existing student (a froster checkpoint folder or
another project's file, e.g. the reference's released K400 model) instead of the plain
pretrained CLIP. The frozen teacher stays the pretrained CLIP the config names (FROSTER's
teacher is the CLIP the student was fine-tuned from); optimiser, schedule and epochs start
afresh. `resume=` is for continuing froster's own runs."""

from __future__ import annotations

import sys
from dataclasses import replace

from ..checkpoint import load_imported_weights
from ..clip import NO_WEIGHTS, resolve_quick_gelu
from ..errors import FrosterError
from ..student_spec import StudentSpec


def init_spec(spec: StudentSpec, imported, init: str) -> StudentSpec:
    """The student spec of the run, checked against the init file's student."""
    if imported.spec.model != spec.model:
        raise FrosterError(f"init={init} holds a {imported.spec.model} student but the config says "
                           f"model={spec.model}; set model={imported.spec.model}")
    wanted = imported.spec.quick_gelu
    if spec.quick_gelu is None and spec.pretrained in NO_WEIGHTS:
        return replace(spec, quick_gelu=wanted)
    have = resolve_quick_gelu(spec.model, spec.pretrained, spec.quick_gelu)
    if have != wanted:
        act = lambda quick: "QuickGELU" if quick else "GELU"  # noqa: E731
        why = (f"the config sets quick_gelu={str(have).lower()}" if spec.quick_gelu is not None
               else f"pretrained={spec.pretrained} (the teacher's weights) uses {act(have)}")
        raise FrosterError(f"init={init} was trained with {act(wanted)} but {why}; set "
                           f"quick_gelu={str(wanted).lower()}, or pretrained= the CLIP the file "
                           f"was fine-tuned from")
    if spec.temporal != imported.spec.temporal:
        print(f"warning: init={init} was trained with temporal={imported.spec.temporal}; training "
              f"with temporal={spec.temporal} as the config says", file=sys.stderr)
    return spec


def load_init(model, imported, init: str) -> str:
    """Put the init student (and its FROSTER heads, if any and distilling) into `model`
    (a Froster module); returns the one-line summary."""
    load_imported_weights(model.student.clip, imported.weights, f"init={init} does not fit the "
                          f"configured student ({model.student.temporal})")
    heads_used = bool(imported.heads) and getattr(model, "distill", False)
    if heads_used:
        for name in ("projector_v", "projector_t"):
            prefix = name + "."
            weights = {k[len(prefix):]: v for k, v in imported.heads.items() if k.startswith(prefix)}
            try:
                getattr(model, name).load_state_dict(weights)
            except RuntimeError as err:
                raise FrosterError(f"init={init}: its {name} head does not fit this student "
                                   f"({str(err).splitlines()[0]})") from None
    return imported.describe(heads_used=heads_used)
