"""`Recognizer.explain` and `froster explain` end to end on tiny random-weight checkpoints
and a real clip from ../shared/videos: the view and logits predict uses, the pictures,
--compare, and the same clear errors as predict."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from froster.checkpoint import build_student, export_student
from froster.student_spec import StudentSpec
from froster.clip import create_clip
from froster.inference.api import Recognizer

LABELS = "arm wrestling,yoga,cleaning pool,making a cake"


@pytest.fixture(scope="module")
def clip_weights(tmp_path_factory):
    """A tiny CLIP's weights in a file: the 'pretrained' CLIP the students start from."""
    torch.manual_seed(0)
    clip, _ = create_clip("froster-tiny")
    path = tmp_path_factory.mktemp("clip") / "tiny_clip.pt"
    torch.save(clip.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, clip_weights):
    """Two students fine-tuned (here: perturbed) from `clip_weights`, and one from random weights."""
    made = {}
    for name, pretrained, seed in (("froster", clip_weights, 1), ("finetune", clip_weights, 2),
                                   ("random", None, 3)):
        spec = StudentSpec(model="froster-tiny", pretrained=str(pretrained) if pretrained else None)
        student, _ = build_student(spec)
        torch.manual_seed(seed)
        with torch.no_grad():
            for p in student.clip.visual.parameters():
                p.add_(0.02 * torch.randn_like(p))
        made[name] = export_student(student, spec, tmp_path_factory.mktemp(name) / "run" / "average")
    return made


@pytest.fixture
def cli(cli_with):
    return cli_with("froster.inference.commands", "froster.explain.commands")


def test_recognizer_explain_explains_the_middle_view_as_classify_sees_it(checkpoints, shared_dir):
    video = shared_dir / "videos" / "yoga.mp4"
    labels = LABELS.split(",")
    rec = Recognizer.from_checkpoint(checkpoints["froster"], use_cache=False, num_workers=0)
    result = rec.explain(video, labels)
    views = rec.load_video(video)
    assert (result.view, result.views) == (1, 3)
    assert torch.equal(result.frames, views[1].permute(0, 2, 3, 1))
    assert result.frames.dtype == torch.uint8 and result.frames.shape == (8, 32, 32, 3)
    classifier = rec.label_embeddings(labels)
    logits = rec.view_logits(rec.encode(views[1:2][None]), classifier)[0].cpu()
    torch.testing.assert_close(result.logits, logits, rtol=1e-5, atol=1e-5)  # unchanged by explaining
    assert result.label == labels[int(logits.argmax())]
    assert result.probability == pytest.approx(float(logits.softmax(-1).max()), abs=1e-5)
    assert result.maps.shape == (8, 4, 4) and result.pixel_maps.shape == (8, 32, 32)
    for maps in (result.maps, result.pixel_maps):
        assert torch.isfinite(maps).all() and (maps >= 0).all()
        assert float(maps.sum()) == pytest.approx(1.0, abs=1e-5)
    chosen = rec.explain(video, labels, label="CLEANING  pool", method="rollout", head_fusion="max")
    assert chosen.label == "cleaning pool" and (chosen.method, chosen.head_fusion) == ("rollout", "max")
    assert chosen.probability == pytest.approx(float(logits.softmax(-1)[2]), abs=1e-5)
    with pytest.raises(ValueError, match="label 'juggling' is not one of the 4 labels given "
                                         r"\(arm wrestling, yoga"):
        rec.explain(video, labels, label="juggling")
    assert rec.model.visual_kernel is None


def test_explain_writes_the_grid_gif_and_mp4_with_compared_models(cli, checkpoints, shared_dir, tmp_path):
    import av

    png, gif, mp4 = tmp_path / "maps.png", tmp_path / "maps.gif", tmp_path / "maps.mp4"
    code, out, err = cli("explain", shared_dir / "videos" / "yoga.mp4", "--labels", LABELS,
                         "--checkpoint", checkpoints["froster"], "--compare", "frozen",
                         "--compare", checkpoints["finetune"], "--label", "yoga", "-o", png,
                         "--gif", gif, "--mp4", mp4)
    assert code == 0, err
    assert "'yoga'" in err and "3 model(s)" in err and str(png) in err
    grid = Image.open(png)
    # frames + 3 models, 8 frames of 32 px enlarged to 128 px (the caption column on the left)
    assert grid.size == (230 + 8 * (128 + 4), 52 + 4 * (128 + 4) + 40)
    animated = Image.open(gif)
    assert animated.n_frames == 8 and animated.size[0] == 4 * (128 + 4) + 4
    with av.open(str(mp4)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 8
    # the rows are the three models, on the same frames
    pixels = torch.from_numpy(np.array(grid.convert("RGB"))).float()
    rows = [pixels[52 + r * 132 + 132:52 + r * 132 + 132 + 128, 230:230 + 128] for r in range(3)]
    assert not torch.equal(rows[0], rows[1]) and not torch.equal(rows[0], rows[2])


def test_explain_names_rows_and_defaults_the_output(cli, checkpoints, shared_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("explain", shared_dir / "videos" / "yoga.mp4", "--labels", LABELS,
                       "--model", "froster-tiny", "--pretrained", "none", "--method", "rollout")
    assert code == 0, err
    assert (tmp_path / "yoga_explain.png").is_file()


def test_explain_gives_the_same_clear_errors_as_predict(cli, checkpoints, shared_dir, tmp_path):
    clip = shared_dir / "videos" / "yoga.mp4"
    ckpt = checkpoints["froster"]
    (tmp_path / "empty.txt").write_text("\n")
    for labels in ((), ("--labels", " , "), ("--label-file", tmp_path / "empty.txt")):
        _, _, predicted = cli("predict", clip, *labels, "--checkpoint", ckpt)
        code, _, err = cli("explain", clip, *labels, "--checkpoint", ckpt)
        assert code == 2 and err == predicted.replace("froster predict:", "froster explain:")
        assert err.startswith("froster explain: error:") and "Traceback" not in err
    code, _, err = cli("explain", clip, "--labels", LABELS, "--checkpoint", ckpt, "--label", "juggling",
                       "-o", tmp_path / "m.png")
    assert code == 2 and err.startswith("froster explain: error: label 'juggling' is not one of")
    assert not (tmp_path / "m.png").exists()
    code, _, err = cli("explain", clip, "--labels", LABELS, "--checkpoint", ckpt, "-o", tmp_path / "m.txt")
    assert code == 2 and "ending with .png" in err
    code, _, err = cli("explain", clip, "--labels", LABELS, "--checkpoint", ckpt, "-o",
                       tmp_path / "no" / "m.png")
    assert code == 2 and "does not exist" in err
    code, _, err = cli("explain", clip, "--labels", LABELS, "--checkpoint", tmp_path / "nope")
    assert code == 2 and "config.json" in err

    # unreadable videos: the message predict gives for the same file
    (tmp_path / "notes.mp4").write_text("this is not a video")
    for bad in (tmp_path / "notes.mp4", tmp_path / "missing.mp4"):
        code, out, _ = cli("predict", bad, "--labels", LABELS, "--checkpoint", ckpt, "--format", "jsonl")
        message = json.loads(out)["error"]
        code, _, err = cli("explain", bad, "--labels", LABELS, "--checkpoint", ckpt, "-o", tmp_path / "x.png")
        assert code == 2 and err.strip() == f"froster explain: error: {message}"
        assert str(bad) in err and "Traceback" not in err


def test_compare_frozen_needs_the_weights_the_model_started_from(cli, checkpoints, shared_dir, tmp_path):
    clip = shared_dir / "videos" / "yoga.mp4"
    code, _, err = cli("explain", clip, "--labels", LABELS, "--checkpoint", checkpoints["random"],
                       "--compare", "frozen", "-o", tmp_path / "m.png")
    assert code == 2 and "records no pretrained CLIP weights" in err and "--frozen-pretrained" in err
    code, _, err = cli("explain", clip, "--labels", LABELS, "--checkpoint", checkpoints["random"],
                       "--compare", "frozen", "--frozen-pretrained", tmp_path / "gone.pt",
                       "-o", tmp_path / "m.png")
    assert code == 2 and "--compare frozen needs the froster-tiny weights" in err
    assert "CLIP weights file not found" in err and "Traceback" not in err


def test_explain_help_imports_only_the_standard_library():
    script = ("import sys, contextlib, io; before = set(sys.modules)\n"
              "import froster.cli as c; c.COMMAND_MODULES = ('froster.explain.commands',)\n"
              "out = io.StringIO()\n"
              "with contextlib.redirect_stdout(out):\n"
              "    try: c.main(['explain', '--help'])\n"
              "    except SystemExit: pass\n"
              "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
              "print(out.getvalue().startswith('usage:'),\n"
              "      sorted(new - set(sys.stdlib_module_names) - {'froster'}))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True []"
