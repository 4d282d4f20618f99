"""Training loader throughput against the raw PyAV decode rate of the same frames.

Generates Kinetics-like videos (340x256, 10 s, 30 fps, H.264, a textured camera pan),
draws the training clips the loader will draw (8 frames x stride 16 at 30 fps, with
``--sampling``, default reference), and times, in one run:
  raw:    a plain PyAV loop over the same windows the sampling rule decodes, in as many
          processes as the loader has workers. reference: the reference decoder's window
          (seek to max(start_pts - 1024, 0), decode until the first frame after end_pts,
          keep every frame of the window, order by pts), then convert the 8 sampled
          frames to RGB; uniform: seek before the clip, decode to its last frame,
          convert the wanted frames;
  loader: build_loader(VideoDataset(...)) with 224 crops, the same clips, batch after batch.
Then, in this process, the share of a clip's time spent decoding vs transforming.

    python bench/data_loader.py                 # defaults take about a minute on 2 cores
    python bench/data_loader.py --clips 32 --videos 4 --sampling uniform

Prints one `key: value` line per figure; `loader_over_raw_decode` should be >= 0.8.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from froster.data import VideoDataset, VideoItem, build_loader, open_video, read_video_info
from froster.data.sampling import get_sampling, reference
from froster.data.sampling.uniform import train_clip_indices
from froster.data.views import ViewSpec
from froster.data.synthetic import write_video
from froster.data.transforms import train_transform


def make_videos(folder: Path, count: int, width: int, height: int, seconds: float, fps: int) -> list[str]:
    """Textured scenes panned by a moving camera: realistic motion for the encoder."""
    paths = []
    for v in range(count):
        g = np.random.default_rng(v)
        coarse = g.integers(0, 256, (height // 8 + 8, width // 8 + 40, 3), dtype=np.uint8)
        texture = np.kron(coarse, np.ones((8, 8, 1), np.uint8))
        texture = (texture.astype(np.int16) + g.integers(-12, 12, texture.shape)).clip(0, 255).astype(np.uint8)

        def frame(i, w, h, texture=texture):
            x = int(i * 0.9) % (texture.shape[1] - w)
            y = int(16 + 16 * np.sin(i / 20))
            return np.ascontiguousarray(texture[y : y + h, x : x + w])

        path = folder / f"video{v}.mp4"
        write_video(path, int(seconds * fps), width, height, fps, options={"crf": "23", "preset": "veryfast"},
                    frame=frame)
        paths.append(str(path))
    return paths


def raw_clip(job) -> int:
    """Plain PyAV over one job: ("uniform", path, frame indices) or
    ("reference", path, start_pts, end_pts, sampled positions over S).

    Single-threaded decoding and conversion, like the loader's workers, so that the
    ratio measures what the pipeline adds, not a thread setting.
    """
    if job[0] == "reference":
        return raw_reference_window(*job[1:])
    _, path, indices = job
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1  # as the loader's workers: the processes are the parallelism
        fps, tb = float(stream.average_rate), float(stream.time_base)
        container.seek(int(min(indices) / fps / tb), stream=stream, backward=True)
        wanted, out = set(indices), {}
        for frame in container.decode(stream):
            i = round(frame.pts * tb * fps)
            if i in wanted:
                out[i] = frame.to_ndarray(format="rgb24", threads=1)
            if i >= max(indices):
                break
    return sum(out[i].shape[0] for i in indices)


def raw_reference_window(path: str, start_pts: int, end_pts: int, span: float, num_frames: int) -> int:
    """The reference's pyav_decode_stream + temporal_sampling, converting only the samples."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        container.seek(max(start_pts - 1024, 0), backward=True, any_frame=False, stream=stream)
        frames = {}
        for frame in container.decode(stream):
            if frame.pts < start_pts:
                continue
            frames[frame.pts] = frame
            if frame.pts > end_pts:
                break
        ordered = [frames[pts] for pts in sorted(frames)]
        positions = torch.linspace(0.0, span - 1, num_frames).clamp(0, len(ordered) - 1).long()
        out = [ordered[i].to_ndarray(format="rgb24", threads=1) for i in positions.tolist()]
    return sum(a.shape[0] for a in out)


def reference_job(path: str, rng: random.Random, spec: ViewSpec) -> tuple:
    """The window the reference rule decodes for a clip drawn with `rng` (path A)."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        fps, count, duration = float(stream.average_rate), stream.frames, stream.duration
    size, span = reference.window_size(fps, spec), reference.clip_span(fps, spec)
    start = rng.uniform(0, max(count - size, 0))
    start_pts, end_pts = reference.window_pts(start, size, duration, count)
    return "reference", path, start_pts, end_pts, span, spec.num_frames


def time_raw(jobs, processes: int) -> float:
    start = time.perf_counter()
    if processes > 1:
        with mp.get_context("fork").Pool(processes) as pool:
            pool.map(raw_clip, jobs, chunksize=1)
    else:
        for job in jobs:
            raw_clip(job)
    return len(jobs) / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, default=8)
    p.add_argument("--clips", type=int, default=96, help="clips per timed pass")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--width", type=int, default=340)
    p.add_argument("--height", type=int, default=256)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--rounds", type=int, default=3, help="alternating raw / loader passes")
    p.add_argument("--sampling", choices=("reference", "uniform"), default="reference")
    p.add_argument("--out", help="also write the lines to this file")
    args = p.parse_args()
    torch.set_num_threads(1)
    lines = []

    def report(key, value):
        line = f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}"
        print(line, flush=True)
        lines.append(line)

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        paths = make_videos(Path(tmp), args.videos, args.width, args.height, args.seconds, args.fps)
        report("videos", f"{args.videos} x {args.width}x{args.height} {args.seconds:g} s {args.fps} fps H.264")
        report("generate_s", time.perf_counter() - t)

        seed = 0
        items = [VideoItem(paths[i % len(paths)], i % 10, i + 1) for i in range(args.clips)]
        dataset = VideoDataset(items, mode="train", size=args.size, short_side_range=(args.size, args.size * 8 // 7),
                               seed=seed, sampling=args.sampling)
        infos = {path: read_video_info(path) for path in paths}
        # the clips the loader will draw: the dataset seeds each sample from (seed, epoch, index)
        jobs = []
        for index, item in enumerate(items):
            rng = random.Random(f"{seed}:0:{index}")
            if args.sampling == "reference":
                jobs.append(reference_job(item.path, rng, dataset.clip_spec))
            else:
                info = infos[item.path]
                jobs.append(("uniform", item.path, train_clip_indices(info.num_frames, info.fps, rng=rng)))
        report("sampling", args.sampling)
        report("clips", args.clips)
        report("frames_per_clip", dataset.num_frames)

        def time_loader() -> float:
            loader = build_loader(dataset, args.batch_size, num_workers=args.workers, seed=seed, drop_last=False)
            start, seen = time.perf_counter(), 0
            for batch in loader:
                assert batch["video"].shape[1:] == (8, 3, args.size, args.size)
                assert not batch["failed"] and not batch["fallback"]
                seen += batch["video"].shape[0]
            return seen / (time.perf_counter() - start)

        # Rounds alternate raw and loader passes, so load from other processes on the
        # machine hits both alike; the ratio is the median of the rounds' ratios.
        time_raw(jobs[: args.workers * 2], args.workers)  # warm the page cache
        raws, loaders = [], []
        for _ in range(args.rounds):
            raws.append(time_raw(jobs, args.workers))
            loaders.append(time_loader())
        ratios = sorted(l / r for l, r in zip(loaders, raws))
        report("rounds", args.rounds)
        report("raw_decode_clips_per_s", statistics.median(raws))
        report("loader_clips_per_s", statistics.median(loaders))
        report("loader_over_raw_decode", statistics.median(ratios))
        report("loader_over_raw_decode_min", ratios[0])
        report("loader_over_raw_decode_max", ratios[-1])

        # where a clip's time goes, in this process
        decode_s = transform_s = 0.0
        for index, item in enumerate(items[:32]):
            rng = random.Random(f"{seed}:0:{index}")
            t0 = time.perf_counter()
            with open_video(item.path, apply_rotation=False) as video:
                frames = get_sampling(args.sampling).train_clip(video, dataset.clip_spec, rng).frames
            t1 = time.perf_counter()
            train_transform(frames, rng, args.size, dataset.short_side_range)
            t2 = time.perf_counter()
            decode_s, transform_s = decode_s + t1 - t0, transform_s + t2 - t1
        report("decode_share", decode_s / (decode_s + transform_s))
        report("transform_share", transform_s / (decode_s + transform_s))
        report("decode_ms_per_clip", 1000 * decode_s / min(32, len(items)))
        report("transform_ms_per_clip", 1000 * transform_s / min(32, len(items)))

    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
