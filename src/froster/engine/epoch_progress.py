"""Where an unfinished epoch stands, as a mid-epoch training state keeps it: the steps done,
and each rank's running sums of the logged scalars and the failures of its videos so far
(the epoch's log line averages the sums over the ranks and lists every rank's failures).

The data need nothing more: a rank's order of samples is a pure function of (seed, epoch)
and each sample's clip, scale, crop and flip a function of (seed, epoch, index)
(`data/loader.py`, `data/dataset.py`), so the decoding workers' random states are not saved;
the resumed epoch skips the samples this rank already took (`set_epoch(..., start=)`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..data import FailureLog


def to_cpu(value):
    """`value` with every tensor in it copied to the CPU (dicts, lists and tuples walked)."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: to_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_cpu(v) for v in value)
    return value


def to_device(value, device: torch.device):
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    return value


@dataclass
class EpochProgress:
    step: int = 0                 # steps of the epoch done
    sums: dict = field(default_factory=dict)  # this rank's sums of the step scalars
    failures: FailureLog = field(default_factory=FailureLog)
    seconds: float = 0.0          # training time of the epoch so far

    def rank_part(self) -> dict:
        """This rank's share, as the state keeps it (tensors on the CPU)."""
        return {"sums": to_cpu(dict(self.sums)),
                "failures": [tuple(f) for f in self.failures.failures],
                "fallbacks": [tuple(f) for f in self.failures.fallbacks]}

    def shared(self, world_size: int) -> dict:
        return {"epoch_step": self.step, "seconds": self.seconds, "world_size": world_size}

    @classmethod
    def from_state(cls, progress: dict, ranks: list[dict], rank: int, world_size: int,
                   device: torch.device) -> tuple[EpochProgress, list[str]]:
        """This rank's progress from a saved state, and notes. With the world size it was
        saved with, each rank takes back its own share (the epoch ends bit-identical); with
        another, every rank starts from the mean of the saved sums (the epoch's means stay
        right) and rank 0 holds every saved failure, with a note."""
        notes = []
        saved_world = progress["world_size"]
        if saved_world == world_size:
            part = ranks[rank]
            sums = dict(part["sums"])
            failed, fallbacks = part["failures"], part["fallbacks"]
        else:
            keys = ranks[0]["sums"].keys()
            sums = {k: sum(r["sums"][k] for r in ranks) / saved_world for k in keys}
            failed = [f for r in ranks for f in r["failures"]] if rank == 0 else []
            fallbacks = [f for r in ranks for f in r["fallbacks"]] if rank == 0 else []
            notes.append(f"the state was saved mid-epoch by {saved_world} ranks and resumes "
                         f"on {world_size}: the rest of the epoch takes the same videos, but "
                         "its batches are split otherwise, so the run is not bit-identical "
                         "to one that was not interrupted")
        failures = FailureLog()
        failures.add(failed)
        failures.add_fallbacks(fallbacks)
        return cls(progress["epoch_step"], to_device(sums, device), failures,
                   progress["seconds"]), notes
