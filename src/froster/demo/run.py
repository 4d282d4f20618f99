"""The whole synthetic base-to-novel demo, end to end, through the real code paths.

    result = run_demo("froster_demo")             # about 4 minutes on 2 CPU cores
    result = run_demo("/tmp/d", full=True)         # docs/demo.md section 4: about 18 minutes
    result = run_demo("/tmp/d", quick=True)        # seconds: a smoke test, numbers are noise

1. `write_benchmark`: the world's videos and FROSTER-layout split files (`benchmark/`),
   with three training splits as the paper's protocol.
2. `pretrain`: a tiny CLIP (`froster-demo`) on captioned single frames (`clip.safetensors`).
3. The three rows of the paper's Table 1 with the engine's base-to-novel protocol
   (`protocols.run_b2n`: `engine.train.train` on each training split, then
   `engine.evaluate` on val.csv with the base classes and on test.csv with the novel
   classes): frozen CLIP zero-shot (per-frame mean), plain fine-tuning, and FROSTER
   (distillation from the frozen CLIP). Base and novel are the mean over the splits, with
   their standard deviation; HM is the harmonic mean of the two means.
4. `attention`: right after each run, while its student is still there (before the
   footprint tidying), whether its attention maps find the object on a fixed subset
   of the novel test videos (share of the map's mass on the object, pointing game;
   frozen CLIP, fine-tuning, FROSTER).
5. `conclusions`: the paper's conclusions checked on the table's means, each printed as
   held or did not hold.

The default runs a smaller world than --full (`settings.py`) and runs 2 and 3 in processes
of their own, the seven runs of 3 side by side, one single-threaded process per core
(`in_processes.py`, `jobs.py`); --full runs docs/demo.md section 4's protocol as before,
one run after the other in this process.

Writes `results.json`, `results.md`, `results.png` (a grouped bar chart) and
`attention.png` (the three models' maps on a few novel videos) to `out_dir`.
Prompts are the engine's default: the reference's 28 templates plus the bare description.
The runs keep no per-epoch exports, and once a run is done its training state goes, and
its student unless it is FROSTER's (`footprint`); `keep_runs` keeps everything.
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
from .benchmark import write_benchmark
from .conclusions import all_held, check_conclusions, conclusions_text
from .defaults import DEMO_EPOCHS
from .footprint import KEPT_STUDENTS, describe, folder_bytes, tidy_row
from .pretrain import pretrain
from .settings import demo_settings, world_size
from .world import BASE_ACTIONS, SIGNATURE_PROB

__all__ = ["run_demo", "demo_settings", "run_row", "ROWS", "draw_chart", "markdown_table",
           "DEMO_EPOCHS"]

#: (key, label, config overrides) of the three rows of the paper's Table 1.
ROWS = (
    ("zero_shot", "Frozen CLIP (zero-shot)", {"zero_shot": True, "temporal": "mean"}),
    ("fine_tune", "Fine-tuning", {"distill": False}),
    ("froster", "FROSTER", {"distill": True}),
)
CHART_SIZE = (800, 500)


def run_demo(out_dir: str | os.PathLike, quick: bool = False, seed: int = 0,
             signature_prob: float = SIGNATURE_PROB, epochs: int | None = None, log=print,
             temporal: str = "neighbor", keep_runs: bool = False,
             attention: AttentionSpec | None = None, full: bool = False, world=None,
             workers: int | None = None, pretrain_wait_policy: str | None = None) -> dict:
    """The demo; `full` for docs/demo.md section 4's protocol, `quick` for a smoke test,
    `world` (a `settings.WorldSize`) for other sizes. `attention` sets the attention
    measurement (default: 20 novel test videos per class, 2 with `quick`). The default's
    runs go to `workers` processes (default: one per core); its pretraining process gets
    OMP_WAIT_POLICY `pretrain_wait_policy` (default: chosen from the idle cores,
    `in_processes.pretrain_wait_policy`)."""
    import torch

    from .attention import novel_subset

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    size = world or world_size(quick, full)
    spec, pre_cfg, cfg = demo_settings(quick, seed, signature_prob, epochs, temporal, world=size)
    attention = attention or AttentionSpec(per_class=2 if quick else AttentionSpec.per_class)
    timings = {}
    start = time.perf_counter()
    weights = out / "clip.safetensors"
    log(f"[demo] writing the benchmark ({spec.train_splits} training splits of "
        f"{spec.train_per_class} videos per base class, {spec.test_per_class} test videos per "
        f"class) to {out / 'benchmark'}")
    log(f"[demo] pretraining the {pre_cfg.model} CLIP ({pre_cfg.steps} steps of "
        f"{pre_cfg.batch_size} of {pre_cfg.scenes * pre_cfg.frames_per_scene} captioned frames)"
        + (", in a process of its own" if size.parallel else ""))
    if size.parallel:
        from .in_processes import prepare_in_processes

        torch.set_num_threads(1)  # this process only coordinates; its own work is light
        prepared = prepare_in_processes(spec, pre_cfg, cfg, out, log=log,
                                        then=lambda f: novel_subset(f, spec, cfg, attention),
                                        wait_policy=pretrain_wait_policy)
        files, subset, pre = prepared["files"], prepared["then"], prepared["pretrain"]
        losses = pre["losses"]
        timings |= {"benchmark": prepared["benchmark_seconds"], "pretrain": prepared["pretrain_seconds"],
                    "attention": prepared["then_seconds"],
                    "prepare": time.perf_counter() - start}
        log(f"[demo] pretrained in {pre['seconds']:.0f} s, final loss {losses[-1]:.3f} (its log: "
            f"{weights.with_suffix('.log')})")
        threads = {"pretrain": pre["threads"], "runs": 1,
                   "pretrain_wait_policy": prepared["wait_policy"],
                   "free_cores_at_pretraining": prepared["free_cores"]}
    else:
        t = time.perf_counter()
        files = write_benchmark(out / "benchmark", spec)
        timings["benchmark"] = time.perf_counter() - t
        t = time.perf_counter()
        losses = pretrain(pre_cfg, weights, log=lambda m: log(f"[demo] {m}")).losses
        timings["pretrain"] = time.perf_counter() - t
        t = time.perf_counter()
        subset = novel_subset(files, spec, cfg, attention)
        timings["attention"] = time.perf_counter() - t
        threads = {"pretrain": torch.get_num_threads(), "runs": torch.get_num_threads()}

    cfg = replace(cfg, pretrained=str(weights.resolve()))
    run = _rows_in_processes if size.parallel else _rows_here
    rows, figure = run(cfg, files, out, keep_runs, subset, attention, timings, log, workers)
    timings["total"] = time.perf_counter() - start
    timings["cpu"] = _cpu_seconds()

    result = {"quick": quick, "full": full, "seed": seed, "signature_prob": signature_prob,
              "rows": rows, "timings": timings, "kept_runs": keep_runs,
              "attention": {"videos": len(subset.labels), "per_class": attention.per_class,
                            "methods": list(attention.methods), "explained": "true label",
                            "figure_videos": [subset.names[i] for i in subset.figure]},
              "settings": {"benchmark": asdict(spec), "pretrain": asdict(pre_cfg),
                           "pretrain_final_loss": losses[-1] if losses else None,
                           "engine": {k: v for k, v in cfg.to_dict().items()},
                           "rows": {k: o for k, _, o in ROWS}, "temporal": temporal,
                           "prompt_templates": "engine default (29)", "world": asdict(size),
                           "torch_threads": threads}}
    return _report(result, rows, figure, subset, files, spec, attention, out, quick, temporal,
                   keep_runs, log)


def _rows_here(cfg, files, out, keep_runs, subset, attention, timings, log, workers=None):
    """--full: the rows one after the other in this process, as docs/demo.md section 4."""
    from ..data.annotations import read_class_names
    from .attention import measure_models, row_models, summarise

    novel_texts = read_class_names(str(files.novel_classes))

    def measure_attention(row_cfg, row_dir):  # the row's students are still on disk here
        started = time.perf_counter()
        models = row_models(row_cfg, row_dir, row_cfg.zero_shot)
        measured = measure_models(models, subset, novel_texts, attention)
        timings["attention"] += time.perf_counter() - started
        return measured

    rows, figure = [], []
    for key, label, overrides in ROWS:
        log(f"[demo] {label}" + (f" ({cfg.temporal})" if key != "zero_shot" else ""))
        rows.append(run_row(cfg, key, label, overrides, files, out / key, keep_runs,
                            measure_students=measure_attention))
        measured = rows[-1].pop("measured")
        rows[-1]["attention"] = summarise(measured, attention.methods)
        figure.append({"method": label, "figure": measured["figure"]})
        rows[-1]["seconds"] -= measured["seconds"]  # the row's own time, as before
        timings[key] = rows[-1]["seconds"]
    log(f"[demo] attention maps of {len(subset.labels)} novel test videos measured for every "
        f"model in {timings['attention']:.0f} s")
    return rows, figure


def _rows_in_processes(cfg, files, out, keep_runs, subset, attention, timings, log, workers=None):
    """The default: the rows' runs side by side, one single-threaded process per core."""
    from ..data.annotations import read_class_names
    from .attention import merge_measured, summarise
    from .in_processes import row_entry, run_rows_in_processes

    novel_texts = read_class_names(str(files.novel_classes))
    merged, ran = run_rows_in_processes(cfg, ROWS, files, out, keep_runs, subset, novel_texts,
                                        attention, workers, log)
    timings["runs"] = ran["wall"]
    timings["run_workers"] = ran["workers"]
    rows, figure = [], []
    for row in merged:
        results = row["results"]
        seconds = sum(r["seconds"] for r in results)  # on one core each, side by side
        entry = row_entry(row["key"], row["label"], row["b2n"], seconds)
        measured = merge_measured([r["measured"] for r in results], attention.methods)
        entry["attention"] = summarise(measured, attention.methods)
        entry["cpu_seconds"] = sum(r["cpu_seconds"] for r in results)
        rows.append(entry)
        figure.append({"method": row["label"], "figure": measured["figure"]})
        timings[row["key"]] = seconds
        timings["attention"] += sum(r["attention_seconds"] for r in results)
    log(f"[demo] the {sum(len(r['results']) for r in merged)} runs took {ran['wall']:.0f} s side "
        f"by side; attention maps of {len(subset.labels)} novel test videos measured for every "
        f"model in {timings['attention']:.0f} s (of one core)")
    return rows, figure


def _cpu_seconds() -> float:
    from .jobs import cpu_seconds

    return cpu_seconds()


def _report(result, rows, figure, subset, files, spec, attention, out, quick, temporal,
            keep_runs, log) -> dict:
    """results.json, results.md, the charts, and the tables and conclusions printed."""
    from ..data.annotations import read_class_names
    from ..prompts import ClassText
    from .attention import attention_table, draw_attention_figure

    timings = result["timings"]
    checks = check_conclusions(rows)
    result["conclusions"] = checks
    result["conclusions_held"] = all_held(checks)
    (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    first = rows[-1]["splits"][0]
    table = markdown_table(rows) + (
        f"\nTop-1 %: mean ± std over {spec.train_splits} training splits; each split is "
        f"evaluated on {first['base_videos']} base and {first['novel_videos']} novel test videos "
        f"(chance {100 / len(BASE_ACTIONS):.1f} %).\n")
    said = (f"\nThe paper's conclusions, on the means over the {spec.train_splits} splits"
            + (" (--quick: noise)" if quick else "") + ":\n\n" + conclusions_text(checks))
    seen = attention_table(rows, attention.methods, len(subset.labels))
    (out / "results.md").write_text(table + said + "\n## Do the models look at the object?\n\n"
                                    + seen + f"\nTotal time: {timings['total']:.0f} s\n")
    novel_texts = read_class_names(str(files.novel_classes))
    draw_attention_figure(figure, subset, [ClassText.parse(t).name for t in novel_texts],
                          out / "attention.png", title="Gradient attention maps on novel test "
                          "videos (frozen CLIP, and split 1's fine-tuned and FROSTER students)")
    student = "" if temporal == "neighbor" else f" ({temporal} student)"
    draw_chart(rows, out / "results.png", title=f"FROSTER demo{student}: base-to-novel top-1 (%), bars: "
               f"mean ± std over {spec.train_splits} training splits"
               + (" [quick: noise]" if quick else ""))
    log("")
    log(table)
    log(said)
    log(seen)
    log(f"Total time: {timings['total']:.0f} s ({timings['total'] / 60:.1f} min); results in {out}")
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
