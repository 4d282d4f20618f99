"""FROSTER's and Open-VCLIP's checkpoints (both PySlowFast forks), read and written.

A training checkpoint (`checkpoint_epoch_000NN.pyth`) is `{"model_state", "optimizer_state",
"epoch", "cfg"}` with `cfg` the run's config as a YAML string; the weight-averaged file
the reference tests with (`swa_2_22.pth`) is `{"model_state"}` alone. `model_state` keys:

- `model.` + OpenAI CLIP names (the student: `model.visual.conv1.weight`, ...), plus the
  Table 3 adapters inside the visual blocks under the names froster uses too;
- `projector_v.{0,2}.weight`, `projector_t.{0,2}.weight`: FROSTER's residual heads
  (froster's `projector_*.fc1/fc2`); kept for training, dropped for inference;
- `raw_model.*`: the frozen teacher (plain CLIP), not needed;
- any of these behind a `module.` prefix (DDP).

The reference tests a file by `torch.load(f)["model_state"]` and a non-strict
`load_state_dict` (tools/test_net.py, TEST.CUSTOM_LOAD_FILE), so the file we write holds
`model_state` in exactly these names; a partial `cfg` records what froster reads back.
"""

from __future__ import annotations

import torch
import yaml

from ..errors import FrosterError
from ..student_spec import StudentSpec
from .architecture import match_architecture
from .imported import ImportedStudent
from .temporal_types import to_froster, to_reference, type_from_keys

FORMAT = "froster-ref"
EXPECTED = ("a PySlowFast checkpoint of FROSTER or Open-VCLIP: a dict with 'model_state' whose "
            "keys are model.visual.*, model.transformer.*, ... (optionally behind 'module.')")
_NOT_WEIGHTS = ("input_resolution", "context_length", "vocab_size", "attn_mask")
_HEAD_NAMES = {"0": "fc1", "2": "fc2"}
_KNOWN_EXTRAS = {"head": "TUNE_HEAD's learned classifier", "prompt_embed": "a learned text prompt",
                 "dynamic_classifier": "a stored classifier"}
#: open_clip names of the architectures the reference builds (cfg.MODEL.ARCH)
REFERENCE_ARCHS = {"ViT-B-32": "vitb32", "ViT-B-16": "vitb16", "ViT-L-14": "vitl14"}


def model_state(obj) -> dict | None:
    """The student's state dict of a PySlowFast checkpoint (or of a bare model_state)."""
    if isinstance(obj, dict) and isinstance(obj.get("model_state"), dict):
        state = obj["model_state"]
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = obj
    else:
        return None
    return {strip_ddp(str(k)): v for k, v in state.items()}


def looks_like(obj) -> bool:
    state = model_state(obj)
    return state is not None and any(k.startswith("model.visual.") for k in state)


def read(obj, source: str, temporal: str | None = None, **_) -> ImportedStudent:
    state = model_state(obj)
    if state is None or not any(k.startswith("model.") for k in state):
        raise FrosterError(f"{source} is not {EXPECTED}")
    weights, heads, teacher, extras = {}, {}, 0, []
    for key, value in state.items():
        if key.startswith("model."):
            name = key[len("model."):]
            if name not in _NOT_WEIGHTS:
                weights[name] = value
        elif key.startswith("raw_model."):
            teacher += 1
        elif key.startswith(("projector_v.", "projector_t.")):
            head, index, leaf = key.split(".", 2)
            if index not in _HEAD_NAMES or leaf != "weight":
                extras.append(key)
            else:
                heads[f"{head}.{_HEAD_NAMES[index]}.weight"] = value
        else:
            extras.append(key)
    if extras:
        what = [f"{k} ({_KNOWN_EXTRAS[k.split('.')[0]]})" if k.split(".")[0] in _KNOWN_EXTRAS
                else k for k in extras[:3]]
        raise FrosterError(f"{source} holds weights froster cannot use: {', '.join(what)}"
                           + (f" and {len(extras) - 3} more" if len(extras) > 3 else "")
                           + "; froster reads the student (model.*), the FROSTER heads "
                           "(projector_v/t.*) and skips the teacher (raw_model.*)")
    if heads and len(heads) != 4:
        raise FrosterError(f"{source} has incomplete FROSTER heads: found {sorted(heads)}; expected "
                           f"projector_v.0/2.weight and projector_t.0/2.weight")
    cfg = _parse_cfg(obj.get("cfg") if isinstance(obj, dict) else None, source)
    notes, warnings = [], []
    model_cfg, data_cfg = cfg.get("MODEL") or {}, cfg.get("DATA") or {}
    name, warning = match_architecture(weights, source, hint=model_cfg.get("ARCH"))
    if warning:
        warnings.append(warning)
    ref_type = _reference_type(cfg, weights, source, notes)
    spec = StudentSpec(model=name, pretrained=None, quick_gelu=True,
                       temporal=temporal or to_froster(ref_type, source))
    if temporal:
        notes.append(f"temporal type set to {temporal!r} by the caller")
    dropped = []
    if teacher:
        dropped.append("teacher skipped")
    kind = _kind(obj, cfg, heads)
    if kind.startswith("Open-VCLIP"):
        notes.append("Open-VCLIP tests it interpolated with CLIP: --patch-ratio 0.5")
    return ImportedStudent(spec=spec, weights=weights, heads=heads or None, kind=kind,
                           source=source, format=FORMAT, config=froster_config(cfg),
                           dropped=dropped, notes=notes, warnings=warnings)


def strip_ddp(key: str) -> str:
    while key.startswith("module."):
        key = key[len("module."):]
    return key


def _parse_cfg(cfg, source: str) -> dict:
    if isinstance(cfg, dict):
        return cfg
    if not isinstance(cfg, str):
        return {}
    try:
        parsed = yaml.safe_load(cfg)
    except yaml.YAMLError as err:
        raise FrosterError(f"{source}: its 'cfg' is not readable YAML ({err})") from None
    return parsed if isinstance(parsed, dict) else {}


def _reference_type(cfg: dict, weights: dict, source: str, notes: list) -> str | None:
    from_keys = type_from_keys(k for k in weights if k.startswith("visual."))
    model_cfg = cfg.get("MODEL") or {}
    if "TEMPORAL_MODELING_TYPE" in model_cfg:
        said = model_cfg["TEMPORAL_MODELING_TYPE"]
        said = None if isinstance(said, str) and said.lower() in ("none", "null", "") else said
        if from_keys is not None and from_keys != said:
            raise FrosterError(f"{source}: its config says TEMPORAL_MODELING_TYPE {said!r} but its "
                               f"weights have the parameters of {from_keys!r}")
        return said
    if from_keys is not None:
        return from_keys
    notes.append("temporal type not recorded: assumed VCLIP (expand_temporal_view)")
    return "expand_temporal_view"


def _kind(obj, cfg: dict, heads: dict) -> str:
    model_cfg, train_cfg = cfg.get("MODEL") or {}, cfg.get("TRAIN") or {}
    if heads or model_cfg.get("RAW_MODEL_DISTILLATION"):
        kind = "FROSTER reference checkpoint"
    elif train_cfg.get("LINEAR_CONNECT_CLIMB"):
        kind = "Open-VCLIP checkpoint"
    else:
        kind = "PySlowFast (FROSTER / Open-VCLIP) checkpoint"
    if isinstance(obj, dict) and isinstance(obj.get("epoch"), int):
        kind += f" (epoch {obj['epoch'] + 1})"  # PySlowFast saves the 0-based epoch index
    return kind


def recorded_config(obj, source: str) -> dict:
    """The froster config keys the file's PySlowFast config fixes (frames, views, ...)."""
    return froster_config(_parse_cfg(obj.get("cfg") if isinstance(obj, dict) else None, source))


def froster_config(cfg: dict) -> dict:
    """The froster config keys a PySlowFast config fixes (only those it holds)."""
    data, test = cfg.get("DATA") or {}, cfg.get("TEST") or {}
    pairs = {"num_frames": data.get("NUM_FRAMES"), "sampling_rate": data.get("SAMPLING_RATE"),
             "target_fps": data.get("TARGET_FPS"), "test_views": test.get("NUM_ENSEMBLE_VIEWS"),
             "test_crops": test.get("NUM_SPATIAL_CROPS")}
    out = {k: v for k, v in pairs.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
           and v > 0}
    if out.get("test_crops") not in (None, 1, 3):
        out.pop("test_crops")
    return out


def reference_checkpoint(weights: dict, spec: StudentSpec, heads: dict | None = None,
                         config: dict | None = None) -> tuple[dict, list[str]]:
    """({"model_state", "cfg"} for the reference's test_net, warnings) from a froster student."""
    warnings = []
    ref_type = to_reference(spec.temporal)
    arch = REFERENCE_ARCHS.get(spec.model)
    if arch is None:
        arch = spec.model
        warnings.append(f"the reference code builds only {', '.join(REFERENCE_ARCHS.values())}; "
                        f"it cannot test a {spec.model} student (written as MODEL.ARCH {arch})")
    if spec.temporal == "neighbor" and spec.neighbor_padding != "zeros":
        warnings.append("this student masks the missing neighbours (neighbor_padding=masked); "
                        "the reference pads them with zeros, so its outputs will differ")
    if not spec.quick_gelu:
        warnings.append("this student uses GELU; the reference's CLIP uses QuickGELU, so its "
                        "outputs will differ")
    state = {"model." + k: v.detach().cpu().contiguous() for k, v in weights.items()}
    for name, value in (heads or {}).items():
        head, layer, leaf = name.split(".")
        index = {v: k for k, v in _HEAD_NAMES.items()}[layer]
        state[f"{head}.{index}.{leaf}"] = value.detach().cpu().contiguous()
    config = config or {}
    cfg = {"MODEL": {"ARCH": arch, "TEMPORAL_MODELING_TYPE": ref_type},
           "DATA": {k: config[f] for k, f in (("NUM_FRAMES", "num_frames"),
                                             ("SAMPLING_RATE", "sampling_rate")) if f in config}}
    return {"model_state": state, "cfg": yaml.safe_dump(cfg, sort_keys=False)}, warnings
