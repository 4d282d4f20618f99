"""Steps/s of the full training loop (data loader + model + optimiser, `Trainer.train_epoch`'s
path) against the model step alone on batches loaded beforehand, measured in one run and
interleaved (loop epoch, model-only epoch, ...), so that both see the same machine load.

    python bench/train_loop.py                        # ViT-B/16 widths, 2 layers per tower, CPU
    python bench/train_loop.py --model froster-tiny   # tiny model: loading dominates
    python bench/train_loop.py --device cuda --model ViT-B-16 --batch 8

The videos are generated (320x240, 30 fps, textured moving frames, H.264) in a temporary
folder. Prints `key: value` lines; `loop_over_model_step` is loop steps/s over model-only
steps/s in steady state (after each epoch's first batch); the target is >= 0.9 (loading
hides behind compute). `loop_over_model_step_with_epoch_start` also counts the wait for
each epoch's first batch (worker start-up), which a real epoch of thousands of steps
amortises. Each loop epoch ends as training's do, with the running weight average
(`Trainer.accumulate_average`, on from epoch 1 here) counted in the loop's time.

Each loop step ends as training's do, with the check whether a mid-epoch save is due
(`Trainer.after_step`, `--save-every-minutes`, default 30 as the config); no save falls in
these short epochs, so `loop_over_model_step` shows the check's cost. `mid_epoch_save_seconds`
is what one such save takes (`Trainer.save_state` with the epoch's progress: the full state
to `checkpoints/last.pt`, fsynced), the median of 3.

`disk_mb_per_epoch` is what an epoch's end (`Trainer.save`) writes beyond the training state
(`checkpoints/last.pt`, overwritten each epoch), with `--keep-epochs` (default none: target
0; `all` shows the per-epoch exports it saves); `training_state_mb` is that state's size.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _measure import k400_class_texts

from froster.config import load_config
from froster.data import FailureLog
from froster.data.synthetic import write_video
from froster.engine.distributed import DistInfo, resolve_device
from froster.engine.epoch_progress import EpochProgress
from froster.engine.train import Trainer


_TEXTURE: dict = {}


def textured(i: int, width: int, height: int) -> np.ndarray:
    """A moving pattern with some grain: costs about what a real clip costs to decode."""
    key = (width, height)
    if key not in _TEXTURE:
        y, x = np.mgrid[0:height, 0:2 * width]
        image = np.stack([127 + 100 * np.sin(x / 9.0), 127 + 100 * np.cos(y / 7.0),
                          127 + 60 * np.sin((x + y) / 13.0)], axis=-1)
        grain = np.random.default_rng(0).normal(0, 6, (4, height, 2 * width, 3))
        _TEXTURE[key] = [(image + g).clip(0, 255).astype(np.uint8) for g in grain]
    shift = (3 * i) % width
    return np.ascontiguousarray(_TEXTURE[key][i % 4][:, shift:shift + width])


def make_data(root: Path, videos: int, classes: int, frames: int, width: int = 320,
              height: int = 240, options: dict | None = None) -> dict:
    lines = []
    for k in range(videos):
        name = f"v{k:03d}.mp4"
        write_video(root / name, frames + 7 * (k % 5), width=width, height=height, frame=textured,
                    options=options or {"crf": "23"})
        lines.append(f"{name},{k % classes}\n")
    (root / "train.csv").write_text("".join(lines))
    texts = k400_class_texts(classes)
    import json
    (root / "classes.json").write_text(json.dumps({str(i): t for i, t in enumerate(texts)}))
    return {"data_root": str(root), "train_list": str(root / "train.csv"),
            "class_file": str(root / "classes.json")}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-16-2L")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=2, help="videos per step")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--sampling-rate", type=int, default=16)
    parser.add_argument("--classes", type=int, default=50)
    parser.add_argument("--videos", type=int, default=12, help="videos per epoch")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved loop/model epochs")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for the model (default: cores minus workers)")
    parser.add_argument("--keep-epochs", default="none", help="all, none or N (default none)")
    parser.add_argument("--save-every-minutes", type=float, default=30.0,
                        help="mid-epoch saves (0: off; default 30, the config's)")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)
    device = resolve_device(args.device)
    cores = os.cpu_count() or 1
    threads = args.threads or max(1, cores - args.workers)
    torch.set_num_threads(threads)

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        data = make_data(Path(tmp), args.videos, args.classes,
                         frames=args.frames * args.sampling_rate + 30)
        setup_s = time.perf_counter() - start
        cfg = load_config(overrides=[
            f"model={args.model}", "pretrained=none", f"num_frames={args.frames}",
            f"sampling_rate={args.sampling_rate}", f"batch_size={args.batch}",
            f"num_workers={args.workers}", "progress=false", f"device={device}",
            f"output_dir={tmp}/run", "log_every=1000000", "epochs=1000", "average_from_epoch=1",
            f"keep_epochs={args.keep_epochs}", f"save_every_minutes={args.save_every_minutes}",
            *[f"{k}={v}" for k, v in data.items()]])
        trainer = Trainer(cfg, DistInfo(device=device))
        steps = trainer.steps_per_epoch

        def loop_epoch(epoch: int) -> tuple[float, float]:
            """Full loop; returns (total seconds, seconds after the first batch arrived)."""
            sync(device)
            t0 = time.perf_counter()
            first = None
            failures = FailureLog()
            for i, group in enumerate(trainer.epoch_batches(epoch, failures)):
                if i == steps:
                    break
                if first is None:
                    first = time.perf_counter()
                trainer.train_step(group)
                trainer.after_step(i + 1, {}, failures, t0)  # is a mid-epoch save due?
            trainer.epoch = epoch + 1
            trainer.accumulate_average()  # what the end of a training epoch adds to the loop
            sync(device)
            end = time.perf_counter()
            return end - t0, end - first

        def model_epoch(groups) -> float:
            sync(device)
            t0 = time.perf_counter()
            for group in groups:
                trainer.train_step(group)
            sync(device)
            return time.perf_counter() - t0

        def written_per_save(epochs: int = 3) -> tuple[float, float]:
            """(MB written beyond last.pt per epoch end, MB of last.pt), from `save()`."""
            run = Path(cfg.output_dir)

            def others() -> int:
                return sum(p.stat().st_size for p in run.rglob("*")
                           if p.is_file() and p != run / "checkpoints" / "last.pt")
            trainer.save()  # the first save creates the folders
            before = others()
            for _ in range(epochs):
                trainer.epoch += 1
                trainer.save()
            state = (run / "checkpoints" / "last.pt").stat().st_size
            return (others() - before) / epochs / 2**20, state / 2**20

        preloaded = list(trainer.epoch_batches(0, FailureLog()))[:steps]
        model_epoch(preloaded[:1])  # warm-up (allocations, teacher text cache)
        loop_epoch(0)
        loop_s, steady_s, model_s = [], [], []
        for r in range(args.rounds):
            total, steady = loop_epoch(r + 1)
            loop_s.append(total)
            steady_s.append(steady)
            model_s.append(model_epoch(preloaded))
        disk_mb, state_mb = written_per_save()

        def mid_epoch_save() -> float:
            sync(device)
            t0 = time.perf_counter()
            trainer.save_state(EpochProgress(1, {"loss": 1.0}, FailureLog(), 1.0))
            return time.perf_counter() - t0
        save_s = statistics.median(mid_epoch_save() for _ in range(3))
        averaged = len(trainer.average)

    loop_rate = steps / statistics.median(loop_s)
    steady_rate = steps / statistics.median(steady_s)
    model_rate = steps / statistics.median(model_s)
    print(f"model: {args.model}")
    print(f"device: {device.type}")
    print(f"shape: batch {args.batch} x {args.frames} frames x {trainer.size}px, "
          f"{args.classes} classes, videos 320x240")
    print(f"cores: {cores}")
    print(f"torch_threads: {threads}")
    print(f"loader_workers: {args.workers}")
    print(f"steps_per_epoch: {steps}")
    print(f"rounds: {args.rounds}")
    print(f"data_generation_seconds: {setup_s:.1f}")
    print(f"model_step_seconds: {1 / model_rate:.3f}")
    print(f"model_steps_per_second: {model_rate:.3f}")
    print(f"loop_steps_per_second: {steady_rate:.3f}")
    print(f"loop_steps_per_second_with_epoch_start: {loop_rate:.3f}")
    print(f"loop_over_model_step: {steady_rate / model_rate:.3f}")
    print(f"loop_over_model_step_with_epoch_start: {loop_rate / model_rate:.3f}")
    print(f"keep_epochs: {args.keep_epochs}")
    print(f"epochs_in_running_average: {averaged}")
    print(f"disk_mb_per_epoch: {disk_mb:.3f}")
    print(f"training_state_mb: {state_mb:.1f}")
    print(f"save_every_minutes: {args.save_every_minutes:g}")
    print(f"mid_epoch_save_seconds: {save_s:.2f}")


if __name__ == "__main__":
    sys.exit(main())
