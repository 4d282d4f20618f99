"""The text classifier sharded across ranks: under DDP each rank encodes only its share of
the classes and the class embeddings are all-gathered with gradients.

The gather's backward sums each shard's gradient over ranks, and DDP then averages the
parameter gradients, so loss and gradients equal the unsharded computation while each
rank's text-tower cost falls with the number of ranks.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from .model import VideoCLIP


def shard_sizes(num_classes: int, world_size: int) -> list[int]:
    """Balanced contiguous shards; sizes differ by at most one."""
    base, extra = divmod(num_classes, world_size)
    return [base + (rank < extra) for rank in range(world_size)]


def sharding_active(num_classes: int) -> bool:
    return (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
            and num_classes >= dist.get_world_size())


class _GatherWithGrad(torch.autograd.Function):
    """all_gather of equal-size shards; backward sums the gradient over ranks and keeps
    this rank's slice (each rank's loss used every shard)."""

    @staticmethod
    def forward(ctx, local: torch.Tensor) -> torch.Tensor:
        world = dist.get_world_size()
        out = local.new_empty((world * local.shape[0],) + tuple(local.shape[1:]))
        dist.all_gather_into_tensor(out, local.contiguous())
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad.chunk(dist.get_world_size())[dist.get_rank()]


def sharded_encode_classes(student: VideoCLIP, tokens: torch.Tensor) -> torch.Tensor:
    """`student.encode_classes(tokens)` computed by all ranks together: (C, P, L) -> (C, D)."""
    if not sharding_active(tokens.shape[0]):
        return student.encode_classes(tokens)
    rank, world = dist.get_rank(), dist.get_world_size()
    sizes = shard_sizes(tokens.shape[0], world)
    start = sum(sizes[:rank])
    local = student.encode_classes(tokens[start:start + sizes[rank]])
    padded = F.pad(local, (0, 0, 0, max(sizes) - sizes[rank]))  # all_gather needs equal sizes
    gathered = _GatherWithGrad.apply(padded).chunk(world)
    return torch.cat([part[:size] for part, size in zip(gathered, sizes)])
