"""Video datasets for training and testing.

Training returns one random clip per video; a video that cannot be loaded is
replaced by another random one, and the failure travels with the sample.
Testing returns every view and crop of a video, or an ``error`` for a bad video so
that evaluation can say over how many videos its metrics were computed.
Which frames make a clip is the ``sampling`` rule (froster.data.sampling); a video
the rule had to sample another way carries a ``fallback`` (Fallback(path, reason)).
All randomness comes from (seed, epoch, index), so results do not depend on the
number of workers or on which worker loads which sample.
"""

from __future__ import annotations

import random
from typing import Sequence

import torch

from .annotations import VideoItem
from .deadline import deadline
from .decode import VideoDecodeError, open_video
from .failures import Failure, Fallback
from .sampling import get_sampling
from .sampling.sampled import Sampled
from .transforms import test_transform, train_transform
from .views import DEFAULT_VIEW, ViewSpec

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
        view: ViewSpec = DEFAULT_VIEW,
        size: int = 224,
        short_side_range: tuple[int, int] = (224, 256),
        seed: int = 0,
        max_retries: int = 10,
        decode_threads: int = 1,
        flip: bool = True,
        decode_timeout: float = 0.0,
    ):
        if mode not in ("train", "test"):
            raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
        if not items:
            raise ValueError("no videos to load")
        self.items = list(items)
        self.mode = mode
        self.view = view  # frames, sampling rate, fps, test views and crops, rule, rotation
        self.size = size
        self.short_side_range = tuple(short_side_range)
        self.seed = seed
        self.max_retries = max_retries
        self.decode_threads = decode_threads
        self.flip = flip
        self.decode_timeout = decode_timeout  # seconds per video in a loader worker (0: none)
        self.sampler = get_sampling(view.sampling)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    @property
    def video_shape(self) -> tuple[int, ...]:
        """Shape of one sample's ``video``."""
        clip = (self.view.num_frames, 3, self.size, self.size)
        return clip if self.mode == "train" else (self.view.num_views * self.view.num_crops, *clip)

    def __getitem__(self, key) -> dict:
        """`key`: an index, or (epoch, index) as the training sampler gives (the epoch
        travels with the sample, so workers can outlive an epoch)."""
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        return self._train_item(index, epoch) if self.mode == "train" else self._test_item(index)

    def _deadline(self, item: VideoItem):
        """The decoding time limit, in loader workers only (the main process keeps its
        signals to itself)."""
        in_worker = torch.utils.data.get_worker_info() is not None
        return deadline(self.decode_timeout if in_worker else 0.0, item.path)

    @staticmethod
    def _fallbacks(item: VideoItem, sampled: Sampled) -> list[Fallback]:
        return [Fallback(item.path, sampled.fallback)] if sampled.fallback else []

    # -- training ------------------------------------------------------------------
    def load_train_clip(self, item: VideoItem, rng: random.Random,
                        start: float | None = None) -> Sampled:
        """uint8 (T, 3, size, size): a clip at a random start (or at frame ``start``),
        randomly scaled, cropped and flipped."""
        with self._deadline(item), \
                open_video(item.path, self.decode_threads, self.view.apply_rotation) as video:
            sampled = self.sampler.train_clip(video, self.view, rng, start)
        video = train_transform(sampled.frames, rng, self.size, self.short_side_range,
                                flip=self.flip)
        return Sampled(video, sampled.fallback)

    def _train_item(self, index: int, epoch: int) -> dict:
        rng = random.Random(f"{self.seed}:{epoch}:{index}")
        failed: list[Failure] = []
        current = index
        for _ in range(self.max_retries + 1):
            item = self.items[current]
            try:
                sampled = self.load_train_clip(item, rng)
            except Exception as e:  # any bad video is skipped, never kills the worker
                failed.append(Failure(item.path, _message(item, e)))
                current = rng.randrange(len(self.items))
                continue
            return {"video": sampled.frames, "label": item.label, "index": current,
                    "failed": failed, "fallback": self._fallbacks(item, sampled)}
        listing = "\n  ".join(f.message for f in failed)
        raise RuntimeError(
            f"{len(failed)} videos in a row failed to load (drawn for sample {index}); "
            f"is the data root right?\n  {listing}"
        )

    # -- testing -------------------------------------------------------------------
    def load_test_views(self, item: VideoItem) -> Sampled:
        """uint8 (views * crops, T, 3, size, size), view-major."""
        with self._deadline(item), \
                open_video(item.path, self.decode_threads, self.view.apply_rotation) as video:
            sampled = self.sampler.test_views(video, self.view)
        views = sampled.frames.split(self.view.num_frames)
        video = torch.cat([test_transform(v, self.size, self.view.num_crops) for v in views])
        return Sampled(video, sampled.fallback)

    def _test_item(self, index: int) -> dict:
        item = self.items[index]
        try:
            sampled = self.load_test_views(item)
        except Exception as e:
            message = _message(item, e)
            return {"error": message, "label": item.label, "index": index,
                    "failed": [Failure(item.path, message)], "fallback": []}
        return {"video": sampled.frames, "label": item.label, "index": index, "failed": [],
                "fallback": self._fallbacks(item, sampled)}
