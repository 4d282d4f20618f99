"""`froster eval` writes predictions.jsonl: each evaluated video's top-5 with the same
probabilities `froster predict` prints for it, consistent with the metrics beside it."""

import json

import pytest
from _engine_data import CLASSES, make_videos, write_classes, write_list

from froster.cli import main
from froster.engine.predictions import read_predictions

pytestmark = pytest.mark.usefixtures("one_thread")

SETTINGS = ["num_frames=2", "sampling_rate=4", "test_views=2", "num_workers=0",
            "eval_batch_size=3", "progress=false", "device=cpu"]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, tiny_checkpoint):
    root = tmp_path_factory.mktemp("predictions")
    entries = make_videos(root, 2, range(4))
    bad = root / "broken.mp4"
    bad.write_bytes(b"not a video")
    val = write_list(root / "val.csv", entries + [(str(bad), 1)])
    classes = write_classes(root / "classes.json", CLASSES)
    out = root / "eval"
    assert main(["eval", "--checkpoint", str(tiny_checkpoint), f"val_list={val}",
                 f"eval_class_file={classes}", f"data_root={root}", *SETTINGS,
                 "--output", str(out)]) == 1  # 1: finished, one video failed
    return root, entries, classes, out, tiny_checkpoint


def test_one_record_per_evaluated_video_consistent_with_the_metrics(evaluated):
    root, entries, _, out, _ = evaluated
    records = read_predictions(out / "predictions.jsonl")
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["video"] for r in records] == [str(root / p) for p, _ in entries]  # list order
    assert metrics["evaluated"] == len(records) == 8 and metrics["failed"] == 1
    names = [c.split(":")[0] for c in CLASSES]
    for record, (_, label) in zip(records, entries):
        assert record["label"] == names[label] and record["label_index"] == label
        probabilities = [t["probability"] for t in record["top5"]]
        assert len(record["top5"]) == 4 and probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)  # all 4 classes are shown
        assert [t["logit"] for t in record["top5"]] == sorted((t["logit"] for t in record["top5"]),
                                                              reverse=True)
        assert record["correct"] == (record["top5"][0]["index"] == label)
    top1 = 100 * sum(r["correct"] for r in records) / len(records)
    assert top1 == pytest.approx(metrics["top1"])
    for c, name in enumerate(names):
        mine = [r["correct"] for r in records if r["label_index"] == c]
        assert 100 * sum(mine) / len(mine) == pytest.approx(metrics["per_class"][name])


def test_probabilities_are_what_predict_prints(evaluated, cli_with):
    root, entries, classes, out, checkpoint = evaluated
    records = {r["video"]: r for r in read_predictions(out / "predictions.jsonl")}
    cli = cli_with("froster.inference.commands")
    videos = [str(root / p) for p, _ in entries[::3]]
    code, stdout, _ = cli("predict", *videos, "--label-file", classes, "--checkpoint",
                          checkpoint,
                          "--format", "jsonl", "--top-k", "5", "--workers", "0", "--views", "2",
                          "--frames", "2", "--sampling-rate", "4", "--ignore-rotation")
    assert code == 0
    for line in stdout.splitlines():
        predicted = json.loads(line)
        record = records[predicted["video"]]
        assert [p["label"] for p in predicted["predictions"]] == [t["label"] for t in record["top5"]]
        assert [p["probability"] for p in predicted["predictions"]] == \
            pytest.approx([t["probability"] for t in record["top5"]], abs=2e-6)

