"""Who this process is in a run of several: from torchrun's environment (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR, MASTER_PORT) or from SLURM's, for `srun froster train ...` with one
task per GPU (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID; the rendezvous host is the first
node of the step's node list). torchrun's wins where both are set (`srun torchrun ...`:
SLURM starts one torchrun per node, which starts the ranks). Torch-free: pure functions of
the environment, so that they can be tested without processes."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import FrosterError

#: MASTER_PORT under SLURM when not set: this base plus the job id modulo PORT_SPREAD, so
#: that two jobs sharing a first node do not meet on one port
PORT_BASE, PORT_SPREAD = 15000, 20000
#: torch's own default port, where there is no job id
DEFAULT_PORT = 29500


@dataclass(frozen=True)
class Launch:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int | None = None
    master_addr: str | None = None
    master_port: int | None = None
    source: str = "single"  # single | torchrun | slurm

    def environment(self) -> dict[str, str]:
        """The torchrun variables this launch stands for (what `env://` reads)."""
        env = {"RANK": str(self.rank), "WORLD_SIZE": str(self.world_size),
               "LOCAL_RANK": str(self.local_rank)}
        if self.local_world_size is not None:
            env["LOCAL_WORLD_SIZE"] = str(self.local_world_size)
        if self.master_addr is not None:
            env["MASTER_ADDR"] = self.master_addr
        if self.master_port is not None:
            env["MASTER_PORT"] = str(self.master_port)
        return env


def _split_top_level(text: str) -> list[str]:
    """'a[1-2,5],b' -> ['a[1-2,5]', 'b']: commas outside brackets separate hosts."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise ValueError("']' without '['")
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if depth:
        raise ValueError("'[' without ']'")
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def _expand_range(body: str) -> list[str]:
    """'01-03,7' -> ['01', '02', '03', '7'] (zero padding kept, as SLURM writes it)."""
    out = []
    for piece in body.split(","):
        piece = piece.strip()
        if re.fullmatch(r"\d+", piece):
            out.append(piece)
            continue
        match = re.fullmatch(r"(\d+)-(\d+)", piece)
        if not match:
            raise ValueError(f"bad range {piece!r}")
        first, last = match.groups()
        if int(last) < int(first):
            raise ValueError(f"range {piece!r} runs backwards")
        width = len(first)
        out += [str(n).zfill(width) for n in range(int(first), int(last) + 1)]
    return out


def expand_nodelist(text: str) -> list[str]:
    """SLURM's compact host list as host names: 'node[01-03,07],gpu-a[1-2]-ib,login' ->
    node01, node02, node03, node07, gpu-a1-ib, gpu-a2-ib, login (several bracket groups in
    one name give every combination, as `scontrol show hostnames` does)."""
    hosts = []
    try:
        for item in _split_top_level(text):
            names = [""]
            for literal, body in re.findall(r"([^\[\]]*)(?:\[([^\]]*)\])?", item):
                values = _expand_range(body) if body else [""]
                names = [n + literal + v for n in names for v in values]
            hosts += names
    except ValueError as err:
        raise FrosterError(f"cannot read the SLURM node list {text!r} ({err}); set MASTER_ADDR "
                           "to the first node's host name") from None
    return hosts


def first_host(text: str) -> str:
    hosts = expand_nodelist(text)
    if not hosts:
        raise FrosterError(f"the SLURM node list {text!r} names no host; set MASTER_ADDR to the "
                           "first node's host name")
    return hosts[0]


def tasks_per_node(text: str) -> list[int]:
    """SLURM's tasks-per-node list: '4(x2),2' -> [4, 4, 2]."""
    counts = []
    for piece in text.split(","):
        match = re.fullmatch(r"\s*(\d+)(?:\(x(\d+)\))?\s*", piece)
        if not match:
            raise FrosterError(f"cannot read SLURM's tasks per node {text!r}")
        counts += [int(match.group(1))] * int(match.group(2) or 1)
    return counts


def _int(env: Mapping[str, str], key: str) -> int:
    try:
        return int(env[key])
    except ValueError:
        raise FrosterError(f"{key}={env[key]!r} is not a whole number") from None


def from_environment(env: Mapping[str, str] | None = None) -> Launch:
    """This process's place in the run: torchrun's variables, else SLURM's (a task of
    `srun`), else a single process."""
    env = os.environ if env is None else env
    if "RANK" in env and "WORLD_SIZE" in env:  # torchrun (also under srun)
        world = _int(env, "WORLD_SIZE")
        local = _int(env, "LOCAL_RANK") if "LOCAL_RANK" in env else 0
        port = _int(env, "MASTER_PORT") if "MASTER_PORT" in env else None
        lws = _int(env, "LOCAL_WORLD_SIZE") if "LOCAL_WORLD_SIZE" in env else None
        return Launch(_int(env, "RANK"), world, local, lws, env.get("MASTER_ADDR"), port,
                      "torchrun" if world > 1 else "single")
    ntasks_key = "SLURM_STEP_NUM_TASKS" if "SLURM_STEP_NUM_TASKS" in env else "SLURM_NTASKS"
    if "SLURM_PROCID" not in env or ntasks_key not in env or _int(env, ntasks_key) <= 1:
        return Launch()
    return _slurm(env, ntasks_key)


def _slurm(env: Mapping[str, str], ntasks_key: str) -> Launch:
    world, rank = _int(env, ntasks_key), _int(env, "SLURM_PROCID")
    if not 0 <= rank < world:
        raise FrosterError(f"SLURM_PROCID={rank} is not in 0..{world - 1} ({ntasks_key}={world})")
    if "SLURM_LOCALID" not in env:
        raise FrosterError(f"{ntasks_key}={world} but SLURM_LOCALID is not set: start the tasks "
                           "with srun (which sets it), or set SLURM_LOCALID to the task's index "
                           "on its node")
    local = _int(env, "SLURM_LOCALID")
    addr = env.get("MASTER_ADDR")
    if not addr:
        nodelist = next((env[k] for k in ("SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST",
                                          "SLURM_NODELIST") if env.get(k)), None)
        if nodelist is None:
            raise FrosterError(f"{ntasks_key}={world} but neither MASTER_ADDR nor "
                               "SLURM_JOB_NODELIST is set: set MASTER_ADDR to the host name of "
                               "the node of rank 0 (and MASTER_PORT to a free port)")
        addr = first_host(nodelist)
    if env.get("MASTER_PORT"):
        port = _int(env, "MASTER_PORT")
    elif env.get("SLURM_JOB_ID", "").isdigit():
        port = PORT_BASE + int(env["SLURM_JOB_ID"]) % PORT_SPREAD
    else:
        port = DEFAULT_PORT
    local_world = None
    spec = env.get("SLURM_STEP_TASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE")
    if spec and env.get("SLURM_NODEID", "").isdigit():
        counts = tasks_per_node(spec)
        node = int(env["SLURM_NODEID"])
        local_world = counts[node] if node < len(counts) else None
    return Launch(rank, world, local, local_world, addr, port, "slurm")
