"""`train init=FILE`: training starts from an imported student (here a reference-layout
file and a froster folder) while the teacher stays the pretrained CLIP; and `eval` reads
a reference file as it is."""

import json
import math
from dataclasses import replace

import pytest
import torch
from _engine_data import tiny_config, tiny_dataset
from _foreign import reference_cfg, reference_training_checkpoint

from froster.checkpoint import build_student, load_student
from froster.cli import main
from froster.clip import create_clip
from froster.engine.distributed import DistInfo
from froster.engine.train import Trainer, student_spec

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A 'released' reference checkpoint: a tiny QuickGELU student with heads, 2 frames."""
    torch.manual_seed(42)
    clip, _ = create_clip("froster-tiny", quick_gelu=True)
    path = tmp_path_factory.mktemp("released") / "checkpoint_epoch_00022.pyth"
    torch.save(reference_training_checkpoint(clip, reference_cfg(frames=2), ddp=True), path)
    return path, clip


def test_init_loads_the_student_and_heads_but_not_the_teacher(data, released, tmp_path, capsys):
    path, clip = released
    cfg = tiny_config(data, tmp_path / "run", init=str(path), epochs=1, average_from_epoch=0)
    trainer = Trainer(cfg, DistInfo())
    assert "init: " in capsys.readouterr().err  # progress goes to stderr
    student = trainer.model.student.clip.state_dict()
    assert all(torch.equal(student[k], v) for k, v in clip.state_dict().items())
    saved = torch.load(path, weights_only=True)["model_state"]
    assert torch.equal(trainer.model.projector_v.fc1.weight, saved["module.projector_v.0.weight"])
    assert torch.equal(trainer.model.projector_t.fc2.weight, saved["module.projector_t.2.weight"])
    # the teacher is the pretrained CLIP of the config (here: the seeded random one), as
    # in a run without init, not the imported student
    torch.manual_seed(cfg.seed)
    plain, _ = build_student(replace(student_spec(cfg), quick_gelu=True))
    teacher = trainer.model.teacher.encoder.clip.state_dict()
    assert all(torch.equal(teacher[k], v) for k, v in plain.clip.state_dict().items())
    assert not torch.equal(teacher["visual.proj"], student["visual.proj"])
    result = trainer.run()
    assert math.isfinite(result["train"]["loss"])  # not NaN, not inf
    exported, _, config = load_student(tmp_path / "run/epochs/epoch_001")
    assert config["quick_gelu"] is True and exported.temporal == "neighbor"


def test_init_from_a_folder_through_the_cli(data, released, tmp_path, capsys):
    path, clip = released
    assert main(["import", str(path), "-o", str(tmp_path / "k400")]) == 0
    overrides = [f"{k}={v}" for k, v in {"model": "froster-tiny", "pretrained": "none",
                 "num_frames": 2, "sampling_rate": 4, "epochs": 1, "batch_size": 4,
                 "num_workers": 0, "device": "cpu", "progress": False, "average_from_epoch": 0,
                 "output_dir": tmp_path / "run", "init": tmp_path / "k400", **data}.items()]
    assert main(["train", *overrides, "distill=false"]) == 0
    assert "FROSTER heads dropped" in capsys.readouterr().err  # plain fine-tuning has no heads
    assert (tmp_path / "run/epochs/epoch_001/model.safetensors").is_file()


def test_init_errors_name_the_problem(data, released, tmp_path, capsys):
    path, _ = released
    assert main(["train", *[f"{k}={v}" for k, v in {
        "model": "froster-demo", "pretrained": "none", "output_dir": tmp_path / "r",
        "init": path, "device": "cpu", **data}.items()]]) == 2
    assert (f"init={path} holds a froster-tiny student but the config says model=froster-demo; "
            f"set model=froster-tiny") in capsys.readouterr().err
    cfg = tiny_config(data, tmp_path / "r2", init=str(path), quick_gelu=False)
    with pytest.raises(ValueError, match="was trained with QuickGELU but the config sets "
                                         "quick_gelu=false; set quick_gelu=true"):
        Trainer(cfg, DistInfo())
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        Trainer(tiny_config(data, tmp_path / "r3", init=str(tmp_path / "missing.pth")), DistInfo())


def test_eval_reads_a_reference_file_with_its_recorded_frames(data, released, tmp_path, capsys):
    path, _ = released
    assert main(["eval", "--checkpoint", str(path), *[f"{k}={v}" for k, v in data.items()],
                 "device=cpu", "num_workers=0", "progress=false", "test_views=1"]) == 0
    captured = capsys.readouterr()
    assert "over 9 of 9 videos" in captured.out and "FROSTER reference checkpoint" in captured.err
    report = json.loads((path.parent / "checkpoint_epoch_00022_eval/metrics.json").read_text())
    assert report["evaluated"] == 9
    from froster.interop import run_config_of
    assert run_config_of(str(path))["num_frames"] == 2  # the base config eval starts from
