"""Preemption-safe training in one process: a state written in the middle of an epoch (by
steps, by minutes, at a SIGTERM/SIGUSR1) resumes at the exact next batch, bit-identical to
an uninterrupted run; a second run into a folder holding a state refuses instead of
overwriting it; resume=auto; a write that fails half-way keeps the previous state; states
saved on more GPUs or with another precision's scaler resume with a note."""

import json
import os
import random
import signal
import stat
import sys
from pathlib import Path

import pytest
import torch
from _compare_runs import assert_same_run, logged
from _engine_data import TINY, tiny_config, tiny_dataset

from froster import files
from froster.cli import main
from froster.config import load_config
from froster.engine import checkpoints as ckpt
from froster.engine.distributed import DistInfo
from froster.engine.epoch_progress import EpochProgress
from froster.engine.logger import RunLogger
from froster.engine.save_points import SavePoints, requeue_job
from froster.engine.train import Trainer, train
from froster.errors import FrosterError

pytestmark = pytest.mark.usefixtures("one_thread")

# 12 videos, 2 per step -> 6 steps per epoch; the average runs from epoch 1
SETTINGS = {"epochs": 2, "batch_size": 2, "val_list": "", "average_from_epoch": 1}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("data"), per_class=4)


@pytest.fixture(scope="module")
def straight(data, tmp_path_factory):
    """The uninterrupted run every resumed one must equal."""
    out = tmp_path_factory.mktemp("straight")
    torch.set_num_threads(1)
    train(tiny_config(data, out, **SETTINGS), DistInfo())
    return out


def cli_args(data, out, **extra):
    values = TINY | data | SETTINGS | {"output_dir": out} | extra
    return ["train", *[f"{k}={v}" for k, v in values.items()]]


class Crash(Exception):
    pass


def crash_at(monkeypatch, step: int):
    """Make optimiser step `step` (1-based over the run) raise, as a killed process stops."""
    real = Trainer.train_step

    def step_or_crash(self, groups):
        if self.step + 1 == step:
            raise Crash
        return real(self, groups)
    monkeypatch.setattr(Trainer, "train_step", step_or_crash)


def test_a_mid_epoch_state_resumes_at_the_next_batch_bit_identically(data, straight, tmp_path,
                                                                     monkeypatch):
    crash_at(monkeypatch, 10)  # step 4 of epoch 2; states saved after steps 2, 4, 6, 8
    with pytest.raises(Crash):
        train(tiny_config(data, tmp_path, **SETTINGS, save_every_steps=2), DistInfo())
    monkeypatch.undo()
    state = torch.load(tmp_path / ckpt.LAST, weights_only=True)
    assert (state["epoch"], state["step"]) == (1, 8)
    assert state["progress"]["epoch_step"] == 2 and state["progress"]["world_size"] == 1
    assert state["ranks"][0]["sums"]["loss"] > 0 and state["average"]["tags"] == [1]
    # the lost step 9 was logged; the resumed run logs it once
    assert [r["step"] for r in logged(tmp_path) if r["kind"] == "train"][-1] == 9
    train(tiny_config(data, tmp_path, **SETTINGS, save_every_steps=2, resume="latest"), DistInfo())
    assert_same_run(straight, tmp_path)


@pytest.mark.slow
def test_the_resume_depends_on_every_part_of_the_mid_epoch_state(data, straight, tmp_path,
                                                                 monkeypatch):
    """Guard for the test above: a state that forgets where the epoch stood (no sample
    offset, lost sums) ends elsewhere."""
    crash_at(monkeypatch, 10)
    with pytest.raises(Crash):
        train(tiny_config(data, tmp_path, **SETTINGS, save_every_steps=2), DistInfo())
    monkeypatch.undo()
    path = tmp_path / ckpt.LAST
    state = torch.load(path, weights_only=True)
    for part in state["ranks"]:
        part["sums"] = {}
    torch.save(state, path)
    train(tiny_config(data, tmp_path, **SETTINGS, resume="latest"), DistInfo())
    epochs = [r for r in logged(tmp_path) if r["kind"] == "epoch"]
    assert epochs[-1]["loss"] != [r for r in logged(straight) if r["kind"] == "epoch"][-1]["loss"]

    state["progress"]["epoch_step"] = 0  # no sample offset: the epoch starts over
    torch.save(state, path)
    (tmp_path / "log.jsonl").unlink()
    train(tiny_config(data, tmp_path, **SETTINGS, resume="latest"), DistInfo())
    a = torch.load(straight / ckpt.LAST, weights_only=True)["model"]
    b = torch.load(path, weights_only=True)["model"]
    assert not all(torch.equal(a[k], b[k]) for k in a)


def test_sigterm_saves_stops_with_exit_0_and_requeues_then_resume_auto_continues(
        data, straight, tmp_path, monkeypatch, capsys):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "scontrol"  # what a requeue asks SLURM
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'scontrol.txt'}\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "777")

    real = Trainer.train_step

    def signalled(self, groups):
        if self.step + 1 == 4:  # arrives during step 4 of epoch 1
            os.kill(os.getpid(), signal.SIGTERM)
        return real(self, groups)
    monkeypatch.setattr(Trainer, "train_step", signalled)
    run = tmp_path / "run"
    assert main(cli_args(data, run, requeue="true")) == 0
    out, err = capsys.readouterr()
    assert "stopped by SIGTERM at step 4" in out and "resume=auto" in out
    assert "SIGTERM received" in err
    assert (tmp_path / "scontrol.txt").read_text().split() == ["requeue", "777"]
    state = torch.load(run / ckpt.LAST, weights_only=True)
    assert (state["epoch"], state["step"], state["progress"]["epoch_step"]) == (0, 4, 4)
    assert not (run / "average").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers put back

    monkeypatch.setattr(Trainer, "train_step", real)
    assert main(cli_args(data, run, resume="auto")) == 0
    assert_same_run(straight, run)


def test_a_second_run_into_a_folder_with_a_state_refuses_and_keeps_it(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(cli_args(data, run, epochs=1)) == 0
    before = (run / ckpt.LAST).read_bytes()
    capsys.readouterr()
    assert main(cli_args(data, run, epochs=1)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("froster train: error: ") and "\n" not in err
    for hint in ("resume=latest", "resume=auto", "overwrite=true"):
        assert hint in err
    assert (run / ckpt.LAST).read_bytes() == before
    # another run's state is not resumed into this folder either
    other = tmp_path / "other"
    assert main(cli_args(data, other, epochs=1)) == 0
    assert main(cli_args(data, run, epochs=1, resume=str(other / ckpt.LAST))) == 2
    assert (run / ckpt.LAST).read_bytes() == before
    # overwrite=true starts over: one fresh log, the old run's files gone
    assert main(cli_args(data, run, epochs=1, overwrite="true", average_from_epoch=0)) == 0
    kinds = [json.loads(x)["kind"] for x in (run / "log.jsonl").read_text().splitlines()]
    assert kinds.count("start") == 1 and kinds.count("end") == 1
    assert not (run / "average").exists()
    assert "overwrite: false" in (run / "config.yaml").read_text()  # acts once


@pytest.mark.slow
def test_resume_auto_starts_in_an_empty_folder_and_resumes_a_filled_one(data, straight, tmp_path):
    run = tmp_path / "run"
    train(tiny_config(data, run, **SETTINGS | {"epochs": 1}, resume="auto"), DistInfo())
    assert torch.load(run / ckpt.LAST, weights_only=True)["step"] == 6
    train(tiny_config(data, run, **SETTINGS, resume="auto"), DistInfo())
    kinds = [json.loads(x)["kind"] for x in (run / "log.jsonl").read_text().splitlines()]
    assert kinds.count("start") == 1 and kinds.count("resume") == 1
    # epochs=1 then 2 is another schedule (total steps) than 2 from the start: only the
    # counters are compared here
    assert torch.load(run / ckpt.LAST, weights_only=True)["step"] == 12


@pytest.mark.slow
def test_a_crash_while_writing_a_mid_epoch_state_keeps_the_previous_one(data, straight, tmp_path,
                                                                        monkeypatch):
    real_save = torch.save
    calls = {"n": 0}

    def half_written(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second state (after step 4): some bytes, then the disk fails
            with open(f, "wb") as out:
                out.write(b"PK\x03\x04 half a checkpoint")
            raise OSError("No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", half_written)
    with pytest.raises(OSError, match="No space left"):
        train(tiny_config(data, tmp_path, **SETTINGS, save_every_steps=2), DistInfo())
    monkeypatch.undo()
    assert os.listdir(tmp_path / "checkpoints") == ["last.pt"]  # no temporary file left
    state = ckpt.load_training_state(tmp_path / ckpt.LAST)
    assert (state["step"], state["progress"]["epoch_step"]) == (2, 2)
    train(tiny_config(data, tmp_path, **SETTINGS, save_every_steps=2, resume="latest"), DistInfo())
    assert_same_run(straight, tmp_path)


def test_save_every_minutes_saves_by_rank_0s_clock():
    now = [0.0]
    points = SavePoints(DistInfo(), every_minutes=0.5, clock=lambda: now[0])
    saves = []
    for step in range(1, 8):
        now[0] = step * 10.0  # 10 s per step: due after 30 s
        assert not points.boundary(step, lambda s=step: saves.append(s))
    assert saves == [3, 6]
    steps = SavePoints(DistInfo(), every_steps=3)
    done = [s for s in range(1, 10) if not steps.boundary(s, lambda: None) and s % 3 == 0]
    assert done == [3, 6, 9]
    off = SavePoints(DistInfo(), every_minutes=0)
    assert not any(off.boundary(s, lambda: pytest.fail("saved")) for s in range(5))


@pytest.mark.parametrize("name", ["SIGTERM", "SIGUSR1"])
def test_a_signal_stops_at_the_next_boundary_with_a_save(name):
    points = SavePoints(DistInfo())
    saves = []
    before = signal.getsignal(getattr(signal, name))
    with points.catching_signals():
        assert not points.boundary(1, lambda: saves.append(1))
        os.kill(os.getpid(), getattr(signal, name))
        assert points.boundary(2, lambda: saves.append(2))
    assert saves == [2] and points.stopping == name
    assert signal.getsignal(getattr(signal, name)) is before


def test_requeue_says_what_it_could_not_do(tmp_path, monkeypatch):
    assert "not a SLURM job" in requeue_job({})
    monkeypatch.setenv("PATH", str(tmp_path))  # no scontrol there
    assert "scontrol is not on PATH: job 5 not requeued" in requeue_job({"SLURM_JOB_ID": "5"})


def test_a_state_of_more_gpus_restores_on_fewer_with_a_note():
    rng = random.Random(3)
    state = ckpt.rng_state(rng)
    state["cuda"] = [torch.zeros(16, dtype=torch.uint8), torch.ones(16, dtype=torch.uint8)]
    expected = torch.rand(3)  # what comes after the saved torch state
    rng.random()
    notes = ckpt.restore_rng(state, rng)
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if visible < 2:
        assert len(notes) == 1 and f"of 2 devices and this process sees {visible}" in notes[0]
    assert torch.equal(torch.rand(3), expected)
    assert rng.getstate() == state["templates"]


def test_a_state_saved_with_another_precisions_scaler_resumes_with_a_note():
    fp16 = torch.amp.GradScaler("cpu", enabled=True, init_scale=1024.0)
    disabled = torch.amp.GradScaler("cpu", enabled=False)
    notes = ckpt.load_scaler(fp16, disabled.state_dict())  # bf16 -> fp16
    assert len(notes) == 1 and "fresh" in notes[0] and fp16.get_scale() == 1024.0
    saved = torch.amp.GradScaler("cpu", enabled=True, init_scale=8.0)
    assert ckpt.load_scaler(disabled, saved.state_dict())[0].startswith("the state's fp16")
    assert ckpt.load_scaler(fp16, saved.state_dict()) == [] and fp16.get_scale() == 8.0
    with pytest.raises(RuntimeError):  # what torch alone does with the first case
        torch.amp.GradScaler("cpu", enabled=True).load_state_dict(disabled.state_dict())


def test_the_trainer_resumes_a_state_of_another_scaler_and_more_gpus(data, tmp_path, capsys):
    run = tmp_path / "run"
    train(tiny_config(data, run, **SETTINGS | {"epochs": 1}), DistInfo())
    path = run / ckpt.LAST
    state = torch.load(path, weights_only=True)
    state["rng"]["cuda"] = [torch.zeros(16, dtype=torch.uint8)] * 2
    for part in state["ranks"]:
        part["rng"]["cuda"] = [torch.zeros(16, dtype=torch.uint8)] * 2
    torch.save(state, path)
    trainer = Trainer(tiny_config(data, run, **SETTINGS, resume="latest"), DistInfo())
    trainer.scaler = torch.amp.GradScaler("cpu", enabled=True)  # as precision=fp16 makes one
    capsys.readouterr()
    trainer.resume(path)
    err = capsys.readouterr().err
    assert "fresh one" in err
    if not torch.cuda.is_available():
        assert "CUDA random states of 2 devices" in err
    assert (trainer.epoch, trainer.step) == (1, 6)


def test_mid_epoch_progress_on_another_world_size_keeps_the_epoch_means():
    ranks = [{"sums": {"loss": 2.0}, "failures": [("a.mp4", "bad")], "fallbacks": []},
             {"sums": {"loss": 4.0}, "failures": [("b.mp4", "bad")], "fallbacks": [("c", "r")]}]
    progress = {"epoch_step": 3, "seconds": 1.5, "world_size": 2}
    same, notes = EpochProgress.from_state(progress, ranks, 1, 2, torch.device("cpu"))
    assert (same.step, same.sums, same.failures.paths, notes) == (3, {"loss": 4.0}, ["b.mp4"], [])
    one, notes = EpochProgress.from_state(progress, ranks, 0, 1, torch.device("cpu"))
    assert one.sums == {"loss": 3.0} and one.failures.paths == ["a.mp4", "b.mp4"]
    assert one.failures.fallback_paths == ["c"] and "not bit-identical" in notes[0]


def test_the_log_of_a_resumed_run_drops_what_came_after_its_state(tmp_path):
    logger = RunLogger(tmp_path, tensorboard=False)
    for step in (1, 2, 3):
        logger.log("train", step, loss=float(step))
    logger.log("eval", 3, top1=1.0)
    logger.log("train", 4, loss=4.0)
    logger.log("end", 4)
    with open(tmp_path / "log.jsonl", "a") as f:
        f.write('{"kind": "train", "st')  # a line cut by kill -9
    assert RunLogger(tmp_path, tensorboard=False).rewind(3) == 3
    kept = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["step"]) for r in kept] == [("train", 1), ("train", 2), ("train", 3),
                                                      ("eval", 3)]


def test_atomic_writes_reach_the_disk_before_and_after_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        kind = "folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        events.append(f"fsync {kind}")
        real_fsync(fd)

    def replace(a, b):
        events.append("rename")
        real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "x.bin"
    files.atomic_write(target, lambda p: Path(p).write_bytes(b"abc"))
    assert events == ["fsync file", "rename", "fsync folder"]
    assert target.read_bytes() == b"abc"


def test_the_log_reaches_the_disk_before_each_state(data, tmp_path, monkeypatch):
    """A state must never cover steps whose log lines a machine crash could still lose."""
    trainer = Trainer(tiny_config(data, tmp_path / "run", **SETTINGS), DistInfo())
    trainer.logger.log("train", 1, loss=1.0)
    events = []
    real_fsync, real_save = files.fsync_path, ckpt.save_training_state
    monkeypatch.setattr(files, "fsync_path",
                        lambda path: (events.append(Path(path).name), real_fsync(path)))
    monkeypatch.setattr(ckpt, "save_training_state",
                        lambda *a, **k: (events.append("state"), real_save(*a, **k)))
    trainer.save_state(EpochProgress(step=1))
    assert "log.jsonl" in events and events.index("log.jsonl") < events.index("state")


def test_export_of_a_mid_epoch_state_says_where_in_the_epoch_it_is(data, tmp_path, capsys):
    run = tmp_path / "run"
    Trainer(tiny_config(data, run, **SETTINGS), DistInfo()).save_state(EpochProgress(step=2))
    capsys.readouterr()
    assert main(["export", str(run), str(tmp_path / "student")]) == 0
    assert "at step 2 of epoch 1 (a mid-epoch state)" in capsys.readouterr().out


def test_run_control_keys_are_checked():
    with pytest.raises(FrosterError, match="give one of them"):
        load_config(overrides=["overwrite=true", "resume=auto"])
    with pytest.raises(FrosterError, match="save_every_minutes must not be negative"):
        load_config(overrides=["save_every_minutes=-1"])
    with pytest.raises(FrosterError, match="dist_timeout must be positive"):
        load_config(overrides=["dist_timeout=0"])
    assert load_config().save_every_minutes == 30.0


if sys.platform != "linux":  # signals and fsync of folders as on the clusters
    pytestmark = [pytestmark, pytest.mark.skip("POSIX signals")]
