"""The whole synthetic base-to-novel demo, end to end, through the real code paths.

    result = run_demo("froster_demo")           # about 8 minutes on 2 CPU cores
    result = run_demo("/tmp/d", quick=True)      # seconds: a smoke test, numbers are noise

1. `write_benchmark`: the world's videos and FROSTER-layout split files (`benchmark/`),
   with three training splits as the paper's protocol.
2. `pretrain`: a tiny CLIP (`froster-demo`) on captioned single frames (`clip.safetensors`).
3. The three rows of the paper's Table 1 with the engine's base-to-novel protocol
   (`protocols.run_b2n`: `engine.train.train` on each training split, then
   `engine.evaluate` on val.csv with the base classes and on test.csv with the novel
   classes): frozen CLIP zero-shot (per-frame mean), plain fine-tuning, and FROSTER
   (distillation from the frozen CLIP). Base and novel are the mean over the splits, with
   their standard deviation; HM is the harmonic mean of the two means.

4. `attention`: right after each row, while its students are still there (before the
   footprint tidying), whether their attention maps find the object on a fixed subset
   of the novel test videos (share of the map's mass on the object, pointing game;
   frozen CLIP, fine-tuning, FROSTER).

Writes `results.json`, `results.md`, `results.png` (a grouped bar chart) and
`attention.png` (the three models' maps on a few novel videos) to `out_dir`.
Prompts are the engine's default: the reference's 28 templates plus the bare description.
The runs keep no per-epoch exports, and once a row is done its training states go, and
its students unless it is FROSTER's (`footprint`); `keep_runs` keeps everything.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

from ..config import Config, validate
from ..engine.protocols import harmonic_mean, run_b2n
from .attention import AttentionSpec
from .benchmark import BenchmarkSpec, write_benchmark
from .defaults import DEMO_EPOCHS
from .footprint import KEPT_STUDENTS, describe, folder_bytes, tidy_row
from .pretrain import PretrainConfig, pretrain
from .world import BASE_ACTIONS, SIGNATURE_PROB

__all__ = ["run_demo", "demo_settings", "run_row", "ROWS", "draw_chart", "markdown_table"]

#: (key, label, config overrides) of the three rows of the paper's Table 1.
ROWS = (
    ("zero_shot", "Frozen CLIP (zero-shot)", {"zero_shot": True, "temporal": "mean"}),
    ("fine_tune", "Fine-tuning", {"distill": False}),
    ("froster", "FROSTER", {"distill": True}),
)
CHART_SIZE = (800, 500)


def demo_settings(quick: bool = False, seed: int = 0, signature_prob: float = SIGNATURE_PROB,
                  epochs: int | None = None, temporal: str = "neighbor"):
    """(BenchmarkSpec, PretrainConfig, Config) of the demo; `quick` for a smoke test.

    `signature_prob=0` is the control world in which no single frame says anything
    about the action; more `epochs` than the default 8 show plain fine-tuning forgetting
    the novel classes (see docs/demo.md). `temporal` is the trained student's backbone."""
    if quick:
        spec = BenchmarkSpec(train_per_class=4, test_per_class=2, train_splits=2,
                             signature_prob=signature_prob, seed=seed)
        pre = PretrainConfig(scenes=24, frames_per_scene=2, steps=3, batch_size=16,
                             warmup_steps=1, signature_prob=signature_prob, seed=seed)
    else:
        spec = BenchmarkSpec(train_per_class=64, test_per_class=100, train_splits=3,
                             signature_prob=signature_prob, seed=seed)
        pre = PretrainConfig(steps=1000, signature_prob=signature_prob, seed=seed)
    # sampling="uniform": the demo's own protocol, with which docs/demo.md's results were
    # measured (its 16-frame clips have no reference numbers to compare with).
    # num_workers=1: one process decodes the clips while the model runs; every clip is drawn
    # from its own seed, so the weights and the table are the same as with 0 (bench/demo.py)
    cfg = Config(model="froster-demo", num_frames=8, sampling_rate=2, target_fps=8.0,
                 sampling="uniform",
                 test_views=1, flip=False, batch_size=16, lr=1e-3, warmup_epochs=2.0,
                 epochs=epochs or (1 if quick else DEMO_EPOCHS),
                 average_from_epoch=0 if quick else 2,
                 num_workers=1, precision="fp32", progress=False, device="cpu",
                 eval_batch_size=16, log_every=1000, seed=seed, temporal=temporal,
                 overwrite=True)  # a rerun of the demo trains its rows afresh
    validate(cfg)
    return spec, pre, cfg


def run_demo(out_dir: str | os.PathLike, quick: bool = False, seed: int = 0,
             signature_prob: float = SIGNATURE_PROB, epochs: int | None = None, log=print,
             temporal: str = "neighbor", keep_runs: bool = False,
             attention: AttentionSpec | None = None) -> dict:
    """The demo; `attention` sets the attention measurement (default: 20 novel test
    videos per class, 2 with `quick`)."""
    import torch

    from ..data.annotations import read_class_names
    from ..prompts import ClassText
    from .attention import (
        attention_table,
        draw_attention_figure,
        measure_models,
        novel_subset,
        row_models,
        summarise,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec, pre_cfg, cfg = demo_settings(quick, seed, signature_prob, epochs, temporal)
    timings = {}
    start = time.perf_counter()

    log(f"[demo] writing the benchmark ({spec.train_splits} training splits of "
        f"{spec.train_per_class} videos per base class, {spec.test_per_class} test videos per "
        f"class) to {out / 'benchmark'}")
    t = time.perf_counter()
    files = write_benchmark(out / "benchmark", spec)
    timings["benchmark"] = time.perf_counter() - t

    log(f"[demo] pretraining the {pre_cfg.model} CLIP ({pre_cfg.steps} steps on "
        f"{pre_cfg.scenes * pre_cfg.frames_per_scene} captioned frames)")
    t = time.perf_counter()
    weights = out / "clip.safetensors"
    pre = pretrain(pre_cfg, weights, log=lambda m: log(f"[demo] {m}"))
    timings["pretrain"] = time.perf_counter() - t

    cfg = replace(cfg, pretrained=str(weights.resolve()))
    attention = attention or AttentionSpec(per_class=2 if quick else AttentionSpec.per_class)
    t = time.perf_counter()
    subset = novel_subset(files, spec, cfg, attention)
    novel_texts = read_class_names(str(files.novel_classes))
    timings["attention"] = time.perf_counter() - t

    def measure_attention(row_cfg, row_dir):  # the row's students are still on disk here
        started = time.perf_counter()
        models = row_models(row_cfg, row_dir, row_cfg.zero_shot)
        measured = measure_models(models, subset, novel_texts, attention)
        timings["attention"] += time.perf_counter() - started
        return measured

    rows, figure = [], []
    for key, label, overrides in ROWS:
        log(f"[demo] {label}" + (f" ({temporal})" if key != "zero_shot" else ""))
        rows.append(run_row(cfg, key, label, overrides, files, out / key, keep_runs,
                            measure_students=measure_attention))
        measured = rows[-1].pop("measured")
        rows[-1]["attention"] = summarise(measured, attention.methods)
        figure.append({"method": label, "figure": measured["figure"]})
        rows[-1]["seconds"] -= measured["seconds"]  # the row's own time, as before
        timings[key] = rows[-1]["seconds"]
    log(f"[demo] attention maps of {len(subset.labels)} novel test videos measured for every "
        f"model in {timings['attention']:.0f} s")
    timings["total"] = time.perf_counter() - start

    result = {"quick": quick, "seed": seed, "signature_prob": signature_prob, "rows": rows,
              "timings": timings, "kept_runs": keep_runs,
              "attention": {"videos": len(subset.labels), "per_class": attention.per_class,
                            "methods": list(attention.methods), "explained": "true label",
                            "figure_videos": [subset.names[i] for i in subset.figure]},
              "settings": {"benchmark": asdict(spec), "pretrain": asdict(pre_cfg),
                           "pretrain_final_loss": pre.losses[-1] if pre.losses else None,
                           "engine": {k: v for k, v in cfg.to_dict().items()},
                           "rows": {k: o for k, _, o in ROWS}, "temporal": temporal,
                           "prompt_templates": "engine default (29)",
                           "torch_threads": torch.get_num_threads()}}
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    first = rows[-1]["splits"][0]
    table = markdown_table(rows) + (
        f"\nTop-1 %: mean ± std over {spec.train_splits} training splits; each split is "
        f"evaluated on {first['base_videos']} base and {first['novel_videos']} novel test videos "
        f"(chance {100 / len(BASE_ACTIONS):.1f} %).\n")
    seen = attention_table(rows, attention.methods, len(subset.labels))
    (out / "results.md").write_text(table + "\n## Do the models look at the object?\n\n" + seen
                                    + f"\nTotal time: {timings['total']:.0f} s\n")
    draw_attention_figure(figure, subset, [ClassText.parse(t).name for t in novel_texts],
                          out / "attention.png", title="Gradient attention maps on novel test "
                          "videos (frozen CLIP, and split 1's fine-tuned and FROSTER students)")
    student = "" if temporal == "neighbor" else f" ({temporal} student)"
    draw_chart(rows, out / "results.png", title=f"FROSTER demo{student}: base-to-novel top-1 (%), bars: "
               f"mean ± std over {spec.train_splits} training splits"
               + (" [quick: noise]" if quick else ""))
    log("")
    log(table)
    log(seen)
    log(f"Total time: {timings['total']:.0f} s ({timings['total'] / 60:.1f} min); "
        f"results in {out}")
    log(f"[demo] left {describe(out)}" + ("" if keep_runs else
        "; training states and the other rows' students were removed (--keep-runs keeps them)"))
    result["disk_bytes"] = folder_bytes(out)
    return result


def run_row(cfg: Config, key: str, label: str, overrides: dict, files, out: Path,
            keep_runs: bool = False, measure_students=None) -> dict:
    """One row of a demo table: the engine's base-to-novel protocol over the benchmark's
    training splits with `cfg` + `overrides`; base and novel as mean and std over them.
    `measure_students(row_cfg, out)`, if given, runs while the row's students are on disk
    and its result is the row's "measured" entry. Unless `keep_runs`, the runs keep no
    epoch exports and the row's folder is tidied afterwards (`footprint.tidy_row`)."""
    import torch

    from ..engine.distributed import DistInfo

    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    row_cfg = replace(cfg, output_dir=str(out), **overrides)
    if keep_runs:
        row_cfg = replace(row_cfg, keep_epochs="all")
    validate(row_cfg)
    result = run_b2n(row_cfg, files.root / "splits", str(files.videos), out, DistInfo(),
                     zero_shot=row_cfg.zero_shot, dataset="froster-demo")
    measured = None
    if measure_students is not None:
        started = time.perf_counter()
        measured = measure_students(row_cfg, out)
        measured["seconds"] = time.perf_counter() - started
    if not keep_runs:
        tidy_row(out, keep_students=key == KEPT_STUDENTS)
    mean, std = result["mean"], result["std"]
    return {"key": key, "method": label, "base": mean["base"], "novel": mean["novel"],
            "hm": harmonic_mean(mean["base"], mean["novel"]),
            "base_std": std["base"], "novel_std": std["novel"], "splits": result["rows"],
            "seconds": time.perf_counter() - start} | ({"measured": measured} if measured else {})


def markdown_table(rows) -> str:
    """Mean ± std over the training splits (zero-shot has none to vary over)."""
    lines = ["| method | base | novel | HM | splits |", "|---|---|---|---|---|"]
    lines += [f"| {r['method']} | {r['base']:.1f} ± {r['base_std']:.1f} | "
              f"{r['novel']:.1f} ± {r['novel_std']:.1f} | {r['hm']:.1f} | {len(r['splits'])} |"
              for r in rows]
    return "\n".join(lines) + "\n"


def draw_chart(rows, path, title: str = "", size=CHART_SIZE) -> Path:
    """Grouped bars (base, novel, HM) per method, drawn with Pillow."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    left, right, top, bottom = 70, width - 20, 50, height - 70
    draw.text((left, 15), title, fill="black", font=font)
    # axes, y ticks every 20 %
    draw.line([(left, top), (left, bottom), (right, bottom)], fill="black", width=2)
    for value in range(0, 101, 20):
        y = bottom - (bottom - top) * value / 100
        draw.line([(left - 5, y), (left, y)], fill="black")
        draw.line([(left + 1, y), (right, y)], fill=(225, 225, 225))
        draw.text((left - 35, y - 6), f"{value}", fill="black", font=font)
    draw.text((8, top - 25), "top-1 (%)", fill="black", font=font)
    colours = {"base": (66, 133, 244), "novel": (234, 67, 53), "hm": (52, 168, 83)}
    group_w = (right - left) / max(len(rows), 1)
    bar_w = group_w * 0.22
    for g, row in enumerate(rows):
        x0 = left + g * group_w + group_w * 0.17
        for b, key in enumerate(("base", "novel", "hm")):
            value = max(0.0, min(100.0, float(row[key])))
            xa = x0 + b * bar_w
            y = bottom - (bottom - top) * value / 100
            draw.rectangle([xa + 2, y, xa + bar_w - 2, bottom - 1], fill=colours[key])
            spread = (bottom - top) * float(row.get(f"{key}_std", 0.0)) / 100
            if spread > 0:  # one standard deviation over the training splits
                xc = xa + bar_w / 2
                draw.line([(xc, y - spread), (xc, y + spread)], fill="black", width=1)
                for yy in (y - spread, y + spread):
                    draw.line([(xc - 4, yy), (xc + 4, yy)], fill="black", width=1)
            draw.text((xa + 4, y - spread - 14), f"{value:.1f}", fill="black", font=font)
        label = row["method"]
        text_w = draw.textlength(label, font=font)
        draw.text((left + g * group_w + (group_w - text_w) / 2, bottom + 10), label,
                  fill="black", font=font)
    draw.text(((left + right) / 2 - 25, bottom + 32), "method", fill="black", font=font)
    lx = right - 200
    for i, (key, name) in enumerate((("base", "base"), ("novel", "novel"), ("hm", "HM"))):
        draw.rectangle([lx + i * 65, height - 22, lx + i * 65 + 12, height - 10], fill=colours[key])
        draw.text((lx + i * 65 + 16, height - 23), name, fill="black", font=font)
    path = Path(path)
    image.save(path, format="PNG")
    return path
