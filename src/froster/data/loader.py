"""Data loaders: sharding across ranks, batching uint8 clips, carrying failures.

Training shards are shuffled per epoch from the seed and padded to equal length
(every rank must run the same number of steps). Evaluation shards are disjoint
and unpadded, so every video is evaluated exactly once across ranks.

A training sampler hands the dataset ``(epoch, index)`` keys: the epoch travels with each
sample, so decoding workers can live across epochs (``persistent_workers``) and still
draw each epoch's random clips. The order is a pure function of (seed, epoch), so a run
resumed in the middle of an epoch needs only the number of samples already taken
(``set_epoch(loader, epoch, start=...)``).
"""

from __future__ import annotations

import functools
import math
import os
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Sampler

from ..errors import FrosterError
from .dataset import VideoDataset

__all__ = ["ShardedSampler", "collate_videos", "build_loader", "set_epoch", "batches",
           "default_workers", "LoaderStalled"]


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
        with_epoch: bool = False,
    ):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
        self.num_items = num_items
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle
        self.seed = seed
        self.pad = pad
        self.with_epoch = with_epoch  # yield (epoch, index) keys instead of indices
        self.epoch = 0
        self.start = 0  # samples of this rank's share to skip (a resumed epoch)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def indices(self) -> list[int]:
        """This rank's dataset indices of the current epoch, in order, from `start`."""
        order = self._order()
        if self.pad and order:
            total = math.ceil(len(order) / self.world_size) * self.world_size
            order = (order * math.ceil(total / len(order)))[:total]
        return order[self.rank :: self.world_size][self.start:]

    def _order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.num_items))
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.randperm(self.num_items, generator=generator).tolist()

    def __iter__(self) -> Iterator:
        indices = self.indices()
        return iter([(self.epoch, i) for i in indices] if self.with_epoch else indices)

    def __len__(self) -> int:
        if self.pad:
            return max(0, math.ceil(self.num_items / self.world_size) - self.start)
        return max(0, len(range(self.rank, self.num_items, self.world_size)) - self.start)


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


def default_workers(local_world_size: int | None = None) -> int:
    """Decoding workers per rank: the cores this process may use, shared by the ranks of
    this machine (LOCAL_WORLD_SIZE, as torchrun sets it), less one for the rank itself (at
    least 1, at most 16)."""
    if local_world_size is None:
        local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(16, cores // max(1, local_world_size) - 1))


def loader_timeout(decode_timeout: float, batch_size: int, retries: int = 1) -> float:
    """How long to wait for one batch: a worker decodes its batch one video after another,
    each bounded by `decode_timeout` (and `retries` replacements); 0: no limit."""
    return decode_timeout * batch_size * (retries + 1) + 60 if decode_timeout else 0


class LoaderStalled(FrosterError):
    """No batch came from the decoding workers within the timeout."""


def build_loader(
    dataset: VideoDataset,
    batch_size: int,
    num_workers: int | None = 2,
    shuffle: bool | None = None,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    drop_last: bool | None = None,
    pin_memory: bool = False,
    prefetch_factor: int | None = None,
    timeout: float = 0,
) -> DataLoader:
    """A DataLoader over this rank's shard. Defaults follow the dataset's mode:
    training shuffles, pads shards, drops the last partial batch and keeps its workers
    across epochs (the epoch travels in the sampler's keys); testing does none of these.
    `timeout` (seconds, 0: none) bounds the wait for one batch from the workers; iterate
    with `batches` to have a stall named by its videos. `num_workers` None: `default_workers()`."""
    train = dataset.mode == "train"
    if num_workers is None:
        num_workers = default_workers()
    sampler = ShardedSampler(
        len(dataset), rank, world_size, shuffle=train if shuffle is None else shuffle,
        seed=seed, pad=train, with_epoch=train,
    )
    workers = num_workers > 0
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=functools.partial(collate_videos, video_shape=dataset.video_shape),
        drop_last=train if drop_last is None else drop_last,
        pin_memory=pin_memory,
        worker_init_fn=_worker_init if workers else None,
        prefetch_factor=(prefetch_factor or (4 if train else 2)) if workers else None,
        persistent_workers=train and workers,
        timeout=timeout if workers else 0,
        # the workers' base seed is drawn from this, not from torch's global generator, so
        # that starting an epoch's iteration draws nothing from the training's random state
        # (a run resumed mid-epoch then has the global state of one that was not stopped);
        # samples draw from (seed, epoch, index), not from the workers' seeds
        generator=torch.Generator().manual_seed(seed),
    )


def set_epoch(loader: DataLoader, epoch: int, start: int = 0) -> None:
    """Set the epoch of the loader's sampler (and dataset), and the number of this rank's
    samples already taken in it (a resumed epoch); call before iterating."""
    loader.sampler.set_epoch(epoch, start)
    loader.dataset.set_epoch(epoch)


def batches(loader: DataLoader):
    """The loader's batches; a batch the workers do not deliver within the loader's
    timeout raises `LoaderStalled` naming the videos of that batch (one of them stalls
    the decoder), instead of every rank waiting in silence."""
    iterator = iter(loader)
    order = loader.sampler.indices() if isinstance(loader.sampler, ShardedSampler) else None
    number = 0
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except RuntimeError as err:
            if "timed out" not in str(err) or order is None:
                raise
            first = number * loader.batch_size
            paths = [loader.dataset.items[i].path for i in order[first:first + loader.batch_size]]
            raise LoaderStalled(
                f"no batch from the decoding workers in {loader.timeout:g} s (batch {number + 1} "
                f"of this epoch); one of these videos stalls the decoder: {', '.join(paths)}. "
                f"Check them with `froster data check`, or raise decode_timeout") from None
        number += 1
        yield batch
