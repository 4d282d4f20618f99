"""Decoding cost of the two sampling rules on the real clips (CPU, one thread).

For every clip in ../shared/videos (MP4, AVI, GIF), times the test views (3 x 8 frames)
and a training clip (one 8-frame clip, at a fixed start per clip) with
`sampling: reference` (the reference decoder's windows: every view seeks and decodes
its own window) and `sampling: uniform` (one pass by frame number), in interleaved
rounds, and prints the median ratio reference / uniform of each.

    python bench/sampling.py
    python bench/sampling.py --rounds 5
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

import torch

from froster.data import ViewSpec, open_video
from froster.data.sampling import reference, uniform

VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "videos"


def time_rule(rule, paths, mode: str) -> float:
    start = time.perf_counter()
    for k, path in enumerate(paths):
        with open_video(path, apply_rotation=False) as video:
            if mode == "test":
                rule.test_views(video, ViewSpec())
            else:
                rule.train_clip(video, ViewSpec(), random.Random(k))
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", default=str(VIDEOS))
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(1)
    paths = sorted(q for q in Path(args.videos).iterdir() if q.suffix in (".mp4", ".avi", ".gif"))
    print(f"clips: {len(paths)}")
    for mode in ("test", "train"):
        ratios, ref_s, uni_s = [], [], []
        for _ in range(args.rounds):
            u = time_rule(uniform, paths, mode)
            r = time_rule(reference, paths, mode)
            ratios.append(r / u)
            ref_s.append(r)
            uni_s.append(u)
        print(f"{mode}_reference_ms_per_video: {1000 * statistics.median(ref_s) / len(paths):.1f}")
        print(f"{mode}_uniform_ms_per_video: {1000 * statistics.median(uni_s) / len(paths):.1f}")
        print(f"{mode}_reference_over_uniform: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
