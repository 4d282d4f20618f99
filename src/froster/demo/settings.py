"""The demo's settings: the default, `--full` and `--quick`.

- `--full`: the protocol of docs/demo.md section 4, unchanged: 64 training videos per base
  class in each of 3 splits, 100 test videos per class, 1000 pretraining steps, 8 epochs,
  run one after the other in this process (torch's default threads, one decoding worker).
- the default: the same rows, splits, trainer, evaluation and weight averaging on a smaller
  world (`DEFAULT_WORLD`), its independent runs in single-threaded processes, one per core
  (`jobs.py`); about 4 minutes on 2 CPU cores. docs/demo.md says why these sizes keep the
  conclusions.
- `--quick`: a smoke test of the default's code path (seconds; its numbers are noise).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config, validate
from ..errors import FrosterError
from .benchmark import BenchmarkSpec
from .defaults import DEMO_EPOCHS, FULL_EPOCHS, SIGNATURE_PROB
from .pretrain import PretrainConfig

__all__ = ["WorldSize", "DEFAULT_WORLD", "FULL_WORLD", "QUICK_WORLD", "demo_settings"]


@dataclass(frozen=True)
class WorldSize:
    """What differs between the default demo, --full and --quick."""

    train_per_class: int      # training videos per base class in each split
    test_per_class: int       # test videos per class, base and novel
    train_splits: int
    pretrain_steps: int
    pretrain_scenes: int = 1500
    pretrain_frames_per_scene: int = 4
    pretrain_batch_size: int = 128
    pretrain_warmup_steps: int = 50
    pretrain_lr: float = 1e-3
    pretrain_used_token_rows: bool = False  # pretrain.UsedRows: the same updates, less work
    epochs: int = DEMO_EPOCHS
    average_from_epoch: int = 2
    batch_size: int = 16
    #: one process per core for the independent runs (False: one after the other, here)
    parallel: bool = True
    device: str = "auto"


FULL_WORLD = WorldSize(train_per_class=64, test_per_class=100, train_splits=3,
                       pretrain_steps=1000, epochs=FULL_EPOCHS, parallel=False, device="cpu")
DEFAULT_WORLD = WorldSize(train_per_class=16, test_per_class=50, train_splits=3,
                          pretrain_steps=400, pretrain_lr=2e-3, pretrain_used_token_rows=True,
                          epochs=DEMO_EPOCHS)
QUICK_WORLD = WorldSize(train_per_class=4, test_per_class=2, train_splits=2, pretrain_steps=3,
                        pretrain_scenes=24, pretrain_frames_per_scene=2, pretrain_batch_size=16,
                        pretrain_warmup_steps=1, epochs=1, average_from_epoch=0)


def world_size(quick: bool = False, full: bool = False) -> WorldSize:
    if quick and full:
        raise FrosterError("--quick and --full exclude each other")
    return QUICK_WORLD if quick else FULL_WORLD if full else DEFAULT_WORLD


def demo_settings(quick: bool = False, seed: int = 0, signature_prob: float = SIGNATURE_PROB,
                  epochs: int | None = None, temporal: str = "neighbor", full: bool = False,
                  world: WorldSize | None = None):
    """(BenchmarkSpec, PretrainConfig, Config) of the demo: the default, `full` (docs/demo.md
    section 4's protocol) or `quick` (a smoke test); `world` replaces the sizes.

    `signature_prob=0` is the control world in which no single frame says anything
    about the action; more `epochs` than --full's 8 show plain fine-tuning forgetting
    the novel classes (see docs/demo.md). `temporal` is the trained student's backbone."""
    size = world or world_size(quick, full)
    spec = BenchmarkSpec(train_per_class=size.train_per_class, test_per_class=size.test_per_class,
                         train_splits=size.train_splits, signature_prob=signature_prob, seed=seed)
    pre = PretrainConfig(scenes=size.pretrain_scenes, frames_per_scene=size.pretrain_frames_per_scene,
                         steps=size.pretrain_steps, batch_size=size.pretrain_batch_size,
                         warmup_steps=size.pretrain_warmup_steps, lr=size.pretrain_lr,
                         used_token_rows=size.pretrain_used_token_rows,
                         signature_prob=signature_prob,
                         seed=seed)
    # sampling="uniform": the demo's own protocol, with which docs/demo.md's results were
    # measured (its 16-frame clips have no reference numbers to compare with).
    # num_workers: --full decodes in one worker beside the model; the default's runs are one
    # single-threaded process per core and decode in that process (the clips are the same:
    # every clip is drawn from its own seed, bench/demo.py)
    cfg = Config(model="froster-demo", num_frames=8, sampling_rate=2, target_fps=8.0,
                 sampling="uniform",
                 test_views=1, flip=False, batch_size=size.batch_size, lr=1e-3, warmup_epochs=2.0,
                 epochs=epochs or size.epochs, average_from_epoch=size.average_from_epoch,
                 num_workers=0 if size.parallel else 1, precision="fp32", progress=False,
                 device=size.device, eval_batch_size=16, log_every=1000, seed=seed,
                 temporal=temporal,
                 overwrite=True)  # a rerun of the demo trains its rows afresh
    validate(cfg)
    return spec, pre, cfg
