"""The reproduction record of train / eval / benchmark runs, its one-line summary and
`froster diff`, on tiny generated runs."""

import hashlib
import json
import platform
import subprocess
import sys
from pathlib import Path

import av
import open_clip
import pytest
import torch
from _engine_data import TINY, tiny_dataset, write_list

import froster
from froster.cli import main
from froster.engine import evaluate as evaluate_module
from froster.engine.record import diff_records, load_record

pytestmark = pytest.mark.usefixtures("one_thread")


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def args(data, output_dir, **overrides):
    values = TINY | data | {"output_dir": str(output_dir)} | overrides
    return [f"{k}={v}" for k, v in values.items()]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 2-epoch training run (evaluated after epoch 2 and averaged) on 6 tiny videos."""
    root = tmp_path_factory.mktemp("record")
    data = tiny_dataset(root / "data", per_class=2, num_classes=3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        # keep_epochs=1: the evaluation after epoch 2 has that epoch's export to name
        assert main(["train", *args(data, root / "run", epochs=2, eval_every=2,
                                    keep_epochs=1)]) == 0
    finally:
        torch.set_num_threads(threads)
    return data, root / "run"


def checkout_commit() -> str | None:
    package = Path(froster.__file__).parent
    done = subprocess.run(["git", "-C", str(package), "rev-parse", "HEAD"], capture_output=True,
                          text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def test_training_run_writes_its_record(run):
    data, folder = run
    record = json.loads((folder / "record.json").read_text())
    assert record["froster"]["version"] == froster.__version__
    commit = checkout_commit()
    if commit:  # the tests run from a git checkout: the record names its commit
        assert record["froster"]["commit"] == commit
    sw = record["software"]
    assert sw["python"] == platform.python_version() and sw["torch"] == torch.__version__
    assert sw["open_clip"] == open_clip.__version__ and sw["pyav"] == av.__version__
    assert sw["ffmpeg"] and sw["cuda"] == torch.version.cuda
    hw = record["hardware"]
    assert hw["device"] == "cpu" and hw["device_count"] == 1 and hw["world_size"] == 1
    r = record["run"]
    assert r["seed"] == 0 and r["precision"] == {"train": "auto (fp32)", "eval": "fp32",
                                                 "teacher": "fp32"}
    assert r["frames"] == "2x4" and r["views"] == "2x1" and r["target_fps"] == 30.0
    assert r["sampling"] == "reference" and r["apply_rotation"] is False  # the defaults
    assert record["files"]["train_list"] == {"path": data["train_list"],
                                             "sha256": sha256(data["train_list"])}
    assert record["files"]["class_file"]["sha256"] == sha256(data["class_file"])
    assert record["videos"] == {"train": 6, "train_failed": 0, "failed_file": None,
                                "epochs_done": 2}
    assert record["config"]["lr"] == TINY["lr"]
    # the evaluations during training carry theirs, naming the checkpoint they evaluated
    for name, checkpoint in (("epoch_002", "epochs/epoch_002"), ("average", "average")):
        report = json.loads((folder / "eval" / name / "metrics.json").read_text())
        assert report["record"]["videos"] == {"evaluated": 6, "total": 6, "failed": 0,
                                              "failed_file": None, "fallback": 0}
        assert report["record"]["files"]["checkpoint"]["sha256"] == \
            sha256(folder / checkpoint / "config.json")
        assert "## Reproduction record" in (folder / "eval" / name / "report.md").read_text()


def test_eval_reports_the_record_and_prints_a_summary(run, tmp_path, capsys):
    data, folder = run
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    entries = [line.rsplit(",", 1) for line in open(data["val_list"]).read().splitlines()]
    val = write_list(tmp_path / "val.csv", [(p, int(y)) for p, y in entries] + [(str(bad), 1)])
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(folder / "average"), f"val_list={val}",
                 "--output", str(tmp_path / "eval")]) == 1  # a video failed, as predict says
    out = capsys.readouterr().out
    [line] = [x for x in out.splitlines() if x.startswith("record: ")]
    assert f"froster {froster.__version__}" in line and f"torch {torch.__version__}" in line
    assert "cpu x1" in line and "seed 0" in line and "eval fp32" in line
    assert "sampling reference" in line
    assert "frames x rate 2x4" in line and "views x crops 2x1" in line
    assert f"val.csv {sha256(val)[:8]}" in line
    assert "6/7 videos (1 failed: failed_videos.txt)" in line
    report = json.loads((tmp_path / "eval/metrics.json").read_text())
    assert report["record"]["videos"] == {"evaluated": 6, "total": 7, "failed": 1,
                                          "failed_file": "failed_videos.txt", "fallback": 0}
    assert "broken.mp4" in (tmp_path / "eval/failed_videos.txt").read_text()
    assert report["record"]["files"]["val_list"]["sha256"] == sha256(val)
    markdown = (tmp_path / "eval/report.md").read_text()
    assert "| 6/7 |" in markdown and f"| files.val_list.sha256 | {sha256(val)} |" in markdown


def test_eval_precision_reaches_the_evaluation(run, tmp_path, monkeypatch):
    data, folder = run
    dtypes = []
    real = evaluate_module.evaluate

    def spy(*a, **k):
        dtypes.append(a[6])
        return real(*a, **k)

    monkeypatch.setattr(evaluate_module, "evaluate", spy)
    for setting in ("fp32", "bf16"):
        out = tmp_path / setting
        assert main(["eval", "--checkpoint", str(folder / "average"), f"eval_precision={setting}",
                     "--output", str(out)]) == 0
        assert load_record(out)["run"]["precision"]["eval"] == setting
    assert dtypes == [None, torch.bfloat16]


def test_diff_lists_what_differs(run, tmp_path, capsys):
    data, folder = run
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["eval", "--checkpoint", str(folder / "average"), "--output", str(a)]) == 0
    assert main(["eval", "--checkpoint", str(folder / "average"), "--output", str(b),
                 "eval_precision=bf16", "test_views=1"]) == 0
    rows = {key: (va, vb) for key, va, vb in diff_records(load_record(a), load_record(b))}
    assert rows == {"run.precision.eval": ("fp32", "bf16"), "run.views": ("2x1", "1x1"),
                    "config.eval_precision": ("fp32", "bf16"), "config.test_views": (2, 1)}
    capsys.readouterr()
    assert main(["diff", str(a / "metrics.json"), str(b)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("4 differences between")
    assert '  run.precision.eval: "fp32" -> "bf16"' in out and "config.test_views: 2 -> 1" in out
    assert main(["diff", str(a), str(a / "metrics.json")]) == 0
    assert "match" in capsys.readouterr().out
    # a training run folder against an evaluation of its average: the files differ
    assert main(["diff", str(folder), str(a)]) == 1
    assert "files.train_list.sha256" in capsys.readouterr().out


def test_diff_says_when_a_path_has_no_record(run, tmp_path, capsys):
    _, folder = run
    (tmp_path / "old.json").write_text(json.dumps({"top1": 50.0}))
    assert main(["diff", str(tmp_path / "old.json"), str(folder)]) == 2
    assert "old.json has no reproduction record" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["diff", str(folder), str(tmp_path / "empty")]) == 2
    assert "no record.json, results.json or metrics.json" in capsys.readouterr().err
    assert main(["diff", str(folder / "config.yaml"), str(folder)]) == 2
    assert "config.yaml is not a JSON file" in capsys.readouterr().err


def test_the_record_module_needs_no_torch():
    code = "import sys, froster.engine.record; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
