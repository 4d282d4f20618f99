"""The demo's settings (default, --full, --quick), its conclusion checks, and the merge of a
row's runs made side by side."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from froster.cli import main
from froster.config import Config
from froster.demo.benchmark import BenchmarkSpec
from froster.demo.conclusions import all_held, check_conclusions, conclusions_text
from froster.demo.in_processes import merge_b2n
from froster.demo.pretrain import PretrainConfig
from froster.demo.settings import DEFAULT_WORLD, FULL_WORLD, demo_settings
from froster.engine.protocols import mean_std


def test_full_is_the_protocol_of_docs_demo_section_4():
    """--full: the settings with which docs/demo.md's section 4 table was measured, written out
    here as that code had them (git 4621c59, run.demo_settings), field by field."""
    spec, pre, cfg = demo_settings(full=True, seed=3)
    assert spec == BenchmarkSpec(train_per_class=64, test_per_class=100, train_splits=3, seed=3)
    assert pre == PretrainConfig(steps=1000, seed=3)
    assert asdict(pre)["scenes"] == 1500 and pre.batch_size == 128 and pre.warmup_steps == 50
    then = Config(model="froster-demo", num_frames=8, sampling_rate=2, target_fps=8.0,
                  sampling="uniform", test_views=1, flip=False, batch_size=16, lr=1e-3,
                  warmup_epochs=2.0, epochs=8, average_from_epoch=2, num_workers=1,
                  precision="fp32", progress=False, device="cpu", eval_batch_size=16,
                  log_every=1000, seed=3, temporal="neighbor")
    # overwrite=True came later (issue 22's refusal): a rerun of the demo trains afresh
    assert cfg.to_dict() == then.to_dict() | {"overwrite": True}
    assert FULL_WORLD.parallel is False  # one run after the other, in the calling process


def test_the_default_is_a_smaller_world_with_the_same_recipe():
    spec, pre, cfg = demo_settings(seed=1)
    full_spec, full_pre, full_cfg = demo_settings(full=True, seed=1)
    assert (spec.train_per_class, spec.test_per_class, spec.train_splits) == \
        (DEFAULT_WORLD.train_per_class, DEFAULT_WORLD.test_per_class, 3)
    assert spec.train_per_class < full_spec.train_per_class
    assert spec.test_per_class < full_spec.test_per_class
    assert pre.steps == DEFAULT_WORLD.pretrain_steps < full_pre.steps
    # the world itself (frames, colours, trails) and the pretraining corpus are the same
    same = ("num_frames", "size", "fps", "trail_prob", "signature_prob", "seed")
    assert all(getattr(spec, k) == getattr(full_spec, k) for k in same)
    assert (pre.scenes, pre.frames_per_scene) == (full_pre.scenes, full_pre.frames_per_scene)
    assert (pre.lr, full_pre.lr) == (2e-3, 1e-3)  # fewer, larger pretraining steps
    # the engine's recipe too, but for the paper's base-to-novel epochs (12; --full: 8) and
    # where the runs are made: single-threaded processes that decode their own clips, on a
    # GPU when there is one
    differ = {k for k, v in cfg.to_dict().items() if full_cfg.to_dict()[k] != v}
    assert differ == {"num_workers", "device", "epochs"}
    assert (cfg.epochs, full_cfg.epochs) == (12, 8)
    assert (cfg.num_workers, cfg.device) == (0, "auto") and DEFAULT_WORLD.parallel


def test_quick_and_full_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--quick", "--full"])
    assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(ValueError, match="exclude"):
        demo_settings(quick=True, full=True)


def test_demo_command_passes_full(monkeypatch):
    import froster.demo.run as run
    seen = {}
    monkeypatch.setattr(run, "run_demo", lambda out, **kwargs: seen.update(kwargs))
    assert main(["demo", "--full", "--output", "x"]) == 0 and seen["full"] is True
    assert main(["demo", "--output", "x"]) == 0 and seen["full"] is False


def _rows(zero_shot, fine_tune, froster):
    keys = ("zero_shot", "fine_tune", "froster")
    return [{"key": k, "base": b, "novel": n, "hm": 2 * b * n / (b + n)}
            for k, (b, n) in zip(keys, (zero_shot, fine_tune, froster))]


def test_conclusions_on_the_full_table_hold():
    """docs/demo.md section 4's table (means over the splits)."""
    checks = check_conclusions(_rows((44.33, 53.5), (67.2, 46.7), (67.8, 51.8)))
    assert [c["held"] for c in checks] == [True, True, True] and all_held(checks)
    text = conclusions_text(checks)
    assert text.count("- held: ") == 3 and "did not hold" not in text
    assert "FROSTER's HM (58.7) >= fine-tuning's (55.1) + 2" in text


def test_conclusions_that_fail_say_so():
    # FROSTER 1 point of HM above fine-tuning, novel equal, fine-tuning below frozen CLIP on base
    rows = _rows((60.0, 50.0), (55.0, 50.0), (60.0, 50.0))
    rows[2]["hm"] = rows[1]["hm"] + 1.0
    checks = check_conclusions(rows)
    assert [c["held"] for c in checks] == [False, False, False] and not all_held(checks)
    text = conclusions_text(checks)
    assert text.count("- did not hold: ") == 3
    assert "FROSTER's novel (50.0) > fine-tuning's (50.0)" in text
    assert "fine-tuning's base (55.0) > frozen CLIP's (60.0)" in text
    # exactly the margin holds; a hair below does not
    rows[2]["hm"] = rows[1]["hm"] + 2.0
    assert check_conclusions(rows)[0]["held"]
    rows[2]["hm"] = rows[1]["hm"] + 1.999
    assert not check_conclusions(rows)[0]["held"]
    # only the failing one says so
    rows = _rows((44.0, 53.0), (67.0, 46.0), (75.0, 45.9))
    text = conclusions_text(check_conclusions(rows))
    assert text.count("- held: ") == 2 and "- did not hold: FROSTER's novel" in text


def _split_result(name, base, novel, failed=0):
    row = {"split": name, "base": base, "novel": novel, "hm": 2 * base * novel / (base + novel),
           "base_videos": "300/300", "novel_videos": "300/300"}
    record = {"files": {f"{name}.csv": {"path": f"{name}.csv", "sha256": name},
                        "val.csv": {"path": "val.csv", "sha256": "v"}},
              "videos": {"evaluated": 600 - failed, "total": 600, "failed": failed, "fallback": 0}}
    return {"protocol": "base-to-novel", "rows": [row], "mean": {}, "std": {}, "record": record,
            "config": {"test_views": 1, "test_crops": 1}}


def test_a_rows_splits_run_apart_merge_as_run_b2n_computes_them():
    parts = [_split_result("train_1", 60.0, 50.0), _split_result("train_2", 64.0, 40.0, failed=2),
             _split_result("train_3", 62.0, 47.0)]
    merged = merge_b2n(parts)
    assert [r["split"] for r in merged["rows"]] == ["train_1", "train_2", "train_3"]
    for key in ("base", "novel", "hm"):
        mean, std = mean_std(r[key] for p in parts for r in p["rows"])
        assert merged["mean"][key] == pytest.approx(mean) and merged["std"][key] == pytest.approx(std)
    assert merged["mean"]["base"] == pytest.approx(62.0)
    assert set(merged["record"]["files"]) == {"train_1.csv", "train_2.csv", "train_3.csv", "val.csv"}
    videos = merged["record"]["videos"]
    assert (videos["evaluated"], videos["total"], videos["failed"]) == (1798, 1800, 2)
    assert videos["failed_file"] == "failed_videos.txt"
