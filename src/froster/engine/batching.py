"""How a global batch is split over ranks and micro-steps, and what to say when one
micro-step does not fit in the device's memory.

`batch_size` is global, as the reference's (64 clips for K400 over 8 GPUs). Each rank runs
`device_batch_size` clips per forward pass and accumulates gradients over `grad_accum`
passes, so that world_size x grad_accum x device_batch_size = batch_size. One of
device_batch_size and grad_accum is enough; the other follows."""

from __future__ import annotations

import torch

from ..errors import FrosterError


def split_batch(batch_size: int, world_size: int, grad_accum: int = 1,
                device_batch_size: int | None = None) -> tuple[int, int]:
    """(clips per rank per micro-step, micro-steps per optimiser step)."""
    if device_batch_size is None:
        micro, rest = divmod(batch_size, world_size * grad_accum)
        if rest or micro == 0:
            raise FrosterError(f"batch_size={batch_size} (global) must be a multiple of "
                               f"world_size ({world_size}) x grad_accum ({grad_accum})")
        return micro, grad_accum
    accum, rest = divmod(batch_size, world_size * device_batch_size)
    if rest or accum == 0:
        raise FrosterError(f"batch_size={batch_size} (global) must be a multiple of world_size "
                           f"({world_size}) x device_batch_size ({device_batch_size})")
    if grad_accum not in (1, accum):
        raise FrosterError(f"grad_accum={grad_accum} contradicts device_batch_size="
                           f"{device_batch_size}: batch_size {batch_size} over {world_size} "
                           f"rank(s) gives grad_accum={accum}; set only one of the two")
    return device_batch_size, accum


def out_of_memory(err: BaseException, device: torch.device, micro: int, accum: int) -> FrosterError:
    """The one line to print when a training step runs out of device memory."""
    need = ""
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**30
        total = torch.cuda.get_device_properties(device).total_memory / 2**30
        need = f" (the step reached {peak:.1f} GiB of {total:.1f} GiB)"
    return FrosterError(
        f"out of memory in a training step of {micro} clips per device{need}: lower "
        f"device_batch_size (now {micro}; grad_accum={accum} grows to keep batch_size), or set "
        f"grad_checkpointing=true, or shard_text=true with several GPUs")
