"""Tiny generated video datasets and configs for the engine tests (not a test module)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from froster.config import load_config
from froster.data.synthetic import write_video

CLASSES = ["Juggling: a person throws and catches balls", "Abseiling: a person descends a rope",
           "Archery: a person shoots arrows at a target", "Rowing: a person rows a boat"]


def class_frame(label: int):
    """Frames whose colour says the class (plus a moving bar), so a tiny model can learn it."""
    base = np.array([(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40)][label % 4],
                    np.uint8)

    def frame(i, width, height):
        image = np.broadcast_to(base, (height, width, 3)).copy()
        image[:, (i * 3) % width] = 255
        return image
    return frame


def make_videos(root: Path, per_class: int, classes: range, folder: str = "videos",
                frames: int = 24) -> list[tuple[str, int]]:
    """Write per_class videos of each class under root/folder; (relative path, class) pairs."""
    entries = []
    for label in classes:
        for k in range(per_class):
            rel = f"{folder}/c{label}_{k}.mp4"
            (root / folder).mkdir(parents=True, exist_ok=True)
            write_video(root / rel, frames + 3 * k, width=40, height=32,
                        frame=class_frame(label), options={"crf": "10"})
            entries.append((rel, label))
    return entries


def write_list(path: Path, entries, label_offset: int = 0) -> Path:
    path.write_text("".join(f"{p},{label - label_offset}\n" for p, label in entries))
    return path


def write_classes(path: Path, texts) -> Path:
    path.write_text(json.dumps({str(i): t for i, t in enumerate(texts)}))
    return path


def tiny_dataset(root: Path, per_class: int = 3, num_classes: int = 3) -> dict:
    """Videos + train/val lists + class file; returns the config fields that point at them."""
    entries = make_videos(root, per_class, range(num_classes))
    return {"data_root": str(root),
            "train_list": str(write_list(root / "train.csv", entries)),
            "val_list": str(write_list(root / "val.csv", entries)),
            "class_file": str(write_classes(root / "classes.json", CLASSES[:num_classes]))}


TINY = {"model": "froster-tiny", "pretrained": "none", "num_frames": 2, "sampling_rate": 4,
        "test_views": 2, "epochs": 3, "batch_size": 4, "lr": 1e-3, "warmup_epochs": 1,
        "warmup_start_lr": 1e-5, "min_lr": 1e-5, "num_workers": 0, "eval_batch_size": 3,
        "log_every": 1, "progress": False, "device": "cpu", "average_from_epoch": 2}


def tiny_config(data: dict, output_dir: Path, **overrides):
    values = TINY | data | {"output_dir": str(output_dir)} | overrides
    return load_config(overrides=[f"{k}={v}" for k, v in values.items()])


def without_key_bias(key, tensor):
    """Attention's key bias has a zero gradient in exact arithmetic (softmax ignores a shift
    shared by all keys), so what it gets is rounding noise, which Adam scales up to a full
    step; it cannot be compared between runs that sum in different orders."""
    if key.endswith("attn.in_proj_bias"):
        width = tensor.shape[0] // 3
        return torch.cat([tensor[:width], tensor[2 * width:]])
    return tensor
