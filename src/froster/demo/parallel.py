"""Independent pieces of the demo's world (videos, pretraining frames), drawn and
encoded in several processes. Each piece has its own seed, so the results, returned in
order, do not depend on the number of processes."""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Sequence

#: Below this many pieces one process is quicker than starting others.
PARALLEL_FROM = 256


def cpu_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def map_in_processes(fn: Callable, items: Sequence, workers: int | None = None,
                     chunksize: int = 32) -> list:
    """[fn(item) for item in items], in `workers` processes (default: one per core when
    there are many items). `fn` must be a module-level function (it is pickled)."""
    if workers is None:
        workers = cpu_cores() if len(items) >= PARALLEL_FROM else 1
    if workers <= 1:
        return [fn(item) for item in items]
    # fork where there is fork: the children only draw and encode (numpy and PyAV, no torch),
    # and unlike spawn it does not need the caller's script to guard its main code
    context = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        return list(pool.map(fn, items, chunksize=chunksize))


def free_cores(seconds: float = 0.5) -> float | None:
    """How many of this machine's cores sat idle over the next `seconds` (from /proc/stat;
    None where there is none): what other programs leave to the demo right now."""
    def sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return values[3] + values[4], sum(values)  # idle + iowait, all

    try:
        idle0, total0 = sample()
        time.sleep(seconds)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (os.cpu_count() or 1) * (idle1 - idle0) / (total1 - total0)
