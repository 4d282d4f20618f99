"""`froster demo` end to end: a quick smoke run (seconds) and the whole default demo (slow)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from froster.cli import main
from froster.demo.defaults import DEFAULT_TIME, FULL_TIME
from froster.demo.footprint import folder_bytes
from froster.demo.run import CHART_SIZE, DEMO_EPOCHS
from froster.demo.settings import DEFAULT_WORLD


def _check(out, quick: bool) -> dict:
    result = json.loads((out / "results.json").read_text())
    assert result["quick"] is quick
    assert [r["key"] for r in result["rows"]] == ["zero_shot", "fine_tune", "froster"]
    splits = result["settings"]["benchmark"]["train_splits"]
    for row in result["rows"]:
        for key in ("base", "novel", "hm"):
            assert 0.0 <= row[key] <= 100.0
        b, n = row["base"], row["novel"]
        assert row["hm"] == pytest.approx(0.0 if b + n == 0 else 2 * b * n / (b + n), abs=1e-6)
        assert len(row["splits"]) == (1 if row["key"] == "zero_shot" else splits)
        for key in ("base", "novel"):  # mean and std over the training splits
            values = np.array([s[key] for s in row["splits"]])
            assert row[key] == pytest.approx(values.mean(), abs=1e-6)
            assert row[f"{key}_std"] == pytest.approx(values.std(), abs=1e-6)
    assert f"mean ± std over {splits} training splits" in (out / "results.md").read_text()
    # the paper's conclusions, checked on the table's means and written with it
    checks = {c["key"]: c for c in result["conclusions"]}
    assert list(checks) == ["froster_hm", "froster_novel", "fine_tune_base"]
    rows = {r["key"]: r for r in result["rows"]}
    assert checks["froster_hm"]["held"] == (rows["froster"]["hm"] >= rows["fine_tune"]["hm"] + 2)
    assert checks["froster_novel"]["held"] == (rows["froster"]["novel"] > rows["fine_tune"]["novel"])
    assert checks["fine_tune_base"]["held"] == (rows["fine_tune"]["base"] > rows["zero_shot"]["base"])
    assert result["conclusions_held"] == all(c["held"] for c in checks.values())
    said = (out / "results.md").read_text()
    for c in checks.values():
        assert f"- {'held' if c['held'] else 'did not hold'}: {c['claim']}" in said
    assert result["timings"]["total"] > 0
    assert result["settings"]["engine"]["flip"] is False
    with Image.open(out / "results.png") as image:
        assert image.format == "PNG"
        assert image.size == CHART_SIZE
        image.verify()
    _check_attention(out, result, splits)
    return result


def _check_attention(out, result, splits: int) -> None:
    """Each row's attention scores: every method, mean and std over its models' splits."""
    attention = result["attention"]
    assert attention["videos"] == 6 * attention["per_class"]
    for row in result["rows"]:
        for method in attention["methods"]:
            scores = row["attention"][method]
            for key in ("mass", "pointing"):
                values = np.array(scores["splits"][key])
                assert len(values) == (1 if row["key"] == "zero_shot" else splits)
                assert ((0 <= values) & (values <= 100)).all()
                assert scores[key] == pytest.approx(values.mean(), abs=1e-6)
                assert scores[f"{key}_std"] == pytest.approx(values.std(), abs=1e-6)
            assert 0 < scores["chance_mass"] < scores["chance_pointing"] < 100
    assert "Do the models look at the object?" in (out / "results.md").read_text()
    with Image.open(out / "attention.png") as image:
        assert image.format == "PNG" and image.size[0] > 1000
        image.verify()


def test_demo_quick(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--output", str(out)]) == 0
    _check(out, quick=True)
    printed = capsys.readouterr().out
    assert "| method | base | novel | HM | splits |" in printed
    assert "Total time" in printed
    # footprint: no training state; one student per split, of the FROSTER row only (with
    # --quick's one epoch there is no average: the student is that epoch's export)
    left = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert not [p for p in left if "/checkpoints/" in p]
    assert sorted(p for p in left if p.endswith("model.safetensors")) == \
        [f"froster/train_{k}/epochs/epoch_001/model.safetensors" for k in (1, 2)]
    assert {"clip.safetensors", "results.json", "froster/train_1/log.jsonl",
            "fine_tune/train_1/eval_novel/metrics.json"} <= left
    # ... and the demo says how much it left, and where
    said = re.search(r"\[demo\] left ([\d.]+) MB in (\S+) \(", printed)
    assert said and said.group(2) == str(out.resolve())
    assert float(said.group(1)) == pytest.approx(folder_bytes(out) / 2**20, abs=0.06)
    assert folder_bytes(out) < 100 * 2**20


def test_demo_control_world_and_epochs_options(tmp_path, capsys):
    out = tmp_path / "control"
    assert main(["demo", "--quick", "--signature-prob", "0", "--epochs", "2", "--keep-runs",
                 "--output", str(out)]) == 0
    result = _check(out, quick=True)
    assert result["signature_prob"] == 0.0
    assert result["settings"]["benchmark"]["signature_prob"] == 0.0
    assert result["settings"]["pretrain"]["signature_prob"] == 0.0
    assert result["settings"]["engine"]["epochs"] == 2
    log = [json.loads(line) for line in (out / "froster" / "train_1" / "log.jsonl").open()]
    assert [e["epoch"] for e in log if e["kind"] == "epoch"] == [1, 2]
    for row in ("fine_tune", "froster"):  # --keep-runs keeps every run's state and exports
        run = out / row / "train_2"
        assert (run / "checkpoints/last.pt").is_file()
        assert sorted(p.name for p in (run / "epochs").iterdir()) == ["epoch_001", "epoch_002"]
    for bad, message in ((["--signature-prob", "1.5"], "between 0 and 1"),
                         (["--epochs", "0"], "epochs >= 1")):
        with pytest.raises(SystemExit):
            main(["demo", *bad])
        assert message in capsys.readouterr().err


def test_demo_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--help"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    flat = " ".join(printed.split())
    assert f"Takes {DEFAULT_TIME} on 2 CPU cores" in flat and f"({FULL_TIME})" in flat
    assert f"(default: {DEMO_EPOCHS};" in flat  # the help says the real default


@pytest.mark.slow
def test_demo_default_end_to_end(tmp_path, capsys):
    """The default demo, as a newcomer runs it: the paper's conclusions must hold."""
    out = tmp_path / "demo"
    assert main(["demo", "--output", str(out)]) == 0
    result = _check(out, quick=False)
    assert result["full"] is False
    assert result["settings"]["world"]["train_per_class"] == DEFAULT_WORLD.train_per_class
    assert result["settings"]["benchmark"]["train_splits"] == 3
    assert result["settings"]["torch_threads"]["runs"] == 1
    printed = capsys.readouterr().out
    assert printed.count("- held: ") == 3 and "did not hold" not in printed
    assert result["conclusions_held"], result["conclusions"]
