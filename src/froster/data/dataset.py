"""Video datasets for training and testing.

Training returns one random clip per video; a video that cannot be loaded is
replaced by another random one, and the failure travels with the sample.
Testing returns every view and crop of a video, or an ``error`` for a bad video so
that evaluation can say over how many videos its metrics were computed.
All randomness comes from (seed, epoch, index), so results do not depend on the
number of workers or on which worker loads which sample.
"""

from __future__ import annotations

import random
from typing import Sequence

import torch

from .annotations import VideoItem
from .decode import VideoDecodeError, read_clip
from .failures import Failure
from .sampling import test_view_indices, train_clip_indices
from .transforms import test_transform, train_transform

__all__ = ["VideoDataset"]


def _message(item: VideoItem, error: Exception) -> str:
    if isinstance(error, VideoDecodeError):
        return str(error)
    return f"{item.path}: {type(error).__name__}: {error}"


class VideoDataset(torch.utils.data.Dataset):
    def __init__(
        self,
        items: Sequence[VideoItem],
        mode: str = "train",
        num_frames: int = 8,
        sampling_rate: int = 16,
        target_fps: float = 30,
        num_views: int = 3,
        num_crops: int = 1,
        size: int = 224,
        short_side_range: tuple[int, int] = (224, 256),
        seed: int = 0,
        max_retries: int = 10,
        decode_threads: int = 1,
        flip: bool = True,
    ):
        if mode not in ("train", "test"):
            raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
        if not items:
            raise ValueError("no videos to load")
        self.items = list(items)
        self.mode = mode
        self.num_frames = num_frames
        self.sampling_rate = sampling_rate
        self.target_fps = target_fps
        self.num_views = num_views
        self.num_crops = num_crops
        self.size = size
        self.short_side_range = tuple(short_side_range)
        self.seed = seed
        self.max_retries = max_retries
        self.decode_threads = decode_threads
        self.flip = flip
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    @property
    def video_shape(self) -> tuple[int, ...]:
        """Shape of one sample's ``video``."""
        clip = (self.num_frames, 3, self.size, self.size)
        return clip if self.mode == "train" else (self.num_views * self.num_crops, *clip)

    def __getitem__(self, index: int) -> dict:
        return self._train_item(index) if self.mode == "train" else self._test_item(index)

    # -- training ------------------------------------------------------------------
    def load_train_clip(self, item: VideoItem, rng: random.Random) -> torch.Tensor:
        def choose(info):
            return train_clip_indices(
                info.num_frames, info.fps, self.num_frames, self.sampling_rate, self.target_fps, rng
            )

        frames, _, _ = read_clip(item.path, choose, threads=self.decode_threads)
        return train_transform(frames, rng, self.size, self.short_side_range, flip=self.flip)

    def _train_item(self, index: int) -> dict:
        rng = random.Random(f"{self.seed}:{self.epoch}:{index}")
        failed: list[Failure] = []
        current = index
        for _ in range(self.max_retries + 1):
            item = self.items[current]
            try:
                video = self.load_train_clip(item, rng)
            except Exception as e:  # any bad video is skipped, never kills the worker
                failed.append(Failure(item.path, _message(item, e)))
                current = rng.randrange(len(self.items))
                continue
            return {"video": video, "label": item.label, "index": current, "failed": failed}
        listing = "\n  ".join(f.message for f in failed)
        raise RuntimeError(
            f"{len(failed)} videos in a row failed to load (drawn for sample {index}); "
            f"is the data root right?\n  {listing}"
        )

    # -- testing -------------------------------------------------------------------
    def load_test_views(self, item: VideoItem) -> torch.Tensor:
        def choose(info):
            views = test_view_indices(
                info.num_frames, info.fps, self.num_frames, self.sampling_rate, self.target_fps,
                self.num_views,
            )
            return [i for view in views for i in view]

        frames, _, _ = read_clip(item.path, choose, threads=self.decode_threads)
        views = frames.split(self.num_frames)
        video = torch.cat([test_transform(v, self.size, self.num_crops) for v in views])
        return video  # (views * crops, T, 3, size, size), view-major

    def _test_item(self, index: int) -> dict:
        item = self.items[index]
        try:
            video = self.load_test_views(item)
        except Exception as e:
            message = _message(item, e)
            return {"error": message, "label": item.label, "index": index,
                    "failed": [Failure(item.path, message)]}
        return {"video": video, "label": item.label, "index": index, "failed": []}
