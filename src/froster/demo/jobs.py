"""The default demo's independent work in processes of their own, one per core.

The rows' training runs do not depend on each other: each (row, training split) is a
`RunJob`, run in a single-threaded process by `run_job`, which does what the rows do one
after the other under --full: `protocols.run_b2n` on that one training list (the real
trainer, weight averaging and evaluation on the base and novel test lists), then the
attention measurement on its student, then the footprint tidying of its own run folder.
`pretrain_job` pretrains the CLIP in a process of its own.

Why processes with one thread each: the demo's model is tiny (32-pixel frames, width 64),
so one run cannot keep two cores busy (142 % CPU on 2 cores, docs/demo.md), while two runs
side by side keep both busy. Every run draws its clips and templates from its own seeds, and
its arithmetic is single-threaded whatever the machine, so the table does not depend on
how many cores run the jobs, nor in which order they finish.

The processes are started with `spawn` (a fresh interpreter, not a fork of a process whose
OpenMP threads may be running), and their output goes to a log file of their own.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import resource
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

__all__ = ["RunJob", "run_job", "PretrainJob", "pretrain_job", "run_in_processes",
           "process_pool", "child_environment", "cpu_seconds"]


@dataclass(frozen=True)
class RunJob:
    """One training split of one row (`split` None: the zero-shot row, which has none)."""

    key: str                   # row key: zero_shot, fine_tune, froster
    split: str | None          # training list, e.g. "train_2.csv"
    cfg: object                # the row's engine Config (output_dir: the row's folder)
    split_dir: str
    videos: str
    subset: object = None      # attention.NovelSubset, or None: no attention measurement
    novel_texts: tuple = ()
    attention: object = None   # attention.AttentionSpec
    keep_students: bool = False
    keep_runs: bool = False

    @property
    def name(self) -> str:
        return "zero_shot" if self.split is None else Path(self.split).stem

    @property
    def run_dir(self) -> Path:
        return Path(self.cfg.output_dir) / self.name


def run_job(job: RunJob) -> dict:
    """Train and evaluate one split, measure its attention maps, tidy its folder."""
    import torch

    from ..engine.distributed import DistInfo, resolve_device
    from ..engine.protocols import run_b2n
    from .attention import measure_models, run_models
    from .footprint import tidy_run

    start, cpu = time.perf_counter(), cpu_seconds()
    job.run_dir.mkdir(parents=True, exist_ok=True)
    with _output_to(job.run_dir / "output.log"):
        torch.manual_seed(job.cfg.seed)
        info = DistInfo(device=resolve_device(job.cfg.device))
        result = run_b2n(job.cfg, job.split_dir, job.videos, job.cfg.output_dir, info,
                         train_lists=None if job.split is None else [job.split],
                         zero_shot=job.cfg.zero_shot, dataset="froster-demo")
        trained = time.perf_counter()
        measured = None
        if job.subset is not None:
            models = run_models(job.cfg, None if job.cfg.zero_shot else job.run_dir)
            measured = measure_models(models, job.subset, list(job.novel_texts), job.attention)
        attention_seconds = time.perf_counter() - trained
        if not job.keep_runs:
            tidy_run(job.run_dir, job.keep_students)
    return {"key": job.key, "split": job.name, "result": result, "measured": measured,
            "seconds": time.perf_counter() - start - attention_seconds,
            "attention_seconds": attention_seconds, "cpu_seconds": cpu_seconds() - cpu,
            "threads": torch.get_num_threads()}


@dataclass(frozen=True)
class PretrainJob:
    cfg: object             # PretrainConfig
    out: str                # the .safetensors file
    device: str = "cpu"
    corpus_workers: int = 1  # processes drawing the frames (the same frames for any number)


def pretrain_job(job: PretrainJob) -> dict:
    """`pretrain.pretrain` in this process; the weights go to `job.out`, its log beside."""
    import torch

    from .pretrain import make_corpus, pretrain

    start, cpu = time.perf_counter(), cpu_seconds()
    out = Path(job.out)
    with _output_to(out.with_suffix(".log")):
        cfg = job.cfg
        corpus = make_corpus(cfg.scenes, cfg.frames_per_scene, cfg.size, cfg.trail_prob,
                             cfg.seed, cfg.signature_prob, workers=job.corpus_workers)
        result = pretrain(cfg, out, log=print, corpus=corpus, device=job.device)
        result.corpus_seconds = time.perf_counter() - start - result.train_seconds
    return {"losses": result.losses, "corpus_seconds": result.corpus_seconds,
            "train_seconds": result.train_seconds, "seconds": time.perf_counter() - start,
            "cpu_seconds": cpu_seconds() - cpu, "threads": torch.get_num_threads()}


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its finished children."""
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                           resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_in_processes(fn: Callable, jobs: Sequence, workers: int, threads: int = 1,
                     env: dict[str, str] | None = None) -> Iterator[tuple[object, dict]]:
    """(job, fn(job)) as each job finishes, in `workers` processes of `threads` torch
    threads each (`process_pool`). Jobs start in the order given (put the longest first).
    A job's error is raised here."""
    with process_pool(min(workers, len(jobs)), threads, env) as pool:
        pending = {pool.submit(fn, job): job for job in jobs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                yield job, future.result()


@contextlib.contextmanager
def process_pool(workers: int, threads: int = 1, env: dict[str, str] | None = None):
    """A ProcessPoolExecutor of `workers` spawned processes with `threads` torch threads
    each; `env`: extra environment variables of those processes."""
    env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)} | (env or {})
    context = multiprocessing.get_context("spawn")
    with child_environment(env), ProcessPoolExecutor(
            max(1, workers), mp_context=context, initializer=_start_worker,
            initargs=(threads,)) as pool:
        yield pool


@contextlib.contextmanager
def child_environment(env: dict[str, str]):
    """Set `env` in os.environ while processes are started (they copy it), then restore it.
    This process's own OpenMP has read its settings already, when torch was imported."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _start_worker(threads: int) -> None:
    import torch

    logging.getLogger().setLevel(logging.ERROR)  # as `froster.cli.main`: open_clip's notices
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # already set if the parent's main module used it
        torch.set_num_interop_threads(threads)


@contextlib.contextmanager
def _output_to(path: Path):
    """This process's prints and warnings (Python level) into `path`."""
    with open(path, "a", encoding="utf-8", buffering=1) as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        yield
