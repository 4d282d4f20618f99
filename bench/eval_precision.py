"""What testing in reduced precision changes: fp32 (the reference's testing precision, our
default) against bf16 (and fp16 on CUDA), on the real clips of ../shared/videos with the
K400 class texts (the first 100 by default; `--classes 400` for all), through the
Recognizer (the evaluation's views and logits).

The model has ViT-B/16's widths (`ViT-B-16-2L`: 768-wide 16-px patches, 512-d embedding;
2 layers per tower instead of 12, random weights, so it runs here without a download).
Random weights have two limits: the logit scale is open_clip's initial 1/0.07 = 14.3, not
trained CLIP's 100 (so logit differences are also given at a scale of 100), and a
random model's class scores are close together, so its top-1 flips more easily than a
trained model's. A 12-layer tower accumulates more rounding than 2 layers.

The clips are decoded once; each precision then encodes the same 29 x N prompts (once)
and the same 3 views x 8 frames of every clip (in rounds that alternate between the
precisions, for the timing). On a CPU without native bf16 (no AVX512-BF16/AMX) bf16 is
emulated and slow: the time ratio says nothing about a GPU.

    python bench/eval_precision.py                  # 100 classes
    python bench/eval_precision.py --classes 400    # all K400 classes: ~1 hour on 2 busy cores
    python bench/eval_precision.py --device cuda    # adds fp16

Prints, per reduced precision P: P_top1_agreement (clips whose top-1 class is the same
as fp32's), P_top5_overlap, P_max_abs_logit_diff / P_mean_abs_logit_diff (view-summed
logits), P_max_abs_cosine_diff (per frame and class), P_max_abs_logit_diff_at_scale_100,
P_classifier_max_abs_diff, P_video_seconds_over_fp32 (the visual tower); and
fp32_top1_margin_median (the fp32 logit gap between the first and second class),
fp32_logit_std_median, logit_scale.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import k400_class_texts  # noqa: E402

from froster.inference.api import Recognizer
from froster.inference.videos import find_videos  # noqa: E402

SHARED_VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "videos"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def encode_videos(rec: Recognizer, videos: list[torch.Tensor]):
    """Per-frame embeddings (1, V, T, D) of every clip, and the seconds it took."""
    start = time.perf_counter()
    frames = [rec.encode(video[None]) for video in videos]
    sync(rec.device)
    return frames, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ViT-B-16-2L")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--classes", type=int, default=100,
                        help="the first N K400 class texts (400: all; bf16 on a CPU without "
                             "native bf16 makes that take about an hour here)")
    parser.add_argument("--rounds", type=int, default=2, help="timing rounds, interleaved")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)

    device = torch.device(args.device)
    torch.manual_seed(0)
    base = Recognizer.from_pretrained(args.model, None, device=device, use_cache=False)
    paths = find_videos(SHARED_VIDEOS)
    if not paths:
        sys.exit(f"no videos in {SHARED_VIDEOS}")
    videos = [base.load_video(p) for p in paths]  # uint8 (3, 8, 3, 224, 224) each
    labels = k400_class_texts(args.classes)
    precisions = ["fp32", "bf16"] + (["fp16"] if device.type == "cuda" else [])
    recognizers = {p: Recognizer(base.model, base.tokenizer, device=device, use_cache=False,
                                 precision=p) for p in precisions}

    classifiers = {p: recognizers[p].label_embeddings(labels) for p in precisions}
    frames, seconds = {}, {p: [] for p in precisions}
    for _ in range(args.rounds):
        for p in precisions:
            frames[p], elapsed = encode_videos(recognizers[p], videos)
            seconds[p].append(elapsed)
    results = {}
    for p in precisions:
        logits = torch.cat([recognizers[p].view_logits(f, classifiers[p]) for f in frames[p]])
        results[p] = classifiers[p], frames[p], logits

    scale = base.model.logit_scale.exp().item()
    classifier32, frames32, logits32 = results["fp32"]
    top2 = logits32.topk(2, dim=1).values
    print(f"videos: {len(videos)}")
    print(f"classes: {len(labels)}")
    print(f"logit_scale: {scale:.3f}")
    print(f"fp32_top1_margin_median: {statistics.median((top2[:, 0] - top2[:, 1]).tolist()):.4f}")
    print(f"fp32_logit_std_median: {statistics.median(logits32.std(dim=1).tolist()):.4f}")
    for p in precisions[1:]:
        classifier, clip_frames, logits = results[p]
        cos32 = torch.cat([f.flatten(0, 2) for f in frames32]) @ classifier32.t()
        cos = torch.cat([f.flatten(0, 2) for f in clip_frames]) @ classifier.t()
        cos_diff = float((cos - cos32).abs().max())
        same_top1 = int((logits.argmax(1) == logits32.argmax(1)).sum())
        overlap = statistics.mean(
            len(set(a.tolist()) & set(b.tolist())) / 5
            for a, b in zip(logits.topk(5, dim=1).indices, logits32.topk(5, dim=1).indices))
        print(f"{p}_top1_agreement: {same_top1}/{len(videos)}")
        print(f"{p}_top5_overlap: {overlap:.3f}")
        diff = float((logits - logits32).abs().max())
        print(f"{p}_max_abs_logit_diff: {diff:.5f}")
        print(f"{p}_mean_abs_logit_diff: {float((logits - logits32).abs().mean()):.5f}")
        print(f"{p}_max_abs_cosine_diff: {cos_diff:.6f}")
        print(f"{p}_max_abs_logit_diff_at_scale_100: {diff * 100 / scale:.4f}")
        print(f"{p}_classifier_max_abs_diff: {float((classifier - classifier32).abs().max()):.6f}")
        ratio = statistics.median(a / b for a, b in zip(seconds[p], seconds["fp32"]))
        print(f"{p}_video_seconds_over_fp32: {ratio:.3f}")
    if device.type != "cuda":
        print("fp16: not measured (fp16 testing needs CUDA; none here)")


if __name__ == "__main__":
    main()
