"""No host-device sync in the training step (issue 21): every read of a tensor's value on the
host (`item`, `float`, `int`, `bool`, `tolist`, `numpy`, formatting) and every
data-dependent op (`torch.unique`, `nonzero`) that froster's own code makes during the step
is counted. On a GPU each would wait for the device; on CPU the count shows them all. The
loader's own work (froster/data, run here in the main process) is not a step's."""

import sys

import pytest
import torch
from _engine_data import tiny_config, tiny_dataset

from froster.engine.distributed import DistInfo
from froster.engine.train import Trainer

READS = ("item", "__float__", "__int__", "__bool__", "__index__", "tolist", "numpy",
         "__format__", "nonzero")


@pytest.fixture
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture
def host_reads(monkeypatch):
    """[(file:line, what)] of the host reads froster's code (outside froster/data) makes."""
    seen = []

    def counted(name, original):
        def wrapper(*args, **kwargs):
            frame = sys._getframe(1)
            path = frame.f_code.co_filename.replace("\\", "/")
            if "/froster/" in path and "/froster/data/" not in path and "/tests/" not in path:
                seen.append((f"{path.rsplit('/froster/', 1)[1]}:{frame.f_lineno}", name))
            return original(*args, **kwargs)
        return wrapper

    for name in READS:
        monkeypatch.setattr(torch.Tensor, name, counted(name, getattr(torch.Tensor, name)))
    monkeypatch.setattr(torch, "unique", counted("torch.unique", torch.unique))
    return seen


def test_a_training_step_reads_nothing_back_from_the_device(data, tmp_path, host_reads):
    cfg = tiny_config(data, tmp_path / "run", epochs=1, average_from_epoch=0, val_list="",
                      num_workers=0, grad_accum=2, batch_size=4)
    trainer = Trainer(cfg, DistInfo())
    groups = list(trainer.epoch_batches(0, __import__("froster.data").data.FailureLog()))
    trainer.train_step(groups[0])  # the first step makes its text plans (once per template set)
    host_reads.clear()
    for group in groups[1:3] * 3:
        scalars = trainer.train_step(group)
    assert host_reads == []
    assert all(torch.is_tensor(v) and v.dtype == torch.float64 for k, v in scalars.items() if k != "lr")


def test_an_epoch_reads_the_device_once_per_log_step(data, tmp_path, host_reads):
    cfg = tiny_config(data, tmp_path / "run", epochs=1, average_from_epoch=0, val_list="",
                      num_workers=0, batch_size=2, log_every=2, progress=False)
    trainer = Trainer(cfg, DistInfo())
    trainer.train_step(next(iter(trainer.epoch_batches(0, __import__("froster.data").data.FailureLog()))))
    trainer.step = 0
    host_reads.clear()
    trainer.train_epoch()
    steps = trainer.steps_per_epoch
    assert steps >= 4
    # one read per log step (the logged scalars in one transfer) and one for the epoch's means
    assert len(host_reads) <= steps // 2 + 1, host_reads
