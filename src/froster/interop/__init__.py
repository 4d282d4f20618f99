"""Checkpoints of every kind, read (and the reference's layout written): froster's own
checkpoint folder, the FROSTER reference's and Open-VCLIP's PySlowFast files, ViFi-CLIP's,
and froster's training state.

    imported = read_checkpoint("swa_2_22.pth")   # format detected from the keys
    imported.describe()  # "FROSTER reference checkpoint, ViT-B-16 (QuickGELU), ..."

`froster.checkpoint.load_student` reads every checkpoint through here, so each command
that takes a checkpoint reads these files as they are. A folder is froster's own format
(froster_folder.py); a file is one of FORMATS, one module per format, each with
`looks_like(obj)`, `read(obj, source, **options)` and `recorded_config(obj, source)`.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import FrosterError
from ..registry import Registry

#: file formats: name -> module of this package (imported on first use)
FORMATS = Registry("checkpoint format", __name__, {
    "froster-ref": "pyslowfast",
    "vificlip": "vificlip",
    "froster-training": "froster_state",
})


def read_checkpoint(path, format: str = "auto", trust_pickle: bool = False,
                    temporal: str | None = None, base_clip: str | None = "openai",
                    patch_ratio: float | None = None):
    """An `ImportedStudent` from a checkpoint file of a supported format.

    `temporal` overrides the temporal type the file records (or implies); `base_clip` is
    the CLIP the model was fine-tuned from (a tag or a file): ViFi-CLIP's token embedding
    comes from it, and with `patch_ratio` the weights are interpolated towards it as
    Open-VCLIP tests its models (see patching.py).
    """
    from . import froster_folder
    from .safe_load import read_torch_file

    source = str(path)
    if format in ("auto", froster_folder.FORMAT) and froster_folder.folder_of(path) is not None:
        return froster_folder.read(path)
    if format != "auto":
        FORMATS.get(format)  # an unknown name: one line listing the known ones
    obj = read_torch_file(path, trust_pickle=trust_pickle)
    name = detect(obj, source) if format == "auto" else format
    reader = FORMATS.get(name)
    if not reader.looks_like(obj):
        raise FrosterError(f"{source} is not {reader.EXPECTED}; it holds {summary(obj)}")
    imported = reader.read(obj, source, temporal=temporal, base_clip=base_clip)
    if patch_ratio is not None:
        from .patching import patch_with_clip
        patch_with_clip(imported, base_clip_weights(imported.spec.model, base_clip, source),
                        patch_ratio, str(base_clip))
    return imported


def base_clip_weights(model: str, base_clip: str | None, source: str) -> dict:
    """The state dict of the plain CLIP `base_clip` names (an open_clip tag or a file)."""
    from ..clip import create_clip, looks_like_path, read_clip_weights

    if not base_clip:
        raise FrosterError(f"{source}: name the CLIP it was fine-tuned from (a tag such as openai "
                           f"or a local {model} weights file)")
    if looks_like_path(base_clip):
        return read_clip_weights(base_clip)[0]
    return create_clip(model, base_clip)[0].state_dict()


def recorded_config(path, trust_pickle: bool = False) -> dict:
    """The froster config keys a checkpoint file records (frames, views, ...), without
    building the model (cheap: tensors are memory-mapped, not read)."""
    from .safe_load import read_torch_file

    obj = read_torch_file(path, trust_pickle=trust_pickle)
    return FORMATS.get(detect(obj, str(path))).recorded_config(obj, str(path))


def run_config_of(checkpoint, trust_pickle: bool = False) -> dict | None:
    """The run config a checkpoint records (a froster folder's training config, or what
    another project's file fixes: frames, views, ...), or None (nothing recorded, or no
    such file): the base that a config file and key=value override."""
    from . import froster_folder

    if not checkpoint:
        return None
    if froster_folder.folder_of(checkpoint) is not None:
        return froster_folder.run_config(checkpoint)
    if not Path(checkpoint).is_file():
        return None
    return recorded_config(checkpoint, trust_pickle=trust_pickle)


def detect(obj, source: str) -> str:
    """The format whose keys `obj` has, or an error saying what was expected."""
    for name in FORMATS.names():
        if FORMATS.get(name).looks_like(obj):
            return name
    if isinstance(obj, dict) and "visual.conv1.weight" in {str(k).removeprefix("module.")
                                                            for k in obj}:
        raise FrosterError(f"{source} holds plain CLIP weights, not a fine-tuned video model: use "
                           f"them with --model ARCH --pretrained {source} (or pretrained={source} "
                           f"in a config)")
    expected = "; or ".join(FORMATS.get(n).EXPECTED for n in ("froster-ref", "vificlip"))
    raise FrosterError(f"{source} is not a checkpoint froster can read: it holds {summary(obj)}. "
                       f"Expected a froster checkpoint folder (config.json + model.safetensors); "
                       f"or {expected}")


def summary(obj) -> str:
    """A few words on what a loaded file holds, for error messages."""
    if isinstance(obj, dict):
        keys = [str(k) for k in obj][:5]
        return (f"a dict with {len(obj)} keys ({', '.join(keys)}"
                f"{', ...' if len(obj) > 5 else ''})") if obj else "an empty dict"
    return f"a {type(obj).__name__}"


def export_reference(imported, output: str | Path) -> list[str]:
    """Write `imported` (a student, its heads if any) in the reference's layout; warnings."""
    import torch

    from ..files import atomic_write
    from .pyslowfast import reference_checkpoint

    state, warnings = reference_checkpoint(imported.weights, imported.spec, imported.heads,
                                           imported.config)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(output, lambda tmp: torch.save(state, tmp))
    return warnings
