"""Two run folders that must be bit-identical (an interrupted and resumed run against an
uninterrupted one): not a test module."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

#: log fields that measure time, not the computation
TIMING = ("time", "seconds", "steps_per_second")


def logged(run: Path, kinds=("train", "epoch")) -> list[dict]:
    """The run's log lines of these kinds, without their timings."""
    lines = [json.loads(line) for line in (Path(run) / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in lines if r["kind"] in kinds]


def assert_same_run(a: Path, b: Path) -> None:
    """Final weights, optimiser state, RNG, weight average (the running sum and the written
    average) and the logged losses of runs a and b are identical, bit for bit."""
    sa, sb = (torch.load(Path(r) / "checkpoints/last.pt", weights_only=True) for r in (a, b))
    assert (sa["epoch"], sa["step"]) == (sb["epoch"], sb["step"])
    assert sa["progress"] is None and sb["progress"] is None  # both ended an epoch
    assert sa["model"].keys() == sb["model"].keys()
    for key in sa["model"]:
        assert torch.equal(sa["model"][key], sb["model"][key]), key
    for pa, pb in zip(sa["optimizer"]["state"].values(), sb["optimizer"]["state"].values()):
        assert all(torch.equal(pa[k], pb[k]) for k in pa)
    assert sa["rng"]["templates"] == sb["rng"]["templates"]
    assert torch.equal(sa["rng"]["torch"], sb["rng"]["torch"])
    if sa["average"] is not None:
        assert sa["average"]["tags"] == sb["average"]["tags"]
        for key, total in sa["average"]["sums"].items():
            assert torch.equal(total, sb["average"]["sums"][key]), key
        wa, wb = (load_file(Path(r) / "average/model.safetensors") for r in (a, b))
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
    la, lb = logged(a), logged(b)
    assert la == lb
    assert [r["step"] for r in la if r["kind"] == "train"] == list(range(1, sa["step"] + 1))
    for run in (a, b):  # one start; nothing logged twice
        kinds = [json.loads(x)["kind"] for x in (Path(run) / "log.jsonl").read_text().splitlines()]
        assert kinds.count("start") == 1 and kinds.count("end") == 1
