"""Data loaders: sharding across ranks, batching uint8 clips, carrying failures.

Training shards are shuffled per epoch from the seed and padded to equal length
(every rank must run the same number of steps). Evaluation shards are disjoint
and unpadded, so every video is evaluated exactly once across ranks.
"""

from __future__ import annotations

import functools
import math
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Sampler

from .dataset import VideoDataset

__all__ = ["ShardedSampler", "collate_videos", "build_loader", "set_epoch"]


class ShardedSampler(Sampler[int]):
    """This rank's share of ``range(num_items)``: ``order[rank::world_size]``."""

    def __init__(
        self,
        num_items: int,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        seed: int = 0,
        pad: bool = True,
    ):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
        self.num_items = num_items
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle
        self.seed = seed
        self.pad = pad
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.num_items))
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.randperm(self.num_items, generator=generator).tolist()

    def __iter__(self) -> Iterator[int]:
        order = self._order()
        if self.pad and order:
            total = math.ceil(len(order) / self.world_size) * self.world_size
            order = (order * math.ceil(total / len(order)))[:total]
        return iter(order[self.rank :: self.world_size])

    def __len__(self) -> int:
        if self.pad:
            return math.ceil(self.num_items / self.world_size)
        return len(range(self.rank, self.num_items, self.world_size))


def collate_videos(samples: list[dict], video_shape: tuple[int, ...] | None = None) -> dict:
    """Stack good samples; bad ones (test mode) go to ``failed`` / ``failed_index``.

    Returns video uint8 (B, ...), label and index int64 (B,), ``failed`` (a list of
    Failure(path, message), including videos replaced in training),
    ``failed_index`` (dataset indices that have no video in this batch) and
    ``fallback`` (Fallback(path, reason) of videos sampled another way).
    """
    good = [s for s in samples if "video" in s]
    if good:
        video = torch.stack([s["video"] for s in good])
    else:
        video = torch.empty((0, *(video_shape or ())), dtype=torch.uint8)
    return {
        "video": video,
        "label": torch.tensor([s["label"] for s in good], dtype=torch.long),
        "index": torch.tensor([s["index"] for s in good], dtype=torch.long),
        "failed": [f for s in samples for f in s.get("failed", [])],
        "failed_index": [s["index"] for s in samples if "video" not in s],
        "fallback": [f for s in samples for f in s.get("fallback", [])],
    }


def _worker_init(worker_id: int) -> None:
    # Each worker decodes one video at a time; extra threads only fight over the cores.
    torch.set_num_threads(1)


def build_loader(
    dataset: VideoDataset,
    batch_size: int,
    num_workers: int = 2,
    shuffle: bool | None = None,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool | None = None,
    pin_memory: bool = False,
    prefetch_factor: int | None = None,
) -> DataLoader:
    """A DataLoader over this rank's shard. Defaults follow the dataset's mode:
    training shuffles, pads shards and drops the last partial batch; testing does none."""
    train = dataset.mode == "train"
    sampler = ShardedSampler(
        len(dataset), rank, world_size, shuffle=train if shuffle is None else shuffle,
        seed=seed, pad=train,
    )
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=functools.partial(collate_videos, video_shape=dataset.video_shape),
        drop_last=train if drop_last is None else drop_last,
        pin_memory=pin_memory,
        worker_init_fn=_worker_init if num_workers > 0 else None,
        prefetch_factor=prefetch_factor if num_workers > 0 else None,
        # Workers are started per epoch so they see the dataset's current epoch.
        persistent_workers=False,
    )


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Set the epoch of the loader's sampler and dataset (call before iterating)."""
    loader.sampler.set_epoch(epoch)
    loader.dataset.set_epoch(epoch)
