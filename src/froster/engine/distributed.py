"""Distributed set-up from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK): nccl on
GPU, gloo on CPU. A run without those variables is a single process."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import FrosterError


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
        if device.index is None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


def setup(device: str = "auto") -> DistInfo:
    """Join the process group torchrun started (if any) and pick this rank's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    torch_device = resolve_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if torch_device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistInfo(rank, world_size, local_rank, torch_device)


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


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
