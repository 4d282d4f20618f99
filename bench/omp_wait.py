"""OpenMP's wait policy on a CPU with busy cores: the demo's pretraining steps (the same
arithmetic) timed with idle OpenMP threads spinning (ACTIVE, libgomp's usual behaviour for
short waits) and sleeping (PASSIVE, what the `froster` command sets unless the user chose),
on the machine as it is and with `--busy` extra processes each spinning on a core, as a
decoding worker, a second rank or another job would.

Each measurement is a fresh interpreter (the policy is read when OpenMP starts); the four
settings alternate within each round.

    python bench/omp_wait.py                 # about 6 minutes on 2 cores (ACTIVE with a busy core is slow)
    python bench/omp_wait.py --steps 40 --rounds 3

Prints `key: value` lines: median seconds per setting, `passive_over_active_quiet` and
`passive_over_active_busy` (time ratios; below 1: PASSIVE is faster) and
`same_losses` (the policies give the same losses, bit for bit).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys

STEPS_SCRIPT = """
import json, sys, time
from dataclasses import replace
from froster.demo.pretrain import PretrainConfig, pretrain
cfg = replace(PretrainConfig(), steps=int(sys.argv[1]), scenes=200)
result = pretrain(cfg)
print(json.dumps({"seconds": result.train_seconds, "losses": result.losses}))
"""


def spin(stop) -> None:
    while not stop.is_set():
        pass


def timed(policy: str, steps: int, busy: int) -> dict:
    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=spin, args=(stop,), daemon=True) for _ in range(busy)]
    for process in spinners:
        process.start()
    try:
        env = os.environ | {"OMP_WAIT_POLICY": policy}
        out = subprocess.run([sys.executable, "-c", STEPS_SCRIPT, str(steps)], env=env,
                             capture_output=True, text=True, check=True).stdout
    finally:
        stop.set()
        for process in spinners:
            process.join()
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10, help="pretraining steps per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--busy", type=int, default=1, help="spinning processes for 'busy'")
    args = parser.parse_args()
    settings = [(policy, load) for load in ("quiet", "busy") for policy in ("ACTIVE", "PASSIVE")]
    seconds = {s: [] for s in settings}
    losses = {}
    for r in range(args.rounds):
        for policy, load in (settings if r % 2 == 0 else settings[::-1]):
            out = timed(policy, args.steps, args.busy if load == "busy" else 0)
            seconds[(policy, load)].append(out["seconds"])
            losses.setdefault(policy, out["losses"])
    median = {s: statistics.median(v) for s, v in seconds.items()}
    print(f"cores: {os.cpu_count()}")
    print(f"steps: {args.steps}")
    for (policy, load), value in median.items():
        print(f"seconds_{policy.lower()}_{load}: {value:.2f}")
    for load in ("quiet", "busy"):
        print(f"passive_over_active_{load}: {median[('PASSIVE', load)] / median[('ACTIVE', load)]:.3f}")
    print(f"same_losses: {str(losses['ACTIVE'] == losses['PASSIVE']).lower()}")


if __name__ == "__main__":
    main()
