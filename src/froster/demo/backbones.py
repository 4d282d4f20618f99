"""The paper's Table 3 on the demo world: each video backbone of `froster.backbones`
plainly fine-tuned and trained with FROSTER, through the protocol of `froster demo --full`
(`run.py`: three training splits, base / novel / HM, mean ± std over the splits), with
which docs/backbones.md's table was measured; the rows run one after the other.

    result = run_backbones_demo("froster_demo")    # long: two demo rows per backbone

Writes `backbones.json`, `backbones.md` and `backbones.png` to `out_dir`; each row's runs
are under `out_dir/backbones/<backbone>/<fine_tune|froster>/`, tidied as the default
demo's (`footprint`) unless `keep_runs`.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

from .. import backbones
from .benchmark import write_benchmark
from .footprint import describe
from .pretrain import pretrain
from .run import ROWS, demo_settings, draw_chart, run_row
from .world import SIGNATURE_PROB

__all__ = ["run_backbones_demo", "backbones_table"]

TRAINED_ROWS = [row for row in ROWS if row[0] != "zero_shot"]  # fine-tuning, FROSTER
CHART_SIZE = (1400, 520)


def run_backbones_demo(out_dir: str | os.PathLike, quick: bool = False, seed: int = 0,
                       signature_prob: float = SIGNATURE_PROB, epochs: int | None = None,
                       names=None, log=print, keep_runs: bool = False) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(names or backbones.names())
    spec, pre_cfg, cfg = demo_settings(quick, seed, signature_prob, epochs, full=not quick)
    start = time.perf_counter()
    timings = {}

    log(f"[backbones] writing the demo benchmark to {out / 'benchmark'}")
    files = write_benchmark(out / "benchmark", spec)
    t = time.perf_counter()
    weights = pretrained_or_pretrain(pre_cfg, out, log)
    timings["pretrain"] = time.perf_counter() - t
    cfg = replace(cfg, pretrained=str(weights.resolve()))
    world = {"benchmark": asdict(spec), "pretrain": asdict(pre_cfg)}

    rows = []
    for name in names:
        for key, label, overrides in TRAINED_ROWS:
            log(f"[backbones] {name}: {label}")
            row = finished_or_run(replace(cfg, temporal=name), key, label, overrides, files,
                                  out / "backbones" / name / key, log, keep_runs, world)
            rows.append(row | {"backbone": name})
            timings[f"{name}/{key}"] = row["seconds"]
            log(f"[backbones] {name}: {label}: base {row['base']:.1f}, novel "
                f"{row['novel']:.1f}, HM {row['hm']:.1f} ({row['seconds']:.0f} s)")
    timings["total"] = time.perf_counter() - start

    result = {"quick": quick, "seed": seed, "signature_prob": signature_prob, "rows": rows,
              "timings": timings,
              "settings": {"benchmark": asdict(spec), "pretrain": asdict(pre_cfg),
                           "engine": cfg.to_dict(), "backbones": names}}
    (out / "backbones.json").write_text(json.dumps(result, indent=2) + "\n")
    first = rows[0]["splits"][0]
    table = backbones_table(rows) + (
        f"\nTop-1 %: mean ± std over {spec.train_splits} training splits; each split is "
        f"evaluated on {first['base_videos']} base and {first['novel_videos']} novel test "
        f"videos. ΔHM: FROSTER's HM minus fine-tuning's.\n")
    (out / "backbones.md").write_text(table + f"\nTotal time: {timings['total']:.0f} s\n")
    chart_rows = [r | {"method": f"{r['backbone']} {'FROSTER' if r['key'] == 'froster' else 'FT'}"}
                  for r in rows]
    draw_chart(chart_rows, out / "backbones.png", size=CHART_SIZE,
               title="FROSTER demo, paper Table 3 analogue: fine-tuning (FT) vs FROSTER per "
                     f"video backbone, base-to-novel top-1 (%), mean ± std over "
                     f"{spec.train_splits} splits" + (" [quick: noise]" if quick else ""))
    log("")
    log(table)
    log(f"Total time: {timings['total']:.0f} s ({timings['total'] / 60:.1f} min); results in {out}")
    log(f"[backbones] left {describe(out)}" + ("" if keep_runs else
        "; training states and the fine-tuning rows' students were removed (--keep-runs keeps them)"))
    return result


def pretrained_or_pretrain(pre_cfg, out: Path, log) -> Path:
    """`out/clip.safetensors`, pretrained now unless `out/clip.json` says it already was
    with these settings (pretraining is seeded, so the weights would be the same)."""
    weights, stamp = out / "clip.safetensors", out / "clip.json"
    settings = json.loads(json.dumps(asdict(pre_cfg)))
    if weights.is_file() and _read_json(stamp).get("pretrain") == settings:
        log(f"[backbones] the {pre_cfg.model} CLIP was pretrained earlier: {weights}")
        return weights
    log(f"[backbones] pretraining the {pre_cfg.model} CLIP ({pre_cfg.steps} steps)")
    stamp.unlink(missing_ok=True)
    pretrain(pre_cfg, weights, log=lambda m: log(f"[backbones] {m}"))
    stamp.write_text(json.dumps({"pretrain": settings}, indent=2) + "\n")
    return weights


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def finished_or_run(cfg, key: str, label: str, overrides: dict, files, out: Path, log,
                    keep_runs: bool, world: dict) -> dict:
    """`run_row`, unless `out/row.json` holds this row finished with the same settings (the
    engine's, the row's and the `world`'s: benchmark and pretraining): the whole table
    takes hours on a small machine, so an interrupted run goes on where it stopped (delete
    the folder to start over)."""
    saved = out / "row.json"
    settings = json.loads(json.dumps({"engine": cfg.to_dict(), "overrides": overrides,
                                      "world": world}))
    if saved.is_file():
        kept = _read_json(saved)
        if kept.get("settings") == settings:
            log(f"[backbones] {cfg.temporal}: {label}: finished earlier, read from {saved}")
            return kept["row"]
    row = run_row(cfg, key, label, overrides, files, out, keep_runs)
    saved.write_text(json.dumps({"settings": settings, "row": row}, indent=2) + "\n")
    return row


def backbones_table(rows) -> str:
    """One line per backbone: fine-tuning and FROSTER base / novel / HM, and the HM gain."""
    lines = ["| backbone | fine-tuning base | novel | HM | FROSTER base | novel | HM | ΔHM |",
             "|---|---|---|---|---|---|---|---|"]
    by_backbone: dict[str, dict] = {}
    for row in rows:
        by_backbone.setdefault(row["backbone"], {})[row["key"]] = row
    for name, pair in by_backbone.items():
        cells = []
        for key in ("fine_tune", "froster"):
            r = pair.get(key)
            cells += ([f"{r['base']:.1f} ± {r['base_std']:.1f}", f"{r['novel']:.1f} ± "
                       f"{r['novel_std']:.1f}", f"{r['hm']:.1f}"] if r else ["-"] * 3)
        gain = (f"{pair['froster']['hm'] - pair['fine_tune']['hm']:+.1f}"
                if len(pair) == 2 else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {gain} |")
    return "\n".join(lines) + "\n"
