"""The weight average kept as a running sum while training equals the mean of the stored
epoch exports (weights and logits), also across a resume in the middle of the averaging
range; `keep_epochs` keeps exactly the exports (and per-epoch reports) it says."""

import json
import shutil

import pytest
import torch
from _engine_data import tiny_config, tiny_dataset
from safetensors.torch import load_file

from froster.checkpoint import load_student
from froster.cli import main
from froster.data import normalize
from froster.engine import checkpoints as ckpt
from froster.engine.distributed import DistInfo
from froster.engine.evaluate import class_embeddings, eval_dataset, video_logits
from froster.engine.inputs import class_bank
from froster.engine.train import Trainer, train

pytestmark = pytest.mark.usefixtures("one_thread")

EPOCHS, FROM = 4, 2  # 12 videos, batch 4 -> 3 steps per epoch; average of epochs 2..4


class Interrupt(Exception):
    pass


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("data"), per_class=4)


def settings(data, output_dir, **extra):
    values = dict(epochs=EPOCHS, average_from_epoch=FROM, val_list="", keep_epochs="all") | extra
    return tiny_config(data, output_dir, **values)


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    """straight: 4 epochs keeping every export; resumed: interrupted in epoch 3 (the sum
    holds epoch 2), resumed keeping none; legacy: the interrupted state with its running sum
    removed (as written before there was one), resumed from the exports of epochs 1-2."""
    root = tmp_path_factory.mktemp("runs")
    torch.set_num_threads(1)
    train(settings(data, root / "straight"), DistInfo())

    real_step, calls = Trainer.train_step, {"n": 0}

    def crashing_step(self, batches):
        calls["n"] += 1
        if calls["n"] == 8:  # 2nd step of epoch 3
            raise Interrupt
        return real_step(self, batches)

    Trainer.train_step = crashing_step
    try:
        with pytest.raises(Interrupt):
            train(settings(data, root / "resumed"), DistInfo())
    finally:
        Trainer.train_step = real_step
    state = torch.load(root / "resumed" / ckpt.LAST, weights_only=True)
    assert state["epoch"] == 2 and state["average"]["tags"] == [2]

    shutil.copytree(root / "resumed", root / "legacy")
    del state["average"]
    torch.save(state, root / "legacy" / ckpt.LAST)

    train(settings(data, root / "resumed", keep_epochs="none", resume="latest"), DistInfo())
    train(settings(data, root / "legacy", resume="latest"), DistInfo())
    # the mean of the stored exports, as `froster average` computes it
    assert main(["average", str(root / "straight"), "--from-epoch", str(FROM),
                 "--output", str(root / "from_exports")]) == 0
    return root


def max_weight_difference(a, b) -> float:
    wa, wb = (load_file(folder / "model.safetensors") for folder in (a, b))
    assert wa.keys() == wb.keys()
    return max(float((wa[k].double() - wb[k].double()).abs().max()) for k in wa)


def logits(data, folder) -> torch.Tensor:
    """Test logits of the first videos through evaluation's own path."""
    student, tokenizer, _ = load_student(folder)
    cfg = tiny_config(data, folder)
    bank = class_bank(data["class_file"], "class_file", tokenizer, "")
    dataset = eval_dataset(cfg, data["train_list"], len(bank), 32)
    video = torch.stack([dataset[i]["video"] for i in (0, 5, 10)])
    mean, std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    with torch.no_grad():
        return video_logits(student, normalize(video, mean, std),
                            class_embeddings(student, bank, torch.device("cpu")))


def test_running_average_equals_the_mean_of_the_stored_exports(runs, data):
    assert max_weight_difference(runs / "straight/average", runs / "from_exports") <= 1e-6
    torch.testing.assert_close(logits(data, runs / "straight/average"),
                               logits(data, runs / "from_exports"), rtol=0, atol=1e-5)
    config = json.loads((runs / "straight/average/config.json").read_text())
    assert config["extra"]["epochs"] == [2, 3, 4]
    # the check can fail: the average is not the last epoch
    assert max_weight_difference(runs / "straight/average", runs / "straight/epochs/epoch_004") > 1e-4


def test_running_average_continues_across_a_resume_in_the_averaging_range(runs, data):
    for run in ("resumed", "legacy"):
        assert max_weight_difference(runs / run / "average", runs / "from_exports") <= 1e-6, run
        torch.testing.assert_close(logits(data, runs / run / "average"),
                                   logits(data, runs / "from_exports"), rtol=0, atol=1e-5)
    state = torch.load(runs / "resumed" / ckpt.LAST, weights_only=True)
    assert state["average"]["tags"] == [2, 3, 4]
    assert all(v.dtype == torch.float64 for v in state["average"]["sums"].values())
    assert not (runs / "resumed/epochs").exists() or not any((runs / "resumed/epochs").iterdir())


def test_resume_with_a_running_sum_that_does_not_fit_is_an_error(runs, data, tmp_path):
    shutil.copytree(runs / "resumed", tmp_path / "run")
    cfg = settings(data, tmp_path / "run", epochs=6, average_from_epoch=3, resume="latest")
    with pytest.raises(ValueError, match=r"weight sum of epochs \[2, 3, 4\].*average_from_epoch"):
        train(cfg, DistInfo())


@pytest.mark.parametrize("keep, average_from, exports, reports", [
    ("all", 2, [1, 2, 3, 4], [1, 2, 3, 4]),
    ("none", 2, [], [4]),      # the run's result is average/; the latest report stays
    ("2", 2, [3, 4], [3, 4]),
    ("none", 0, [4], [4]),     # no average: the last epoch's export is the run's result
])
def test_keep_epochs_keeps_exactly_what_it_says(data, tmp_path, keep, average_from, exports,
                                                reports):
    cfg = settings(data, tmp_path, keep_epochs=keep, average_from_epoch=average_from,
                   val_list=data["val_list"], eval_every=1)
    train(cfg, DistInfo())
    assert sorted(ckpt.epoch_folders(tmp_path)) == exports
    assert sorted(p.name for p in (tmp_path / "eval").glob("epoch_*")) == \
        [f"epoch_{e:03d}" for e in reports]
    assert (tmp_path / "average").is_dir() == (average_from > 0)
    for e in reports:  # an evaluation's record names the epoch's export only when it was kept
        record = json.loads((tmp_path / f"eval/epoch_{e:03d}/metrics.json").read_text())["record"]
        assert ("checkpoint" in record["files"]) == (e in exports), (e, record["files"])
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["name"] for r in log if r["kind"] == "eval" and r["name"].startswith("epoch")] == \
        [f"epoch_{e:03d}" for e in range(1, EPOCHS + 1)]  # every epoch's figures stay in the log


def test_keep_epochs_values(data, tmp_path):
    assert settings(data, tmp_path, keep_epochs="none").kept_epochs() == 0
    assert settings(data, tmp_path, keep_epochs="3").kept_epochs() == 3
    assert settings(data, tmp_path, keep_epochs="all").kept_epochs() is None
    assert tiny_config(data, tmp_path).keep_epochs == "none"  # the default
    with pytest.raises(ValueError, match="keep_epochs='last'"):
        settings(data, tmp_path, keep_epochs="last")


def test_froster_average_says_which_exports_a_run_did_not_keep(data, tmp_path, capsys):
    train(settings(data, tmp_path / "two", keep_epochs="2"), DistInfo())
    assert main(["average", str(tmp_path / "two")]) == 2
    err = capsys.readouterr().err
    assert "no export of epochs 2" in err and "--from-epoch 3" in err
    assert main(["average", str(tmp_path / "two"), "--from-epoch", "3",
                 "--output", str(tmp_path / "avg34")]) == 0

    train(settings(data, tmp_path / "none", keep_epochs="none", epochs=2), DistInfo())
    assert main(["average", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "kept no epoch exports" in err and str(tmp_path / "none" / "average") in err
