"""What the ranks' agreement on saving and stopping costs per training step
(`froster.engine.save_points`): at every step boundary each rank adds its flags (a signal
seen, save_every_minutes up on rank 0) into a max-all-reduce over the CPU (gloo) group,
started without waiting and read at the next boundary.

    python bench/save_points.py                 # 2 ranks (gloo on this machine), 2000 steps
    python bench/save_points.py --step-ms 20    # 20 ms steps (the host waits, as for a GPU)
    python bench/save_points.py --busy          # the host computes during the step (CPU)

Prints `key: value` lines: `boundary_us` (microseconds per boundary as training does it, the
all-reduce in flight during the step), `blocking_boundary_us` (the same agreement waited for
at once, for comparison), `single_process_boundary_us` (one process: no all-reduce), and
`boundary_share_of_step` (boundary_us over the step's time, with --step-ms).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path


def measure(steps: int, step_ms: float, busy: bool) -> None:
    import torch
    import torch.distributed as dist

    from froster.engine.distributed import cleanup, host_group, setup
    from froster.engine.save_points import SavePoints

    torch.set_num_threads(1)
    info = setup("cpu")

    def work():  # the host waits for the GPU's step (sleeps), or computes (--busy)
        if step_ms and not busy:
            time.sleep(step_ms / 1000)
        elif step_ms:
            end = time.perf_counter() + step_ms / 1000
            while time.perf_counter() < end:
                pass

    def run(boundary) -> float:
        """Microseconds per boundary, the step's work not counted."""
        spent = 0.0
        for step in range(1, steps + 1):
            work()
            t0 = time.perf_counter()
            boundary(step)
            spent += time.perf_counter() - t0
        return spent / steps * 1e6

    points = SavePoints(info, every_minutes=30.0)
    flags = torch.zeros(2)

    def blocking(step):
        dist.all_reduce(flags, op=dist.ReduceOp.MAX, group=host_group())
        flags.tolist()

    results = {}
    for name, boundary in (("boundary_us", lambda s: points.boundary(s, lambda: None)),
                           ("blocking_boundary_us", blocking)):
        rounds = [run(boundary) for _ in range(3)]
        results[name] = statistics.median(rounds)
    points.close()
    single = SavePoints(type(info)(), every_minutes=30.0)
    results["single_process_boundary_us"] = run(lambda s: single.boundary(s, lambda: None))
    if info.is_main:
        print(f"ranks: {info.world_size} (gloo, this machine)")
        print(f"steps: {steps}")
        print(f"step_ms: {step_ms:g} ({'busy' if busy else 'sleeping'})")
        for key, value in results.items():
            print(f"{key}: {value:.1f}")
        if step_ms:
            print(f"boundary_share_of_step: {results['boundary_us'] / (step_ms * 1000):.5f}")
    cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--step-ms", type=float, default=5.0,
                        help="busy work per step on each rank (default 5 ms)")
    parser.add_argument("--busy", action="store_true",
                        help="the step computes on the host (CPU training) instead of "
                             "waiting for the GPU")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--_rank", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._rank is not None:
        return measure(args.steps, args.step_ms, args.busy)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = str(Path(__file__).resolve().parents[1] / "src")
    procs = []
    for rank in range(args.ranks):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(args.ranks), LOCAL_RANK=str(rank),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]))
        procs.append(subprocess.Popen([sys.executable, __file__, "--steps", str(args.steps),
                                       "--step-ms", str(args.step_ms), "--_rank", str(rank),
                                       *(["--busy"] if args.busy else [])],
                                      env=env))
    sys.exit(max(p.wait() for p in procs))


if __name__ == "__main__":
    main()
