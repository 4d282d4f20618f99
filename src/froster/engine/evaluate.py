"""Multi-view testing: each video's views go through the student, the per-view logits
(per-frame logits averaged over time) are summed, and metrics are computed over the
videos that could be loaded. Under DDP every rank evaluates a disjoint shard and the
logits are gathered by video index, so each video counts once."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch
from tqdm import tqdm

from ..clip import preprocess_config
from ..data import FailureLog, VideoDataset, build_loader, normalize, read_annotations
from ..data.loader import batches, loader_timeout
from ..errors import FrosterError
from ..files import atomic_write
from ..model import VideoCLIP
from ..prompts import PromptBank
from .distributed import DistInfo, gather_objects
from .metrics import Metrics, compute_metrics
from .precision import autocast


@torch.no_grad()
def class_embeddings(student: VideoCLIP, bank: PromptBank, device: torch.device,
                     dtype: torch.dtype | None = None, chunk: int = 64) -> torch.Tensor:
    """(C, D) test classifier over all of the bank's prompts (29 by default), in fp32."""
    templates = bank.all_templates()
    parts = []
    for start in range(0, len(bank), chunk):
        tokens = bank.stacked(templates)[start:start + chunk]  # planned on the host, run on the device
        with autocast(device, dtype):
            parts.append(student.encode_classes(tokens).float())
    return torch.nn.functional.normalize(torch.cat(parts), dim=-1)


def video_logits(student: VideoCLIP, video: torch.Tensor, classifier: torch.Tensor,
                 dtype: torch.dtype | None = None) -> torch.Tensor:
    """Normalised (B, V, T, 3, H, W) test views -> (B, C): each view's logits (per-frame
    logits averaged over time) summed over the V views. The visual tower runs in `dtype`
    (None: fp32); the logits are computed in fp32."""
    batch, views = video.shape[:2]
    with autocast(video.device, dtype):
        frames = student.encode_frames(video.flatten(0, 1))
    return student.logits(frames.float(), classifier.float()).view(batch, views, -1).sum(dim=1)


def eval_dataset(cfg, list_file: str, num_classes: int, size: int) -> VideoDataset:
    items = read_annotations(list_file, cfg.data_root or None, num_classes)
    return VideoDataset(items, mode="test", view=cfg.view(), size=size, seed=cfg.seed,
                        decode_timeout=cfg.decode_timeout)


@torch.no_grad()
def evaluate(student: VideoCLIP, dataset: VideoDataset, bank: PromptBank, info: DistInfo,
             batch_size: int = 4, num_workers: int | None = 2, dtype: torch.dtype | None = None,
             progress: bool = True, desc: str = "eval") -> Metrics:
    """Metrics of `student` on a test-mode dataset (the same on every rank)."""
    was_training = student.training
    student.eval()
    device = info.device
    prep = preprocess_config(student.clip)
    classifier = class_embeddings(student, bank, device, dtype)
    loader = build_loader(dataset, batch_size, num_workers=num_workers, rank=info.rank,
                          world_size=info.world_size, pin_memory=device.type == "cuda",
                          timeout=loader_timeout(dataset.decode_timeout, batch_size))
    indices, logits, failures = [], [], FailureLog()
    bar = tqdm(batches(loader), total=len(loader), desc=desc, disable=not (progress and info.is_main) or None,
               leave=False, dynamic_ncols=True)
    for batch in bar:
        failures.add(batch)
        if batch["video"].shape[0] == 0:
            continue
        video = batch["video"].to(device, non_blocking=True)   # (B, V, T, 3, H, W) uint8
        summed = video_logits(student, normalize(video, prep["mean"], prep["std"]), classifier, dtype)
        logits.append(summed.float().cpu())
        indices.append(batch["index"])
    student.train(was_training)
    local = (torch.cat(indices) if indices else torch.empty(0, dtype=torch.long),
             torch.cat(logits) if logits else torch.empty(0, len(bank)),
             [tuple(f) for f in failures.failures], [tuple(f) for f in failures.fallbacks])
    merged: dict[int, torch.Tensor] = {}
    failed: dict[str, str] = {}
    fallback: dict[str, str] = {}
    for idx, lg, fails, fallbacks in gather_objects(local):
        for i, row in zip(idx.tolist(), lg):
            merged[i] = row
        failed.update(dict(fails))
        fallback.update(dict(fallbacks))
    order = sorted(merged)
    labels = torch.tensor([dataset.items[i].label for i in order], dtype=torch.long)
    stacked = torch.stack([merged[i] for i in order]) if order else torch.empty(0, len(bank))
    if not order:
        raise FrosterError(f"none of the {len(dataset)} videos could be loaded for evaluation; "
                           f"is data_root right? First error: {next(iter(failed.values()), '?')}")
    metrics = compute_metrics(stacked, labels, total=len(dataset), failed=list(failed.values()))
    metrics.fallback = [f"{path}: {reason}" for path, reason in fallback.items()]
    metrics.videos, metrics.labels, metrics.logits = \
        [dataset.items[i].path for i in order], labels, stacked
    return metrics


def write_report(metrics: Metrics, folder: str | Path, class_names: list[str],
                 extra: dict | None = None, record: dict | None = None) -> Path:
    """metrics.json (summary, per-class accuracy, failed videos, the reproduction record),
    report.md, confusion.csv, predictions.jsonl (each video's top-5) and, when videos
    failed, failed_videos.txt."""
    from .predictions import write_predictions
    from .record import markdown, with_videos

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    report = metrics.summary() | (extra or {})
    report["per_class"] = {name: acc for name, acc in zip(class_names, metrics.per_class)}
    report["failed_videos"] = metrics.failed
    report["fallback_videos"] = metrics.fallback
    if record is not None:
        report["record"] = with_videos(record, folder, metrics.evaluated, metrics.total,
                                       metrics.failed, metrics.fallback)
    atomic_write(folder / "metrics.json", lambda p: Path(p).write_text(json.dumps(report, indent=2)))
    text = report_markdown(metrics, extra) + ("\n" + markdown(report["record"]) if record else "")
    atomic_write(folder / "report.md", lambda p: Path(p).write_text(text))

    def write_confusion(path):
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["true \\ predicted", *class_names])
            for name, row in zip(class_names, metrics.confusion.tolist()):
                writer.writerow([name, *row])

    atomic_write(folder / "confusion.csv", write_confusion)
    if metrics.logits is not None:
        write_predictions(folder, metrics.videos, metrics.labels, metrics.logits, class_names)
    return folder


def report_markdown(metrics: Metrics, extra: dict | None = None) -> str:
    lines = ["# Evaluation", ""]
    lines += [f"- {key}: {value}" for key, value in (extra or {}).items() if value is not None]
    lines += ["", "| top-1 | top-5 | mean class | videos |", "|---|---|---|---|",
              f"| {metrics.top1:.2f} | {metrics.top5:.2f} | {metrics.mean_class_accuracy:.2f} | "
              f"{metrics.evaluated}/{metrics.total} |"]
    if metrics.failed:
        lines += ["", f"{len(metrics.failed)} videos could not be loaded (failed_videos.txt)."]
    return "\n".join(lines) + "\n"


def evaluate_checkpoint(student: VideoCLIP, tokenizer, cfg, list_path: str, class_file: str,
                        info: DistInfo, output: str | Path | None = None,
                        desc: str = "eval", extra: dict | None = None,
                        checkpoint: str | Path | None = None) -> Metrics:
    """Evaluate a loaded student on one video list and class file, as `cfg` says (views,
    frames, data root, precision); write the report and its record to `output` (rank 0).
    `checkpoint`: the folder the student came from, for the record."""
    from .inputs import class_bank, list_file, require_data_root
    from .precision import eval_autocast_dtype
    from .record import build_record

    bank = class_bank(class_file, "eval_class_file", tokenizer, cfg.templates, cfg.clean_prompts)
    path = list_file(list_path, "val_list")
    require_data_root(cfg.data_root, list_path)
    dataset = eval_dataset(cfg, str(path), len(bank), preprocess_config(student.clip)["size"])
    metrics = evaluate(student, dataset, bank, info, cfg.eval_batch_size, cfg.num_workers,
                       eval_autocast_dtype(cfg.eval_precision, info.device), cfg.progress, desc)
    if output is not None and info.is_main:
        record = build_record(cfg, info, eval_files(cfg, path, class_file, checkpoint))
        write_report(metrics, output, bank.names,
                     {"list": str(path), "class_file": class_file} | (extra or {}), record)
    return metrics


def eval_files(cfg, list_path, class_file, checkpoint=None) -> dict:
    """The input files of an evaluation, for its record (a checkpoint folder by its
    config.json: its weights are not hashed)."""
    from .record import checkpoint_file

    files = {"val_list": list_path, "eval_class_file": class_file, "templates": cfg.templates}
    if checkpoint:
        files["checkpoint"] = checkpoint_file(checkpoint)
    return files
