"""Runs that survive a cluster, as real processes (gloo on CPU): a rank that fails ends
the run within a minute with its traceback shown; srun's tasks (a simulated SLURM
environment, no torchrun) train the weights torchrun's ranks do; kill -9 after a
time-triggered mid-epoch save and SIGTERM at a mid-epoch step both resume bit-identically
to an uninterrupted run, on 2 ranks and in one process."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _compare_runs import assert_same_run, logged
from _engine_data import TINY, tiny_config, tiny_dataset

from froster.engine import checkpoints as ckpt
from froster.engine.distributed import DistInfo
from froster.engine.train import train

pytestmark = pytest.mark.slow

TESTS = Path(__file__).parent
RUNNER = TESTS / "_cluster_run.py"
# 12 videos, 2 per step (1 per rank on 2 ranks) -> 6 steps per epoch
SETTINGS = {"epochs": 2, "batch_size": 2, "val_list": "", "average_from_epoch": 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(fault: str | None = None, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "TORCHELASTIC_")) and k not in (
               "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    src = str(TESTS.parent / "src")
    env |= {"OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(
        [src, str(TESTS), env.get("PYTHONPATH", "")])}
    if fault:
        env["FROSTER_TEST_FAULT"] = fault
    return env | extra


def arguments(data, out, **extra) -> list[str]:
    values = TINY | data | SETTINGS | {"output_dir": out} | extra
    return ["train", *[f"{k}={v}" for k, v in values.items()]]


def torchrun(data, out, fault=None, timeout=180, **extra) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
               "--nproc_per_node", "2", "--rdzv_backend", "c10d",
               "--rdzv_endpoint", f"127.0.0.1:{free_port()}", str(RUNNER),
               *arguments(data, out, **extra)]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env=environment(fault), check=False)


def srun_tasks(data, out, **extra) -> list[subprocess.CompletedProcess]:
    """Two tasks as `srun --ntasks 2` starts them on one node: SLURM's variables only."""
    port = free_port()
    tasks = []
    for rank in (0, 1):
        slurm = {"SLURM_PROCID": str(rank), "SLURM_LOCALID": str(rank), "SLURM_NTASKS": "2",
                 "SLURM_NODEID": "0", "SLURM_TASKS_PER_NODE": "2", "SLURM_JOB_ID": "4242",
                 "SLURM_JOB_NODELIST": "localhost", "MASTER_PORT": str(port)}
        tasks.append(subprocess.Popen(
            [sys.executable, str(RUNNER), *arguments(data, out, **extra)], text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment(**slurm)))
    results = []
    for task in tasks:
        stdout, stderr = task.communicate(timeout=180)
        results.append(subprocess.CompletedProcess(task.args, task.returncode, stdout, stderr))
    return results


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("data"), per_class=4)


@pytest.fixture(scope="module")
def two_ranks(data, tmp_path_factory):
    """The uninterrupted 2-rank run (torchrun) the others must equal."""
    out = tmp_path_factory.mktemp("two_ranks")
    done = torchrun(data, out)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_a_failing_rank_ends_the_run_within_a_minute_with_its_traceback(data, tmp_path):
    start = time.monotonic()
    done = torchrun(data, tmp_path, fault="raise:1:3", epochs=3, timeout=120)
    elapsed = time.monotonic() - start
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert elapsed < 60, f"the run took {elapsed:.0f} s to end"
    assert "Traceback" in output and "RuntimeError: injected failure on rank 1 at step 3" in output
    assert "rank 1: failed; leaving the process group" in output
    # torchrun's summary names rank 1 and shows its traceback from the error file (@record)
    root = output[output.index("Root Cause"):]
    assert "rank      : 1" in root and "error_file" in root and "injected failure" in root
    assert not (tmp_path / "average").exists()


def test_srun_tasks_train_the_weights_torchrun_does(data, two_ranks, tmp_path):
    tasks = srun_tasks(data, tmp_path)
    for task in tasks:
        assert task.returncode == 0, task.stderr[-3000:]
    assert "run: " in tasks[0].stdout and tasks[1].stdout == ""  # rank 0 reports
    assert_same_run(two_ranks, tmp_path)
    record = json.loads((tmp_path / "record.json").read_text())
    assert '"world_size": 2' in json.dumps(record)


def test_kill_9_after_a_timed_save_resumes_bit_identically_on_two_ranks(data, two_ranks, tmp_path):
    # a save is due after every step (0.00001 min); rank 0 is killed as step 10 starts
    killed = torchrun(data, tmp_path, fault="kill:0:10", save_every_minutes=0.00001)
    assert killed.returncode != 0
    state = torch.load(tmp_path / ckpt.LAST, weights_only=True)
    assert state["progress"] is not None and state["epoch"] == 1 and 7 <= state["step"] <= 9
    assert len(state["ranks"]) == 2 and state["progress"]["world_size"] == 2
    done = torchrun(data, tmp_path, resume="latest")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"step {state['step'] - 6}/6 of epoch 2" in done.stderr
    assert_same_run(two_ranks, tmp_path)


def test_sigterm_saves_on_every_rank_exits_0_and_resumes_bit_identically(data, two_ranks,
                                                                         tmp_path):
    # rank 1 gets SIGTERM during step 4; the ranks agree at the next boundary: step 5
    stopped = torchrun(data, tmp_path, fault="term:1:4")
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    assert "rank 1: SIGTERM received" in stopped.stderr
    assert "stopped by SIGTERM at step 5" in stopped.stdout
    state = torch.load(tmp_path / ckpt.LAST, weights_only=True)
    assert (state["epoch"], state["step"], state["progress"]["epoch_step"]) == (0, 5, 5)
    assert [r["step"] for r in logged(tmp_path) if r["kind"] == "train"] == [1, 2, 3, 4, 5]
    done = torchrun(data, tmp_path, resume="auto")
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_run(two_ranks, tmp_path)


@pytest.mark.usefixtures("one_thread")
def test_kill_9_after_a_timed_save_resumes_bit_identically_in_one_process(data, tmp_path):
    run = tmp_path / "run"
    killed = subprocess.run([sys.executable, str(RUNNER),  # a save due after every step
                             *arguments(data, run, save_every_minutes=0.00001)],
                            capture_output=True, text=True, timeout=180,
                            env=environment("kill:0:10"), check=False)
    assert killed.returncode == -9, killed.stderr[-3000:]
    state = torch.load(run / ckpt.LAST, weights_only=True)
    assert (state["epoch"], state["step"], state["progress"]["epoch_step"]) == (1, 9, 3)
    # the uninterrupted run and the resumed one in this process (one thread, as the runner)
    train(tiny_config(data, tmp_path / "straight", **SETTINGS), DistInfo())
    train(tiny_config(data, run, **SETTINGS, resume="latest"), DistInfo())
    assert_same_run(tmp_path / "straight", run)
