"""When training writes its state between two steps, and when it stops.

A state is written mid-epoch every `save_every_minutes` (by rank 0's clock) or every
`save_every_steps` steps, and when a SIGTERM or SIGUSR1 arrives (SLURM's warning before a
preemption or the time limit; torchrun forwards SIGTERM to its ranks): then the run saves
and stops, and exits 0 (`resume=auto` continues it). Every rank must save after the same
step, though a signal reaches them at different moments and their clocks differ: at each
step boundary every rank adds its flags (signal seen, minutes up) into a max-all-reduce over
the CPU group, started without waiting (`async_op`) and read at the next boundary, so the
agreement costs no wait (`bench/save_points.py` measures it) and all ranks act one step
after the first flag, on the same step. The step count is the same everywhere, so
`save_every_steps` needs no agreement.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable

import torch
import torch.distributed as dist

from .distributed import DistInfo, host_group

SIGNALS = ("SIGTERM", "SIGUSR1")


class SavePoints:
    def __init__(self, info: DistInfo, every_minutes: float = 0.0, every_steps: int = 0,
                 clock: Callable[[], float] = time.monotonic):
        self.info = info
        self.every_seconds = every_minutes * 60.0 if every_minutes > 0 else None
        self.every_steps = every_steps
        self.clock = clock
        self.last_save = clock()
        self.signal: str | None = None   # the first signal this rank received
        self.stopping: str | None = None  # the agreed reason to stop (a signal's name)
        self._pending = None              # (work, flags) of the all-reduce in flight
        self._group = host_group() if info.distributed else None

    # -- signals -----------------------------------------------------------------
    @contextlib.contextmanager
    def catching_signals(self):
        """SIGTERM and SIGUSR1 set a flag instead of ending the process, in this block
        (the main thread only; elsewhere signals keep their handlers)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {}
        for name in SIGNALS:
            number = getattr(signal, name, None)
            if number is not None:
                previous[number] = signal.signal(number, self._received)
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _received(self, number, frame) -> None:
        name = signal.Signals(number).name
        if self.signal is None:
            self.signal = name
            print(f"rank {self.info.rank}: {name} received: saving the training state at the "
                  "next step and stopping", file=sys.stderr, flush=True)

    # -- the flags -----------------------------------------------------------------
    def _minutes_up(self) -> bool:
        return (self.every_seconds is not None and self.info.is_main
                and self.clock() - self.last_save >= self.every_seconds)

    def _local_flags(self) -> torch.Tensor:
        return torch.tensor([float(self._signal_number()), float(self._minutes_up())])

    def _signal_number(self) -> int:
        return int(getattr(signal, self.signal)) if self.signal else 0

    def _collect(self) -> tuple[int, bool]:
        """(signal number or 0, minutes up) as every rank will see them: this rank's own
        flags in one process; the flags all-reduced at the previous boundary in several
        (the highest signal number of any rank)."""
        if self._group is None:
            return self._signal_number(), self._minutes_up()
        if self._pending is None:
            return 0, False
        work, flags = self._pending
        self._pending = None
        work.wait()
        number, minutes_up = flags.tolist()
        return int(number), bool(minutes_up)

    def _launch(self) -> None:
        if self._group is not None:
            flags = self._local_flags()
            work = dist.all_reduce(flags, op=dist.ReduceOp.MAX, group=self._group, async_op=True)
            self._pending = (work, flags)

    def _agree_stop(self, number: int) -> None:
        self.stopping = signal.Signals(number).name

    # -- the boundaries ------------------------------------------------------------
    def boundary(self, step: int, save: Callable[[], object]) -> bool:
        """Call on every rank after optimiser step `step` (not after an epoch's last step,
        which `epoch_end` follows): runs `save()` when a save is due; True when the run
        stops here (the state is saved)."""
        stop, minutes_up = self._collect()
        steps_up = self.every_steps > 0 and step % self.every_steps == 0
        if stop or minutes_up or steps_up:
            save()
            self.last_save = self.clock()
        if stop:
            self._agree_stop(stop)
            return True
        self._launch()  # after a save, so that its flags start from the reset clock
        return False

    def epoch_end(self) -> bool:
        """After the epoch's own save (every rank): True when a signal came (on any rank)
        before now, so the run stops here, before any evaluation."""
        self.last_save = self.clock()
        stop = self._collect()[0] if self._pending is not None else 0
        if self._group is not None:
            flags = torch.tensor([float(self._signal_number())])
            dist.all_reduce(flags, op=dist.ReduceOp.MAX, group=self._group)
            stop = max(stop, int(flags.item()))
        else:
            stop = max(stop, self._signal_number())
        if stop:
            self._agree_stop(stop)
        return bool(stop)

    def close(self) -> None:
        """Wait for the all-reduce in flight (before the process group goes)."""
        if self._pending is not None:
            self._pending[0].wait()
            self._pending = None


def requeue_job(environ=None) -> str:
    """Put this SLURM job back in the queue (`scontrol requeue $SLURM_JOB_ID`); what was
    done, as a line for the log."""
    import os
    import shutil
    import subprocess

    environ = os.environ if environ is None else environ
    job = environ.get("SLURM_JOB_ID")
    if not job:
        return "requeue=true but SLURM_JOB_ID is not set (not a SLURM job): not requeued"
    if shutil.which("scontrol") is None:
        return f"requeue=true but scontrol is not on PATH: job {job} not requeued"
    done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True,
                          check=False)
    if done.returncode:
        return (f"scontrol requeue {job} failed ({done.stderr.strip() or done.returncode}); "
                "is the job requeueable (sbatch --requeue)?")
    return f"requeued SLURM job {job} (scontrol requeue {job})"
