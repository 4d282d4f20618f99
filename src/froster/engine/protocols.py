"""The paper's protocols driven by split files laid out like FROSTER's `zs_label_db`:

- base-to-novel: train on each training list of the base classes (class texts from
  `train_rephrased.json`), then base accuracy on `val.csv` with the base classes and
  novel accuracy on `test.csv` with the novel classes (`test_rephrased.json`);
  HM = 2BN/(B+N) per split, then mean and std over the splits.
- cross-dataset: a trained checkpoint (or the frozen CLIP) evaluated on each test split
  of UCF101, HMDB51 or the K600 novel classes; mean and std over the 3 splits, and the
  full set where there is one.

Standard deviations are over splits, population form (numpy's default, ddof=0).
Results go to `results.json` and `results.md`, beside the paper's numbers.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

from ..checkpoint import load_student
from ..config import Config
from ..errors import FrosterError, MissingFileError
from ..files import atomic_write
from .distributed import DistInfo, barrier

#: Published top-1 (%) with ViT-B/16 (method.md): base / novel / HM.
PAPER_B2N = {
    "k400": {"frozen CLIP": (62.3, 53.4, 57.5), "ViFi-CLIP": (76.4, 61.1, 67.9),
             "Open-VCLIP": (76.5, 62.6, 68.9), "FROSTER": (77.8, 64.3, 70.4)},
    "hmdb": {"frozen CLIP": (53.3, 46.8, 49.8), "ViFi-CLIP": (73.8, 53.3, 61.9),
             "Open-VCLIP": (70.3, 50.4, 58.7), "FROSTER": (74.1, 58.0, 65.1)},
    "ucf": {"frozen CLIP": (78.5, 63.6, 70.3), "ViFi-CLIP": (92.9, 67.7, 78.3),
            "Open-VCLIP": (94.8, 77.5, 85.3), "FROSTER": (95.3, 80.0, 87.0)},
    "ssv2": {"frozen CLIP": (4.9, 5.3, 5.1), "ViFi-CLIP": (16.2, 12.1, 13.9),
             "Open-VCLIP": (16.0, 11.0, 13.0), "FROSTER": (18.3, 12.2, 14.6)},
}
#: Published cross-dataset top-1 (%) after training on K400: full set, and mean ± std over splits.
PAPER_CROSS = {
    "ucf": {"frozen CLIP": ("74.2", "73.8±0.6"), "Open-VCLIP": ("83.5", "83.4±1.2"),
            "FROSTER": ("85.0", "84.8±1.1")},
    "hmdb": {"frozen CLIP": ("46.3", "47.9±0.5"), "Open-VCLIP": ("53.2", "53.9±1.2"),
             "FROSTER": ("54.5", "54.8±1.3")},
    "k600": {"frozen CLIP": ("-", "68.1±1.1"), "Open-VCLIP": ("-", "73.0±0.8"),
             "FROSTER": ("-", "74.8±0.9")},
}
B2N_FOLDERS = {"k400": "B2N_k400", "hmdb": "B2N_hmdb", "ucf": "B2N_ucf101", "ssv2": "B2N_ssv2"}
CROSS = {  # dataset -> (split folders, full-set folder, class file per split)
    "ucf": (["ucf101_split1", "ucf101_split2", "ucf101_split3"], "ucf101_full",
            ["ucf101_rephrased_classes.json"] * 3),
    "hmdb": (["hmdb_split1", "hmdb_split2", "hmdb_split3"], "hmdb_full",
             ["hmdb_rephrased_classes.json"] * 3),
    "k600": (["k600_split1", "k600_split2", "k600_split3"], None,
             [f"k600_split{k}_rephrased_classes.json" for k in (1, 2, 3)]),
}


def harmonic_mean(base: float, novel: float) -> float:
    return 0.0 if base + novel == 0 else 2 * base * novel / (base + novel)


def mean_std(values) -> tuple[float, float]:
    values = list(values)
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise MissingFileError(f"{path} not found: {what}")
    return path


def b2n_dataset_name(split_dir: Path) -> str | None:
    for name, folder in B2N_FOLDERS.items():
        if split_dir.name.lower() == folder.lower():
            return name
    return None


def _load(checkpoint: Path, device, trust_pickle: bool = False):
    student, tokenizer, _ = load_student(checkpoint, device=device, trust_pickle=trust_pickle)
    return student, tokenizer


def trained_checkpoint(run_dir: Path) -> Path:
    """The averaged student if the run made one, else the last epoch's."""
    from .checkpoints import epoch_folders

    if (run_dir / "average" / "model.safetensors").is_file():
        return run_dir / "average"
    epochs = epoch_folders(run_dir)
    if not epochs:
        raise MissingFileError(f"{run_dir}: the training run left no checkpoint")
    return epochs[max(epochs)]


def run_b2n(cfg: Config, split_dir, data_root: str, output_dir, info: DistInfo,
            train_lists=None, zero_shot: bool = False, dataset: str | None = None) -> dict:
    """Base-to-novel over every training list of `split_dir` (or those named)."""
    from ..checkpoint import build_student
    from .evaluate import evaluate_checkpoint
    from .train import student_spec, train

    split_dir, output_dir = Path(split_dir), Path(output_dir)
    what = ("a base-to-novel split folder like froster_splits/zs_label_db/B2N_k400 with "
            "train*.csv, val.csv, test.csv, train_rephrased.json and test_rephrased.json")
    _need(split_dir, what)
    base_list, novel_list = _need(split_dir / "val.csv", what), _need(split_dir / "test.csv", what)
    base_classes = _need(split_dir / "train_rephrased.json", what)
    novel_classes = _need(split_dir / "test_rephrased.json", what)
    if data_root and not Path(data_root).is_dir():
        raise MissingFileError(f"data root {data_root} is not a folder; it should hold the "
                               f"videos that the lists in {split_dir} name")
    if zero_shot:
        lists = [None]
    elif train_lists:
        lists = [_need(split_dir / name, what) for name in train_lists]
    else:
        lists = sorted(split_dir.glob("train*.csv"))
        lists = [p for p in lists if "idx2cls" not in p.name]
        if not lists:
            raise MissingFileError(f"{split_dir} has no training list train*.csv; expected {what}")
    dataset = dataset or b2n_dataset_name(split_dir) or split_dir.name
    cfg = replace(cfg, data_root=data_root)
    rows, seen = [], VideoCount()
    for train_list in lists:
        name = "zero_shot" if train_list is None else train_list.stem
        run_dir = output_dir / name
        if train_list is None:
            student, tokenizer = build_student(student_spec(cfg))
            student.to(info.device).eval()
        else:
            split_cfg = replace(cfg, train_list=str(train_list), class_file=str(base_classes),
                                val_list="", eval_class_file="", output_dir=str(run_dir),
                                zero_shot=False)
            train(split_cfg, info)
            barrier()
            checkpoint = trained_checkpoint(run_dir)
            student, tokenizer = _load(checkpoint, info.device)
        base = evaluate_checkpoint(student, tokenizer, cfg, str(base_list), str(base_classes),
                                   info, run_dir / "eval_base", f"{name} base",
                                   checkpoint=None if train_list is None else checkpoint)
        novel = evaluate_checkpoint(student, tokenizer, cfg, str(novel_list), str(novel_classes),
                                    info, run_dir / "eval_novel", f"{name} novel",
                                    checkpoint=None if train_list is None else checkpoint)
        seen.add(f"{name} base", base)
        seen.add(f"{name} novel", novel)
        row = {"split": name, "base": base.top1, "novel": novel.top1,
               "hm": harmonic_mean(base.top1, novel.top1),
               "base_videos": f"{base.evaluated}/{base.total}",
               "novel_videos": f"{novel.evaluated}/{novel.total}"}
        rows.append(row)
        if info.is_main:
            print(f"{name}: base {row['base']:.2f}  novel {row['novel']:.2f}  HM {row['hm']:.2f}")
    summary = {key: mean_std(r[key] for r in rows) for key in ("base", "novel", "hm")}
    result = {"protocol": "base-to-novel", "dataset": dataset, "split_dir": str(split_dir),
              "method": method_name(cfg, zero_shot), "rows": rows,
              "mean": {k: v[0] for k, v in summary.items()},
              "std": {k: v[1] for k, v in summary.items()},
              "paper": {m: dict(zip(("base", "novel", "hm"), v))
                        for m, v in PAPER_B2N.get(dataset, {}).items()},
              "config": cfg.to_dict()}
    if info.is_main:
        files = {p.name: p for p in [*(t for t in lists if t is not None), base_list,
                                     novel_list, base_classes, novel_classes]}
        result["record"] = seen.record(cfg, info, files | {"templates": cfg.templates},
                                       output_dir, training=not zero_shot)
        write_results(output_dir, result, b2n_markdown(result))
    return result


class VideoCount:
    """Videos evaluated and failed over a benchmark's evaluations, for its record."""

    def __init__(self):
        self.evaluated = self.total = 0
        self.failed: list[str] = []
        self.fallback: list[str] = []

    def add(self, name: str, metrics) -> None:
        self.evaluated += metrics.evaluated
        self.total += metrics.total
        self.failed += [f"{name}: {message}" for message in metrics.failed]
        self.fallback += [f"{name}: {message}" for message in metrics.fallback]

    def record(self, cfg: Config, info: DistInfo, files: dict, output_dir: Path,
               training: bool = False) -> dict:
        """The benchmark's record; failed videos go to failed_videos.txt in `output_dir`."""
        from .record import build_record, with_videos

        record = build_record(cfg, info, files, training=training)
        return with_videos(record, output_dir, self.evaluated, self.total, self.failed,
                           self.fallback)


def method_name(cfg: Config, zero_shot: bool) -> str:
    if zero_shot or cfg.zero_shot:
        return "frozen CLIP (zero-shot)"
    kind = "FROSTER" if cfg.distill else "fine-tuning"
    return f"{kind}, {cfg.temporal} temporal, {cfg.model}"


def _pm(mean: float, std: float) -> str:
    return f"{mean:.1f} ± {std:.1f}"


def b2n_markdown(result: dict) -> str:
    lines = [f"# Base-to-novel: {result['dataset']}", "",
             f"Method: {result['method']}. Top-1 (%), {_views(result)}.", "",
             "| split | base | novel | HM | base videos | novel videos |",
             "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['split']} | {r['base']:.2f} | {r['novel']:.2f} | {r['hm']:.2f} | "
                     f"{r['base_videos']} | {r['novel_videos']} |")
    m, s = result["mean"], result["std"]
    lines.append(f"| **mean ± std** | {_pm(m['base'], s['base'])} | {_pm(m['novel'], s['novel'])} "
                 f"| {_pm(m['hm'], s['hm'])} | | |")
    if result["paper"]:
        lines += ["", "Paper (ViT-B/16, mean over 3 splits):", "",
                  "| method | base | novel | HM |", "|---|---|---|---|"]
        for method, v in result["paper"].items():
            lines.append(f"| {method} | {v['base']} | {v['novel']} | {v['hm']} |")
    return "\n".join(lines) + "\n"


def write_results(output_dir: Path, result: dict, markdown: str) -> None:
    from .record import markdown as record_markdown
    from .record import summary_line

    output_dir.mkdir(parents=True, exist_ok=True)
    if result.get("record"):
        markdown += "\n" + record_markdown(result["record"])
    atomic_write(output_dir / "results.json",
            lambda p: Path(p).write_text(json.dumps(result, indent=2)))
    atomic_write(output_dir / "results.md", lambda p: Path(p).write_text(markdown))
    print(markdown.split("\n## Reproduction record")[0])
    if result.get("record"):
        print(summary_line(result["record"]))


def _label_dir(split_root: Path, labels: str | None) -> Path:
    if labels:
        return _need(Path(labels), "a folder of *_rephrased_classes.json files")
    for candidate in (split_root / "label_rephrase", split_root.parent / "label_rephrase"):
        if candidate.is_dir():
            return candidate
    raise MissingFileError(
        f"no label_rephrase folder beside {split_root} (looked in {split_root / 'label_rephrase'} "
        f"and {split_root.parent / 'label_rephrase'}); pass the class-text folder with --labels")


def run_cross(cfg: Config, split_root, data_root: str, dataset: str, output_dir,
              info: DistInfo, checkpoint: str | None = None, zero_shot: bool = False,
              labels: str | None = None, full: bool = True, trust_pickle: bool = False) -> dict:
    """Evaluate one checkpoint (or the frozen CLIP) on the test splits of `dataset`;
    `checkpoint` is a froster folder or another project's file (see froster.interop)."""
    from ..checkpoint import build_student
    from .evaluate import evaluate_checkpoint
    from .record import checkpoint_file
    from .train import student_spec

    if dataset not in CROSS:
        raise FrosterError(f"unknown cross-dataset target {dataset!r}; expected one of {list(CROSS)}")
    if (checkpoint is None) == (not zero_shot):
        raise FrosterError("give either --checkpoint CKPT or --zero-shot")
    split_root, output_dir = Path(split_root), Path(output_dir)
    what = "a folder like froster_splits/zs_label_db with ucf101_split1/test.csv, ..."
    _need(split_root, what)
    label_dir = _label_dir(split_root, labels)
    splits, full_name, class_files = CROSS[dataset]
    jobs = [(s, c) for s, c in zip(splits, class_files)]
    if full and full_name:
        jobs.append((full_name, class_files[0]))
    for folder, classes in jobs:  # check every file before the first (long) evaluation
        _need(split_root / folder / "test.csv", what)
        _need(label_dir / classes, f"class texts for {folder}")
    if data_root and not Path(data_root).is_dir():
        raise MissingFileError(f"data root {data_root} is not a folder; it should hold the "
                               f"{dataset} videos the test lists name")
    cfg = replace(cfg, data_root=data_root)
    if zero_shot:
        student, tokenizer = build_student(student_spec(cfg))
        student.to(info.device).eval()
    else:
        student, tokenizer = _load(Path(checkpoint), info.device, trust_pickle)
    rows, seen = [], VideoCount()
    for folder, classes in jobs:
        metrics = evaluate_checkpoint(student, tokenizer, cfg, str(split_root / folder / "test.csv"),
                                      str(label_dir / classes), info, output_dir / folder, folder,
                                      checkpoint=checkpoint)
        seen.add(folder, metrics)
        rows.append({"split": folder, "top1": metrics.top1, "top5": metrics.top5,
                     "mean_class_accuracy": metrics.mean_class_accuracy,
                     "videos": f"{metrics.evaluated}/{metrics.total}"})
        if info.is_main:
            print(f"{folder}: {metrics.describe()}")
    split_rows = [r for r in rows if r["split"] in splits]
    mean, std = mean_std(r["top1"] for r in split_rows)
    result = {"protocol": "cross-dataset", "dataset": dataset, "split_root": str(split_root),
              "method": method_name(cfg, zero_shot), "checkpoint": checkpoint, "rows": rows,
              "mean": mean, "std": std,
              "full": next((r["top1"] for r in rows if r["split"] == full_name), None),
              "paper": {m: {"full": v[0], "splits": v[1]}
                        for m, v in PAPER_CROSS[dataset].items()},
              "config": cfg.to_dict()}
    if info.is_main:
        files = {f"{folder}/test.csv": split_root / folder / "test.csv" for folder, _ in jobs}
        files |= {classes: label_dir / classes for _, classes in jobs}
        if checkpoint:
            files["checkpoint"] = checkpoint_file(checkpoint)
        result["record"] = seen.record(cfg, info, files | {"templates": cfg.templates}, output_dir)
        write_results(output_dir, result, cross_markdown(result))
    barrier()
    return result


def cross_markdown(result: dict) -> str:
    lines = [f"# Cross-dataset: {result['dataset']}", "",
             f"Method: {result['method']}"
             + (f" ({result['checkpoint']})" if result["checkpoint"] else "")
             + f". Top-1 (%), {_views(result)}.", "",
             "| split | top-1 | top-5 | mean class | videos |", "|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['split']} | {r['top1']:.2f} | {r['top5']:.2f} | "
                     f"{r['mean_class_accuracy']:.2f} | {r['videos']} |")
    lines.append(f"| **splits mean ± std** | {_pm(result['mean'], result['std'])} | | | |")
    lines += ["", "Paper (ViT-B/16, trained on K400):", "", "| method | full set | splits |",
              "|---|---|---|"]
    for method, v in result["paper"].items():
        lines.append(f"| {method} | {v['full']} | {v['splits']} |")
    return "\n".join(lines) + "\n"


def _views(result: dict) -> str:
    cfg = result["config"]
    return f"{cfg['test_views']} views x {cfg['test_crops']} crop{'s' if cfg['test_crops'] > 1 else ''}"
