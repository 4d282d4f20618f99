"""The default demo's stages, with its heavy work in processes of their own (`jobs.py`):

1. the benchmark's videos, drawn and encoded in one process per core (`parallel.py`);
2. pretraining, in a process with `PRETRAIN_THREADS` torch threads, alone on the machine;
   its idle OpenMP threads spin (OMP_WAIT_POLICY=ACTIVE) when the other cores are free
   at its start, and sleep (PASSIVE) when other programs keep them busy, unless the user
   chose a policy (`pretrain_wait_policy`);
3. the rows' seven runs (frozen CLIP, three fine-tuning and three FROSTER splits), one
   single-threaded process per core, the longest first; each also measures its attention
   maps and tidies its folder. With one thread no OpenMP thread ever waits, so the wait
   policy does not matter there (bench/demo.py). A row's result is merged from its splits'
   as `protocols.run_b2n` computes it over several lists (mean and std over the splits).

The thread counts are fixed, not taken from the machine: a different number of threads
sums in a different order, so the table would depend on the machine's core count.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from ..config import validate
from ..engine.protocols import b2n_markdown, harmonic_mean, mean_std
from .benchmark import write_benchmark
from .footprint import KEPT_STUDENTS
from .jobs import PretrainJob, RunJob, pretrain_job, run_in_processes, run_job
from .parallel import cpu_cores, free_cores

__all__ = ["PRETRAIN_THREADS", "prepare_in_processes", "pretrain_wait_policy",
           "run_rows_in_processes", "merge_b2n", "device_name"]

#: Pretraining's torch threads (its model is too small to use more well; docs/demo.md).
PRETRAIN_THREADS = 2


def device_name(cfg) -> str:
    """cfg.device with "auto" resolved (without starting CUDA in this process)."""
    if cfg.device != "auto":
        return cfg.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def pretrain_wait_policy(threads: int = PRETRAIN_THREADS) -> tuple[str, float | None]:
    """(policy, free cores): ACTIVE when at least `threads` cores are idle now (spinning
    threads then take no one's core and answer at once), else PASSIVE."""
    free = free_cores()
    enough = free is not None and free >= threads - 0.25 and cpu_cores() >= threads
    return ("ACTIVE" if enough else "PASSIVE"), free


def prepare_in_processes(spec, pre_cfg, cfg, out: Path, then=None, wait_policy: str | None = None,
                         log=print) -> dict:
    """Write the benchmark (`spec`) to out/benchmark, call `then(files)` (e.g. the attention
    subset), then pretrain `pre_cfg` into out/clip.safetensors in a process of its own with
    `wait_policy` (None: `pretrain_wait_policy()`). Returns {"files", "then", "pretrain":
    pretrain_job's result, "benchmark_seconds", "then_seconds", "pretrain_seconds",
    "wait_policy", "free_cores"}."""
    start = time.perf_counter()
    files = write_benchmark(out / "benchmark", spec)
    benchmark_seconds = time.perf_counter() - start
    t = time.perf_counter()
    extra = then(files) if then else None
    then_seconds = time.perf_counter() - t
    free = None
    if wait_policy is None:
        wait_policy, free = pretrain_wait_policy()
    log(f"[demo] benchmark written in {benchmark_seconds:.0f} s; pretraining with "
        f"{PRETRAIN_THREADS} threads, OMP_WAIT_POLICY={wait_policy}"
        + (f" ({free:.1f} cores free)" if free is not None else " (the user's)"))
    t = time.perf_counter()
    job = PretrainJob(pre_cfg, str(out / "clip.safetensors"), device_name(cfg), cpu_cores())
    (_, pre), = run_in_processes(pretrain_job, [job], 1, threads=PRETRAIN_THREADS,
                                 env={"OMP_WAIT_POLICY": wait_policy})
    return {"files": files, "then": extra, "pretrain": pre, "benchmark_seconds": benchmark_seconds,
            "then_seconds": then_seconds, "pretrain_seconds": time.perf_counter() - t,
            "wait_policy": wait_policy, "free_cores": free}


def run_rows_in_processes(cfg, rows, files, out: Path, keep_runs: bool, subset, novel_texts,
                          attention, workers: int | None = None, log=print) -> tuple[list, dict]:
    """The rows (key, label, overrides) as RunJobs in `workers` processes (default: one per
    core); returns ([{"row": row cfg's key, "label", "results": [job results by split]}],
    {"wall": seconds, "workers": n})."""
    jobs, labels = [], {}
    for key, label, overrides in rows:
        row_cfg = replace(cfg, output_dir=str(out / key), **overrides)
        if keep_runs:
            row_cfg = replace(row_cfg, keep_epochs="all")
        validate(row_cfg)
        labels[key] = label
        splits = [None] if row_cfg.zero_shot else [path.name for path in files.train]
        jobs += [RunJob(key, split, row_cfg, str(files.root / "splits"), str(files.videos), subset,
                        tuple(novel_texts), attention, keep_students=key == KEPT_STUDENTS,
                        keep_runs=keep_runs) for split in splits]
    jobs.sort(key=_expected_cost, reverse=True)  # the longest first: the cores finish together
    workers = min(workers or cpu_cores(), len(jobs))
    log(f"[demo] {len(jobs)} runs in {workers} single-threaded processes: "
        + ", ".join(f"{labels[k]} x{sum(j.key == k for j in jobs)}" for k in labels))
    start, done = time.perf_counter(), {}
    for job, result in run_in_processes(run_job, jobs, workers, threads=1):
        done.setdefault(job.key, []).append(result)
        split = result["result"]["rows"][0]
        log(f"[demo] {labels[job.key]}, {job.name}: base {split['base']:.1f}, novel "
            f"{split['novel']:.1f}, HM {split['hm']:.1f} ({result['seconds']:.0f} s, attention "
            f"{result['attention_seconds']:.0f} s)")
    wall = time.perf_counter() - start
    merged = []
    for key, label, _ in rows:
        results = sorted(done[key], key=lambda r: r["split"])
        merged.append({"key": key, "label": label, "results": results,
                       "b2n": write_merged(out / key, [r["result"] for r in results])})
    return merged, {"wall": wall, "workers": workers}


def _expected_cost(job: RunJob) -> int:
    return 0 if job.cfg.zero_shot else 2 if job.cfg.distill else 1


def merge_b2n(results: list[dict]) -> dict:
    """One base-to-novel result over the splits of several `run_b2n` results (one list
    each): rows in order, mean and std over them, the records' files and video counts."""
    from ..engine.record import FAILED_FILE

    first = results[0]
    rows = [row for result in results for row in result["rows"]]
    summary = {key: mean_std(row[key] for row in rows) for key in ("base", "novel", "hm")}
    merged = first | {"rows": rows, "mean": {k: v[0] for k, v in summary.items()},
                      "std": {k: v[1] for k, v in summary.items()}}
    if first.get("record"):
        files, videos = {}, {"evaluated": 0, "total": 0, "failed": 0, "fallback": 0}
        for result in results:
            files |= result["record"]["files"]
            for key in videos:
                videos[key] += result["record"]["videos"].get(key, 0)
        videos["failed_file"] = FAILED_FILE if videos["failed"] else None
        merged["record"] = first["record"] | {"files": files, "videos": videos}
    return merged


def write_merged(row_dir: Path, results: list[dict]) -> dict:
    """The row's results.json and results.md, as `run_b2n` writes them for its lists."""
    from ..engine.record import markdown

    merged = merge_b2n(results)
    text = b2n_markdown(merged) + ("\n" + markdown(merged["record"]) if merged.get("record") else "")
    (row_dir / "results.json").write_text(json.dumps(merged, indent=2))
    (row_dir / "results.md").write_text(text)
    return merged


def row_entry(key: str, label: str, merged: dict, seconds: float) -> dict:
    """The demo's row, as `run.run_row` returns it."""
    mean, std = merged["mean"], merged["std"]
    return {"key": key, "method": label, "base": mean["base"], "novel": mean["novel"],
            "hm": harmonic_mean(mean["base"], mean["novel"]), "base_std": std["base"],
            "novel_std": std["novel"], "splits": merged["rows"], "seconds": seconds}
