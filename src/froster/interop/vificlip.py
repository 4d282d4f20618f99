"""ViFi-CLIP's checkpoints (github muzairkhattak/ViFi-CLIP, utils/tools.py `epoch_saving`).

`{"model", "optimizer", "lr_scheduler", "max_accuracy", "epoch", "config"}`: `config` is
the run's yacs CfgNode (read as a plain dict, see safe_load.py); `model` is the DDP-wrapped
ViFiCLIP's state dict:

- `module.image_encoder.*`: CLIP's visual tower (our `visual.*`);
- `module.text_encoder.{transformer,positional_embedding,ln_final,text_projection}`: the
  text tower without its token embedding (ViFi-CLIP keeps none: it embeds the class
  prompts once, with CLIP's frozen table, into `prompt_learner.complete_text_embeddings`);
- `module.logit_scale`.

So the token embedding comes from the CLIP it was fine-tuned from (OpenAI's, the
`openai` tag, or a local file); we check it against the start-of-text row of the stored
prompt embeddings. Frames are encoded independently and pooled: froster's `mean`.
The prompt-learning variants (learned context vectors, VPT) are not read.
"""

from __future__ import annotations

import torch

from ..errors import FrosterError
from ..student_spec import StudentSpec
from .architecture import match_architecture
from .imported import ImportedStudent
from .pyslowfast import strip_ddp

FORMAT = "vificlip"
EXPECTED = ("a ViFi-CLIP checkpoint: a dict with 'model' whose keys are "
            "(module.)image_encoder.*, (module.)text_encoder.*, (module.)logit_scale")
_PROMPTS = "prompt_learner."
_FIXED_PROMPT_BUFFERS = ("complete_text_embeddings", "token_prefix", "token_suffix")


def model_state(obj) -> dict | None:
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        return {strip_ddp(str(k)): v for k, v in obj["model"].items()}
    return None


def looks_like(obj) -> bool:
    state = model_state(obj)
    return state is not None and any(k.startswith("image_encoder.") for k in state)


def read(obj, source: str, temporal: str | None = None, base_clip: str | None = "openai",
         **_) -> ImportedStudent:
    state = model_state(obj)
    if state is None or not any(k.startswith("image_encoder.") for k in state):
        raise FrosterError(f"{source} is not {EXPECTED}")
    weights, prompts, extras = {}, {}, []
    for key, value in state.items():
        if key.startswith("image_encoder."):
            weights["visual." + key[len("image_encoder."):]] = value
        elif key.startswith("text_encoder."):
            weights[key[len("text_encoder."):]] = value
        elif key == "logit_scale":
            weights[key] = value
        elif key.startswith(_PROMPTS) and key[len(_PROMPTS):] in _FIXED_PROMPT_BUFFERS:
            prompts[key[len(_PROMPTS):]] = value
        else:
            extras.append(key)
    prompt_learning = [k for k in extras if k.startswith(_PROMPTS) or "VPT" in k]
    if prompt_learning:
        raise FrosterError(f"{source} is a prompt-learning ViFi-CLIP model (learned prompt vectors "
                           f"such as {prompt_learning[0]}); froster reads the fully fine-tuned "
                           f"ViFi-CLIP only")
    if extras:
        raise FrosterError(f"{source} holds weights froster cannot place: {', '.join(extras[:3])}; "
                           f"expected {EXPECTED}")
    cfg = obj.get("config") if isinstance(obj.get("config"), dict) else {}
    model_cfg = cfg.get("MODEL") or {}
    warnings = []
    if "token_embedding.weight" not in weights:
        width = weights["ln_final.weight"].shape[0] if "ln_final.weight" in weights else 0
        weights["token_embedding.weight"] = torch.empty((49408, width), device="meta")
        name, warning = match_architecture(weights, source, hint=model_cfg.get("ARCH"))
        weights["token_embedding.weight"] = _token_embedding(name, base_clip, source, weights)
        _check_start_token(weights, prompts, name, base_clip, source)
        origin = f"token embedding from {base_clip}"
    else:
        name, warning = match_architecture(weights, source, hint=model_cfg.get("ARCH"))
        origin = None
    if warning:
        warnings.append(warning)
    spec = StudentSpec(model=name, pretrained=None, quick_gelu=True, temporal=temporal or "mean")
    config = recorded_config(obj, source)
    kind = "ViFi-CLIP checkpoint"
    if isinstance(obj.get("epoch"), int):
        kind += f" (epoch {obj['epoch']})"
    notes = [f"temporal type set to {temporal!r} by the caller"] if temporal else []
    return ImportedStudent(spec=spec, weights=weights, kind=kind, source=source, format=FORMAT,
                           config=config, dropped=[origin] if origin else [], notes=notes,
                           warnings=warnings)


def recorded_config(obj, source: str) -> dict:
    """The frames of the run (its test views, TEST.NUM_CLIP, are not ours: not taken)."""
    cfg = obj.get("config") if isinstance(obj, dict) and isinstance(obj.get("config"), dict) else {}
    frames = (cfg.get("DATA") or {}).get("NUM_FRAMES")
    return {"num_frames": frames} if isinstance(frames, int) and frames > 0 else {}


def _token_embedding(name: str, base_clip: str | None, source: str, weights: dict) -> torch.Tensor:
    from . import base_clip_weights

    if not base_clip:
        raise FrosterError(f"{source} has no token embedding (ViFi-CLIP keeps CLIP's frozen one "
                           f"outside the checkpoint): name the CLIP it was fine-tuned from, e.g. "
                           f"--clip openai or --clip /path/to/{name}.pt")
    table = base_clip_weights(name, base_clip, source).get("token_embedding.weight")
    width = weights["ln_final.weight"].shape[0]
    if table is None or table.dim() != 2 or table.shape[1] != width:
        raise FrosterError(f"{base_clip} has no {name} token embedding of width {width} "
                           f"(needed to complete {source})")
    return table.float()


def _check_start_token(weights: dict, prompts: dict, name: str, base_clip: str, source: str) -> None:
    """The stored prompt embeddings all begin with the start-of-text row of the table the
    model was trained with: a wrong base CLIP (e.g. B/32's for a B/16 model) shows here."""
    import open_clip

    stored = prompts.get("complete_text_embeddings", prompts.get("token_prefix"))
    if stored is None or stored.dim() != 3:
        return
    start = int(open_clip.get_tokenizer(name)(["x"])[0, 0])
    table = weights["token_embedding.weight"]
    if not torch.allclose(stored[:, 0].float(), table[start].expand_as(stored[:, 0]), atol=1e-3):
        raise FrosterError(f"{base_clip} is not the CLIP that {source} was fine-tuned from: its "
                           f"start-of-text embedding differs from the one stored in the checkpoint's "
                           f"prompt embeddings (pass the right base CLIP with --clip)")
