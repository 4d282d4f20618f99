"""The optimiser's parameter groups: which parameters are weight-decayed (the reference's
rule, its logit_scale quirk included) and which run at a scaled learning rate."""

from __future__ import annotations

import torch


def decays(name: str, param: torch.nn.Parameter, logit_scale_decay: bool = True) -> bool:
    """The reference's rule (PySlowFast's optimizer with ZERO_WD_1D_PARAM, as FROSTER's configs
    set it): no weight decay on parameters that are 1-D or whose name ends in ``.bias``; every
    other one is decayed, the 0-D ``logit_scale`` included (a reference quirk). With
    `logit_scale_decay` off, 0-D parameters (logit_scale, and logit_bias where a model has
    one) are exempt as well."""
    if param.ndim == 1 or name.endswith(".bias"):
        return False
    return logit_scale_decay or param.ndim != 0


def param_groups(module: torch.nn.Module, weight_decay: float, logit_scale_decay: bool = True,
                 scaled=(), lr_scale: float = 1.0) -> list[dict]:
    """AdamW groups (decayed, not decayed) of the trainable parameters; each group's
    ``names`` lists its parameters' names. The `scaled` parameters (a backbone's added
    modules) go to groups of their own whose learning rate is `lr_scale` times the rest's."""
    groups = ({"params": [], "names": [], "weight_decay": weight_decay},
              {"params": [], "names": [], "weight_decay": 0.0})
    for name, p in module.named_parameters():
        if p.requires_grad:
            group = groups[0] if decays(name, p, logit_scale_decay) else groups[1]
            group["params"].append(p)
            group["names"].append(name)
    return scale_lr(list(groups), scaled, lr_scale)


def scale_lr(groups: list[dict], scaled, lr_scale: float) -> list[dict]:
    """Split each group into its parameters outside `scaled` and those inside, the latter
    with `lr_scale` (read by `schedule.set_lr`); empty new groups are left out."""
    ids = {id(p) for p in scaled}
    if not ids:
        return groups
    out = []
    for group in groups:
        pairs = list(zip(group["params"], group["names"]))
        outside = [(p, n) for p, n in pairs if id(p) not in ids]
        inside = [(p, n) for p, n in pairs if id(p) in ids]
        out.append(group | {"params": [p for p, _ in outside], "names": [n for _, n in outside]})
        if inside:
            out.append(group | {"params": [p for p, _ in inside], "names": [n for _, n in inside],
                                "lr_scale": lr_scale})
    return out
