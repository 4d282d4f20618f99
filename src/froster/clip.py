"""Building CLIP towers through open_clip: by architecture name, with weights from an
open_clip tag (downloaded on a machine with a network), a local file, or none."""

from __future__ import annotations

import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch

from .errors import FrosterError

CONFIG_DIR = Path(__file__).parent / "model_configs"
open_clip.add_model_config(CONFIG_DIR)

#: Tiny architectures shipped for tests and the offline demo (random weights).
TINY_MODELS = ("froster-tiny",)
NO_WEIGHTS = (None, "", "none", "None", "random")  # `pretrained` values meaning random weights
_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")


class WeightsUnavailableError(FrosterError):
    """Pretrained weights could not be had (no network, unknown tag, missing file)."""


@dataclass(frozen=True)
class ClipSpec:
    """What is needed to rebuild the same CLIP: saved beside every checkpoint."""

    model: str
    pretrained: str | None = None
    quick_gelu: bool | None = None  # None: decided from the weights (OpenAI archives use it)


def list_architectures() -> list[str]:
    return open_clip.list_models()


def create_clip(model: str, pretrained: str | None = None, quick_gelu: bool | None = None,
                device: str | torch.device = "cpu"):
    """Return (clip_model, tokenizer) for an open_clip architecture name.

    `pretrained` is an open_clip tag such as "openai", a local file (OpenAI TorchScript
    archive, open_clip state dict, `.safetensors`) or None for random weights.
    """
    if model not in open_clip.list_models():
        raise FrosterError(f"unknown CLIP architecture {model!r}; open_clip knows: "
                           f"{', '.join(sorted(open_clip.list_models()))}")
    if pretrained in NO_WEIGHTS:
        clip = _build(model, quick_gelu=bool(quick_gelu))
    elif looks_like_path(pretrained):
        state_dict, is_openai_archive = read_clip_weights(pretrained)
        if quick_gelu is None:
            quick_gelu = is_openai_archive
        clip = _build(model, quick_gelu=quick_gelu)
        _load_into(clip, state_dict, pretrained, model)
    else:
        clip = _from_tag(model, pretrained, quick_gelu)
    tokenizer = open_clip.get_tokenizer(model)
    return clip.to(device).eval(), tokenizer


def resolve_quick_gelu(model: str, pretrained: str | None, quick_gelu: bool | None,
                       source: str = "the config") -> bool:
    """Whether a CLIP built as `create_clip(model, pretrained, quick_gelu)` uses QuickGELU,
    without loading it: `quick_gelu=None` means "as the weights say" (OpenAI's do)."""
    if quick_gelu is not None:
        return bool(quick_gelu)
    if pretrained in NO_WEIGHTS:
        return False
    if looks_like_path(pretrained):
        if not os.path.isfile(pretrained):
            raise FrosterError(f"{source}: cannot tell whether its CLIP uses QuickGELU: it was built "
                               f"from {pretrained} (quick_gelu unset), which is not here; pass "
                               f"quick_gelu=true (OpenAI weights) or false")
        return is_torchscript_archive(pretrained)
    try:
        return bool(open_clip.get_pretrained_cfg(model, pretrained).get("quick_gelu", False))
    except Exception:  # noqa: BLE001 - an unknown tag: open_clip's own default
        return False


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    """OpenAI's released CLIP `.pt` files are TorchScript archives (code + constants)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.rsplit("/", 1)[-1] == "constants.pkl" for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def preprocess_config(clip) -> dict:
    """Input size, mean and std the CLIP was trained with."""
    cfg = open_clip.get_model_preprocess_cfg(clip)
    size = cfg.get("size", clip.visual.image_size)
    size = size[0] if isinstance(size, (tuple, list)) else size
    return {"size": int(size), "mean": tuple(cfg["mean"]), "std": tuple(cfg["std"])}


def read_clip_weights(path: str | os.PathLike) -> tuple[dict, bool]:
    """Read a CLIP state dict from a local file; also say whether it was an OpenAI archive."""
    path = str(path)
    if not os.path.isfile(path):
        raise WeightsUnavailableError(f"CLIP weights file not found: {path}")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file
        return _clean(load_file(path)), False
    if is_torchscript_archive(path):  # OpenAI's released .pt files are TorchScript archives
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.jit.load's deprecation notice
                archive = torch.jit.load(path, map_location="cpu")
            state_dict = {k: v for k, v in archive.state_dict().items() if k not in
                          ("input_resolution", "context_length", "vocab_size", "attn_mask")}
            return _clean(state_dict), True
        except (RuntimeError, ValueError):
            pass
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling problem is reported the same way
        raise WeightsUnavailableError(f"cannot read CLIP weights from {path}: {err}") from None
    for key in ("state_dict", "model", "clip"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise WeightsUnavailableError(f"{path} holds a {type(obj).__name__}, not a state dict")
    return _clean(obj), False


def _clean(state_dict: dict) -> dict:
    return {k.removeprefix("module."): v for k, v in state_dict.items()}


def looks_like_path(pretrained: str) -> bool:
    return (os.sep in pretrained or pretrained.endswith(_WEIGHT_SUFFIXES)
            or os.path.isfile(pretrained))


def _build(model: str, quick_gelu: bool):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return open_clip.create_model(model, pretrained=None, force_quick_gelu=quick_gelu)


def _load_into(clip, state_dict: dict, path: str, model: str) -> None:
    result = clip.load_state_dict(state_dict, strict=False)
    missing = [k for k in result.missing_keys if k != "logit_bias"]
    if missing or result.unexpected_keys:
        raise WeightsUnavailableError(
            f"{path} does not fit the {model} architecture: {len(missing)} missing keys "
            f"(e.g. {missing[:3]}), {len(result.unexpected_keys)} unexpected keys "
            f"(e.g. {result.unexpected_keys[:3]}). Is it the right file for {model}?")


def _from_tag(model: str, tag: str, quick_gelu: bool | None):
    from . import offline

    tags = open_clip.list_pretrained_tags_by_model(model)
    if tag not in tags:
        raise WeightsUnavailableError(
            f"{tag!r} is neither a file nor an open_clip pretrained tag of {model} "
            f"(tags: {', '.join(tags) or 'none'})")
    tag_cfg = open_clip.get_pretrained_cfg(model, tag)
    if quick_gelu is None:  # open_clip 3 only warns when the tag needs QuickGELU
        quick_gelu = tag_cfg.get("quick_gelu", False)
    local_file = (f"pretrained=/path/to/{model}.pt (an OpenAI .pt archive, an open_clip state "
                  f"dict or a .safetensors file; --pretrained FILE on the command line)")
    if offline.cached(tag_cfg):
        try:  # no server calls, so no minute of retries on a machine without network
            with offline.hub_offline():
                return _create_tagged(model, tag, quick_gelu)
        except Exception:  # noqa: BLE001 - an incomplete cache: fetch as usual below
            pass
    else:
        server = offline.server_of(tag_cfg)
        reason = offline.unreachable(server)
        if reason:
            raise WeightsUnavailableError(
                f"the {model} weights tagged {tag!r} are not on this machine and need a download "
                f"from {server}, which cannot be reached ({reason}). Download them where there "
                f"is a network (open_clip keeps them in its cache), or pass a local file "
                f"instead: {local_file}")
    try:
        return _create_tagged(model, tag, quick_gelu)
    except Exception as err:  # noqa: BLE001 - download errors come in many types
        raise WeightsUnavailableError(
            f"could not get the {model} weights tagged {tag!r} through open_clip ({err}). "
            f"Without network access, download them on another machine and pass the local "
            f"file instead: {local_file}") from None


def _create_tagged(model: str, tag: str, quick_gelu: bool):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return open_clip.create_model(model, pretrained=tag, force_quick_gelu=quick_gelu)
