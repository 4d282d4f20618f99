"""One FROSTER training step vs. the same step without the teacher-text cache, and vs.
plain fine-tuning, measured side by side (interleaved) in one run.

    python bench/train_step.py            # ViT-B/16 widths, 2 layers per tower, CPU
    python bench/train_step.py --model ViT-B-16 --device cuda

Prints `key: value` lines: teacher_text_cache_speedup, froster_over_finetune_step, and
the step time and peak memory of each variant.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import time

import torch
from _measure import PeakRSS, k400_class_texts, track_large_allocations

from froster.clip import create_clip
from froster.distill import Froster
from froster.model import VideoCLIP
from froster.prompts import PromptBank

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-16-2L", help="open_clip architecture (default: ViT-B/16 widths, 2 layers per tower)")
    parser.add_argument("--classes", type=int, default=400)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per variant (after one warm-up)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    track_large_allocations()
    logging.getLogger().setLevel(logging.ERROR)
    torch.manual_seed(0)

    device = torch.device(args.device)
    clip, tokenizer = create_clip(args.model)
    if args.size != clip.visual.image_size[0]:
        sys.exit(f"--size must match the model's input size {clip.visual.image_size[0]}")
    bank = PromptBank(k400_class_texts(args.classes), tokenizer)
    froster = Froster(VideoCLIP(clip), distill=True).to(device).train()
    finetune = Froster(VideoCLIP(clip), distill=False).to(device).train()
    video = torch.randn(args.batch, args.frames, 3, args.size, args.size, device=device)
    labels = torch.randint(0, args.classes, (args.batch,), device=device)
    rng = random.Random(0)

    def step(model, cache: bool) -> tuple[float, float]:
        if model.teacher is not None:
            model.teacher.cache_text = cache
        model.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        with PeakRSS() as mem:
            start = time.perf_counter()
            model(video, labels, bank, bank.training_templates(rng)).loss.backward()
            if device.type == "cuda":
                torch.cuda.synchronize()
            elapsed = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else mem.peak_mb
        return elapsed, peak

    variants = {"froster_no_cache": (froster, False), "froster": (froster, True),
                "finetune": (finetune, True)}
    for model, cache in variants.values():  # warm-up (fills the teacher cache for the 2 prompts used)
        step(model, cache)
    # The cached variant must see templates whose teacher text is already cached, as in a
    # real run after the first few steps: encode all 29 once, untimed.
    for i in bank.all_templates():
        froster.teacher.prompt_embeddings(bank, i)
    times = {k: [] for k in variants}
    peaks = {k: 0.0 for k in variants}
    for _ in range(args.steps):
        for name, (model, cache) in variants.items():
            elapsed, peak = step(model, cache)
            times[name].append(elapsed)
            peaks[name] = max(peaks[name], peak)
    median = {k: statistics.median(v) for k, v in times.items()}

    print(f"model: {args.model}")
    print(f"device: {device.type}")
    print(f"shape: batch {args.batch} x {args.frames} frames x {args.size}px, {args.classes} classes x 2 prompts")
    for name in variants:
        print(f"step_seconds_{name}: {median[name]:.3f}")
    for name in variants:
        print(f"peak_mem_mb_{name}: {peaks[name]:.0f}")
    print(f"teacher_text_cache_speedup: {median['froster_no_cache'] / median['froster']:.2f}")
    print(f"froster_over_finetune_step: {median['froster'] / median['finetune']:.2f}")


if __name__ == "__main__":
    main()
