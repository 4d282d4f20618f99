"""Cost of attention maps against the plain forward pass of the same view, measured side by
side (ViT-B/16 widths, the 2-layer `ViT-B-16-2L` setting of bench/throughput.py).

One video view (1 x 8 frames of 224 px) against a cached 400-class classifier (K400's
size; the text tower is not part of either measurement, as `Recognizer.explain` reads the
classifier from its cache). In each round, in turn: the plain forward (fused SDPA, under
inference mode, as `Recognizer.encode`), `explain_clips(method="rollout")` and
`explain_clips(method="gradient")`, each of which runs its own forward through the
recording kernel. Rounds are interleaved so that load drifts hit all three alike; the
figures are medians over the rounds.

    python bench/explain.py
    python bench/explain.py --temporal aim --rounds 7 --threads 2

Prints: explain_rollout_over_forward (target <= 1.5), explain_gradient_over_forward
(target <= 3.5), the median seconds of each, and plain_forward_unchanged (the plain
forward after explaining is bitwise the one before, through the fused kernel).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from froster.clip import create_clip
from froster.explain.maps import explain_clips
from froster.model import VideoCLIP
from froster.temporal import FUSED


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-16-2L")
    parser.add_argument("--temporal", default="neighbor")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--classes", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds after a warm-up")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (CPU)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    torch.manual_seed(0)
    clip, _ = create_clip(args.model)
    model = VideoCLIP(clip, args.temporal).to(device).eval()
    size = clip.visual.image_size[0]
    video = torch.randn(1, args.frames, 3, size, size, device=device)
    classifier = F.normalize(torch.randn(args.classes, model.embed_dim, device=device), dim=-1)

    def forward():
        with torch.inference_mode():
            return model(video, classifier)

    def rollout():
        return explain_clips(model, video, classifier, method="rollout")

    def gradient():
        return explain_clips(model, video, classifier, method="gradient")

    before = forward()
    runs = {"forward": forward, "rollout": rollout, "gradient": gradient}
    times = {name: [] for name in runs}
    for name, run in runs.items():  # warm-up
        run()
    for round_ in range(args.rounds):
        order = list(runs)[round_ % 3:] + list(runs)[:round_ % 3]
        for name in order:
            sync(device)
            start = time.perf_counter()
            runs[name]()
            sync(device)
            times[name].append(time.perf_counter() - start)
    after = forward()
    median = {name: statistics.median(t) for name, t in times.items()}

    print(f"model: {args.model} temporal={args.temporal}, 1 x {args.frames} x {size} px, "
          f"{args.classes} classes, {args.device}, {args.threads} thread(s), {args.rounds} rounds")
    print(f"explain_rollout_over_forward: {median['rollout'] / median['forward']:.2f}")
    print(f"explain_gradient_over_forward: {median['gradient'] / median['forward']:.2f}")
    for name in runs:
        print(f"{name}_seconds: {median[name]:.3f}")
    unchanged = torch.equal(before, after) and model.attention_kernel("visual") is FUSED
    print(f"plain_forward_unchanged: {unchanged}")


def sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
