"""Decoding uploaded videos into the model's test views in worker processes beside the
model, as `froster predict` decodes in its DataLoader workers: the same `VideoDataset`
item (the recognizer's view settings), one torch thread per worker, at low priority on a
CPU machine so that the forward pass keeps the cores. With ``workers=0`` decoding runs
in a thread of the server process instead.

Worker processes are started by "spawn" (the server already runs threads, which a fork
would copy half-way). A worker that dies (a decoder crash on a hostile file) fails only
its own request; the pool is started again for the next one.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context

import numpy as np
import torch

from ..data.annotations import VideoItem
from ..data.decode import VideoDecodeError

__all__ = ["DecodedVideo", "Decoder"]

_DATASET = None  # this worker's dataset (the recognizer's test views)


@dataclass
class DecodedVideo:
    views: torch.Tensor      # uint8 (V, T, 3, S, S), as `Recognizer.load_video` gives
    fallback: str | None     # why the sampling rule was not followed, if it was not


def _dataset(view, size: int):
    """The dataset `Recognizer.dataset` makes (its test views), for one file at a time."""
    from ..data.dataset import VideoDataset

    return VideoDataset([VideoItem("(none yet)", 0, 1)], mode="test", view=view, size=size,
                        decode_threads=1)


def _start_worker(settings: tuple, low_priority: bool) -> None:
    global _DATASET
    _DATASET = _dataset(*settings)
    torch.set_num_threads(1)
    if low_priority:
        try:
            os.nice(19)
        except OSError:
            pass


def _decode(path: str, dataset=None) -> tuple[np.ndarray | None, str | None, str | None]:
    """(views, fallback, error) of one file, as the dataset's test item gives them."""
    dataset = dataset if dataset is not None else _DATASET
    dataset.items = [VideoItem(path, 0, 1)]
    sample = dataset[0]
    if "error" in sample:
        return None, None, sample["error"]
    fallback = sample["fallback"][0].reason if sample["fallback"] else None
    return sample["video"].numpy(), fallback, None


class Decoder:
    def __init__(self, recognizer, workers: int = 2):
        self.workers = workers
        self.low_priority = recognizer.device.type == "cpu"
        self._settings = (recognizer.view, recognizer.size)  # picklable, for the workers
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        if workers:
            self._pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"),
                                   initializer=_start_worker,
                                   initargs=(self._settings, self.low_priority))

    def warm_up(self) -> None:
        """Start every worker now (each imports torch: seconds), not on the first request."""
        if self._pool is not None:
            futures = [self._pool.submit(_noop) for _ in range(self.workers)]
            for future in futures:
                future.result()

    async def views(self, path: str | os.PathLike, name: str | None = None) -> DecodedVideo:
        """The test views of the file at `path`; VideoDecodeError naming `name` (the
        client's file name) when it cannot be read."""
        path = os.fspath(path)
        loop = asyncio.get_running_loop()
        if self._pool is None:
            dataset = _dataset(*self._settings)
            views, fallback, error = await loop.run_in_executor(None, _decode, path, dataset)
        else:
            pool = self._pool
            try:
                views, fallback, error = await loop.run_in_executor(pool, _decode, path)
            except BrokenProcessPool:
                self._restart(pool)
                raise VideoDecodeError(f"{name or path}: the decoder crashed on this file "
                                       "(not a readable video)") from None
        if error is not None:
            raise VideoDecodeError(error.replace(path, name) if name else error)
        return DecodedVideo(torch.from_numpy(views), fallback)

    def _restart(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is broken:
                broken.shutdown(wait=False, cancel_futures=True)
                self._pool = self._new_pool()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _noop() -> int:
    return os.getpid()

