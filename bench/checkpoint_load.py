"""Loading a released checkpoint as it is against loading its `froster import` folder.

foreign: `load_student("swa_2_22.pth")`, a file in the FROSTER reference's layout
(`{"model_state": model.* keys}`, torch.save) read with torch.load(weights_only=True,
mmap=True), the architecture found from the shapes, the student built and filled.
folder: `load_student(DIR)` of the same weights after `froster import` (safetensors).
config: `froster.interop.recorded_config(file)` on a training checkpoint (student,
teacher, heads, optimizer state, cfg), the extra read `froster eval` makes for its base
config: memory-mapped, so its tensors are not read; full: the same file read whole
(torch.load without mmap), what that read would cost otherwise. Timed in alternating rounds, so that
load from other processes falls on all of them. Random ViT-B/16 weights (no download).

    python bench/checkpoint_load.py              # ~2 minutes on 2 CPU cores
    python bench/checkpoint_load.py --model ViT-B-32 --rounds 5

Prints: foreign_load_s, folder_load_s, folder_over_foreign, foreign_peak_rss_mb,
folder_peak_rss_mb, training_checkpoint_mb, recorded_config_s, full_read_s.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import PeakRSS  # noqa: E402

from froster.checkpoint import export_imported, load_student  # noqa: E402
from froster.interop import read_checkpoint  # noqa: E402
from froster.clip import create_clip  # noqa: E402
from froster.interop import recorded_config  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ViT-B-16")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)
    torch.manual_seed(0)
    clip, _ = create_clip(args.model, quick_gelu=True)
    state = {f"model.{k}": v for k, v in clip.state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.save({"model_state": state}, tmp / "swa_2_22.pth")
        export_imported(read_checkpoint(tmp / "swa_2_22.pth"), tmp / "imported")
        heads = {f"projector_{h}.{i}.weight": torch.zeros(512, 512) for h in "vt" for i in (0, 2)}
        teacher = {f"raw_model.{k}": v.clone() for k, v in clip.state_dict().items()}
        moments = {i: {"exp_avg": v.clone(), "exp_avg_sq": v.clone()}
                   for i, v in enumerate(state.values())}
        torch.save({"epoch": 21, "model_state": state | teacher | heads, "cfg": "DATA: {NUM_FRAMES: 8}\n",
                    "optimizer_state": {"state": moments, "param_groups": []}},
                   tmp / "checkpoint_epoch_00022.pyth")
        del teacher, moments
        times = {"foreign": [], "folder": [], "config": [], "full": []}
        peaks = {"foreign": 0.0, "folder": 0.0}
        for _ in range(args.rounds):
            for name, path in (("foreign", tmp / "swa_2_22.pth"), ("folder", tmp / "imported")):
                with PeakRSS() as rss:
                    start = time.perf_counter()
                    student, _, _ = load_student(path, announce=False)
                    times[name].append(time.perf_counter() - start)
                del student
                peaks[name] = max(peaks[name], rss.peak_mb)
            start = time.perf_counter()
            assert recorded_config(tmp / "checkpoint_epoch_00022.pyth") == {"num_frames": 8}
            times["config"].append(time.perf_counter() - start)
            start = time.perf_counter()
            torch.load(tmp / "checkpoint_epoch_00022.pyth", map_location="cpu", weights_only=True)
            times["full"].append(time.perf_counter() - start)
        size = (tmp / "checkpoint_epoch_00022.pyth").stat().st_size / 2**20
    foreign, folder = statistics.median(times["foreign"]), statistics.median(times["folder"])
    print(f"foreign_load_s: {foreign:.2f}")
    print(f"folder_load_s: {folder:.2f}")
    print(f"folder_over_foreign: {folder / foreign:.2f}")
    print(f"foreign_peak_rss_mb: {peaks['foreign']:.0f}")
    print(f"folder_peak_rss_mb: {peaks['folder']:.0f}")
    print(f"training_checkpoint_mb: {size:.0f}")
    print(f"recorded_config_s: {statistics.median(times['config']):.3f}")
    print(f"full_read_s: {statistics.median(times['full']):.2f}")


if __name__ == "__main__":
    main()
