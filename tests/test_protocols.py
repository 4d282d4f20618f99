"""The protocols on tiny generated data laid out like FROSTER's split files, and their checks
against the real split files in ../shared."""

import hashlib
import json

import pytest
from _engine_data import CLASSES, TINY, make_videos, write_classes, write_list

from froster.cli import main
from froster.config import load_config
from froster.data import read_annotations, read_class_names
from froster.engine.distributed import DistInfo
from froster.engine.protocols import CROSS, harmonic_mean, mean_std, run_b2n, run_cross

NOVEL = ["Rowing: a person rows a boat", "Surfing: a person rides a wave"]


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_args(tmp_path, **extra):
    values = TINY | {"epochs": 2, "output_dir": str(tmp_path / "runs")} | extra
    return [f"{k}={v}" for k, v in values.items()]


@pytest.fixture(scope="module")
def b2n_layout(tmp_path_factory):
    """zs_label_db/B2N_tiny with two 2-shot training splits of 3 base classes, val.csv (base
    classes' test videos) and test.csv (2 novel classes, labels from 0), like the real ones."""
    root = tmp_path_factory.mktemp("b2n")
    data = root / "videos"
    base = make_videos(data, 4, range(3), "base")
    novel = make_videos(data, 2, range(3, 5), "novel")
    split = root / "zs_label_db" / "B2N_tiny"
    split.mkdir(parents=True)
    write_list(split / "train_1.csv", [e for e in base if e[0][-5] in "01"])
    write_list(split / "train_2.csv", [e for e in base if e[0][-5] in "23"])
    write_list(split / "val.csv", base)
    write_list(split / "test.csv", novel, label_offset=3)
    write_classes(split / "train_rephrased.json", CLASSES[:3])
    write_classes(split / "test_rephrased.json", NOVEL)
    return split, data


def test_b2n_trains_each_split_and_reports_base_novel_hm(b2n_layout, tmp_path, capsys):
    split, data = b2n_layout
    out = tmp_path / "b2n"
    assert main(["benchmark", "b2n", *tiny_args(tmp_path), "--splits", str(split),
                 "--data-root", str(data), "--output", str(out), "--dataset", "k400"]) == 0
    result = json.loads((out / "results.json").read_text())
    assert [r["split"] for r in result["rows"]] == ["train_1", "train_2"]
    for row in result["rows"]:
        assert row["hm"] == pytest.approx(harmonic_mean(row["base"], row["novel"]))
        assert row["base_videos"] == "12/12" and row["novel_videos"] == "4/4"
        report = json.loads((out / row["split"] / "eval_novel" / "metrics.json").read_text())
        assert set(report["per_class"]) == {"Rowing", "Surfing"}
        assert report["top1"] == row["novel"]
        base = json.loads((out / row["split"] / "eval_base" / "metrics.json").read_text())
        assert base["top1"] == row["base"] and len(base["per_class"]) == 3
        # each split trained on its own list, averaged epochs 2..2, evaluated that average
        cfg = load_config(out / row["split"] / "config.yaml")
        assert cfg.train_list.endswith(f"{row['split']}.csv") and cfg.class_file.endswith("train_rephrased.json")
        assert (out / row["split"] / "average" / "model.safetensors").is_file()
    mean, std = mean_std([r["base"] for r in result["rows"]])
    assert result["mean"]["base"] == pytest.approx(mean) and result["std"]["base"] == pytest.approx(std)
    assert result["rows"][0]["base"] > 50  # trained on the class colours: above chance (33%)
    markdown = (out / "results.md").read_text()
    assert "| train_1 |" in markdown and "mean ± std" in markdown
    assert "| FROSTER | 77.8 | 64.3 | 70.4 |" in markdown  # the paper's K400 row beside ours
    # the reproduction record: every split file hashed, videos over all evaluations
    record = result["record"]
    for name in ("train_1.csv", "train_2.csv", "val.csv", "test.csv", "train_rephrased.json",
                 "test_rephrased.json"):
        assert record["files"][name]["sha256"] == hashlib.sha256((split / name).read_bytes()).hexdigest()
    assert record["videos"] == {"evaluated": 32, "total": 32, "failed": 0, "failed_file": None,
                                "fallback": 0}
    assert record["run"]["precision"]["train"] == "auto (fp32)"
    assert "## Reproduction record" in markdown and "| files.val.csv.sha256 |" in markdown


def test_b2n_zero_shot_needs_no_training_lists(b2n_layout, tmp_path):
    split, data = b2n_layout
    cfg = load_config(overrides=tiny_args(tmp_path))
    result = run_b2n(cfg, split, str(data), tmp_path / "zs", DistInfo(), zero_shot=True)
    assert [r["split"] for r in result["rows"]] == ["zero_shot"]
    assert result["method"].startswith("frozen CLIP") and result["std"]["hm"] == 0
    assert not (tmp_path / "runs").exists()


def test_b2n_missing_files_and_data_root_are_clear_errors(b2n_layout, tmp_path, capsys):
    split, data = b2n_layout
    broken = tmp_path / "B2N_broken"
    broken.mkdir()
    for name in ("train_1.csv", "val.csv", "train_rephrased.json", "test_rephrased.json"):
        (broken / name).write_text((split / name).read_text())
    assert main(["benchmark", "b2n", *tiny_args(tmp_path), "--splits", str(broken),
                 "--data-root", str(data)]) == 2
    err = capsys.readouterr().err
    assert "test.csv not found" in err and "base-to-novel split folder" in err

    assert main(["benchmark", "b2n", *tiny_args(tmp_path), "--splits", str(tmp_path / "nope"),
                 "--data-root", str(data)]) == 2
    assert "nope not found" in capsys.readouterr().err

    assert main(["benchmark", "b2n", *tiny_args(tmp_path), "--splits", str(split),
                 "--data-root", str(tmp_path / "no_videos")]) == 2
    assert "no_videos is not a folder" in capsys.readouterr().err


@pytest.fixture(scope="module")
def cross_layout(tmp_path_factory):
    """zs_label_db/ucf101_split{1,2,3}, ucf101_full and label_rephrase/ beside it."""
    root = tmp_path_factory.mktemp("cross")
    data = root / "ucf"
    videos = make_videos(data, 2, range(3), "v")
    db = root / "zs_label_db"
    for k, folder in enumerate(("ucf101_split1", "ucf101_split2", "ucf101_split3")):
        (db / folder).mkdir(parents=True)
        write_list(db / folder / "test.csv", [v for i, v in enumerate(videos) if i % 3 != k])
    (db / "ucf101_full").mkdir()
    write_list(db / "ucf101_full" / "test.csv", videos)
    (root / "label_rephrase").mkdir()
    write_classes(root / "label_rephrase" / "ucf101_rephrased_classes.json", CLASSES[:3])
    return db, data


def test_cross_dataset_with_a_checkpoint_and_zero_shot(cross_layout, tmp_path, capsys):
    db, data = cross_layout
    out = tmp_path / "zs"
    assert main(["benchmark", "cross", *tiny_args(tmp_path), "--zero-shot", "--dataset", "ucf",
                 "--splits", str(db), "--data-root", str(data), "--output", str(out)]) == 0
    zs = json.loads((out / "results.json").read_text())
    assert [r["split"] for r in zs["rows"]] == ["ucf101_split1", "ucf101_split2", "ucf101_split3",
                                                "ucf101_full"]
    assert [r["videos"] for r in zs["rows"]] == ["4/4", "4/4", "4/4", "6/6"]
    assert zs["mean"] == pytest.approx(mean_std(r["top1"] for r in zs["rows"][:3])[0])
    assert zs["full"] == zs["rows"][3]["top1"]
    assert "| FROSTER | 85.0 | 84.8±1.1 |" in (out / "results.md").read_text()

    # a trained checkpoint: train briefly on the full list, then evaluate it on the splits
    run = tmp_path / "k400"
    assert main(["train", *tiny_args(tmp_path, output_dir=run, data_root=data,
                                     train_list=db / "ucf101_full" / "test.csv",
                                     class_file=db.parent / "label_rephrase" / "ucf101_rephrased_classes.json")]) == 0
    out = tmp_path / "trained"
    assert main(["benchmark", "cross", "--checkpoint", str(run / "average"), "--dataset", "ucf",
                 "--splits", str(db), "--data-root", str(data), "--output", str(out)]) == 0
    trained = json.loads((out / "results.json").read_text())
    assert trained["checkpoint"] == str(run / "average") and trained["method"].startswith("FROSTER")
    assert trained["rows"][3]["top1"] > 50
    record = trained["record"]
    assert set(record["files"]) == {"ucf101_split1/test.csv", "ucf101_split2/test.csv",
                                    "ucf101_split3/test.csv", "ucf101_full/test.csv",
                                    "ucf101_rephrased_classes.json", "checkpoint"}
    assert record["videos"]["evaluated"] == 18 and record["run"]["precision"]["eval"] == "fp32"

    assert main(["benchmark", "cross", "--dataset", "ucf", "--splits", str(db),
                 "--data-root", str(data)]) == 2
    assert "--checkpoint CKPT or --zero-shot" in capsys.readouterr().err


def test_real_split_files_are_found_and_fit_their_class_files(shared_dir, tmp_path):
    db = shared_dir / "benchmarks" / "froster_splits" / "zs_label_db"
    labels = db.parent / "label_rephrase"
    for dataset, (splits, full, class_files) in CROSS.items():
        for folder, classes in zip(splits + [full] * bool(full), class_files + class_files[:1]):
            names = read_class_names(labels / classes)
            items = read_annotations(db / folder / "test.csv", None, len(names))
            assert max(i.label for i in items) == len(names) - 1, folder
        cfg = load_config(overrides=["model=froster-tiny", "pretrained=none"])
        with pytest.raises(FileNotFoundError, match="is not a folder"):  # files fine, no videos
            run_cross(cfg, db, str(tmp_path / "no_videos"), dataset, tmp_path, DistInfo(),
                      zero_shot=True)
    for folder in ("B2N_k400", "B2N_hmdb", "B2N_ucf101", "B2N_ssv2"):
        split = db / folder
        base = read_class_names(split / "train_rephrased.json")
        novel = read_class_names(split / "test_rephrased.json")
        read_annotations(split / "val.csv", None, len(base))
        read_annotations(split / "test.csv", None, len(novel))
        cfg = load_config(overrides=["model=froster-tiny", "pretrained=none"])
        with pytest.raises(FileNotFoundError, match="no_videos is not a folder"):
            run_b2n(cfg, split, str(tmp_path / "no_videos"), tmp_path, DistInfo())
