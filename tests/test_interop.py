"""Other projects' checkpoints: files in the FROSTER reference's / Open-VCLIP's / ViFi-CLIP's
layouts (built from a tiny QuickGELU CLIP, keys named as those projects name them) load
with the same logits, convert both ways, and every bad file gets its message."""

import argparse
import copy
import json
import sys

import pytest
import torch
import yaml
from _foreign import (reference_cfg, reference_model_state, reference_training_checkpoint,
                      swa_checkpoint, vificlip_checkpoint)
from safetensors.torch import load_file

from froster.checkpoint import export_student, load_student
from froster.cli import main
from froster.clip import create_clip, resolve_quick_gelu
from froster.interop import read_checkpoint
from froster.model import VideoCLIP
from froster.student_spec import StudentSpec

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def source():
    """The model every file is written from: a tiny CLIP with OpenAI's QuickGELU."""
    torch.manual_seed(0)
    clip, tokenizer = create_clip("froster-tiny", quick_gelu=True)
    torch.manual_seed(1)
    teacher, _ = create_clip("froster-tiny", quick_gelu=True)
    return clip, teacher, tokenizer


def logits(student: VideoCLIP, tokenizer) -> torch.Tensor:
    torch.manual_seed(5)
    video = torch.randn(2, 4, 3, 32, 32)
    tokens = tokenizer(["a person juggling", "a person abseiling", "rowing"])[:, None]
    with torch.no_grad():
        return student.logits(student.encode_frames(video), student.encode_classes(tokens))


def save(obj, path):
    torch.save(obj, path)
    return path


REFERENCE_LAYOUTS = {
    # name: (file contents from (clip, teacher), temporal froster should use, what it says)
    "training checkpoint, DDP, cfg, teacher and heads": (
        lambda c, t: reference_training_checkpoint(c, reference_cfg(), teacher=t, ddp=True),
        "neighbor", "FROSTER reference checkpoint (epoch 12)"),
    "training checkpoint without cfg or DDP prefix": (
        lambda c, t: reference_training_checkpoint(c, None, teacher=t),
        "neighbor", "FROSTER reference checkpoint (epoch 12)"),
    "weight-averaged swa file (model_state only)": (
        lambda c, t: swa_checkpoint(c), "neighbor", "PySlowFast (FROSTER / Open-VCLIP)"),
    "Open-VCLIP run (no heads, no teacher)": (
        lambda c, t: reference_training_checkpoint(c, reference_cfg(distill=False), heads=False),
        "neighbor", "Open-VCLIP checkpoint"),
    "per-frame CLIP (TEMPORAL_MODELING_TYPE None)": (
        lambda c, t: reference_training_checkpoint(c, reference_cfg(temporal=None), teacher=t),
        "mean", "FROSTER reference checkpoint"),
}


@pytest.mark.parametrize("layout", REFERENCE_LAYOUTS)
def test_reference_checkpoints_load_with_the_source_logits(layout, source, tmp_path, capsys):
    clip, teacher, tokenizer = source
    build, temporal, kind = REFERENCE_LAYOUTS[layout]
    path = save(build(clip, teacher), tmp_path / "checkpoint.pyth")
    student, _, config = load_student(path)
    assert student.temporal == temporal
    expected = logits(VideoCLIP(clip, temporal), tokenizer)
    torch.testing.assert_close(logits(student, tokenizer), expected, rtol=0, atol=1e-6)
    assert type(student.clip.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
    said = capsys.readouterr().err.splitlines()
    assert said[0].startswith(f"froster: {path}: {kind}") and "froster-tiny" in said[0]
    assert config["extra"]["source"]["format"] == "froster-ref"


def test_what_was_recognised_is_said_in_one_line(source, tmp_path, capsys):
    clip, teacher, _ = source
    path = save(reference_training_checkpoint(clip, reference_cfg(arch="vitb16"), teacher=teacher,
                                              ddp=True), tmp_path / "checkpoint_epoch_00012.pyth")
    _, _, config = load_student(path)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == (f"froster: {path}: FROSTER reference checkpoint (epoch 12), froster-tiny "
                        f"(QuickGELU), neighbour attention (VCLIP), 8 frames, teacher skipped, "
                        f"FROSTER heads dropped")
    # the config's MODEL.ARCH is a hint: the weights win, with a one-line warning
    assert lines[1:] == [f"froster: warning: {path}: its config names the architecture 'vitb16' "
                         f"but the weights are froster-tiny; using froster-tiny"]
    assert config["extra"]["config"] == {"num_frames": 8, "sampling_rate": 16, "target_fps": 30,
                                         "test_views": 3, "test_crops": 1}


def fine_tuned(clip):
    """`clip` after 'fine-tuning': every weight moved except the token embedding, which
    ViFi-CLIP keeps frozen (and does not save)."""
    tuned = copy.deepcopy(clip)
    torch.manual_seed(3)
    with torch.no_grad():
        for name, p in tuned.named_parameters():
            if name != "token_embedding.weight":
                p.add_(torch.randn_like(p) * 0.02)
    return tuned


@pytest.mark.parametrize("with_config, ddp", [(True, True), (False, False)])
def test_vificlip_checkpoints_load_with_the_source_logits(with_config, ddp, source, tmp_path):
    base, _, tokenizer = source
    tuned = fine_tuned(base)
    base_file = save(base.state_dict(), tmp_path / "ViT-base.pt")
    path = save(vificlip_checkpoint(tuned, tokenizer, config=with_config, ddp=ddp),
                tmp_path / "ckpt_epoch_9.pth")
    student, _, config = load_student(path, base_clip=str(base_file))
    assert student.temporal == "mean"
    torch.testing.assert_close(logits(student, tokenizer), logits(VideoCLIP(tuned, "mean"), tokenizer),
                               rtol=0, atol=1e-6)
    assert config["extra"]["config"] == ({"num_frames": 32} if with_config else {})


def test_vificlip_needs_the_clip_it_was_tuned_from(source, tmp_path):
    base, _, tokenizer = source
    path = save(vificlip_checkpoint(fine_tuned(base), tokenizer), tmp_path / "vifi.pth")
    torch.manual_seed(9)
    other = save(create_clip("froster-tiny", quick_gelu=True)[0].state_dict(), tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"other.pt is not the CLIP that .*vifi.pth was fine-tuned"):
        read_checkpoint(path, base_clip=str(other))
    with pytest.raises(ValueError, match="has no token embedding.*--clip openai"):
        read_checkpoint(path, base_clip=None)
    prompting = vificlip_checkpoint(base, tokenizer)
    prompting["model"]["module.prompt_learner.ctx"] = torch.zeros(4, 64)
    with pytest.raises(ValueError, match="prompt-learning ViFi-CLIP model"):
        read_checkpoint(save(prompting, tmp_path / "vpt.pth"), base_clip=str(other))


def test_reading_is_weights_only(source, tmp_path, monkeypatch):
    clip, teacher, _ = source
    path = save(swa_checkpoint(clip), tmp_path / "swa.pth")
    calls = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or real_load(*a, **k))
    read_checkpoint(path)
    assert calls and all(k.get("weights_only") is True for k in calls)


class RunsCode:
    """What a malicious pickle does: call a function while being unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_file_that_needs_unpickling_is_refused_unless_trusted(source, tmp_path):
    clip, _, tokenizer = source
    marker = tmp_path / "code-ran"
    evil = swa_checkpoint(clip) | {"payload": RunsCode(marker)}
    path = save(evil, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match=r"evil.pth was not loaded: it holds Python objects .*"
                                         r"Unsupported global: GLOBAL io.open.*--trust-pickle"):
        read_checkpoint(path)
    assert not marker.exists()  # nothing in the file ran
    # a harmless but non-tensor object (checkpoints that save their argparse args)
    path = save(swa_checkpoint(clip) | {"args": argparse.Namespace(lr=1e-3)}, tmp_path / "args.pth")
    with pytest.raises(ValueError, match="argparse.Namespace"):
        read_checkpoint(path)
    student, _, _ = load_student(path, trust_pickle=True)
    torch.testing.assert_close(logits(student, tokenizer), logits(VideoCLIP(clip), tokenizer),
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize("how", ["saved from CUDA tensors", "legacy (pre-zip) torch.save format"])
def test_files_from_gpus_and_old_torch_read_on_cpu(how, source, tmp_path):
    """PySlowFast saves the GPU model's state dict: its storages are tagged cuda:0."""
    from unittest import mock
    clip, _, tokenizer = source
    path = tmp_path / "swa.pth"
    if how.startswith("saved from CUDA"):
        with mock.patch.object(torch.serialization, "location_tag", lambda storage: "cuda:0"):
            torch.save(swa_checkpoint(clip), path)
    else:
        torch.save(swa_checkpoint(clip), path, _use_new_zipfile_serialization=False)
    student, _, _ = load_student(path)
    torch.testing.assert_close(logits(student, tokenizer), logits(VideoCLIP(clip), tokenizer),
                               rtol=0, atol=1e-6)


def test_vificlip_config_object_is_read_without_yacs(source, tmp_path):
    """ViFi-CLIP saves a yacs CfgNode: read as a plain dict by the weights-only loader."""
    base, _, tokenizer = source
    path = save(vificlip_checkpoint(base, tokenizer), tmp_path / "vifi.pth")
    for name in ("yacs.config", "yacs"):
        sys.modules.pop(name, None)  # as on a machine without yacs
    imported = read_checkpoint(path, base_clip=str(save(base.state_dict(), tmp_path / "b.pt")))
    assert imported.config == {"num_frames": 32} and imported.kind == "ViFi-CLIP checkpoint (epoch 9)"


def broken(source, edit):
    clip, teacher, _ = source
    obj = reference_training_checkpoint(clip, reference_cfg(), teacher=teacher)
    edit(obj)
    return obj


BAD_FILES = {
    "not a torch file": (lambda s, p: p.write_text("hello"), "is not a PyTorch checkpoint"),
    "a dict of something else": (lambda s, p: save({"weights": [1, 2]}, p),
                                 r"is not a checkpoint froster can read: it holds a dict with 1 "
                                 r"keys \(weights\)"),
    "plain CLIP weights": (lambda s, p: save(s[0].state_dict(), p),
                           "holds plain CLIP weights.*--pretrained"),
    "a missing block weight": (
        lambda s, p: save(broken(s, lambda o: o["model_state"].pop("model.visual.ln_post.weight")), p),
        r"does not fit froster-tiny with temporal=neighbor: 1 missing weights .*visual.ln_post.weight"),
    "a missing essential weight": (
        lambda s, p: save(broken(s, lambda o: o["model_state"].pop("model.visual.conv1.weight")), p),
        "lacks CLIP weights that every ViT CLIP has: visual.conv1.weight"),
    "shapes of no known architecture": (
        lambda s, p: save(broken(s, lambda o: o["model_state"].update(
            {"model.visual.conv1.weight": torch.zeros(64, 3, 4, 4)})), p),
        r"the weights' shapes \(image 16 px, patch 4, vision width 64.*fit no CLIP architecture"),
    "a temporal type froster lacks": (
        lambda s, p: save(broken(s, lambda o: o.update(cfg=reference_cfg("channel_shift"))), p),
        "froster does not have the temporal type 'channel_shift' \\(temporal channel shift"),
    "the 2-neighbour VCLIP variant": (
        lambda s, p: save(broken(s, lambda o: o.update(cfg=reference_cfg("expand_temporal_view_step2"))), p),
        "froster does not have the temporal type 'expand_temporal_view_step2'"),
    "a learned classifier head": (
        lambda s, p: save(broken(s, lambda o: o["model_state"].update(head=torch.zeros(3, 32))), p),
        "holds weights froster cannot use: head \\(TUNE_HEAD's learned classifier\\)"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files_get_a_message_naming_the_file(case, source, tmp_path, capsys):
    write, message = BAD_FILES[case]
    path = tmp_path / "bad.pth"
    write(source, path)
    with pytest.raises(ValueError, match=message) as err:
        load_student(path)
    assert str(path) in str(err.value)
    # the CLI says the same in one line, exit status 2
    assert main(["import", str(path), "-o", str(tmp_path / "out")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("froster import: error: ") and str(path) in lines[-1]
    assert not (tmp_path / "out").exists()


def test_every_reference_temporal_type_is_a_froster_backbone():
    from froster.backbones import names
    from froster.interop.temporal_types import TO_FROSTER

    assert set(TO_FROSTER.values()) <= set(names())


@pytest.mark.parametrize("ours, theirs", [("aim", "aim"), ("st_adapter", "stadapt_zeroinit"),
                                          ("adaptformer", "adapter")])
def test_adapter_backbones_import(ours, theirs, source, tmp_path):
    """Table 3 backbones: the adapters sit in the visual blocks under the reference's names."""
    clip, _, tokenizer = source
    student = VideoCLIP(copy.deepcopy(clip), ours)
    torch.manual_seed(6)
    with torch.no_grad():  # the adapters start at zero; move them so that they count
        for name, p in student.named_parameters():
            if "adapter" in name or "stadapt" in name:
                p.add_(torch.randn_like(p) * 0.05)
    expected = logits(student, tokenizer)
    for cfg in (reference_cfg(theirs), None):  # the type from the cfg, or from the keys
        path = save(reference_training_checkpoint(student.clip, cfg, ddp=True), tmp_path / "a.pyth")
        loaded, _, _ = load_student(path, announce=False)
        assert loaded.temporal == ours
        torch.testing.assert_close(logits(loaded, tokenizer), expected, rtol=0, atol=1e-6)
    assert main(["export", str(path), str(tmp_path / "back.pth"), "--to", "reference"]) == 0
    written = torch.load(tmp_path / "back.pth", weights_only=True)
    assert yaml.safe_load(written["cfg"])["MODEL"]["TEMPORAL_MODELING_TYPE"] == theirs
    assert read_checkpoint(tmp_path / "back.pth").spec.temporal == ours


def test_import_writes_a_pickle_free_folder(source, tmp_path, capsys):
    clip, teacher, tokenizer = source
    path = save(reference_training_checkpoint(clip, reference_cfg(), teacher=teacher, ddp=True),
                tmp_path / "checkpoint_epoch_00012.pyth")
    assert main(["import", str(path), "-o", str(tmp_path / "k400")]) == 0
    out = capsys.readouterr().out
    assert "FROSTER heads kept" in out and "projectors.safetensors" in out
    names = sorted(p.name for p in (tmp_path / "k400").iterdir())
    assert names == ["config.json", "model.safetensors", "projectors.safetensors"]
    student, _, config = load_student(tmp_path / "k400")
    torch.testing.assert_close(logits(student, tokenizer), logits(VideoCLIP(clip), tokenizer),
                               rtol=0, atol=1e-6)
    assert config["extra"]["source"]["kind"] == "FROSTER reference checkpoint (epoch 12)"
    heads = load_file(tmp_path / "k400/projectors.safetensors")
    original = reference_model_state(clip)
    assert torch.equal(heads["projector_v.fc2.weight"], original["projector_v.2.weight"])
    # --format says what the file must be
    assert main(["import", str(path), "-o", str(tmp_path / "x"), "--format", "vificlip"]) == 2
    assert "is not a ViFi-CLIP checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("temporal", ["neighbor", "mean"])
def test_export_to_the_reference_layout_round_trips(temporal, source, tmp_path, capsys):
    clip, _, tokenizer = source
    student = VideoCLIP(clip, temporal)
    export_student(student, StudentSpec(model="froster-tiny", pretrained=None, temporal=temporal),
                   tmp_path / "ours", {"config": {"num_frames": 8, "sampling_rate": 16}})
    out = tmp_path / "reference/swa_2_22.pth"
    assert main(["export", str(tmp_path / "ours"), str(out), "--to", "reference"]) == 0
    assert "TEST.CUSTOM_LOAD_FILE" in capsys.readouterr().out
    # what the reference's test_net reads: torch.load(f)["model_state"], model.* names
    written = torch.load(out, weights_only=True)
    assert set(written["model_state"]) == {f"model.{k}" for k in clip.state_dict()}
    cfg = yaml.safe_load(written["cfg"])
    assert cfg["MODEL"]["TEMPORAL_MODELING_TYPE"] == {"neighbor": "expand_temporal_view",
                                                      "mean": None}[temporal]
    assert cfg["DATA"] == {"NUM_FRAMES": 8, "SAMPLING_RATE": 16}
    back = read_checkpoint(out)
    assert back.spec.temporal == temporal and back.spec.model == "froster-tiny"
    ours = read_checkpoint(tmp_path / "ours")
    assert back.weights.keys() == ours.weights.keys()
    assert all(torch.equal(back.weights[k], ours.weights[k]) for k in ours.weights)
    reloaded, _, _ = load_student(out)
    torch.testing.assert_close(logits(reloaded, tokenizer), logits(student, tokenizer), rtol=0, atol=0)


def test_open_vclip_patching_interpolates_with_clip(source, tmp_path, capsys):
    """Open-VCLIP's test_net: w = r * CLIP + (1 - r) * checkpoint for every CLIP weight."""
    base, _, tokenizer = source
    tuned = fine_tuned(base)
    path = save(reference_training_checkpoint(tuned, reference_cfg(distill=False), heads=False),
                tmp_path / "openvclip.pyth")
    base_file = save(base.state_dict(), tmp_path / "ViT-B-16.pt")
    assert main(["import", str(path), "-o", str(tmp_path / "ovc"), "--clip", str(base_file),
                 "--patch-ratio", "0.25"]) == 0
    assert "interpolated with" in capsys.readouterr().out
    patched, _, _ = load_student(tmp_path / "ovc")
    tuned_state, base_state = tuned.state_dict(), base.state_dict()
    for key, value in patched.clip.state_dict().items():
        torch.testing.assert_close(value, 0.25 * base_state[key] + 0.75 * tuned_state[key])
    with pytest.raises(ValueError, match="patching ratio must be in"):
        read_checkpoint(path, base_clip=str(base_file), patch_ratio=1.5)
    assert "Open-VCLIP tests it interpolated with CLIP" in read_checkpoint(path).describe()


def test_export_to_reference_keeps_the_heads(source, tmp_path, capsys):
    clip, teacher, _ = source
    original = reference_training_checkpoint(clip, reference_cfg(), teacher=teacher)
    path = save(original, tmp_path / "ref.pyth")
    assert main(["import", str(path), "-o", str(tmp_path / "ours")]) == 0
    assert main(["export", str(tmp_path / "ours"), str(tmp_path / "back.pth"), "--to",
                 "reference"]) == 0
    back = torch.load(tmp_path / "back.pth", weights_only=True)["model_state"]
    expected = {k: v for k, v in original["model_state"].items() if not k.startswith("raw_model.")}
    assert back.keys() == expected.keys()
    assert all(torch.equal(back[k], expected[k]) for k in expected)
    # a path that is not .pth is refused before anything is written
    assert main(["export", str(tmp_path / "ours"), str(tmp_path / "folder"), "--to", "reference"]) == 2
    assert "give OUTPUT as a .pth file" in capsys.readouterr().err


def test_froster_training_state_reads_with_its_heads(source, tmp_path):
    from froster.distill import Froster
    clip, _, tokenizer = source
    torch.manual_seed(2)
    model = Froster(VideoCLIP(copy.deepcopy(clip)))
    config = {"model": "froster-tiny", "pretrained": "none", "quick_gelu": True,
              "temporal": "neighbor", "neighbor_padding": "zeros", "num_frames": 2}
    path = save({"model": model.state_dict(), "optimizer": {}, "scaler": {}, "epoch": 3,
                 "step": 9, "config": config}, tmp_path / "last.pt")
    imported = read_checkpoint(path)
    assert imported.kind == "froster training checkpoint (after epoch 3)"
    assert torch.equal(imported.heads["projector_t.fc1.weight"], model.projector_t.fc1.weight)
    student, _, _ = load_student(path)
    torch.testing.assert_close(logits(student, tokenizer), logits(model.student, tokenizer),
                               rtol=0, atol=0)


def test_quick_gelu_is_resolved_from_the_weights_source(tmp_path):
    """A run's config keeps quick_gelu unset when the tag decides it (OpenAI: QuickGELU)."""
    assert resolve_quick_gelu("ViT-B-16", "openai", None) is True
    assert resolve_quick_gelu("ViT-B-16", "openai", False) is False
    assert resolve_quick_gelu("froster-tiny", "none", None) is False
    plain = save({"x": torch.zeros(1)}, tmp_path / "weights.pt")
    assert resolve_quick_gelu("ViT-B-16", str(plain), None) is False
    with pytest.raises(ValueError, match="missing.pt.*quick_gelu=true"):
        resolve_quick_gelu("ViT-B-16", str(tmp_path / "missing.pt"), None)
    scripted = torch.jit.script(torch.nn.Linear(2, 2))
    torch.jit.save(scripted, str(tmp_path / "archive.pt"))
    assert resolve_quick_gelu("ViT-B-16", str(tmp_path / "archive.pt"), None) is True
    with pytest.raises(ValueError, match="is a TorchScript archive.*--pretrained"):
        read_checkpoint(tmp_path / "archive.pt")


def test_predict_takes_a_released_checkpoint_file(source, tmp_path, capsys):
    from froster.data.synthetic import write_video
    clip, teacher, _ = source
    path = save(reference_training_checkpoint(clip, reference_cfg(frames=4), teacher=teacher,
                                              ddp=True), tmp_path / "checkpoint.pyth")
    video = tmp_path / "clip.mp4"
    write_video(video, 40, width=48, height=32)
    assert main(["predict", str(video), "--labels", "juggling,abseiling", "--checkpoint", str(path),
                 "--device", "cpu", "--workers", "0", "--no-cache", "--format", "jsonl",
                 "--no-progress"]) == 0
    captured = capsys.readouterr()
    row = json.loads(captured.out.splitlines()[0])
    assert row["status"] == "ok"
    assert sorted(p["label"] for p in row["predictions"]) == ["abseiling", "juggling"]
    assert "FROSTER reference checkpoint" in captured.err
    from froster.inference.api import Recognizer
    recognizer = Recognizer.from_checkpoint(path, device="cpu", use_cache=False)
    assert recognizer.view.num_frames == 4  # the checkpoint's DATA.NUM_FRAMES
    assert recognizer.identity.startswith("imported:neighbor:")
