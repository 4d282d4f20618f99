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


def local_share(num_classes: int) -> slice | None:
    """This rank's contiguous share of the classes, or None when sharding is not active."""
    if not sharding_active(num_classes):
        return None
    sizes = shard_sizes(num_classes, dist.get_world_size())
    start = sum(sizes[:dist.get_rank()])
    return slice(start, start + sizes[dist.get_rank()])


def gather_shares(local: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Every rank's (share, D) class embeddings as the (C, D) classifier, with gradients."""
    world = dist.get_world_size()
    sizes = shard_sizes(num_classes, world)
    padded = F.pad(local, (0, 0, 0, max(sizes) - local.shape[0]))  # all_gather needs equal sizes
    gathered = _GatherWithGrad.apply(padded).chunk(world)
    return torch.cat([part[:size] for part, size in zip(gathered, sizes)])
