"""`predict` over a folder of videos against the model forward alone, in one run.

predict: the whole `froster predict` path (scan, decode in worker processes, resize/crop,
normalise, forward of 3 views x 8 frames, view-summed logits, softmax, JSON Lines
written per video). forward: the same batches of already decoded uint8 frames through
normalise + forward + logits only. Their ratio says how well decoding is hidden behind
compute (1.0: completely). The two are timed in alternating rounds, so that load from
other processes falls on both. On CPU the decoding workers run at low priority (nice 19):
the forward pass owns the cores and decoding fills the gaps. The folder holds links to the real clips of ../shared/videos
(each `--repeat` times); the label embeddings are cached before timing, so neither side
runs the text tower. Random ViT-B/16 weights (the paper's backbone; no download).

    python bench/predict.py                          # ~4 minutes on 2 CPU cores
    python bench/predict.py --model ViT-B-32 --repeat 4
    python bench/predict.py --device cuda --repeat 20

Prints: predict_videos_per_s, forward_videos_per_s, predict_over_forward.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from froster.inference.api import Recognizer
from froster.inference.videos import find_videos
from froster.inference.predict import predict

SHARED_VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "videos"
LABELS = ["arm wrestling", "cleaning pool", "applying eye makeup", "hitting baseball", "yoga",
          "making a cake", "playing bass guitar", "playing basketball", "playing cricket"]


def make_folder(root: Path, repeat: int) -> list[Path]:
    clips = find_videos(SHARED_VIDEOS)
    if not clips:
        sys.exit(f"no videos in {SHARED_VIDEOS}")
    for r in range(repeat):
        for clip in clips:
            (root / f"{r:03d}_{clip.name}").symlink_to(clip)
    return find_videos(root)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ViT-B-16")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=1, help="copies of the 9 clips in the folder")
    parser.add_argument("--rounds", type=int, default=2, help="forward / predict rounds, interleaved")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, default=None, help="default: min(4, CPU cores)")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)

    device = torch.device(args.device)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "videos").mkdir()
        videos = [str(p) for p in make_folder(tmp / "videos", args.repeat)]
        rec = Recognizer.from_pretrained(args.model, None, device=device, cache_dir=tmp / "cache",
                                         batch_size=args.batch_size, num_workers=args.workers)
        classifier = rec.label_embeddings(LABELS)  # warms the text cache for predict

        # pre-decoded frames, exactly what the loader hands over
        dataset = rec.dataset(videos)
        frames = [dataset[i]["video"] for i in range(len(videos))]
        batches = [torch.stack(frames[i:i + args.batch_size])
                   for i in range(0, len(frames), args.batch_size)]

        def forward_only() -> None:
            for batch in batches:
                rec.view_logits(rec.encode(batch), classifier).softmax(-1).cpu()

        rec.encode(batches[0][:1])  # warm-up (allocator, kernels)
        forward_s, predict_s = [], []
        for _ in range(args.rounds):  # interleaved, so that load from others hits both
            sync(device)
            start = time.perf_counter()
            forward_only()
            sync(device)
            forward_s.append(time.perf_counter() - start)

            start = time.perf_counter()
            summary = predict(rec, videos, LABELS, top_k=5, fmt="json", output=tmp / "out.jsonl",
                              overwrite=True, progress=False)
            sync(device)
            predict_s.append(time.perf_counter() - start)
            assert summary.ok == len(videos) and rec.text_tower_calls == 1, summary.report()

    n = len(videos)
    print(f"model: {args.model} (random weights), device: {device}, torch threads: "
          f"{torch.get_num_threads()}, decoding workers: {rec.num_workers}, cores: {os.cpu_count()}")
    print(f"videos: {n} ({args.repeat} x {n // args.repeat} clips) x {args.rounds} rounds, views x frames: "
          f"{rec.num_views} x {rec.num_frames}, input {rec.size} px, batch {args.batch_size}")
    print("round_ratios: " + ", ".join(f"{f / p:.3f}" for f, p in zip(forward_s, predict_s)))
    print(f"forward_seconds: {sum(forward_s):.2f}")
    print(f"predict_seconds: {sum(predict_s):.2f}")
    print(f"forward_videos_per_s: {n * args.rounds / sum(forward_s):.3f}")
    print(f"predict_videos_per_s: {n * args.rounds / sum(predict_s):.3f}")
    print(f"predict_over_forward: {sum(forward_s) / sum(predict_s):.3f}")


if __name__ == "__main__":
    main()
