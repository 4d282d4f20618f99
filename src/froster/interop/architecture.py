"""Which open_clip architecture a CLIP state dict (OpenAI key names) is, read from the
weights' shapes as open_clip's `build_model_from_openai_state_dict` reads them.

Heads are not visible in the weights (a (3W, W) projection fits any head count); like
the reference and OpenAI's code we take the configs' heads as given.
"""

from __future__ import annotations

import re
from functools import lru_cache

import open_clip

from ..errors import FrosterError

_VISION_KEYS = {"image_size", "layers", "width", "patch_size", "head_width", "mlp_ratio"}
_TEXT_KEYS = {"context_length", "vocab_size", "width", "heads", "layers", "mlp_ratio"}
_TOP_KEYS = {"embed_dim", "vision_cfg", "text_cfg", "quick_gelu"}

#: Architecture names other projects write, as open_clip names them.
ALIASES = {"vitb32": "ViT-B-32", "vitb16": "ViT-B-16", "vitl14": "ViT-L-14",
           "ViT-B/32": "ViT-B-32", "ViT-B/16": "ViT-B-16", "ViT-L/14": "ViT-L-14",
           "ViT-L/14@336px": "ViT-L-14-336"}


def shapes(state: dict, source: str) -> dict:
    """The architecture numbers of a ViT CLIP state dict (open_clip / OpenAI key names)."""
    needed = ("visual.conv1.weight", "visual.positional_embedding", "visual.proj",
              "token_embedding.weight", "positional_embedding", "ln_final.weight",
              "text_projection")
    missing = [k for k in needed if k not in state]
    if missing:
        raise FrosterError(f"{source} lacks CLIP weights that every ViT CLIP has: "
                           f"{', '.join(missing)}")
    conv = state["visual.conv1.weight"]
    patch = conv.shape[-1]
    grid = round((state["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    vision_width, text_width = conv.shape[0], state["ln_final.weight"].shape[0]
    return {
        "embed_dim": state["text_projection"].shape[1],
        "vision_output_dim": state["visual.proj"].shape[1],
        "vision_width": vision_width,
        "vision_layers": _count_layers(state, "visual.transformer.resblocks."),
        "patch_size": patch,
        "image_size": patch * grid,
        "vision_mlp": _mlp_width(state, "visual.transformer.resblocks.0.mlp.c_fc.weight") / vision_width,
        "text_width": text_width,
        "text_layers": _count_layers(state, "transformer.resblocks."),
        "context_length": state["positional_embedding"].shape[0],
        "vocab_size": state["token_embedding.weight"].shape[0],
        "text_mlp": _mlp_width(state, "transformer.resblocks.0.mlp.c_fc.weight") / text_width,
    }


def describe_shapes(s: dict) -> str:
    return (f"image {s['image_size']} px, patch {s['patch_size']}, vision width "
            f"{s['vision_width']} x {s['vision_layers']} layers, text width {s['text_width']} x "
            f"{s['text_layers']} layers, context {s['context_length']}, vocabulary "
            f"{s['vocab_size']}, embedding {s['embed_dim']}")


def _count_layers(state: dict, prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.attn\.in_proj_weight$")
    return len({m.group(1) for k in state if (m := pattern.match(k))})


def _mlp_width(state: dict, key: str) -> float:
    return state[key].shape[0] if key in state else float("nan")


def _config_shapes(cfg: dict) -> dict | None:
    """The same numbers for a plain open_clip ViT config, or None for any other kind."""
    vision, text = cfg.get("vision_cfg", {}), cfg.get("text_cfg", {})
    if set(cfg) - _TOP_KEYS or set(vision) - _VISION_KEYS or set(text) - _TEXT_KEYS:
        return None
    if not isinstance(vision.get("layers"), int) or not isinstance(vision.get("image_size"), int):
        return None
    return {
        "embed_dim": cfg["embed_dim"], "vision_output_dim": cfg["embed_dim"],
        "vision_width": vision["width"], "vision_layers": vision["layers"],
        "patch_size": vision["patch_size"], "image_size": vision["image_size"],
        "vision_mlp": float(vision.get("mlp_ratio", 4.0)),
        "text_width": text.get("width", 512), "text_layers": text.get("layers", 12),
        "context_length": text.get("context_length", 77),
        "vocab_size": text.get("vocab_size", 49408),
        "text_mlp": float(text.get("mlp_ratio", 4.0)),
    }


@lru_cache(maxsize=1)
def _plain_configs() -> tuple[tuple[str, tuple], ...]:
    found = []
    for name in open_clip.list_models():
        if name.endswith("-quickgelu"):  # the same shapes; QuickGELU is recorded separately
            continue
        cfg = open_clip.get_model_config(name)
        numbers = _config_shapes(cfg) if cfg else None
        if numbers is not None:
            found.append((name, tuple(sorted(numbers.items()))))
    return tuple(found)


def match_architecture(state: dict, source: str, hint: str | None = None) -> tuple[str, str | None]:
    """(open_clip model name, warning or None). The weights decide; `hint` (a config's
    architecture name) only breaks ties, and a disagreeing hint gives a warning."""
    numbers = shapes(state, source)
    key = tuple(sorted(numbers.items()))
    names = [name for name, cfg in _plain_configs() if cfg == key]
    hinted = ALIASES.get(hint, hint) if hint else None
    if not names:
        raise FrosterError(f"{source}: the weights' shapes ({describe_shapes(numbers)}) fit no "
                           f"CLIP architecture froster knows (open_clip's plain ViT configs, e.g. "
                           f"ViT-B-16, ViT-B-32, ViT-L-14)")
    name = hinted if hinted in names else sorted(names, key=lambda n: (len(n), n))[0]
    warning = None
    if hinted and hinted != name:
        warning = (f"{source}: its config names the architecture {hint!r} but the weights are "
                   f"{name}; using {name}")
    return name, warning
