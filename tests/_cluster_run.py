"""`froster train` as a cluster would run it, with a fault injected for the tests (not a
test module): `python _cluster_run.py train key=value ...` under torchrun, srun-like
environments or alone. FROSTER_TEST_FAULT="KIND:RANK:STEP" makes rank RANK, as it starts
its optimiser step STEP (1-based, counted over the run), raise (KIND=raise), kill itself
with SIGKILL (kill), send itself SIGTERM (term), or send SIGTERM to its whole process group,
its data loader's workers included, as SLURM signals a task (term-group; start the runner
in a session of its own)."""

import os
import signal
import sys

import torch

from froster.cli import main
from froster.engine.train import Trainer

torch.set_num_threads(1)

fault = os.environ.get("FROSTER_TEST_FAULT")
if fault:
    kind, fault_rank, fault_step = fault.split(":")
    real_step = Trainer.train_step

    def faulty_step(self, micro_batches):
        if self.info.rank == int(fault_rank) and self.step + 1 == int(fault_step):
            if kind == "raise":
                raise RuntimeError(f"injected failure on rank {fault_rank} at step {fault_step}")
            if kind == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if kind == "term":
                os.kill(os.getpid(), signal.SIGTERM)
            if kind == "term-group":  # as SLURM signals a task: its decoding workers too
                os.killpg(os.getpgrp(), signal.SIGTERM)
        return real_step(self, micro_batches)

    Trainer.train_step = faulty_step

sys.exit(main(sys.argv[1:]))
