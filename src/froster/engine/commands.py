"""`froster train | eval | average | export | benchmark | diff` (run under `torchrun` for
several processes; only rank 0 writes)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..cli import guarded as _guarded

CONFIG_HELP = "a YAML config (see configs/); key=value arguments override its fields"


def _config_and_overrides(items, required: bool = False):
    """Split positional words into a config file (the first without '=') and overrides."""
    config = None
    overrides = []
    for item in items or ():
        if "=" in item:
            overrides.append(item)
        elif config is None:
            config = item
        else:
            raise ValueError(f"unexpected argument {item!r}: only one config file, then key=value")
    if required and config is None:
        raise ValueError("give a config file, e.g. configs/b2n_k400.yaml (then key=value overrides)")
    return config, overrides


def _dist(cfg):
    from .distributed import setup
    return setup(cfg.device)


@_guarded
def run_train(args) -> int:
    from ..config import load_config
    from .distributed import cleanup
    from .train import train

    path, overrides = _config_and_overrides(args.config, required=False)
    cfg = load_config(path, overrides)
    info = _dist(cfg)
    try:
        result = train(cfg, info)
    finally:
        cleanup()
    if info.is_main:
        print(json.dumps(result, indent=2, default=str))
    return 0


def _checkpoint_config(checkpoint: str | None) -> dict | None:
    if not checkpoint:
        return None
    config = Path(checkpoint) / "config.json"
    if not config.is_file():
        return None
    return (json.loads(config.read_text()).get("extra") or {}).get("config")


@_guarded
def run_eval(args) -> int:
    from ..checkpoint import load_student
    from ..config import load_config
    from .distributed import cleanup
    from .evaluate import evaluate_checkpoint
    from .train import student_spec

    path, overrides = _config_and_overrides(args.config, required=False)
    if args.sampling:
        overrides.append(f"sampling={args.sampling}")
    cfg = load_config(path, overrides, base=_checkpoint_config(args.checkpoint))
    if not args.checkpoint and not cfg.zero_shot:
        raise ValueError("give --checkpoint CKPT (a folder made by train/average/export), or "
                         "zero_shot=true to evaluate the frozen CLIP named by the config")
    info = _dist(cfg)
    try:
        if args.checkpoint:
            student, tokenizer, _ = load_student(args.checkpoint, device=info.device)
        else:
            from ..checkpoint import build_student
            student, tokenizer = build_student(student_spec(cfg), device=info.device)
        output = args.output or (Path(args.checkpoint) / "eval" if args.checkpoint
                                 else Path(cfg.output_dir) / "eval" / "zero_shot")
        metrics = evaluate_checkpoint(student, tokenizer, cfg, cfg.val_list,
                                      cfg.eval_class_file or cfg.class_file, info, output,
                                      extra={"checkpoint": args.checkpoint},
                                      checkpoint=args.checkpoint)
    finally:
        cleanup()
    if info.is_main:
        from .record import load_record, summary_line

        print(metrics.describe())
        for line in metrics.failed:
            print(f"failed: {line}", file=sys.stderr)
        for line in metrics.fallback:
            print(f"sampled with a fallback: {line}", file=sys.stderr)
        print(summary_line(load_record(Path(output) / "metrics.json")))
        print(f"report: {output}/metrics.json, {output}/report.md, {output}/confusion.csv")
    return 0


@_guarded
def run_average(args) -> int:
    from .averaging import average_folders, average_run

    paths = [Path(p) for p in args.paths]
    if len(paths) == 1 and (paths[0] / "epochs").is_dir():
        folder = average_run(paths[0], args.from_epoch, args.to_epoch, args.output)
    else:
        if not args.output:
            raise ValueError("averaging explicit checkpoint folders needs --output DIR")
        folder = average_folders(paths, args.output)
    print(f"averaged checkpoint: {folder}")
    return 0


@_guarded
def run_export(args) -> int:
    """The student alone, from a training checkpoint (last.pt), as a checkpoint folder."""
    from ..checkpoint import build_student, export_student
    from ..config import load_config
    from .checkpoints import load_training_state, resolve_resume
    from .train import student_spec

    path = resolve_resume(args.training_checkpoint, ".")
    state = load_training_state(path)
    cfg = load_config(base=state["config"])
    spec = student_spec(cfg)
    spec.pretrained = None
    student, _ = build_student(spec)
    weights = {k.removeprefix("student."): v for k, v in state["model"].items()
               if k.startswith("student.")}
    student.load_state_dict(weights)
    export_student(student, student_spec(cfg), args.output,
                   {"epoch": state["epoch"], "step": state["step"], "config": state["config"]})
    print(f"exported the student after epoch {state['epoch']} to {args.output}")
    return 0


@_guarded
def run_benchmark(args) -> int:
    from ..config import load_config
    from ..protocols import run_b2n, run_cross
    from .distributed import cleanup

    path, overrides = _config_and_overrides(args.config, required=False)
    cfg = load_config(path, overrides, base=_checkpoint_config(getattr(args, "checkpoint", None)))
    output = args.output or str(Path(cfg.output_dir) / f"{args.protocol}")
    info = _dist(cfg)
    try:
        if args.protocol == "b2n":
            run_b2n(cfg, args.splits, args.data_root, output, info, train_lists=args.train_lists,
                    zero_shot=args.zero_shot or cfg.zero_shot, dataset=args.dataset)
        else:
            run_cross(cfg, args.splits, args.data_root, args.dataset, output, info,
                      checkpoint=args.checkpoint, zero_shot=args.zero_shot or cfg.zero_shot,
                      labels=args.labels, full=not args.no_full)
    finally:
        cleanup()
    return 0


def run_diff(args) -> int:
    """Not guarded: its errors are FileNotFoundError/ValueError, which `froster.cli.main`
    prints as one line with exit status 2, and it never needs torch."""
    from .record import diff_records, format_diff, load_record

    rows = diff_records(load_record(args.run_a), load_record(args.run_b))
    print(format_diff(rows, args.run_a, args.run_b))
    return 1 if rows else 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a student (FROSTER, fine-tuning or zero-shot) from a config",
        description="Train as CONFIG says; key=value arguments override its fields, e.g. "
                    "`froster train configs/b2n_k400.yaml epochs=2 resume=latest`. Several "
                    "processes: `torchrun --nproc_per_node 8 -m froster.cli train ...`.")
    p.add_argument("config", nargs="*", metavar="[CONFIG] [key=value ...]", help=CONFIG_HELP)
    p.set_defaults(run=run_train)

    p = subparsers.add_parser(
        "eval", help="multi-view evaluation of a checkpoint (or the frozen CLIP)",
        description="Top-1, top-5, mean class accuracy, per-class accuracy and a confusion "
                    "matrix on val_list with eval_class_file (or class_file). Without CONFIG "
                    "the checkpoint's own training config is used; key=value overrides it.")
    p.add_argument("config", nargs="*", metavar="[CONFIG] [key=value ...]", help=CONFIG_HELP)
    p.add_argument("--checkpoint", help="checkpoint folder (model.safetensors + config.json)")
    p.add_argument("--output", help="report folder (default: CHECKPOINT/eval)")
    p.add_argument("--sampling", choices=("reference", "uniform"),
                   help="which frames make a test view (the same as sampling=...; default: "
                        "the config's, 'reference': the FROSTER reference decoder's frames)")
    p.set_defaults(run=run_eval)

    p = subparsers.add_parser(
        "average", help="uniform weight average of epoch checkpoints",
        description="`froster average RUN_DIR` averages RUN_DIR/epochs/epoch_NNN for NNN >= "
                    "--from-epoch into RUN_DIR/average; or give checkpoint folders and --output.")
    p.add_argument("paths", nargs="+", metavar="RUN_DIR_OR_CHECKPOINTS")
    p.add_argument("--from-epoch", type=int, default=2, help="first epoch averaged (default 2)")
    p.add_argument("--to-epoch", type=int, default=None, help="last epoch averaged (default: last)")
    p.add_argument("--output", help="output folder (default: RUN_DIR/average)")
    p.set_defaults(run=run_average)

    p = subparsers.add_parser("export", help="the student alone from a training checkpoint",
                              description="Write the student of a training checkpoint "
                                          "(RUN_DIR/checkpoints/last.pt) as model.safetensors "
                                          "+ config.json, for eval and predict.")
    p.add_argument("training_checkpoint", metavar="LAST_PT_OR_RUN_DIR")
    p.add_argument("output", metavar="OUTPUT_DIR")
    p.set_defaults(run=run_export)

    p = subparsers.add_parser(
        "diff", help="what differs between two runs' reproduction records",
        description="List every field that differs between the reproduction records of two "
                    "runs (versions, devices, seeds, precision, sampling, views, file hashes, "
                    "videos evaluated/failed, config). Each of RUN_A, RUN_B is a run folder "
                    "(record.json), a benchmark's results.json or an eval's metrics.json (or "
                    "the folder holding it). Exit status: 0 the records match, 1 they differ, "
                    "2 a path has no record.")
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")
    p.set_defaults(run=run_diff)

    p = subparsers.add_parser("benchmark", help="the paper's protocols: b2n, cross")
    sub = p.add_subparsers(dest="protocol", metavar="PROTOCOL", required=True)
    b2n = sub.add_parser(
        "b2n", help="base-to-novel: train per split, base/novel/HM, mean ± std",
        description="e.g. `froster benchmark b2n configs/b2n_k400.yaml --splits "
                    "froster_splits/zs_label_db/B2N_k400 --data-root /data/k400`")
    b2n.add_argument("config", nargs="*", metavar="[CONFIG] [key=value ...]", help=CONFIG_HELP)
    b2n.add_argument("--splits", required=True, help="split folder, e.g. .../zs_label_db/B2N_k400")
    b2n.add_argument("--train-lists", nargs="+", metavar="NAME",
                     help="training lists in the split folder (default: every train*.csv)")
    b2n.add_argument("--dataset", help="k400, hmdb, ucf or ssv2 (default: from the folder name), "
                                       "for the paper's numbers")
    cross = sub.add_parser(
        "cross", help="cross-dataset: a checkpoint on each test split, mean ± std",
        description="e.g. `froster benchmark cross --checkpoint runs/k400/average --dataset ucf "
                    "--splits froster_splits/zs_label_db --data-root /data/ucf101`")
    cross.add_argument("config", nargs="*", metavar="[CONFIG] [key=value ...]", help=CONFIG_HELP)
    cross.add_argument("--splits", required=True, help="folder with ucf101_split1/, ... "
                                                       "(e.g. froster_splits/zs_label_db)")
    cross.add_argument("--dataset", required=True, choices=("ucf", "hmdb", "k600"))
    cross.add_argument("--checkpoint", help="the trained checkpoint folder")
    cross.add_argument("--labels", help="class-text folder (default: label_rephrase beside --splits)")
    cross.add_argument("--no-full", action="store_true", help="skip the full-set evaluation")
    for q in (b2n, cross):
        q.add_argument("--data-root", required=True, help="folder the list paths are relative to")
        q.add_argument("--zero-shot", action="store_true", help="the frozen CLIP, no training")
        q.add_argument("--output", help="results folder (default: OUTPUT_DIR/<protocol>)")
        q.set_defaults(run=run_benchmark, command="benchmark")
