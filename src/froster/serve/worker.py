"""The model worker: one thread that owns the model and runs everything that touches it.

Requests hand it work and wait on a future:
- `encode(clips, then)`: uint8 clips (n, T, 3, S, S) through the visual tower. Clips of
  concurrent requests are stacked into one forward pass, up to `batch_clips` clips or
  until `max_wait` seconds have passed since the first one came (a few milliseconds);
  `then(frames)` runs on the request's own (n, T, D) frame embeddings right after, in the
  same thread (e.g. the logits against the request's labels).
- `call(fn, ...)`: anything else (text tower, attention maps, index updates), alone.
The text-embedding cache is the recognizer's own, so every request shares it. The model
is never used from two threads at once (explaining swaps its attention kernel).

`admit()` bounds the requests in the server (`queue_size`): past it a request is refused
with `QueueFull` at once (the app answers 503 with Retry-After) rather than queued without
end.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass

import torch

__all__ = ["ModelWorker", "QueueFull"]


class QueueFull(Exception):
    """The server holds `queue_size` requests already; `retry_after` is a guess in seconds."""

    def __init__(self, queue_size: int, retry_after: int):
        super().__init__(f"the server is busy ({queue_size} requests in progress, the most "
                         f"it takes); try again in {retry_after} s")
        self.retry_after = retry_after


@dataclass
class _Encode:
    clips: torch.Tensor
    then: Callable | None
    future: Future


@dataclass
class _Call:
    fn: Callable
    args: tuple
    kwargs: dict
    future: Future


class ModelWorker:
    def __init__(self, recognizer, batch_clips: int, max_wait: float = 0.005,
                 queue_size: int = 64):
        if batch_clips < 1 or queue_size < 1 or max_wait < 0:
            raise ValueError("batch_clips and queue_size must be positive, max_wait not negative")
        self.recognizer = recognizer
        self.batch_clips, self.max_wait, self.queue_size = batch_clips, max_wait, queue_size
        self._encodes: collections.deque[_Encode] = collections.deque()
        self._calls: collections.deque[_Call] = collections.deque()
        self._lock = threading.Condition()
        self._closed = False
        self._admitted = 0
        self._seconds = collections.deque(maxlen=32)  # recent requests' times
        self.batches = 0            # forward passes run
        self.batched_clips = 0      # clips through them
        self.largest_batch = 0
        self._thread = threading.Thread(target=self._run, name="froster-model", daemon=True)
        self._thread.start()

    # -- admission ---------------------------------------------------------------------
    @property
    def in_progress(self) -> int:
        return self._admitted

    def acquire(self) -> Callable[[], None]:
        """Take one of the `queue_size` places for a request (QueueFull when none is
        left); returns the function that gives it back (calling it again does nothing)."""
        with self._lock:
            if self._admitted >= self.queue_size:
                typical = sorted(self._seconds)[len(self._seconds) // 2] if self._seconds else 1.0
                raise QueueFull(self.queue_size, max(1, math.ceil(typical)))
            self._admitted += 1
        start, done = time.monotonic(), []

        def release() -> None:
            with self._lock:
                if not done:
                    done.append(True)
                    self._admitted -= 1
                    self._seconds.append(time.monotonic() - start)
        return release

    @contextmanager
    def admit(self):
        """`with worker.admit():` one place held for the block."""
        release = self.acquire()
        try:
            yield
        finally:
            release()

    # -- work ----------------------------------------------------------------------------
    def encode(self, clips: torch.Tensor, then: Callable | None = None) -> Future:
        """Future of `then(frames)` (or the frames) for uint8 clips (n, T, 3, S, S)."""
        if clips.dim() != 5:
            raise ValueError(f"clips must be (n, frames, 3, H, W), got {tuple(clips.shape)}")
        return self._put(self._encodes, _Encode(clips, then, Future()))

    def call(self, fn: Callable, *args, **kwargs) -> Future:
        """Future of `fn(*args, **kwargs)` run in the model thread."""
        return self._put(self._calls, _Call(fn, args, kwargs, Future()))

    def _put(self, queue, job):
        with self._lock:
            if self._closed:
                raise RuntimeError("the model worker is closed")
            queue.append(job)
            self._lock.notify()
        return job.future

    def close(self, timeout: float | None = 30) -> None:
        """Finish the work queued, then stop the thread."""
        with self._lock:
            self._closed = True
            self._lock.notify()
        self._thread.join(timeout)

    # -- the thread ------------------------------------------------------------------------
    def _next(self):
        """The next call, or a batch of encodes (FIFO, at least one, at most batch_clips
        clips unless one request alone has more); None when closed and idle."""
        with self._lock:
            while not self._encodes and not self._calls:
                if self._closed:
                    return None
                self._lock.wait()
            if self._calls:
                return self._calls.popleft()
            deadline = time.monotonic() + self.max_wait
            while (sum(len(j.clips) for j in self._encodes) < self.batch_clips and not self._calls
                   and not self._closed and (left := deadline - time.monotonic()) > 0):
                self._lock.wait(left)
            batch, clips = [self._encodes.popleft()], 0
            clips = len(batch[0].clips)
            while self._encodes and clips + len(self._encodes[0].clips) <= self.batch_clips:
                job = self._encodes.popleft()
                batch.append(job)
                clips += len(job.clips)
            return batch

    def _run(self) -> None:
        while (work := self._next()) is not None:
            if isinstance(work, _Call):
                if work.future.set_running_or_notify_cancel():
                    try:
                        work.future.set_result(work.fn(*work.args, **work.kwargs))
                    except BaseException as err:  # noqa: BLE001 - handed to the request
                        work.future.set_exception(err)
                continue
            self._encode_batch(work)

    def _encode_batch(self, batch: list[_Encode]) -> None:
        batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
        if not batch:
            return
        try:
            clips = torch.cat([job.clips for job in batch])
            frames = self.recognizer.encode(clips[:, None])[:, 0]  # one "view" per clip
        except BaseException as err:  # noqa: BLE001
            for job in batch:
                job.future.set_exception(err)
            return
        self.batches += 1
        self.batched_clips += len(clips)
        self.largest_batch = max(self.largest_batch, len(clips))
        start = 0
        for job in batch:
            mine = frames[start:start + len(job.clips)]
            start += len(job.clips)
            try:
                job.future.set_result(job.then(mine) if job.then is not None else mine)
            except BaseException as err:  # noqa: BLE001
                job.future.set_exception(err)
