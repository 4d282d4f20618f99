"""`froster demo --temporal NAME` and `froster demo --backbones`: the paper's Table 3 on the
demo world (a quick smoke run here; the full run is long and reported in docs/demo.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from froster.cli import main
from froster.demo.backbones import CHART_SIZE
from froster.demo.run import demo_settings


def quick_backbones_demo(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--backbones", "adaptformer", "--output", str(out)]) == 0
    result = json.loads((out / "backbones.json").read_text())
    assert [(r["backbone"], r["key"]) for r in result["rows"]] == [
        ("adaptformer", "fine_tune"), ("adaptformer", "froster")]
    for row in result["rows"]:
        values = np.array([s["novel"] for s in row["splits"]])
        assert len(values) == result["settings"]["benchmark"]["train_splits"]
        assert row["novel"] == pytest.approx(values.mean()) and row["novel_std"] == pytest.approx(values.std())
        run = out / "backbones" / "adaptformer" / row["key"]
        config = yaml.safe_load((run / "train_1" / "config.yaml").read_text())
        assert config["temporal"] == "adaptformer" and config["distill"] == (row["key"] == "froster")
    fine, froster = result["rows"]
    table = (out / "backbones.md").read_text()
    assert "| backbone | fine-tuning base | novel | HM | FROSTER base | novel | HM | ΔHM |" in table
    assert f"| adaptformer | {fine['base']:.1f} ± {fine['base_std']:.1f} |" in table
    assert f"{froster['hm'] - fine['hm']:+.1f} |" in table
    printed = capsys.readouterr().out
    assert "| backbone |" in printed
    # footprint: no training state left; students only of the FROSTER rows
    left = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert not [p for p in left if "/checkpoints/" in p]
    students = {p.split("/")[2] for p in left if p.endswith("model.safetensors") and "/" in p}
    assert students == {"froster"}
    assert "[backbones] left " in printed and str(out.resolve()) in printed
    with Image.open(out / "backbones.png") as image:
        assert image.size == CHART_SIZE
        image.verify()
    return out, result


def test_backbones_demo_quick_and_where_it_stopped(tmp_path, monkeypatch, capsys):
    """The table, JSON and chart of a quick run; then a finished row is read back from its
    row.json when the settings match, and run again when they do not."""
    import froster.demo.backbones as demo_backbones
    out, first = quick_backbones_demo(tmp_path, capsys)
    ran = []

    def run_row(cfg, key, *args):
        ran.append(key)
        return {"key": key, "method": key, "base": 1.0, "novel": 2.0, "hm": 1.3,
                "base_std": 0.0, "novel_std": 0.0, "splits": first["rows"][0]["splits"],
                "seconds": 0.0}
    monkeypatch.setattr(demo_backbones, "run_row", run_row)
    pretrained = []
    real_pretrain = demo_backbones.pretrain
    monkeypatch.setattr(demo_backbones, "pretrain",
                        lambda *args, **kwargs: pretrained.append(1) or real_pretrain(*args, **kwargs))
    again = demo_backbones.run_backbones_demo(out, quick=True, names=["adaptformer"], log=lambda m: None)
    assert ran == [] and again["rows"] == first["rows"]
    assert pretrained == []  # the CLIP pretrained with the same settings is reused
    saved = out / "backbones" / "adaptformer" / "froster" / "row.json"
    kept = json.loads(saved.read_text())
    kept["settings"]["engine"]["lr"] *= 2  # as if run with other settings
    saved.write_text(json.dumps(kept))
    third = demo_backbones.run_backbones_demo(out, quick=True, names=["adaptformer"], log=lambda m: None)
    assert ran == ["froster"] and third["rows"][0] == first["rows"][0]
    assert third["rows"][1]["base"] == 1.0
    # another world (benchmark and pretraining): pretrain again and run every row again
    demo_backbones.run_backbones_demo(out, quick=True, names=["adaptformer"], signature_prob=0.3,
                                      log=lambda m: None)
    assert pretrained == [1] and ran == ["froster", "fine_tune", "froster"]


def test_demo_temporal_option_reaches_the_student(monkeypatch):
    import froster.demo.run as run
    seen = {}
    monkeypatch.setattr(run, "run_demo", lambda out, **kwargs: seen.update(kwargs))
    assert main(["demo", "--quick", "--temporal", "st_adapter"]) == 0
    assert seen["temporal"] == "st_adapter"
    assert demo_settings(quick=True, temporal="st_adapter")[2].temporal == "st_adapter"
    assert demo_settings()[2].temporal == "neighbor"  # the default demo is unchanged


def test_demo_rejects_unknown_backbones(capsys):
    assert main(["demo", "--backbones", "aim,lstm"]) == 2
    assert "unknown backbone(s) lstm" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--temporal", "lstm"])
    assert "invalid choice: 'lstm'" in capsys.readouterr().err
