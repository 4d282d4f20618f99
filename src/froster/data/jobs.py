"""Resumable work over many files: an append-only log of finished jobs, and a process pool
with a progress bar that survives a worker dying on one file.

The log is JSON Lines: a header line (what the jobs depend on: settings, roots), then
one line per finished job, written and flushed as it finishes. A killed run leaves at
most a partial last line, which the next run drops; a run whose header differs from the
log's (other settings) cannot reuse it. Used by `froster data check` and `prepare`.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Callable, Iterable

__all__ = ["JobLog", "run_jobs", "file_stamp", "cpu_cores", "write_atomic"]


def cpu_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def file_stamp(path: str | os.PathLike) -> list[int] | None:
    """[size, mtime_ns] of a file (None if it does not exist): a finished job is redone
    when its input changed since."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


class JobLog:
    """The finished jobs of earlier runs (``done``: key -> record) and the file to add to.

    ``previous_header`` is the header of a log written with other settings (then
    ``done`` is empty and the log is started again only if ``restart`` or the caller
    calls `start_over`); None when there was no log or it matched.
    """

    def __init__(self, path: str | os.PathLike, header: dict, restart: bool = False):
        self.path = Path(path)
        self.header = json.loads(json.dumps(header))  # as it reads back from the file
        self.done: dict[str, dict] = {}
        self.previous_header: dict | None = None
        self._file = None
        if self.path.is_file() and not restart:
            self._read()
        if not self.path.is_file() or restart:
            self.start_over()

    def _read(self) -> None:
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        complete = data.endswith(b"\n")
        records = []
        for i, raw in enumerate(lines):
            if not raw.strip():
                continue
            try:
                records.append(json.loads(raw))
            except ValueError:
                if i < len(lines) - 1 or complete:  # damage inside the file: do not trust it
                    self.previous_header = {"unreadable": str(self.path)}
                    return
        if not records or records[0].get("header") != self.header:
            self.previous_header = records[0].get("header", {}) if records else {}
            return
        if not complete:  # a partial last line from a killed run: cut it off
            keep = data[: data.rfind(b"\n") + 1]
            with open(self.path, "r+b") as f:
                f.truncate(len(keep))
        for record in records[1:]:
            if "key" in record:
                self.done[record["key"]] = record

    def start_over(self) -> None:
        """Forget earlier runs: a log with only this run's header."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps({"header": self.header}) + "\n")
        self.done, self.previous_header = {}, None

    def add(self, key: str, record: dict) -> None:
        """Record a finished job: one line, flushed at once."""
        record = {"key": key, **record}
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        self.done[key] = json.loads(json.dumps(record))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _init_worker() -> None:
    # One thread per worker: the processes are the parallelism.
    os.environ["OMP_NUM_THREADS"] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _pool(workers: int) -> ProcessPoolExecutor:
    # fork where there is fork: the parent has only read lists (no decoder or OpenMP
    # threads running), and unlike spawn it needs no `if __name__ == "__main__"` guard
    context = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker)


def _bar(total: int, initial: int, desc: str, progress: bool | None):
    """tqdm on stderr; ``progress`` None: only when stderr is a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="video", file=sys.stderr,
                disable=None if progress is None else not progress, dynamic_ncols=True,
                smoothing=0.05)


def run_jobs(fn: Callable, tasks: Iterable, on_result: Callable, workers: int,
             crashed: Callable, desc: str = "", progress: bool | None = True,
             total: int | None = None,
             initial: int = 0) -> None:
    """``on_result(task, fn(task))`` for every task, in this process as each finishes.

    ``workers`` processes (0: all in this process). ``fn`` must be a module-level
    function. A task whose worker process dies (a crash inside FFmpeg) is run again
    alone in a fresh process; if that dies too, ``on_result(task, crashed(task, why))``.
    The bar (tqdm on stderr, with an ETA; ``progress`` None: on a terminal only) counts
    ``initial`` jobs done before.
    """
    tasks = list(tasks)
    bar = _bar(initial + len(tasks) if total is None else total, initial, desc, progress)
    try:
        if workers <= 0:
            for task in tasks:
                on_result(task, fn(task))
                bar.update(1)
            return
        pending = list(reversed(tasks))
        while pending:
            suspects = _run_pool(fn, pending, on_result, workers, bar)
            for task in suspects:  # each alone: which one kills its worker?
                with _pool(1) as pool:
                    try:
                        result = pool.submit(fn, task).result()
                    except BrokenProcessPool:
                        result = crashed(task, "the worker process died decoding it "
                                               "(a crash inside FFmpeg)")
                on_result(task, result)
                bar.update(1)
    finally:
        bar.close()


def _run_pool(fn, pending: list, on_result, workers: int, bar) -> list:
    """Run tasks from the end of ``pending`` (a stack) with a bounded number in flight;
    returns the tasks in flight when the pool broke (empty if it did not)."""
    pool = _pool(workers)
    running: dict = {}
    try:
        while pending or running:
            while pending and len(running) < 2 * workers:
                task = pending.pop()
                running[pool.submit(fn, task)] = task
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                task = running.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    return [task] + list(running.values())
                on_result(task, result)
                bar.update(1)
        return []
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
