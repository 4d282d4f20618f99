"""End to end on generated clips: train -> average -> eval through the CLI, the baselines,
the evaluation against a hand computation, and the errors a user can make."""

import json

import pytest
import torch
from _engine_data import TINY, make_videos, tiny_config, tiny_dataset, without_key_bias, write_list
from safetensors.torch import load_file

from froster.checkpoint import load_student
from froster.cli import main
from froster.config import load_config
from froster.engine.distributed import DistInfo
from froster.engine.evaluate import evaluate, eval_dataset
from froster.engine.train import Trainer, train
from froster.prompts import PromptBank


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("data"))


def args(data, output_dir, **overrides):
    values = TINY | data | {"output_dir": str(output_dir)} | overrides
    return [f"{k}={v}" for k, v in values.items()]


def test_train_average_eval_through_the_cli(data, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert main(["train", *args(data, run, eval_every=3, average_from_epoch=0,
                                keep_epochs="all")]) == 0
    epochs = sorted(p.name for p in (run / "epochs").iterdir())
    assert epochs == ["epoch_001", "epoch_002", "epoch_003"]
    assert not (run / "average").exists()  # average_from_epoch=0: no averaging in train

    # the resolved config is saved with the run and with every checkpoint
    saved = load_config(run / "config.yaml")
    assert saved.epochs == 3 and saved.model == "froster-tiny"
    exported = json.loads((run / "epochs/epoch_002/config.json").read_text())
    assert exported["extra"]["config"] == saved.to_dict() and exported["extra"]["epoch"] == 2
    assert torch.load(run / "checkpoints/last.pt", weights_only=True)["config"] == saved.to_dict()

    # the JSONL log has the loss terms of every step and the evaluation
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in steps] == list(range(1, 7))  # 9 videos, batch 4 -> 2 steps x 3
    assert {"loss", "ce", "distill_visual", "distill_text", "lr"} <= set(steps[0])
    assert steps[0]["lr"] == pytest.approx(1e-5)  # warm-up starts at warmup_start_lr
    assert steps[-1]["loss"] < steps[0]["loss"]
    assert [r["name"] for r in records if r["kind"] == "eval"] == ["epoch_003"]

    assert main(["average", str(run), "--from-epoch", "2"]) == 0
    averaged = load_file(run / "average/model.safetensors")
    e2, e3 = (load_file(run / f"epochs/epoch_00{k}/model.safetensors") for k in (2, 3))
    for key, value in averaged.items():
        torch.testing.assert_close(value, (e2[key].double() + e3[key].double()).div(2).float(),
                                   rtol=0, atol=1e-7)
    assert not torch.equal(averaged["visual.proj"], e3["visual.proj"])

    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(run / "average")]) == 0  # the run's own config
    out = capsys.readouterr().out
    assert "over 9 of 9 videos" in out
    report = json.loads((run / "average/eval/metrics.json").read_text())
    assert report["evaluated"] == report["total"] == 9 and report["failed_videos"] == []
    assert set(report["per_class"]) == {"Juggling", "Abseiling", "Archery"}
    rows = (run / "average/eval/confusion.csv").read_text().splitlines()
    assert len(rows) == 4 and sum(int(x) for r in rows[1:] for x in r.split(",")[1:]) == 9
    assert report["top1"] >= 60  # the class colours are easy: training has to learn them

    # --sampling is the sampling= override
    import froster.engine.evaluate as evaluate_module
    seen, real = [], evaluate_module.evaluate_checkpoint
    monkeypatch.setattr(evaluate_module, "evaluate_checkpoint", lambda student, tok, cfg, *a, **k:
                        seen.append(cfg) or real(student, tok, cfg, *a, **k))
    assert main(["eval", "--checkpoint", str(run / "average"), "--sampling", "uniform",
                 "--output", str(tmp_path / "uniform")]) == 0
    assert [cfg.sampling for cfg in seen] == ["uniform"] and saved.sampling == "reference"

    # the averaged checkpoint loads like any other (prediction uses the same loader)
    student, _, config = load_student(run / "average")
    assert config["extra"]["epochs"] == [2, 3]


def test_eval_matches_a_hand_computation_and_counts_bad_videos(data, tmp_path):
    cfg = tiny_config(data, tmp_path)
    torch.manual_seed(1)
    from froster.checkpoint import build_student
    from froster.engine.train import student_spec
    student, tokenizer = build_student(student_spec(cfg))
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    entries = [line.rsplit(",", 1) for line in open(data["train_list"]).read().splitlines()]
    val = write_list(tmp_path / "val.csv", [(p, int(y)) for p, y in entries] + [(str(bad), 1)])
    bank = PromptBank([t for t in json.loads(open(data["class_file"]).read()).values()], tokenizer)
    dataset = eval_dataset(cfg, str(val), len(bank), 32)
    metrics = evaluate(student, dataset, bank, DistInfo(), batch_size=4, num_workers=0,
                       progress=False)
    assert (metrics.evaluated, metrics.total) == (9, 10)
    assert len(metrics.failed) == 1 and "broken.mp4" in metrics.failed[0]

    # by hand: 29-prompt classifier, per-view logits summed over the 2 views
    from froster.data import normalize
    with torch.no_grad():
        classes = student.encode_classes(bank.stacked(bank.all_templates()))
        predicted = []
        for i in range(9):
            views = normalize(dataset[i]["video"], (0.48145466, 0.4578275, 0.40821073),
                              (0.26862954, 0.26130258, 0.27577711))
            assert views.shape == (2, 2, 3, 32, 32)
            predicted.append(int(student.logits(student.encode_frames(views), classes).sum(0).argmax()))
    labels = [int(y) for _, y in entries]
    expected = 100 * sum(p == y for p, y in zip(predicted, labels)) / 9
    assert metrics.top1 == pytest.approx(expected)
    expected_confusion = torch.zeros_like(metrics.confusion)  # rows: true class; columns: predicted
    for p, y in zip(predicted, labels):
        expected_confusion[y, p] += 1
    assert torch.equal(metrics.confusion, expected_confusion)


def test_grad_accumulation_equals_the_full_batch(data, tmp_path):
    results = []
    for accum in (1, 2):
        cfg = tiny_config(data, tmp_path / f"a{accum}", epochs=1, grad_accum=accum,
                          average_from_epoch=0, val_list="")
        trainer = Trainer(cfg, DistInfo())
        trainer.run()
        results.append(trainer.model.state_dict())
    for key in results[0]:
        torch.testing.assert_close(without_key_bias(key, results[0][key]),
                                   without_key_bias(key, results[1][key]), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("overrides, has_projectors", [
    ({"distill": False}, False),                      # plain fine-tuning
    ({"temporal": "mean", "distill": False}, False),  # mean-pooling (per-frame) CLIP student
    ({"temporal": "mean"}, True),                     # mean pooling + FROSTER
])
def test_baselines_are_options_of_the_same_loop(data, tmp_path, overrides, has_projectors):
    cfg = tiny_config(data, tmp_path, epochs=1, average_from_epoch=0, val_list="", **overrides)
    train(cfg, DistInfo())
    state = torch.load(tmp_path / "checkpoints/last.pt", weights_only=True)
    assert any(k.startswith("projector_v.") for k in state["model"]) == has_projectors
    student, _, config = load_student(tmp_path / "epochs/epoch_001")
    assert student.temporal == overrides.get("temporal", "neighbor")
    records = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    train_records = [r for r in records if r["kind"] == "train"]
    if not has_projectors:
        assert all(r["distill_visual"] == 0 and r["loss"] == r["ce"] for r in train_records)


def test_zero_shot_evaluates_the_frozen_clip_without_training(data, tmp_path, capsys):
    assert main(["train", *args(data, tmp_path, zero_shot="true", temporal="mean")]) == 0
    assert not (tmp_path / "epochs").exists()
    report = json.loads((tmp_path / "eval/zero_shot/metrics.json").read_text())
    assert report["evaluated"] == 9
    torch.manual_seed(0)
    from froster.clip import create_clip
    clip, _ = create_clip("froster-tiny")
    exported = load_file(tmp_path / "zero_shot/model.safetensors")
    assert all(torch.equal(exported[k], v) for k, v in clip.state_dict().items())
    # the same through `froster eval zero_shot=true`
    assert main(["eval", *args(data, tmp_path / "z", zero_shot="true", temporal="mean")]) == 0
    again = json.loads((tmp_path / "z/eval/zero_shot/metrics.json").read_text())
    assert again["top1"] == report["top1"]


def test_errors_name_the_problem(data, tmp_path, capsys):
    assert main(["train", *args(data, tmp_path, epochz=3)]) == 2
    assert "unknown config key 'epochz'" in capsys.readouterr().err

    assert main(["train", *args(data, tmp_path, data_root=tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "is not a folder" in err

    assert main(["train", *args(data, tmp_path, train_list=tmp_path / "missing.csv")]) == 2
    assert "train_list" in capsys.readouterr().err

    assert main(["train", *args(data, tmp_path, train_list="")]) == 2
    assert "train_list is not set" in capsys.readouterr().err

    assert main(["train", *args(data, tmp_path, batch_size=3, grad_accum=2)]) == 2
    assert "multiple of world_size" in capsys.readouterr().err

    assert main(["train", str(tmp_path / "none.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err

    assert main(["eval", *args(data, tmp_path)]) == 2
    assert "--checkpoint" in capsys.readouterr().err

    assert main(["average", str(tmp_path / "empty")]) == 2
    assert "--output" in capsys.readouterr().err

    (tmp_path / "run" / "epochs").mkdir(parents=True)
    assert main(["average", str(tmp_path / "run")]) == 2
    assert "no epoch checkpoints" in capsys.readouterr().err


def test_gradient_checkpointing_gives_the_same_weights(data, tmp_path, checkpoint_calls):
    states = []
    for flag in (False, True):
        cfg = tiny_config(data, tmp_path / str(flag), epochs=1, average_from_epoch=0,
                          val_list="", grad_checkpointing=flag)
        trainer = Trainer(cfg, DistInfo())
        before = checkpoint_calls[0]
        trainer.run()
        assert (checkpoint_calls[0] > before) is flag  # the checkpointed path ran, or did not
        states.append(trainer.model.state_dict())
    for key in states[0]:
        torch.testing.assert_close(states[0][key], states[1][key], rtol=1e-5, atol=1e-6)


def test_mixed_precision_on_cpu(data, tmp_path, capsys):
    cfg = tiny_config(data, tmp_path, epochs=1, average_from_epoch=0, precision="bf16", eval_every=1)
    trainer = Trainer(cfg, DistInfo())
    assert trainer.dtype == torch.bfloat16 and not trainer.scaler.is_enabled()
    assert trainer.eval_dtype is None  # evaluation during training: fp32, as the reference tests
    result = trainer.run()
    assert result["eval"]["evaluated"] == 9
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())  # fp32 master weights
    records = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in records if r["kind"] == "train")
    assert main(["train", *args(data, tmp_path / "fp16", precision="fp16")]) == 2
    assert "fp16 is for CUDA" in capsys.readouterr().err


def test_bad_training_videos_are_skipped_and_reported(data, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    entries = [line.rsplit(",", 1) for line in open(data["train_list"]).read().splitlines()]
    train_list = write_list(tmp_path / "train.csv", [(p, int(y)) for p, y in entries] + [(str(bad), 0)] * 3)
    cfg = tiny_config(data, tmp_path / "run", epochs=1, average_from_epoch=0, val_list="",
                      train_list=str(train_list))
    train(cfg, DistInfo())
    out = capsys.readouterr().err  # progress and reports go to stderr
    assert "broken.mp4" in out and "skipped and replaced" in out
    records = [json.loads(x) for x in (tmp_path / "run/log.jsonl").read_text().splitlines()]
    [epoch] = [r for r in records if r["kind"] == "epoch"]
    assert epoch["failed_videos"] == 1 and epoch["steps_per_second"] > 0
    record = json.loads((tmp_path / "run/record.json").read_text())
    assert record["videos"]["train"] == 12 and record["videos"]["train_failed"] == 1
    assert "broken.mp4" in (tmp_path / "run" / record["videos"]["failed_file"]).read_text()


def test_videos_sampled_with_a_fallback_are_counted(data, tmp_path, capsys):
    # a fragmented MP4: a duration but no frame count, where the reference divides by it
    from _engine_data import class_frame

    from froster.data.synthetic import write_video

    frag = write_video(tmp_path / "frag.mp4", 30, width=40, height=32, frame=class_frame(0),
                       options={"crf": "10"}, container_options={"movflags": "frag_keyframe+empty_moov"})
    entries = [line.rsplit(",", 1) for line in open(data["train_list"]).read().splitlines()]
    listed = write_list(tmp_path / "list.csv", [(p, int(y)) for p, y in entries] + [(frag, 0)] * 3)
    cfg = tiny_config(data, tmp_path / "run", epochs=1, average_from_epoch=0, eval_every=1,
                      train_list=str(listed), val_list=str(listed))
    train(cfg, DistInfo())
    out = capsys.readouterr().err
    assert "1 video sampled with a fallback:" in out
    assert f"{frag}: the header gives a duration but no frame count" in out
    records = [json.loads(x) for x in (tmp_path / "run/log.jsonl").read_text().splitlines()]
    [epoch] = [r for r in records if r["kind"] == "epoch"]
    [evaluation] = [r for r in records if r["kind"] == "eval"]
    assert epoch["fallback_videos"] == 1 and epoch["failed_videos"] == 0
    assert evaluation["fallback"] == 1 and evaluation["evaluated"] == 12
    report = json.loads((tmp_path / "run/eval/epoch_001/metrics.json").read_text())
    assert report["fallback_videos"] == [f"{frag}: the header gives a duration but no frame count"]
    assert "1 sampled with a fallback" in out  # the eval line


def test_teacher_precision_option(data, tmp_path):
    """A bf16 teacher: the run trains with finite weights and the teacher really is bf16."""
    cfg = tiny_config(data, tmp_path / "bf16", epochs=1, average_from_epoch=0, val_list="",
                      teacher_precision="bf16")
    trainer = Trainer(cfg, DistInfo())
    assert trainer.model.teacher.encoder.clip.visual.conv1.weight.dtype == torch.bfloat16
    trainer.run()
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    with pytest.raises(ValueError, match="teacher_precision"):
        tiny_config(data, tmp_path, teacher_precision="int8")


def test_templates_file_replaces_the_reference_prompts(data, tmp_path):
    templates = tmp_path / "templates.txt"
    templates.write_text("a clip of {}.\n{}\n")
    cfg = tiny_config(data, tmp_path / "run", epochs=1, average_from_epoch=0, val_list="",
                      templates=str(templates))
    trainer = Trainer(cfg, DistInfo())
    assert trainer.bank.templates == ("a clip of {}.", "{}")
    name = trainer.bank.classes[0].name
    assert trainer.bank.prompts(0)[0].startswith(f"a clip of {name}.")
    trainer.run()
    with pytest.raises(FileNotFoundError, match="templates: .*missing.txt not found"):
        Trainer(tiny_config(data, tmp_path / "r2", templates=str(tmp_path / "missing.txt")), DistInfo())
