"""Distributed set-up from torchrun's or SLURM's environment (`launch.py`): nccl on GPU,
gloo on CPU. A run without those variables is a single process.

Failing fast: a collective waits at most `timeout` seconds for the other ranks (a dead or
hung rank ends the run instead of hanging it; under NCCL the watchdog aborts the process,
TORCH_NCCL_ASYNC_ERROR_HANDLING=1); a rank that raises leaves without a barrier
(`session`), so that its traceback is printed and it exits, and torchrun (or srun
--kill-on-bad-exit) stops the others. Waits for rank 0's file writes (`barrier`,
`main_first`) and the stop/save flags of `save_points.py` go over a second, CPU (gloo) group
with a longer timeout: a long checkpoint write is not a dead rank.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from ..errors import FrosterError
from .launch import from_environment

#: seconds a collective of training waits for the other ranks (config key dist_timeout)
DEFAULT_TIMEOUT = 600.0
#: the least the host group's waits for rank 0 (checkpoint writes, downloads) may take
HOST_WAIT_SECONDS = 1800.0

_host_group = None  # the gloo group of barriers and flags (None: not distributed)
_host_group_of = None  # the default group it was made beside


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise FrosterError(f"device={name!r} but no CUDA device is available; use device=cpu")
        if device.index is None:  # the local rank modulo the GPUs this process sees (one
            # per task under `srun --gpus-per-task=1`, all of the node's under torchrun)
            device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    return device


def setup(device: str = "auto", timeout: float = DEFAULT_TIMEOUT) -> DistInfo:
    """Join the run's process group (torchrun's or srun's tasks; none for one process) and
    pick this rank's device. `timeout`: seconds a collective waits for the other ranks."""
    launch = from_environment()
    torch_device = resolve_device(device, launch.local_rank)
    if launch.world_size > 1 and not dist.is_initialized():
        if launch.source == "slurm":  # what env:// (and the data loader) read
            os.environ.update(launch.environment())
        backend = "nccl" if torch_device.type == "cuda" else "gloo"
        if backend == "nccl":  # a failed or timed-out collective aborts instead of hanging
            os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")
        extra = {"device_id": torch_device} if backend == "nccl" else {}
        try:
            dist.init_process_group(backend=backend, init_method="env://", rank=launch.rank,
                                    world_size=launch.world_size,
                                    timeout=timedelta(seconds=timeout), **extra)
        except (RuntimeError, ValueError) as err:
            raise FrosterError(_rendezvous_error(launch, timeout, err)) from None
        _make_host_group(timeout)
    return DistInfo(launch.rank, launch.world_size, launch.local_rank, torch_device)


def _rendezvous_error(launch, timeout: float, err: Exception) -> str:
    where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
    hint = ""
    if launch.source == "slurm":
        hint = (" (under SLURM every task must run froster: start it with srun, one task per "
                "GPU, not in the batch script itself)")
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return (f"rank {launch.rank} of {launch.world_size} ({launch.source}) could not join the "
            f"others at {where} within {timeout:g} s{hint}: {first_line}")


def _make_host_group(timeout: float = DEFAULT_TIMEOUT) -> None:
    global _host_group, _host_group_of
    _host_group = dist.new_group(backend="gloo", timeout=timedelta(
        seconds=max(timeout, HOST_WAIT_SECONDS)))
    _host_group_of = dist.group.WORLD


def host_group():
    """The CPU (gloo) group of barriers and stop/save flags; None when not distributed.
    Made here, on first use, for a process group that `setup` did not start (a script's
    own): every rank calls this at the same point (a barrier, the Trainer's set-up)."""
    if not (dist.is_available() and dist.is_initialized()):
        return None
    if _host_group is None or _host_group_of is not dist.group.WORLD:
        _make_host_group()
    return _host_group


def cleanup() -> None:
    """The end of a successful run: wait for every rank, then leave the process group."""
    global _host_group
    if dist.is_available() and dist.is_initialized():
        barrier()
        dist.destroy_process_group()
    _host_group = None


def abandon() -> None:
    """Leave after an error, without waiting for the other ranks (they may never come):
    a gloo group is closed, which ends the others' pending collectives at once; an NCCL one
    is left to the process's exit (destroying it could wait on the failed collective)."""
    global _host_group
    if dist.is_available() and dist.is_initialized():
        with contextlib.suppress(Exception):
            if _host_group is not None:  # ranks waiting for this one in a barrier stop now
                dist.destroy_process_group(_host_group)
            if dist.get_backend() == "gloo":
                dist.destroy_process_group()
    _host_group = None


@contextlib.contextmanager
def session(device: str = "auto", timeout: float = DEFAULT_TIMEOUT):
    """`with session(cfg.device, cfg.dist_timeout) as info:` a command's distributed part:
    ends with a barrier when the block succeeds; on an exception this rank leaves at once
    (`abandon`) and the exception goes on (its traceback printed, a non-zero exit)."""
    info = setup(device, timeout)
    try:
        yield info
    except BaseException:
        if info.distributed:
            print(f"rank {info.rank}: failed; leaving the process group without waiting for "
                  "the other ranks", file=sys.stderr)
        abandon()
        raise
    cleanup()


def recorded(fn):
    """`fn` under torchrun's `@record` when torchrun started this process: an exception is
    written to the error file torchrun names (TORCHELASTIC_ERROR_FILE), whose traceback its
    failure summary shows, and a crash's stack goes to stderr (faulthandler)."""
    if "TORCHELASTIC_ERROR_FILE" not in os.environ and "TORCHELASTIC_RUN_ID" not in os.environ:
        return fn
    from torch.distributed.elastic.multiprocessing.errors import record

    return record(fn)


def barrier() -> None:
    """Every rank waits here for the others (over the host group: no GPU sync, and a long
    timeout, since the others may be waiting for rank 0's writes)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier(group=host_group())


def gather_objects(obj) -> list:
    """Every rank's `obj`, in rank order (on every rank); [obj] when not distributed."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def mean_over_ranks(values: dict, device: torch.device) -> dict[str, float]:
    """Scalars (floats or 0-d tensors on `device`) averaged over ranks, as floats read in
    one host transfer (for logging)."""
    if not values:
        return {}
    tensor = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device)
                          for v in values.values()])
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor)
        tensor /= dist.get_world_size()
    return dict(zip(values, tensor.tolist()))


def ddp_options(device: torch.device) -> dict:
    """How the student is wrapped in DDP: gradients are views into the reduction buckets (no
    copy, less memory), and buffers are not broadcast every step (the towers' buffers are
    constants such as the causal mask; none is updated in training)."""
    return {"device_ids": [device.index] if device.type == "cuda" else None,
            "gradient_as_bucket_view": True, "broadcast_buffers": False}


@contextlib.contextmanager
def main_first(info: DistInfo):
    """Rank 0 runs the block first (e.g. downloads weights into the cache), then the others."""
    if info.distributed and not info.is_main:
        barrier()
    yield
    if info.distributed and info.is_main:
        barrier()
