import json

import pytest
import torch

from froster.checkpoint import export_student, load_student
from froster.student_spec import StudentSpec
from froster.model import VideoCLIP


def test_export_and_load_round_trip(tiny_clip, tmp_path):
    clip, _ = tiny_clip
    student = VideoCLIP(clip, temporal="neighbor", neighbor_padding="masked")
    spec = StudentSpec(model="froster-tiny", pretrained=None, neighbor_padding="masked")
    export_student(student, spec, tmp_path / "ckpt", extra={"epoch": 2})
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors"]
    loaded, tokenizer, config = load_student(tmp_path / "ckpt")
    assert config["neighbor_padding"] == "masked" and config["extra"] == {"epoch": 2}
    assert loaded.neighbor_padding == "masked"
    video = torch.randn(1, 3, 3, 32, 32)
    assert torch.allclose(loaded.encode_frames(video), student.encode_frames(video), atol=1e-6)
    tokens = tokenizer(["a video of a cat"])
    assert torch.allclose(loaded.encode_text(tokens), student.encode_text(tokens), atol=1e-6)


def test_missing_or_broken_checkpoint_names_the_file(tmp_path, tiny_clip):
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_student(tmp_path)
    clip, _ = tiny_clip
    export_student(VideoCLIP(clip), StudentSpec(model="froster-tiny", pretrained=None), tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json is not valid JSON"):
        load_student(tmp_path)


def test_config_records_quick_gelu(tiny_clip, tmp_path):
    from froster.clip import create_clip
    clip, _ = create_clip("froster-tiny", quick_gelu=True)
    export_student(VideoCLIP(clip), StudentSpec(model="froster-tiny", pretrained=None), tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["quick_gelu"] is True
    loaded, _, _ = load_student(tmp_path)
    assert type(loaded.clip.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
