"""Two processes under torchrun (gloo, CPU) against one process over the same global batch:
identical weights on both ranks, the same weights and metrics as the single process,
distributed evaluation counting every video once, and the running weight average (kept by
rank 0) equal to the mean of the stored epoch exports and of every rank's epoch weights."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from _engine_data import tiny_config, tiny_dataset, without_key_bias
from safetensors.torch import load_file

from froster.engine.averaging import average_folders
from froster.engine.distributed import DistInfo
from froster.engine.train import Trainer

SCRIPT = textwrap.dedent("""
    import json, sys, torch
    sys.path.insert(0, {tests!r})
    from _engine_data import tiny_config
    from froster.engine.distributed import setup, cleanup
    from froster.engine.train import Trainer
    torch.set_num_threads(1)
    data, out = json.loads(sys.argv[1]), sys.argv[2]
    info = setup("cpu")

    class Recording(Trainer):  # this rank's student weights after every epoch
        def save(self):
            self.epoch_weights.append({{k: v.clone() for k, v in self.student.clip.state_dict().items()}})
            super().save()

    for name, extra in (("plain", {{}}), ("sharded", {{"shard_text": True}})):
        cfg = tiny_config(data, out + "/" + name, **extra, **json.loads(sys.argv[3]))
        trainer = Recording(cfg, info)
        trainer.epoch_weights = []
        trainer.run()
        metrics = trainer.evaluate(trainer.student, "final")
        torch.save({{"model": trainer.model.state_dict(), "metrics": metrics.summary(),
                    "top1_per_class": metrics.per_class, "epoch_weights": trainer.epoch_weights,
                    "holds_sum": trainer.average is not None}},
                   f"{{out}}/{{name}}_rank{{info.rank}}.pt")
    cleanup()
""")

SETTINGS = {"epochs": 2, "average_from_epoch": 1, "keep_epochs": "all", "batch_size": 4}


@pytest.mark.slow
def test_two_process_gloo_run_matches_one_process(tmp_path):
    two_processes_match_one(tmp_path, SETTINGS)


def two_processes_match_one(tmp_path, settings):
    """Run `settings` over 2 gloo processes (plain and sharded text) and in one process;
    the same weights and metrics (also used by the backbone tests)."""
    data = tiny_dataset(tmp_path / "data", per_class=4)  # 12 videos: 3 steps of 4 per epoch
    script = tmp_path / "ddp_run.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent)))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(script), json.dumps(data), str(tmp_path), json.dumps(settings)],
        capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr[-3000:]

    torch.set_num_threads(1)
    cfg = tiny_config(data, tmp_path / "single", **settings)
    single = Trainer(cfg, DistInfo())
    single.run()
    single_metrics = single.evaluate(single.student, "final")
    reference = single.model.state_dict()

    for name in ("plain", "sharded"):
        rank0, rank1 = (torch.load(tmp_path / f"{name}_rank{r}.pt", weights_only=True) for r in (0, 1))
        for key in reference:
            assert torch.equal(rank0["model"][key], rank1["model"][key]), (name, key)
            got, want = without_key_bias(key, rank0["model"][key]), without_key_bias(key, reference[key])
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5,
                                       msg=lambda m: f"{name} {key}: {m}")
        assert rank0["metrics"]["evaluated"] == rank0["metrics"]["total"] == 12
        assert rank0["metrics"] == rank1["metrics"]
        for k in ("top1", "top5", "mean_class_accuracy"):
            assert rank0["metrics"][k] == pytest.approx(getattr(single_metrics, k))

        # the running average (rank 0's sum) = the mean of the exports = the mean of each
        # rank's epoch weights, which are equal on both ranks after every epoch
        assert (rank0["holds_sum"], rank1["holds_sum"]) == (True, False)
        run = tmp_path / name
        average_folders([run / "epochs/epoch_001", run / "epochs/epoch_002"], tmp_path / f"{name}_mean")
        running = load_file(run / "average/model.safetensors")
        stored = load_file(tmp_path / f"{name}_mean/model.safetensors")
        for key in running:
            assert (running[key].double() - stored[key].double()).abs().max() <= 1e-6, (name, key)
            for e in range(2):
                assert torch.equal(rank0["epoch_weights"][e][key], rank1["epoch_weights"][e][key])
            by_rank1 = (rank1["epoch_weights"][0][key].double() + rank1["epoch_weights"][1][key]) / 2
            assert (running[key].double() - by_rank1).abs().max() <= 1e-6, (name, key)

    # rank 0 wrote every rank's videos to predictions.jsonl, once each, in list order
    records = [json.loads(x) for x in (tmp_path / "plain/eval/final/predictions.jsonl")
               .read_text().splitlines()]
    listed = [line.rsplit(",", 1)[0] for line in Path(data["val_list"]).read_text().splitlines()]
    assert [r["video"] for r in records] == [str(Path(data["data_root"]) / p) for p in listed]
    # only rank 0 wrote the run folder, and the log has the 2 x 3 steps
    log = [json.loads(x) for x in (tmp_path / "plain/log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["kind"] == "train"] == list(range(1, 7))
    assert sorted(p.name for p in (tmp_path / "plain/epochs").iterdir()) == ["epoch_001", "epoch_002"]
