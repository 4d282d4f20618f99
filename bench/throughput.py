"""Training-step throughput of our exact fast paths against a reference-style step,
measured side by side in one run (ViT-B/16 widths, 2 layers per tower, K400 texts).

Reference-style step: teacher text re-encoded every step, prompts padded to 77 tokens,
full classifier on every rank, unfused attention. Ours: cached teacher text, trimmed
prompts, fused attention (and, over 2 processes, the classifier sharded across ranks).

    python bench/throughput.py
    python bench/throughput.py --model ViT-B-16 --device cuda   # full depth on a GPU

Prints: text_trim_speedup, froster_step_over_reference_step, sharded_text_speedup_2proc,
activation_checkpoint_peak_mem_ratio (and clips/s and MFU on a GPU).

Every step is timed in the precision training runs in (`--precision`, default the
config's `auto`: fp16 autocast on CUDA as the reference trains, fp32 on CPU), and model
FLOPs utilisation is the FLOPs torch's FlopCounterMode counts in one such step (forward
and backward) per second, over the GPU's dense peak in that precision (a table of known
GPUs, or --peak-tflops).
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import random
import socket
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from _measure import PeakRSS, k400_class_texts, track_large_allocations

from froster.clip import create_clip
from froster.distill import Froster
from froster.engine.precision import autocast, autocast_dtype
from froster.model import VideoCLIP
from froster.prompts import BARE_INDEX, PromptBank
from froster.sharding import gather_shares, local_share


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeats: int) -> float:
    """Median seconds of `fn` over `repeats` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build(args, device):
    torch.manual_seed(0)
    clip, tokenizer = create_clip(args.model)
    bank = PromptBank(k400_class_texts(args.classes), tokenizer)
    size = clip.visual.image_size[0]
    video = torch.randn(args.batch, args.frames, 3, size, size, device=device)
    labels = torch.randint(0, args.classes, (args.batch,), device=device)
    return clip, bank, video, labels


def froster(clip, device, reference: bool):
    student = VideoCLIP(copy.deepcopy(clip), trim_text=not reference, fused_attention=not reference)
    model = Froster(student, teacher_clip=copy.deepcopy(clip)).to(device).train()
    model.teacher.encoder.trim_text = not reference
    model.teacher.encoder.fused_attention = not reference
    model.teacher.cache_text = not reference
    return model


def text_step(student, tokens):
    student.zero_grad(set_to_none=True)
    student.encode_classes(tokens).sum().backward()


#: dense peak TFLOPS by GPU name fragment: (fp16/bf16 tensor cores, fp32 without TF32)
PEAK_TFLOPS = {"H200": (989, 67), "H100": (989, 67), "A100": (312, 19.5), "L40S": (362, 91.6),
               "A10": (125, 31.2), "V100": (125, 15.7), "RTX 4090": (165, 82.6), "L4": (121, 30.3)}
DTYPE = None  # the autocast dtype of the timed steps (set in main)


def peak_tflops(device, dtype) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for fragment, (half, single) in PEAK_TFLOPS.items():
        if fragment in name:
            return single if dtype is None else half
    return None


def train_step(model, bank, video, labels, rng):
    model.zero_grad(set_to_none=True)
    with autocast(video.device, DTYPE):
        loss = model(video, labels, bank, bank.training_templates(rng)).loss
    loss.backward()


def single_process(args, device) -> dict:
    clip, bank, video, labels = build(args, device)
    tokens = bank.stacked((3, BARE_INDEX)).to(device)
    results = {}
    padded, trimmed = VideoCLIP(clip, trim_text=False), VideoCLIP(clip, trim_text=True)
    results["text_seconds_padded"] = timed(lambda: text_step(padded, tokens), device, args.repeats)
    results["text_seconds_trimmed"] = timed(lambda: text_step(trimmed, tokens), device, args.repeats)

    ours, reference = froster(clip, device, False), froster(clip, device, True)
    for i in bank.all_templates():  # a real run has all 29 cached after its first steps
        ours.teacher.prompt_embeddings(bank, i)
    rng = random.Random(0)
    results["step_seconds_reference"] = timed(
        lambda: train_step(reference, bank, video, labels, rng), device, args.repeats)
    results["step_seconds_ours"] = timed(
        lambda: train_step(ours, bank, video, labels, rng), device, args.repeats)
    del reference

    peaks = {}
    for checkpointing in (False, True):
        ours.student.set_grad_checkpointing(checkpointing)
        train_step(ours, bank, video, labels, rng)  # warm
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        with PeakRSS() as mem:
            train_step(ours, bank, video, labels, rng)
            sync(device)
        peaks[checkpointing] = (torch.cuda.max_memory_allocated() - base) / 2**20 \
            if device.type == "cuda" else mem.peak_mb
    results["peak_mem_mb_step"] = peaks[False]
    results["peak_mem_mb_step_checkpointed"] = peaks[True]
    results |= reduced_precision_teacher(ours, bank, video, labels)
    ours.student.set_grad_checkpointing(False)
    step = results["step_seconds_ours"]
    results["clips_per_second"] = args.batch / step
    results["step_tflops"] = model_flops(ours, bank, video) / step / 1e12
    peak = args.peak_tflops or peak_tflops(device, DTYPE)
    if peak:
        results["mfu"] = results["step_tflops"] / peak
    return results


def reduced_precision_teacher(model, bank, video, labels) -> dict:
    """How much a bf16 teacher moves the distillation terms of the same batch."""
    model.student.set_grad_checkpointing(False)
    templates = (3, BARE_INDEX)
    with torch.no_grad():
        full = model(video, labels, bank, templates)
        model.teacher.set_dtype(torch.bfloat16)
        reduced = model(video, labels, bank, templates)
        model.teacher.set_dtype(torch.float32)
    return {"teacher_bf16_distill_visual_abs_change": abs(float(full.distill_visual - reduced.distill_visual)),
            "teacher_bf16_distill_text_abs_change": abs(float(full.distill_text - reduced.distill_text)),
            "distill_visual_fp32": float(full.distill_visual),
            "distill_text_fp32": float(full.distill_text)}


def model_flops(model, bank, video) -> float:
    """FLOPs of one training step, counted by torch's FLOP counter."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        train_step(model, bank, video, torch.zeros(video.shape[0], dtype=torch.long, device=video.device),
                   random.Random(0))
    return counter.get_total_flops()


def _sharded_worker(rank, world, port, args, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    logging.getLogger().setLevel(logging.ERROR)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    device = torch.device("cpu")
    clip, bank, _, _ = build(args, device)
    tokens = bank.stacked((3, BARE_INDEX))
    student = VideoCLIP(clip)

    def full():
        text_step(student, tokens)

    share = local_share(tokens.shape[0])
    plan = student.plan_classes(tokens[share])

    def sharded():
        student.zero_grad(set_to_none=True)
        gather_shares(student.encode_classes(plan), tokens.shape[0]).sum().backward()

    dist.barrier()
    t_full = timed(full, device, args.repeats)
    dist.barrier()
    t_sharded = timed(sharded, device, args.repeats)
    out[rank] = (t_full, t_sharded)
    dist.destroy_process_group()


def two_processes(args) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = mp.Manager().dict()
    mp.spawn(_sharded_worker, args=(2, port, args, out), nprocs=2, join=True)
    full = max(out[r][0] for r in range(2))
    sharded = max(out[r][1] for r in range(2))
    return {"text_seconds_per_rank_unsharded": full, "text_seconds_per_rank_sharded": sharded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-16-2L")
    parser.add_argument("--classes", type=int, default=400)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per variant after a warm-up")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="the GPU's dense peak in the timed precision, for MFU (default: "
                             "from a table of known GPUs; no MFU on CPU)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                        help="the training precision the steps are timed in (auto: fp16 on "
                             "CUDA, fp32 on CPU)")
    parser.add_argument("--skip-2proc", action="store_true")
    args = parser.parse_args()
    track_large_allocations()
    logging.getLogger().setLevel(logging.ERROR)
    device = torch.device(args.device)
    global DTYPE
    DTYPE = autocast_dtype(args.precision, device)

    results = single_process(args, device)
    if not args.skip_2proc:
        results |= two_processes(args)
    print(f"model: {args.model}")
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}")
    print(f"precision: {args.precision} ({DTYPE or 'fp32'})")
    print(f"shape: batch {args.batch} x {args.frames} frames, {args.classes} classes x 2 prompts")
    for key, value in results.items():
        print(f"{key}: {value:.6g}")
    print(f"text_trim_speedup: {results['text_seconds_padded'] / results['text_seconds_trimmed']:.2f}")
    print(f"froster_step_over_reference_step: "
          f"{results['step_seconds_reference'] / results['step_seconds_ours']:.2f}")
    if not args.skip_2proc:
        print(f"sharded_text_speedup_2proc: {results['text_seconds_per_rank_unsharded'] / results['text_seconds_per_rank_sharded']:.2f}")
    print(f"activation_checkpoint_peak_mem_ratio: "
          f"{results['peak_mem_mb_step_checkpointed'] / results['peak_mem_mb_step']:.2f}")


if __name__ == "__main__":
    main()
