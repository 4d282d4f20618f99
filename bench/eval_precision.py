"""What testing in reduced precision changes: fp32 (the reference's testing precision, our
default) against bf16 (and fp16 on CUDA), on the real clips of ../shared/videos with the
400 K400 class texts, through the Recognizer (the evaluation's views and logits).

The model has ViT-B/16's widths (`ViT-B-16-2L`: 768-wide 16-px patches, 512-d embedding;
2 layers per tower instead of 12, random weights, so it runs here without a download).
Random weights have two limits: the logit scale is open_clip's initial 1/0.07 = 14.3, not
trained CLIP's 100 (so the cosine differences are also reported scaled to 100), and a
random model's class scores are close together, so its top-1 flips more easily than a
trained model's. A 12-layer tower accumulates more rounding than 2 layers.

The clips are decoded once; each precision then encodes the same 3 views x 8 frames and
the same 29 x 400 prompts. Timings alternate between the precisions in rounds.

    python bench/eval_precision.py                  # ~3 minutes on 2 CPU cores
    python bench/eval_precision.py --device cuda    # adds fp16

Prints, per reduced precision P: P_top1_agreement (clips whose top-1 class is the same
as fp32's), P_top5_overlap, P_max_abs_logit_diff / P_mean_abs_logit_diff (view-summed
logits), P_max_abs_cosine_diff (per frame and class), P_max_abs_logit_diff_at_scale_100,
P_classifier_max_abs_diff, P_seconds_over_fp32; and fp32_top1_margin_median (the fp32
logit gap between the first and second class), logit_scale.
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

from froster.inference.api import Recognizer, find_videos  # noqa: E402

SHARED_VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "videos"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run(rec: Recognizer, videos: list[torch.Tensor], labels: list[str]):
    """(classifier, per-frame embeddings per clip, view-summed logits per clip, seconds)."""
    start = time.perf_counter()
    classifier = rec.label_embeddings(labels)
    frames = [rec.encode(video[None]) for video in videos]
    logits = torch.cat([rec.view_logits(f, classifier) for f in frames])
    sync(rec.device)
    return classifier, frames, logits, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ViT-B-16-2L")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--classes", type=int, default=400)
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

    results, seconds = {}, {p: [] for p in precisions}
    with torch.inference_mode():
        for _ in range(args.rounds):
            for p in precisions:
                results[p] = run(recognizers[p], videos, labels)
                seconds[p].append(results[p][3])

    scale = float(base.model.logit_scale.exp())
    classifier32, frames32, logits32, _ = results["fp32"]
    top2 = logits32.topk(2, dim=1).values
    print(f"videos: {len(videos)}")
    print(f"classes: {len(labels)}")
    print(f"logit_scale: {scale:.3f}")
    print(f"fp32_top1_margin_median: {statistics.median((top2[:, 0] - top2[:, 1]).tolist()):.4f}")
    print(f"fp32_logit_std_median: {statistics.median(logits32.std(dim=1).tolist()):.4f}")
    for p in precisions[1:]:
        classifier, frames, logits, _ = results[p]
        cos32 = torch.cat([f.flatten(0, 2) for f in frames32]) @ classifier32.t()
        cos = torch.cat([f.flatten(0, 2) for f in frames]) @ classifier.t()
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
        print(f"{p}_seconds_over_fp32: {ratio:.3f}")
    if device.type != "cuda":
        print("fp16: not measured (fp16 testing needs CUDA; none here)")


if __name__ == "__main__":
    main()
