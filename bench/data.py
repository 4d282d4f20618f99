"""`froster data check` throughput and what `froster data prepare` buys the data loader.

Generates Kinetics-like originals (1280x720, 10 s, 30 fps, H.264 with a keyframe every
250 frames, a textured camera pan), prepares copies with `prepare_dataset` (short side
320, a keyframe every 16 frames), then, in this process on one thread (per core):
  check:  `check_list` over the originals (default settings, and --quick) and the copies;
  train:  training clips through the real dataset code (VideoDataset in train mode, the
          reference sampling, 224 crops), the same clips (same seeds) from originals and
          copies, in interleaved rounds; decode_speedup_prepared is the median of the
          rounds' ratios (target >= 4);
  eval:   the test views (3 x 8 frames) of each video, from originals and copies.

    python bench/data.py              # defaults take about 4 minutes on 2 shared cores
    python bench/data.py --videos 2 --clips 8 --rounds 1

Prints one `key: value` line per figure.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from froster.data import VideoDataset, VideoItem
from froster.data.check import CheckSettings, check_list
from froster.data.jobs import cpu_cores
from froster.data.prepare import PrepareSettings, prepare_dataset
from froster.data.synthetic import write_video


def make_original(job) -> str:
    """A camera panning over a scene of smooth shapes and fine detail (four octaves of
    random colour fields and a little grain): what an encoder meets in natural video."""
    path, seed, width, height, seconds, fps, keyint = job
    g = torch.Generator().manual_seed(seed)
    h, w = height + 80, width + int(seconds * fps * 1.5) + 16
    scene = torch.zeros(3, h, w)
    for cells, weight in ((6, 1.0), (24, 0.5), (96, 0.3), (384, 0.2)):
        field = torch.rand(1, 3, cells * h // height + 2, cells * w // height + 2, generator=g)
        scene += weight * F.interpolate(field, size=(h, w), mode="bicubic")[0]
    scene = (scene - scene.min()) / (scene.max() - scene.min()) * 235 + 10
    scene += 8 * (torch.rand(3, h, w, generator=g) - 0.5)
    scene = scene.clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()

    def frame(i, fw, fh):
        x, y = int(i * 1.5), int(40 + 32 * np.sin(i / 20))
        return np.ascontiguousarray(scene[y:y + fh, x:x + fw])

    return write_video(path, int(seconds * fps), width, height, fps, frame=frame, options={
        "crf": "23", "preset": "veryfast", "x264-params": f"keyint={keyint}:scenecut=0"})


def clips_per_s(dataset: VideoDataset, indices) -> float:
    start = time.perf_counter()
    for i in indices:
        sample = dataset[i]
        assert not sample["failed"] and not sample["fallback"], sample["failed"]
    return len(indices) / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=6)
    p.add_argument("--clips", type=int, default=18, help="training clips per timed pass")
    p.add_argument("--rounds", type=int, default=3, help="interleaved original/copy passes")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--keyint", type=int, default=250, help="the originals' keyframe interval")
    p.add_argument("--short-side", type=int, default=320)
    p.add_argument("--prepared-keyint", type=int, default=16)
    args = p.parse_args()
    torch.set_num_threads(1)

    def report(key, value):
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}",
              flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        root, copy = Path(tmp) / "originals", Path(tmp) / "prepared"
        root.mkdir()
        t = time.perf_counter()
        jobs = [(str(root / f"v{i}.mp4"), i, args.width, args.height, args.seconds, args.fps,
                 args.keyint) for i in range(args.videos)]
        with mp.get_context("fork").Pool(min(cpu_cores(), args.videos)) as pool:
            names = [Path(path).name for path in pool.map(make_original, jobs)]
        (root / "list.csv").write_text("".join(f"{n},{i % 3}\n" for i, n in enumerate(names)))
        report("videos", f"{args.videos} x {args.width}x{args.height} {args.seconds:g} s "
                         f"{args.fps} fps H.264, keyframe every {args.keyint}")
        report("generate_s", time.perf_counter() - t)

        t = time.perf_counter()
        prepared = prepare_dataset(root, copy, settings=PrepareSettings(
            short_side=args.short_side, keyint=args.prepared_keyint), workers=0,
            progress=False)
        assert prepared.failed == 0
        report("prepared", f"short side {args.short_side}, keyframe every "
                           f"{args.prepared_keyint}")
        report("prepare_videos_per_s_per_core", args.videos / (time.perf_counter() - t))
        report("bytes_prepared_over_original", prepared.report["output_bytes"] /
               sum((root / n).stat().st_size for n in names))

        # check, in this process on one thread: videos per second per core
        for key, folder, quick in (("check_videos_per_s_per_core", root, False),
                                   ("check_quick_videos_per_s_per_core", root, True),
                                   ("check_videos_per_s_per_core_prepared", copy, False)):
            result = check_list(folder / "list.csv", folder, settings=CheckSettings(
                last_train_clip=not quick), workers=0, output=Path(tmp) / key, progress=False)
            assert result.report["fine"] == args.videos, result.lines
            report(key, args.videos / result.seconds)

        # training clips through the dataset code, the same clips from both copies
        def dataset(folder: Path, mode: str) -> VideoDataset:
            items = [VideoItem(str(folder / names[i % len(names)]), 0, i + 1)
                     for i in range(args.clips if mode == "train" else len(names))]
            return VideoDataset(items, mode=mode, seed=0)

        train = {"original": dataset(root, "train"), "prepared": dataset(copy, "train")}
        clips_per_s(train["prepared"], range(2))  # warm up
        rates = {"original": [], "prepared": []}
        for _ in range(args.rounds):
            for name, data in train.items():
                rates[name].append(clips_per_s(data, range(args.clips)))
        ratios = sorted(p / o for p, o in zip(rates["prepared"], rates["original"]))
        report("rounds", args.rounds)
        report("train_clips_per_s_per_core_original", statistics.median(rates["original"]))
        report("train_clips_per_s_per_core_prepared", statistics.median(rates["prepared"]))
        report("decode_speedup_prepared", statistics.median(ratios))
        report("decode_speedup_prepared_min", ratios[0])
        report("decode_speedup_prepared_max", ratios[-1])

        # evaluation: every video's test views
        test = {"original": dataset(root, "test"), "prepared": dataset(copy, "test")}
        views = {}
        for name, data in test.items():
            start = time.perf_counter()
            for i in range(len(data)):
                assert "video" in data[i]
            views[name] = len(data) / (time.perf_counter() - start)
        report("eval_videos_per_s_per_core_original", views["original"])
        report("eval_videos_per_s_per_core_prepared", views["prepared"])
        report("eval_speedup_prepared", views["prepared"] / views["original"])


if __name__ == "__main__":
    main()
