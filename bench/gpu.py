"""The GPU smoke benchmark: the GPU test suite, then the figures that say whether froster
trains and evaluates at the speed a GPU allows. No network, tiny generated data, random
weights at ViT-B/16 size (`pretrained=none`); under 9 minutes on one GPU.

    python bench/gpu.py                 # a GPU machine: ViT-B-16, the figures below
    python bench/gpu.py --skip-tests    # the figures only
    python bench/gpu.py                 # without CUDA: the same stages at tiny size (froster-tiny)

Figures (`key: value`):
- gpu_tests_passed / gpu_tests_failed / gpu_tests_skipped: `pytest -m gpu` (tests/test_gpu.py)
- train_step_clips_per_s_{fp16,bf16}_batch{8,16}: the real `Trainer.train_step` (teacher on,
  K400's 400 classes x 2 prompts, 8 frames) on batches loaded beforehand, per GPU
- mfu: FLOPs of one fp16 step of batch 8 (torch's FlopCounterMode, forward and backward)
  per second, over the GPU's dense fp16 peak (bench/throughput.py's table, or --peak-tflops)
- peak_mem_gb_b16_batch8: peak device memory of that step (ViT-B/16, batch 8, fp16)
- text_share_of_step: the student's text tower (forward and backward of the classifier)
  over the whole step, fp16, batch 8
- loader_clips_per_s_per_core_{340x256,1280x720}: training clips decoded, sampled and
  cropped per second by one core (the dataset in the main process)
- loop_over_model_step: `Trainer.train_epoch`'s loop with real decoding (workers from the
  cores) over the model step alone on preloaded batches, steady state
- eval_videos_per_s_{fp32,tf32,bf16}: `engine.evaluate` (3 views, 400 classes), fp32,
  fp32 with TF32 matmuls, and bf16
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _measure import k400_class_texts
from throughput import peak_tflops
from train_loop import make_data

from froster.config import load_config
from froster.data import FailureLog, VideoDataset, read_annotations
from froster.engine.distributed import DistInfo
from froster.engine.evaluate import eval_dataset, evaluate
from froster.engine.inputs import class_bank
from froster.engine.precision import autocast
from froster.engine.train import Trainer

ROOT = Path(__file__).resolve().parents[1]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_gpu_tests() -> dict:
    result = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-ra",
                             "-p", "no:cacheprovider", "tests/test_gpu.py"],
                            cwd=ROOT, capture_output=True, text=True)
    tail = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    counts = {}
    for part in tail.split(","):
        words = part.split()
        for key in ("passed", "failed", "skipped", "error", "errors"):
            if key in words:
                counts[key.rstrip("s") if key == "errors" else key] = int(words[0].strip("="))
    if result.returncode not in (0, 1, 5):
        print(result.stdout[-3000:] + result.stderr[-3000:], file=sys.stderr)
    elif counts.get("failed"):
        print(result.stdout[-6000:], file=sys.stderr)
    return {"gpu_tests_passed": counts.get("passed", 0),
            "gpu_tests_failed": counts.get("failed", 0) + counts.get("error", 0),
            "gpu_tests_skipped": counts.get("skipped", 0)}


def settings(args, device, data: dict, out: str, **overrides) -> list[str]:
    values = {"model": args.model, "pretrained": "none", "num_frames": args.frames,
              "device": device.type, "progress": "false", "log_every": 1000000, "epochs": 100,
              "average_from_epoch": 0, "output_dir": out, "num_workers": 0, **data, **overrides}
    return [f"{k}={v}" for k, v in values.items()]


def trainer_for(args, device, data, out, **overrides) -> Trainer:
    return Trainer(load_config(overrides=settings(args, device, data, out, **overrides)),
                   DistInfo(device=device))


def timed_steps(trainer: Trainer, groups, device, repeats: int) -> float:
    """Median seconds of one optimiser step (after 2 warm-up steps)."""
    for group in groups[:2]:
        trainer.train_step(group)
    times = []
    for r in range(repeats):
        sync(device)
        start = time.perf_counter()
        trainer.train_step(groups[r % len(groups)])
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def step_figures(args, device, data, tmp) -> dict:
    out = {}
    half = ["fp16", "bf16"] if device.type == "cuda" else ["bf16"]
    for precision in half:
        for batch in args.batches:
            trainer = trainer_for(args, device, data, f"{tmp}/{precision}{batch}",
                                  precision=precision, batch_size=batch)
            groups = list(trainer.epoch_batches(0, FailureLog()))[:3]
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            seconds = timed_steps(trainer, groups, device, args.repeats)
            out[f"train_step_clips_per_s_{precision}_batch{batch}"] = batch / seconds
            if batch == args.batches[0] and precision == half[0]:
                if device.type == "cuda":
                    out["peak_mem_gb_b16_batch8"] = torch.cuda.max_memory_allocated(device) / 2**30
                out |= mfu_and_text_share(trainer, groups[0], seconds, device, args)
            del trainer
    return out


def mfu_and_text_share(trainer: Trainer, group, seconds: float, device, args) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        trainer.train_step(group)
    flops = counter.get_total_flops()
    peak = args.peak_tflops or peak_tflops(device, trainer.dtype)
    out = {"step_tflops": flops / seconds / 1e12}
    if peak:
        out["mfu"] = flops / seconds / 1e12 / peak
    templates = trainer.bank.training_template_sets()[0]

    def text_only():
        trainer.model.zero_grad(set_to_none=True)
        with autocast(device, trainer.dtype):
            classes = trainer.model.class_embeddings(trainer.bank, templates, device)
        classes.float().sum().backward()

    text_only()
    times = []
    for _ in range(args.repeats):
        sync(device)
        start = time.perf_counter()
        text_only()
        sync(device)
        times.append(time.perf_counter() - start)
    out["text_share_of_step"] = statistics.median(times) / seconds
    return out


def loader_figures(args, tmp) -> dict:
    """Training clips per second of one core, at two source sizes."""
    out = {}
    torch.set_num_threads(1)
    for width, height in ((340, 256), (1280, 720)):
        root = Path(tmp) / f"src{width}"
        root.mkdir()
        data = make_data(root, args.loader_videos, 4, frames=args.frames * 16 + 10,
                         width=width, height=height)
        items = read_annotations(data["train_list"], data["data_root"], 4)
        dataset = VideoDataset(items, mode="train", size=224, short_side_range=(224, 256))
        dataset[0]  # warm the decoder
        start = time.perf_counter()
        clips = 0
        while time.perf_counter() - start < args.loader_seconds:
            dataset[clips % len(items)]
            clips += 1
        out[f"loader_clips_per_s_per_core_{width}x{height}"] = clips / (time.perf_counter() - start)
    torch.set_num_threads(os.cpu_count() or 1)
    return out


def loop_figure(args, device, data, tmp) -> dict:
    workers = max(1, min(8, (os.cpu_count() or 2) - 1))
    trainer = trainer_for(args, device, data, f"{tmp}/loop", num_workers=workers,
                          batch_size=args.batches[0], precision="auto")
    steps = trainer.steps_per_epoch
    preloaded = list(trainer.epoch_batches(0, FailureLog()))[:steps]
    timed_steps(trainer, preloaded, device, 1)

    def loop_epoch(epoch):
        first = None
        for i, group in enumerate(trainer.epoch_batches(epoch, FailureLog())):
            if i == steps:
                break
            if first is None:
                sync(device)
                first = time.perf_counter()
            trainer.train_step(group)
        sync(device)
        return time.perf_counter() - first

    def model_epoch():
        sync(device)
        start = time.perf_counter()
        for group in preloaded[1:]:
            trainer.train_step(group)
        sync(device)
        return time.perf_counter() - start

    loop_epoch(0)
    loops, models = [], []
    for r in range(2):
        loops.append(loop_epoch(r + 1))
        models.append(model_epoch())
    return {"loop_over_model_step": statistics.median(models) / statistics.median(loops),
            "loop_workers": workers}


def eval_figures(args, device, data, tmp) -> dict:
    out = {}
    trainer = trainer_for(args, device, data, f"{tmp}/eval", batch_size=args.batches[0])
    student = trainer.student.eval()
    cfg = trainer.cfg
    bank = class_bank(cfg.class_file, "class_file", trainer.tokenizer)
    dataset = eval_dataset(cfg, cfg.train_list, len(bank), trainer.size)
    variants = [("fp32", None, False), ("tf32", None, True), ("bf16", torch.bfloat16, False)]
    for name, dtype, tf32 in variants:
        if name == "tf32" and device.type != "cuda":
            continue
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        evaluate(student, dataset, bank, DistInfo(device=device), batch_size=4, num_workers=0,
                 dtype=dtype, progress=False)  # warm-up: the classifier, the kernels
        start = time.perf_counter()
        metrics = evaluate(student, dataset, bank, DistInfo(device=device), batch_size=4,
                           num_workers=max(1, (os.cpu_count() or 2) - 1), dtype=dtype,
                           progress=False)
        out[f"eval_videos_per_s_{name}"] = metrics.evaluated / (time.perf_counter() - start)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return out


TEST_KEYS = ("gpu_tests_passed", "gpu_tests_failed", "gpu_tests_skipped")
CUDA_ONLY = "n/a (CUDA only)"


def headline(results: dict, args, device) -> dict:
    """Every figure named in the docstring, in order: the headline keys (the reference's
    setting: fp16 at the first batch on CUDA, bf16 on CPU; short side 256; fp32 testing),
    and `n/a` where this device cannot give one."""
    first, second = args.batches[0], args.batches[-1]
    out = {k: results[k] for k in TEST_KEYS}
    main = "fp16" if device.type == "cuda" else "bf16"
    out["train_step_clips_per_s"] = results[f"train_step_clips_per_s_{main}_batch{first}"]
    for precision in ("fp16", "bf16"):
        for batch in (first, second):
            key = f"train_step_clips_per_s_{precision}_batch{batch}"
            out[key] = results.get(key, CUDA_ONLY)
    out["mfu"] = results.get("mfu", CUDA_ONLY if device.type != "cuda" else
                             "unknown peak (give --peak-tflops)")
    out["step_tflops"] = results["step_tflops"]
    out["peak_mem_gb_b16_batch8"] = results.get("peak_mem_gb_b16_batch8", CUDA_ONLY)
    out["text_share_of_step"] = results["text_share_of_step"]
    out["loader_clips_per_s_per_core"] = results["loader_clips_per_s_per_core_340x256"]
    for size in ("340x256", "1280x720"):
        out[f"loader_clips_per_s_per_core_{size}"] = results[f"loader_clips_per_s_per_core_{size}"]
    out["loop_over_model_step"] = results["loop_over_model_step"]
    out["loop_workers"] = results["loop_workers"]
    out["eval_videos_per_s"] = results["eval_videos_per_s_fp32"]
    for name in ("fp32", "tf32", "bf16"):
        out[f"eval_videos_per_s_{name}"] = results.get(f"eval_videos_per_s_{name}", CUDA_ONLY)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    cuda = torch.cuda.is_available()
    parser.add_argument("--model", default="ViT-B-16" if cuda else "froster-tiny")
    parser.add_argument("--frames", type=int, default=8 if cuda else 2)
    parser.add_argument("--classes", type=int, default=400 if cuda else 20)
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 16] if cuda else [2, 4])
    parser.add_argument("--videos", type=int, default=48 if cuda else 8)
    parser.add_argument("--loader-videos", type=int, default=4 if cuda else 2)
    parser.add_argument("--loader-seconds", type=float, default=10 if cuda else 3)
    parser.add_argument("--repeats", type=int, default=5 if cuda else 2)
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--skip-tests", action="store_true")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)
    device = torch.device("cuda" if cuda else "cpu")
    started = time.perf_counter()

    results = {k: "not run (--skip-tests)" for k in TEST_KEYS} if args.skip_tests \
        else run_gpu_tests()
    with tempfile.TemporaryDirectory() as tmp:
        data = make_data(Path(tmp), args.videos, args.classes, frames=args.frames * 16 + 10,
                         options={"crf": "23", "g": "16"})
        results |= step_figures(args, device, data, tmp)
        results |= loader_figures(args, tmp)
        results |= loop_figure(args, device, data, tmp)
        results |= eval_figures(args, device, data, tmp)
    results = headline(results, args, device)
    print(f"device: {torch.cuda.get_device_name(device) if cuda else 'cpu'}")
    print(f"model: {args.model} (random weights), {args.frames} frames, {args.classes} classes")
    for key, value in results.items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    print(f"total_seconds: {time.perf_counter() - started:.0f}")


if __name__ == "__main__":
    main()
