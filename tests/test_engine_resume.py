"""Checkpoints: an interrupted run resumed with resume=latest ends with exactly the weights
of an uninterrupted one; a crash while writing leaves the previous checkpoint intact."""

import os

import pytest
import torch
from _engine_data import tiny_config, tiny_dataset
from safetensors.torch import load_file

from froster.cli import main
from froster.engine import checkpoints as ckpt
from froster.engine.distributed import DistInfo
from froster.engine.train import Trainer, train


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("data"), per_class=4)  # 12 videos


def settings(data, output_dir, **extra):
    # 12 videos, batch 4 in 2 micro-batches of 2 -> 3 steps per epoch; warm-up inside epoch 1
    values = dict(epochs=3, grad_accum=2, val_list="", average_from_epoch=2,
                  keep_epochs="all") | extra
    return tiny_config(data, output_dir, **values)


class Interrupt(Exception):
    pass


def test_interrupted_run_resumes_exactly(data, tmp_path, monkeypatch):
    train(settings(data, tmp_path / "straight"), DistInfo())

    real_step = Trainer.train_step
    calls = {"n": 0}

    def crashing_step(self, batches):
        calls["n"] += 1
        if calls["n"] == 5:  # the 2nd step of epoch 2: the epoch 1 checkpoint is on disk
            raise Interrupt
        return real_step(self, batches)

    monkeypatch.setattr(Trainer, "train_step", crashing_step)
    with pytest.raises(Interrupt):
        train(settings(data, tmp_path / "resumed"), DistInfo())
    monkeypatch.setattr(Trainer, "train_step", real_step)
    state = torch.load(tmp_path / "resumed" / ckpt.LAST, weights_only=True)
    assert (state["epoch"], state["step"]) == (1, 3)
    train(settings(data, tmp_path / "resumed", resume="latest"), DistInfo())

    a = torch.load(tmp_path / "straight" / ckpt.LAST, weights_only=True)
    b = torch.load(tmp_path / "resumed" / ckpt.LAST, weights_only=True)
    assert (b["epoch"], b["step"]) == (3, 9)
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for pa, pb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert a["rng"]["templates"] == b["rng"]["templates"]
    for name in ("epochs/epoch_003", "average"):
        wa, wb = (load_file(tmp_path / run / name / "model.safetensors")
                  for run in ("straight", "resumed"))
        assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_changes_the_outcome_when_state_is_lost(data, tmp_path):
    """Guard for the test above: without the saved state the result differs."""
    train(settings(data, tmp_path / "a", epochs=2), DistInfo())
    trainer = Trainer(settings(data, tmp_path / "b", epochs=2), DistInfo())
    trainer.run()
    fresh = Trainer(settings(data, tmp_path / "c", epochs=2), DistInfo())
    fresh.epoch, fresh.step = 1, 3  # only the counters, not the weights/optimiser/RNG
    fresh.run()
    a = load_file(tmp_path / "a/epochs/epoch_002/model.safetensors")
    c = load_file(tmp_path / "c/epochs/epoch_002/model.safetensors")
    assert not all(torch.equal(a[k], c[k]) for k in a)
    b = load_file(tmp_path / "b/epochs/epoch_002/model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)  # and two runs are deterministic


def test_resume_latest_without_a_checkpoint_starts_fresh_and_a_bad_path_is_an_error(data, tmp_path):
    assert ckpt.resolve_resume("latest", tmp_path) is None
    assert ckpt.resolve_resume("", tmp_path) is None
    with pytest.raises(FileNotFoundError, match="no training checkpoint"):
        ckpt.resolve_resume(str(tmp_path / "x.pt"), tmp_path)


def test_crash_while_writing_keeps_the_previous_checkpoint(data, tmp_path, monkeypatch):
    cfg = settings(data, tmp_path, epochs=1)
    trainer = Trainer(cfg, DistInfo())
    trainer.run()
    path = tmp_path / ckpt.LAST
    before = torch.load(path, weights_only=True)

    def half_write(obj, f, *a, **k):
        with open(f, "wb") as out:
            out.write(b"PK\x03\x04 truncated")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", half_write)
    trainer.step = 99
    with pytest.raises(OSError, match="disk full"):
        trainer.save()
    monkeypatch.undo()
    after = torch.load(path, weights_only=True)
    assert after["step"] == before["step"] == 3
    assert all(torch.equal(before["model"][k], after["model"][k]) for k in before["model"])
    assert [p for p in os.listdir(path.parent) if p != "last.pt"] == []  # no temporary left


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "last.pt"
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a readable froster training checkpoint"):
        ckpt.load_training_state(bad)


def test_export_from_a_training_checkpoint(data, tmp_path, capsys):
    train(settings(data, tmp_path / "run", epochs=1), DistInfo())
    assert main(["export", str(tmp_path / "run"), str(tmp_path / "student")]) == 0
    exported = load_file(tmp_path / "student/model.safetensors")
    epoch = load_file(tmp_path / "run/epochs/epoch_001/model.safetensors")
    assert exported.keys() == epoch.keys() and all(torch.equal(exported[k], epoch[k]) for k in epoch)
