"""Where a process stands in a multi-process run: SLURM's compact node lists, srun's task
variables, torchrun's winning over them, and one-line refusals naming what to set."""

import pytest

from froster.engine.launch import (
    DEFAULT_PORT,
    PORT_BASE,
    expand_nodelist,
    first_host,
    from_environment,
    tasks_per_node,
)
from froster.errors import FrosterError


@pytest.mark.parametrize("text, hosts", [
    ("node01", ["node01"]),
    ("node[01-04,07],other", ["node01", "node02", "node03", "node04", "node07", "other"]),
    ("gpu-a[8-10]-ib", ["gpu-a8-ib", "gpu-a9-ib", "gpu-a10-ib"]),
    ("n[098-101]", ["n098", "n099", "n100", "n101"]),
    ("rack[1-2]-n[1,3]", ["rack1-n1", "rack1-n3", "rack2-n1", "rack2-n3"]),
    ("a,b[2],c[5-6]", ["a", "b2", "c5", "c6"]),
    ("10.0.0.[5-6]", ["10.0.0.5", "10.0.0.6"]),
])
def test_nodelists_expand_as_scontrol_show_hostnames(text, hosts):
    assert expand_nodelist(text) == hosts
    assert first_host(text) == hosts[0]


@pytest.mark.parametrize("text", ["node[01-03", "node]1", "node[3-1]", "node[a-b]", ""])
def test_a_bad_nodelist_says_to_set_master_addr(text):
    with pytest.raises(FrosterError, match="MASTER_ADDR"):
        first_host(text)


def test_tasks_per_node():
    assert tasks_per_node("4(x2),2") == [4, 4, 2]
    assert tasks_per_node("8") == [8]
    with pytest.raises(FrosterError, match="tasks per node"):
        tasks_per_node("4(2)")


SRUN = {"SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1",
        "SLURM_JOB_NODELIST": "gpu[07-08,11]", "SLURM_JOB_ID": "123456",
        "SLURM_NODEID": "1", "SLURM_TASKS_PER_NODE": "4(x2)"}


def test_srun_tasks_become_ranks():
    launch = from_environment(SRUN)
    assert (launch.source, launch.rank, launch.world_size, launch.local_rank) == ("slurm", 5, 8, 1)
    assert launch.master_addr == "gpu07"
    assert launch.master_port == PORT_BASE + 123456 % 20000
    assert launch.local_world_size == 4
    assert launch.environment() == {"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1",
                                    "LOCAL_WORLD_SIZE": "4", "MASTER_ADDR": "gpu07",
                                    "MASTER_PORT": str(PORT_BASE + 123456 % 20000)}


def test_the_step_wins_over_the_job_and_the_user_over_both():
    env = SRUN | {"SLURM_STEP_NUM_TASKS": "4", "SLURM_PROCID": "2",
                  "SLURM_STEP_NODELIST": "gpu[08,11]"}
    launch = from_environment(env)
    assert (launch.world_size, launch.master_addr) == (4, "gpu08")
    launch = from_environment(env | {"MASTER_ADDR": "head", "MASTER_PORT": "4000"})
    assert (launch.master_addr, launch.master_port) == ("head", 4000)
    no_job = {k: v for k, v in SRUN.items() if k != "SLURM_JOB_ID"}
    assert from_environment(no_job).master_port == DEFAULT_PORT


def test_torchrun_wins_under_srun():
    env = SRUN | {"RANK": "3", "WORLD_SIZE": "16", "LOCAL_RANK": "3", "MASTER_ADDR": "x",
                  "MASTER_PORT": "29400", "LOCAL_WORLD_SIZE": "8"}
    launch = from_environment(env)
    assert (launch.source, launch.rank, launch.world_size, launch.local_rank,
            launch.local_world_size) == ("torchrun", 3, 16, 3, 8)


def test_one_process_when_there_is_one_task_or_none():
    assert from_environment({}).world_size == 1
    assert from_environment({"SLURM_PROCID": "0", "SLURM_NTASKS": "1"}).source == "single"
    assert from_environment({"SLURM_JOB_ID": "7"}).source == "single"  # salloc shell
    assert from_environment({"RANK": "0", "WORLD_SIZE": "1"}).world_size == 1


@pytest.mark.parametrize("drop, needed", [
    ("SLURM_LOCALID", "SLURM_LOCALID"),
    ("SLURM_JOB_NODELIST", "MASTER_ADDR"),
])
def test_missing_srun_variables_say_what_to_set(drop, needed):
    env = {k: v for k, v in SRUN.items() if k != drop}
    with pytest.raises(FrosterError, match=needed) as err:
        from_environment(env)
    assert "\n" not in str(err.value)


def test_a_rank_outside_the_world_is_refused():
    with pytest.raises(FrosterError, match="SLURM_PROCID=9 is not in 0..7"):
        from_environment(SRUN | {"SLURM_PROCID": "9"})
    with pytest.raises(FrosterError, match="SLURM_NTASKS='eight'"):
        from_environment(SRUN | {"SLURM_NTASKS": "eight"})


def test_the_cli_refuses_an_incomplete_srun_environment_in_one_line(monkeypatch, tmp_path, capsys):
    from _engine_data import TINY

    from froster.cli import main
    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR"):
        monkeypatch.delenv(key, raising=False)
    for key, value in SRUN.items():
        if key != "SLURM_JOB_NODELIST":
            monkeypatch.setenv(key, value)
    monkeypatch.delenv("SLURM_JOB_NODELIST", raising=False)
    monkeypatch.delenv("SLURM_NODELIST", raising=False)
    monkeypatch.delenv("SLURM_STEP_NODELIST", raising=False)
    code = main(["train", *[f"{k}={v}" for k, v in TINY.items()], f"output_dir={tmp_path}"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("froster train: error: SLURM_NTASKS=8 but neither MASTER_ADDR nor "
                          "SLURM_JOB_NODELIST is set") and "\n" not in err


def test_a_task_alone_says_to_start_froster_with_srun(monkeypatch):
    """The batch script itself (SLURM_NTASKS=2, no srun): rank 0 waits for a rank that never
    comes, then a one-line error instead of hanging."""
    import socket

    from froster.engine.distributed import setup
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR"):
        monkeypatch.setenv(key, "0")  # setup() exports them: recorded, to be put back
        monkeypatch.delenv(key)
    monkeypatch.setenv("MASTER_PORT", str(port))
    for key, value in (SRUN | {"SLURM_PROCID": "0", "SLURM_NTASKS": "2",
                               "SLURM_JOB_NODELIST": "localhost"}).items():
        monkeypatch.setenv(key, value)
    with pytest.raises(FrosterError, match=r"rank 0 of 2 \(slurm\) could not join the others "
                                           r"at localhost:\d+ within 1 s.*start it with srun"):
        setup("cpu", timeout=1)


def test_each_rank_takes_its_local_rank_modulo_the_gpus_it_sees(monkeypatch):
    import torch

    from froster.engine.distributed import resolve_device
    chosen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    assert resolve_device("cuda", 3) == torch.device("cuda", 1)
    assert resolve_device("auto", 4) == torch.device("cuda", 0)
    assert resolve_device("cuda:1", 0) == torch.device("cuda", 1)
    assert chosen == [torch.device("cuda", 1), torch.device("cuda", 0), torch.device("cuda", 1)]
