"""Writing the world's base-to-novel benchmark to disk, in FROSTER's file layout.

    root/videos/<action>/<split>_<i>.mp4   H.264 (4:4:4, lossless), 16 frames at 8 fps
    root/splits/train_K.csv                training split K = 1..N of base videos, `path,label`
                                           (base index); as the paper's 3 splits, disjoint here
    root/splits/val.csv                    base test videos (base index)
    root/splits/test.csv                   novel test videos (novel index)
    root/splits/{train,test}_idx2cls.csv   `index,name` of base / novel classes
    root/splits/{train,test}_rephrased.json  {"index": "Name: description"}
    root/world.json                        the spec the files were made from

Paths in the lists are relative to root/videos, as FROSTER's are to its data root.
Every video is drawn from its own seed (spec seed, split, action, number), so a video
does not change when another split grows, nor with the number of processes that draw
and encode them (one per CPU core for a large benchmark).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from functools import partial
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .parallel import map_in_processes
from .world import ACTIONS, SIGNATURE_PROB, Action, make_video

__all__ = ["BenchmarkSpec", "BenchmarkFiles", "write_benchmark", "write_video", "video_seed"]

_SPLIT_IDS = {"train": 1, "val": 2, "test": 3, "pretrain": 4}


@dataclass(frozen=True)
class BenchmarkSpec:
    train_per_class: int = 16   # shots per base class in each training split
    train_splits: int = 3       # training splits, as the paper's base-to-novel protocol
    test_per_class: int = 16    # test videos per class, base and novel
    num_frames: int = 16
    size: int = 32
    fps: int = 8
    trail_prob: float = 0.5     # share of videos whose frames show a motion trail
    signature_prob: float = SIGNATURE_PROB  # share of videos in their action's usual colour
    seed: int = 0


@dataclass(frozen=True)
class BenchmarkFiles:
    root: Path
    videos: Path      # the data root the lists are relative to
    train: tuple[Path, ...]  # train_1.csv .. train_N.csv
    val: Path
    test: Path
    base_classes: Path
    novel_classes: Path


def video_seed(seed: int, split: str, action_index: int, number: int) -> list[int]:
    """The seed of one video; a list, which numpy hashes into an independent stream."""
    return [seed, _SPLIT_IDS[split], action_index, number]


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: int = 8) -> str:
    """uint8 (T, H, W, 3) -> lossless H.264 in 4:4:4 (small frames keep their colours)."""
    path = os.fspath(path)
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps), options={"qp": "0"})
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv444p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def write_benchmark(root: str | os.PathLike, spec: BenchmarkSpec = BenchmarkSpec(),
                    workers: int | None = None) -> BenchmarkFiles:
    """Write the benchmark's videos and files under `root`; `workers` processes draw and
    encode the videos (default: one per CPU core when there are many videos)."""
    root = Path(root)
    videos, splits = root / "videos", root / "splits"
    splits.mkdir(parents=True, exist_ok=True)
    base = [a for a in ACTIONS if a.split == "base"]
    novel = [a for a in ACTIONS if a.split == "novel"]
    if spec.train_splits < 1:
        raise ValueError(f"train_splits must be at least 1, got {spec.train_splits}")
    train = tuple(splits / f"train_{k}.csv" for k in range(1, spec.train_splits + 1))
    files = BenchmarkFiles(root, videos, train, splits / "val.csv", splits / "test.csv",
                           splits / "train_rephrased.json", splits / "test_rephrased.json")
    jobs = []
    for k, path in enumerate(train):  # split K holds videos (K-1)*n .. K*n-1 of each action
        jobs += _write_list(path, videos, "train", base, spec.train_per_class, spec,
                            first=k * spec.train_per_class)
    jobs += _write_list(files.val, videos, "val", base, spec.test_per_class, spec)
    jobs += _write_list(files.test, videos, "test", novel, spec.test_per_class, spec)
    _write_videos(jobs, spec, workers)
    for name, actions in (("train", base), ("test", novel)):
        (splits / f"{name}_idx2cls.csv").write_text(
            "".join(f"{i},{a.name}\n" for i, a in enumerate(actions)))
        (splits / f"{name}_rephrased.json").write_text(
            json.dumps({str(i): a.class_text for i, a in enumerate(actions)}, indent=1) + "\n")
    (root / "world.json").write_text(json.dumps(asdict(spec), indent=1) + "\n")
    return files


def _write_list(list_path: Path, videos: Path, split: str, actions: list[Action], per_class: int,
                spec: BenchmarkSpec, first: int = 0) -> list[tuple]:
    """Write a list file; returns its videos to write, as (path, seed, action name)."""
    lines, jobs = [], []
    for label, action in enumerate(actions):
        (videos / action.slug).mkdir(parents=True, exist_ok=True)
        action_index = ACTIONS.index(action)
        for number in range(first, first + per_class):
            relative = f"{action.slug}/{split}_{number:04d}.mp4"
            jobs.append((str(videos / relative), video_seed(spec.seed, split, action_index, number),
                         action.name))
            lines.append(f"{relative},{label}\n")
    list_path.write_text("".join(lines))
    return jobs


def _write_videos(jobs: list[tuple], spec: BenchmarkSpec, workers: int | None) -> None:
    map_in_processes(partial(_write_one, spec=spec), jobs, workers)


def _write_one(job: tuple, spec: BenchmarkSpec) -> None:
    path, seed, action = job
    frames, _ = make_video(seed, action, spec.num_frames, spec.size, spec.trail_prob,
                           spec.signature_prob)
    write_video(path, frames, spec.fps)
