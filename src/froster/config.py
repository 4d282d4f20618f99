"""The run configuration: one typed dataclass, set by a YAML file and `key=value` overrides.

    cfg = load_config("configs/b2n_k400.yaml", ["epochs=2", "lr=1e-5"])
    cfg = load_config(find_config("b2n_k400"))    # a config shipped with the package, by name

A YAML file may name another one with ``base: other.yaml`` (relative to itself); its keys
are read first. Unknown keys are an error that lists the valid ones and suggests the
closest. The resolved config (every field) is saved with each checkpoint.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml

from . import backbones
from .data.views import DEFAULT_VIEW, ViewSpec
from .errors import FrosterError, MissingFileError
from .files import atomic_write
from .precisions import EVAL_PRECISIONS, TEACHER_PRECISIONS, TRAIN_PRECISIONS


@dataclass
class Config:
    # model
    model: str = "ViT-B-16"                # open_clip architecture
    pretrained: str | None = "openai"      # open_clip tag, local weights file, or none
    quick_gelu: bool | None = None         # None: decided by the weights
    temporal: str = "neighbor"             # neighbor (VCLIP) | mean | aim | st_adapter | adaptformer | actionclip (froster.backbones)
    neighbor_padding: str = "zeros"        # zeros (reference quirk) | masked
    train_params: str = "all"              # all (the reference) | added: only the backbone's new modules, logit_scale and the FROSTER heads
    added_lr_scale: float = 1.0            # learning-rate multiplier of the backbone's new modules (1.0 as the reference)
    # method
    distill: bool = True                   # false: plain fine-tuning baseline
    distill_weight: float = 2.0
    alpha: float = 0.1
    templates: str = ""                    # "": the reference's 28 templates + bare; else a file, one template per line
    clean_prompts: bool = False            # true: no " " + name after a templated prompt for a plain class name (the reference appends it)
    zero_shot: bool = False                # frozen CLIP baseline: no training, evaluation only
    shard_text: bool | None = None         # each rank encodes a share of the classes (exact); none: on whenever world_size > 1
    # data
    data_root: str = ""
    train_list: str = ""
    val_list: str = ""
    class_file: str = ""                   # training classes ("Name" or "Name: description")
    eval_class_file: str = ""              # classes of val_list; empty: class_file
    num_frames: int = DEFAULT_VIEW.num_frames          # the view's fields: froster.data.views.ViewSpec
    sampling_rate: int = DEFAULT_VIEW.sampling_rate
    target_fps: float = DEFAULT_VIEW.target_fps
    test_views: int = DEFAULT_VIEW.num_views
    test_crops: int = DEFAULT_VIEW.num_crops
    sampling: str = DEFAULT_VIEW.sampling              # reference (the reference decoder's frames) | uniform (even over the whole clip)
    apply_rotation: bool = DEFAULT_VIEW.apply_rotation  # rotate frames by the display-rotation metadata (the reference ignores it)
    num_workers: int | None = None         # decoding workers per rank; none: the cores per rank less one
    decode_timeout: float = 120.0          # seconds one video may take to decode in a worker before it counts as failed (0: no limit)
    flip: bool = True                      # random horizontal flip in training (false for direction-sensitive data, e.g. SSv2)
    check_data: bool = False               # `froster data check` train_list and val_list first; refuse to start while entries are broken
    # optimisation
    epochs: int = 12
    batch_size: int = 32                   # global: over all ranks and accumulation steps
    device_batch_size: int | None = None   # clips per GPU per forward pass; none: batch_size / (world_size x grad_accum)
    grad_accum: int = 1                    # forward passes per optimiser step (follows from device_batch_size when that is set)
    lr: float = 3.33e-6
    warmup_epochs: float = 2.0
    warmup_start_lr: float = 3.33e-8
    min_lr: float = 3.33e-8
    cosine_after_warmup: bool = True       # as FROSTER's configs (COSINE_AFTER_WARMUP: True)
    weight_decay: float = 0.01
    logit_scale_decay: bool = True         # the reference decays the 0-D logit_scale too; false exempts it
    clip_grad: float = 1.0                 # 0: no clipping
    precision: str = "auto"                # auto: fp16 on CUDA (as the reference), fp32 on CPU
    eval_precision: str = "fp32"           # testing (eval, benchmark, evaluation in training): fp32 as the reference; bf16 | fp16 for speed
    grad_checkpointing: bool = False
    teacher_precision: str = "fp32"        # fp32 | bf16 | fp16: run the frozen teacher in reduced precision
    compile: bool = False                  # torch.compile both towers (falls back to eager if it fails)
    seed: int = 0
    # running
    device: str = "auto"                   # auto | cpu | cuda | cuda:N
    output_dir: str = "runs/froster"
    resume: str = ""                       # "" | latest | auto (resume if output_dir holds a state, else start: requeued jobs) | path to a training checkpoint
    overwrite: bool = False                # start over in an output_dir that holds a training state (replacing it); without it that refuses
    save_every_minutes: float = 30.0       # also write the training state mid-epoch this often (rank 0's clock; 0: only at epoch ends)
    save_every_steps: int = 0              # also write it every N optimiser steps (0: off; for small runs and tests)
    requeue: bool = False                  # after a SIGTERM/SIGUSR1 stop, `scontrol requeue $SLURM_JOB_ID` (the job resumes with resume=auto)
    dist_timeout: float = 600.0            # seconds a collective waits for the other ranks before the run fails (a dead or hung rank)
    init: str = ""                         # start from this student: a checkpoint folder or another project's file (e.g. the reference's swa_2_22.pth)
    trust_pickle: bool = False             # allow an init file that needs full unpickling (trusted sources only)
    eval_every: int = 0                    # evaluate on val_list every N epochs (0: never)
    eval_batch_size: int = 4               # videos per rank per evaluation batch
    average_from_epoch: int = 2            # average epochs >= this at the end (0: no averaging)
    keep_epochs: str = "none"              # per-epoch student exports kept: all | none | N (the last N)
    log_every: int = 10                    # steps between log lines
    progress: bool = True                  # tqdm bar (shown only on a terminal)

    def __post_init__(self):
        self.keep_epochs = str(self.keep_epochs).strip().lower() or "none"  # "" is YAML's none

    def to_dict(self) -> dict:
        return asdict(self)

    def view(self) -> ViewSpec:
        """How training and evaluation see a video (the config's view keys)."""
        return ViewSpec(num_frames=self.num_frames, sampling_rate=self.sampling_rate,
                        target_fps=self.target_fps, num_views=self.test_views,
                        num_crops=self.test_crops, sampling=self.sampling,
                        apply_rotation=self.apply_rotation)

    def kept_epochs(self) -> int | None:
        """How many of the latest per-epoch exports to keep; None: all of them."""
        return None if self.keep_epochs == "all" else int(self.keep_epochs.replace("none", "0"))

    def short_side_range(self, size: int) -> tuple[int, int]:
        """The reference's [224, 256] random short side, scaled to the model's input size."""
        return size, round(size * 256 / 224)


#: the configs of the paper's settings, shipped inside the package
CONFIG_DIR = Path(__file__).parent / "configs"


def shipped_configs() -> list[str]:
    return [p.stem for p in CONFIG_DIR.glob("*.yaml")]


def find_config(name: str | Path) -> Path:
    """A config file: `name` itself when it exists, else the shipped config of that name
    (`b2n_k400` or `b2n_k400.yaml`)."""
    path = Path(name)
    if path.is_file():
        return path
    shipped = CONFIG_DIR / (path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml")
    if path.parent == Path(".") or path.parts[:1] == ("configs",):
        if shipped.is_file():
            return shipped
    close = difflib.get_close_matches(path.stem, shipped_configs(), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    if path.parent != Path(".") or path.suffix:
        raise MissingFileError(f"config file not found: {name}")
    raise MissingFileError(f"config not found: {name} is neither a file nor a shipped config "
                           f"(`froster train --list-configs` lists those).{hint}")


FIELDS = {f.name: f for f in fields(Config)}
_TYPES = typing.get_type_hints(Config)
_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
_NONE = ("none", "null", "~")


def valid_keys() -> list[str]:
    return list(FIELDS)


def _unknown_key(key: str, where: str) -> FrosterError:
    close = difflib.get_close_matches(key, FIELDS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return FrosterError(f"unknown config key {key!r} in {where}.{hint} Valid keys: "
                        f"{', '.join(FIELDS)}")


def convert(key: str, value, where: str = "the config"):
    """`value` (a YAML value or a command-line string) as the type of field `key`."""
    if key not in FIELDS:
        raise _unknown_key(key, where)
    hint = _TYPES[key]
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    allows_none = type(None) in options
    target = next(t for t in options if t is not type(None))
    if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
        if allows_none:
            return None
        if target is str:
            return ""
        raise FrosterError(f"{key} in {where} cannot be empty (expected {target.__name__})")
    try:
        if target is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError
        if target is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(float(value)) if isinstance(value, str) and "e" in value.lower() else int(value)
        if target is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise FrosterError(f"{key}={value!r} in {where}: expected "
                           f"{'true/false' if target is bool else target.__name__}") from None


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    if not path.is_file():
        raise MissingFileError(f"config file not found: {path}")
    if path.resolve() in seen:
        raise FrosterError(f"{path}: 'base' files include each other in a loop")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise FrosterError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise FrosterError(f"{path}: expected 'key: value' lines, found a {type(data).__name__}")
    base = data.pop("base", None)
    values = {}
    if base:
        values = _read_yaml((path.parent / base), seen + (path.resolve(),))
    for key, value in data.items():
        values[key] = convert(str(key), value, str(path))
    return values


def parse_overrides(overrides) -> dict:
    """["lr=1e-5", "distill=false"] -> {"lr": 1e-05, "distill": False}."""
    values = {}
    for item in overrides or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise FrosterError(f"override {item!r} is not of the form key=value")
        values[key.strip()] = convert(key.strip(), value, "the command line")
    return values


def load_config(path: str | Path | None = None, overrides=(), base: dict | None = None) -> Config:
    """Defaults <- `base` dict (e.g. a checkpoint's config) <- YAML file <- overrides."""
    values = {}
    for key, value in (base or {}).items():
        if key in FIELDS:  # a config saved by another version may have extra keys
            values[key] = convert(key, value, "the saved config")
    if path:
        values.update(_read_yaml(Path(path)))
    values.update(parse_overrides(overrides))
    cfg = Config(**values)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    def choice(key, options):
        if getattr(cfg, key) not in options:
            raise FrosterError(f"{key}={getattr(cfg, key)!r}: expected one of {', '.join(options)}")

    choice("precision", TRAIN_PRECISIONS)
    choice("teacher_precision", TEACHER_PRECISIONS)
    choice("eval_precision", EVAL_PRECISIONS)
    choice("temporal", backbones.names())
    choice("train_params", ("all", "added"))
    choice("neighbor_padding", ("zeros", "masked"))
    cfg.view()  # frames, rate, fps, views, crops, sampling rule
    for key in ("batch_size", "grad_accum", "eval_batch_size", "log_every"):
        if getattr(cfg, key) < 1:
            raise FrosterError(f"{key} must be at least 1, got {getattr(cfg, key)}")
    if cfg.device_batch_size is not None and cfg.device_batch_size < 1:
        raise FrosterError(f"device_batch_size must be at least 1, got {cfg.device_batch_size}")
    for key in ("epochs", "eval_every", "average_from_epoch", "decode_timeout"):
        if getattr(cfg, key) < 0:
            raise FrosterError(f"{key} must not be negative, got {getattr(cfg, key)}")
    if cfg.num_workers is not None and cfg.num_workers < 0:
        raise FrosterError(f"num_workers must not be negative, got {cfg.num_workers}")
    if not (cfg.keep_epochs in ("all", "none") or cfg.keep_epochs.isdigit()):
        raise FrosterError(f"keep_epochs={cfg.keep_epochs!r}: expected all, none or a number of "
                           "epochs (the last N exports are kept)")
    for key in ("save_every_minutes", "save_every_steps"):
        if getattr(cfg, key) < 0:
            raise FrosterError(f"{key} must not be negative (0: off), got {getattr(cfg, key)}")
    if cfg.dist_timeout <= 0:
        raise FrosterError(f"dist_timeout must be positive (seconds), got {cfg.dist_timeout}")
    if cfg.overwrite and cfg.resume and cfg.resume.lower() not in ("none", "false", "no"):
        raise FrosterError(f"overwrite=true starts the run over and resume={cfg.resume} "
                           "continues it: give one of them")
    if cfg.added_lr_scale <= 0:
        raise FrosterError(f"added_lr_scale must be positive, got {cfg.added_lr_scale}")


def save_config(cfg: Config, path: str | Path) -> None:
    text = yaml.safe_dump(cfg.to_dict(), sort_keys=False)
    atomic_write(Path(path), lambda p: Path(p).write_text(text))
