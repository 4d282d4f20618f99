"""The GPU defects of issue 21 that a CPU can show: skipped fp16 steps, the per-device batch,
the out-of-memory message, DDP's options and the no_sync path, the sharding default."""

import json
import os
import socket

import pytest
import torch
import torch.distributed as dist
from _engine_data import tiny_config, tiny_dataset, without_key_bias

from froster.engine.batching import split_batch
from froster.engine.distributed import DistInfo
from froster.engine.logger import RunLogger
from froster.engine.scalars import StepSums, step_record
from froster.engine.train import Trainer
from froster.errors import FrosterError


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("data"))


def test_skipped_fp16_steps_are_counted_and_kept_out_of_the_grad_norm(tmp_path):
    """A step whose gradients are inf/nan (the scaler skips it) has no norm: the epoch's
    grad_norm is the mean of the other steps, the count is logged, log.jsonl stays JSON."""
    sums = StepSums()
    norms = [2.0, float("inf"), 4.0, float("nan")]
    for norm in norms:
        norm = torch.tensor(norm)
        finite = torch.isfinite(norm)
        sums.add({"loss": torch.tensor(1.0, dtype=torch.float64), "skipped": (~finite).double(),
                  "grad_norm": torch.where(finite, norm.double(), 0.0), "lr": 0.1})
    means = sums.means(len(norms), torch.device("cpu"))
    assert means["skipped_steps"] == 2 and means["grad_norm"] == pytest.approx(3.0)
    assert means["loss"] == pytest.approx(1.0) and means["lr"] == pytest.approx(0.1)
    record = step_record({"loss": 1.5, "grad_norm": 0.0, "skipped": 1.0, "lr": 0.1})
    assert record == {"loss": 1.5, "grad_norm": None, "skipped": True, "lr": 0.1}
    logger = RunLogger(tmp_path, tensorboard=False)
    logger.log("train", 3, loss=float("inf"), grad_norm=float("nan"), parts=[1.0, float("-inf")])
    line = (tmp_path / "log.jsonl").read_text()
    assert "Infinity" not in line and "NaN" not in line
    assert json.loads(line) | {"time": 0} == {"kind": "train", "time": 0, "step": 3, "loss": None,
                                              "grad_norm": None, "parts": [1.0, None]}


def test_the_global_batch_is_split_by_the_device_batch():
    assert split_batch(64, 8) == (8, 1)                       # the reference: 8 clips per GPU
    assert split_batch(64, 1, device_batch_size=8) == (8, 8)  # one GPU: 8 micro-steps
    assert split_batch(64, 2, grad_accum=4) == (8, 4)
    assert split_batch(64, 2, grad_accum=4, device_batch_size=8) == (8, 4)
    with pytest.raises(FrosterError, match="multiple of world_size \\(3\\) x device_batch_size"):
        split_batch(64, 3, device_batch_size=8)
    with pytest.raises(FrosterError, match="grad_accum=2 contradicts device_batch_size=8"):
        split_batch(64, 1, grad_accum=2, device_batch_size=8)


def test_device_batch_size_trains_as_the_whole_batch(data, tmp_path):
    """Accumulating 2 x 2 clips is the same step as 4 at once (the README's one-GPU recipe)."""
    states = []
    for name, extra in (("whole", {}), ("split", {"device_batch_size": 2})):
        cfg = tiny_config(data, tmp_path / name, epochs=1, average_from_epoch=0, val_list="",
                          batch_size=4, **extra)
        trainer = Trainer(cfg, DistInfo())
        assert (trainer.micro_batch, trainer.grad_accum) == ((4, 1) if not extra else (2, 2))
        trainer.run()
        states.append(trainer.model.state_dict())
    for key in states[0]:
        torch.testing.assert_close(without_key_bias(key, states[0][key]),
                                   without_key_bias(key, states[1][key]), rtol=1e-4, atol=1e-5)


def test_out_of_memory_is_one_line_naming_the_fixes(data, tmp_path, monkeypatch):
    cfg = tiny_config(data, tmp_path / "run", epochs=1, average_from_epoch=0, val_list="",
                      batch_size=4, device_batch_size=2)
    trainer = Trainer(cfg, DistInfo())

    def too_big(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(trainer.model, "forward", too_big)
    with pytest.raises(FrosterError) as err:
        trainer.train_epoch()
    message = str(err.value)
    assert "\n" not in message and "2 clips per device" in message
    for fix in ("device_batch_size", "grad_checkpointing=true", "shard_text=true"):
        assert fix in message


def _ddp_worker(rank, port, data, out_dir, shard):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        cfg = tiny_config(data, f"{out_dir}/ddp", epochs=1, average_from_epoch=0, val_list="",
                          batch_size=4, grad_accum=2, **({"shard_text": True} if shard else {}))
        trainer = Trainer(cfg, DistInfo())
        ddp = trainer.ddp
        facts = {"ddp": ddp is not None, "bucket_view": ddp.gradient_as_bucket_view,
                 "broadcast": ddp.broadcast_buffers, "sharding": trainer.model.text_sharding}
        trainer.run()
        torch.save({"facts": facts, "state": trainer.model.state_dict()}, f"{out_dir}/ddp.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_a_one_process_group_trains_through_ddp_no_sync_as_without(data, tmp_path):
    """grad_accum=2 under DDP takes the no_sync path for the first micro-step; one process
    gives the weights of a run without a process group."""
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(port, data, str(tmp_path), False), nprocs=1, join=True)
    saved = torch.load(tmp_path / "ddp.pt")
    assert saved["facts"] == {"ddp": True, "bucket_view": True, "broadcast": False,
                              "sharding": False}  # one rank: nothing to shard
    cfg = tiny_config(data, tmp_path / "plain", epochs=1, average_from_epoch=0, val_list="",
                      batch_size=4, grad_accum=2)
    plain = Trainer(cfg, DistInfo())
    assert plain.ddp is None
    plain.run()
    for key, value in plain.model.state_dict().items():
        torch.testing.assert_close(without_key_bias(key, saved["state"][key]),
                                   without_key_bias(key, value), rtol=1e-5, atol=1e-6)


def test_text_sharding_is_the_default_with_several_ranks(data, tmp_path):
    cfg = tiny_config(data, tmp_path / "run", val_list="")
    assert Trainer(cfg, DistInfo()).model.text_sharding is False
    assert Trainer(cfg, DistInfo(rank=0, world_size=2)).model.text_sharding is True
    off = tiny_config(data, tmp_path / "run2", val_list="", shard_text=False, batch_size=4)
    assert Trainer(off, DistInfo(rank=0, world_size=2)).model.text_sharding is False
