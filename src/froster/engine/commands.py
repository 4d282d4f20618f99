"""`froster train | eval | average | export | benchmark | diff` (run under `torchrun` for
several processes; only rank 0 writes)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..cli import guarded as _guarded

CONFIG_HELP = "a YAML config (see configs/); key=value arguments override its fields"
CHECKPOINT_HELP = ("a froster checkpoint folder (model.safetensors + config.json), or a FROSTER "
                   "reference / Open-VCLIP / ViFi-CLIP checkpoint file as released")
TRUST_PICKLE_HELP = ("allow a checkpoint file that needs full unpickling (it could run code: "
                     "only for files from a source you trust)")


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


def _checkpoint_config(checkpoint: str | None, trust_pickle: bool = False) -> dict | None:
    """The config a checkpoint records (a run's, or what another project's file fixes:
    frames, views, ...), as the base that a config file and key=value override."""
    if not checkpoint:
        return None
    from ..checkpoint import froster_folder

    folder = froster_folder(checkpoint)
    if folder is None:
        if not Path(checkpoint).is_file():
            return None
        from ..interop import recorded_config
        return recorded_config(checkpoint, trust_pickle=trust_pickle)
    config = folder / "config.json"
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
    cfg = load_config(path, overrides, base=_checkpoint_config(args.checkpoint, args.trust_pickle))
    if not args.checkpoint and not cfg.zero_shot:
        raise ValueError("give --checkpoint CKPT (a folder made by train/average/export), or "
                         "zero_shot=true to evaluate the frozen CLIP named by the config")
    info = _dist(cfg)
    try:
        if args.checkpoint:
            student, tokenizer, _ = load_student(args.checkpoint, device=info.device,
                                                 trust_pickle=args.trust_pickle)
        else:
            from ..checkpoint import build_student
            student, tokenizer = build_student(student_spec(cfg), device=info.device)
        output = args.output or (_eval_folder(args.checkpoint) if args.checkpoint
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


def _eval_folder(checkpoint: str) -> Path:
    """CHECKPOINT/eval for a folder; NAME_eval beside a checkpoint file."""
    path = Path(checkpoint)
    return path.parent / f"{path.stem}_eval" if path.is_file() else path / "eval"


@_guarded
def run_average(args) -> int:
    from .averaging import average_folders, average_run

    paths = [Path(p) for p in args.paths]
    is_run = any((paths[0] / name).exists() for name in ("epochs", "config.yaml", "checkpoints"))
    if len(paths) == 1 and is_run:
        folder = average_run(paths[0], args.from_epoch, args.to_epoch, args.output)
    else:
        if not args.output:
            raise ValueError("averaging explicit checkpoint folders needs --output DIR")
        folder = average_folders(paths, args.output)
    print(f"averaged checkpoint: {folder}")
    return 0


@_guarded
def run_export(args) -> int:
    """The student alone: from a training checkpoint (last.pt) as a checkpoint folder, or
    (--to reference) from any checkpoint as a file in the reference's layout."""
    if args.to == "reference":
        return _export_reference(args)
    from ..checkpoint import build_imported, export_student
    from ..interop import froster_state
    from ..interop.safe_load import read_torch_file
    from .checkpoints import resolve_resume

    path = resolve_resume(args.source, ".")
    state = read_torch_file(path, trust_pickle=args.trust_pickle)
    imported = froster_state.read(state, str(path))
    student, _ = build_imported(imported)
    export_student(student, imported.spec, args.output,
                   {"epoch": state["epoch"], "step": state["step"], "config": state["config"]})
    print(f"exported the student after epoch {state['epoch']} to {args.output}")
    return 0


def _export_reference(args) -> int:
    from ..checkpoint import read_student
    from ..interop import export_reference
    from .checkpoints import LAST

    if not str(args.output).endswith((".pth", ".pyth", ".pt")):
        raise ValueError(f"--to reference writes one file: give OUTPUT as a .pth file, "
                         f"not {args.output}")
    source = Path(args.source)
    if source.is_dir() and (source / LAST).is_file():  # a run folder: its training state
        source = source / LAST
    imported = read_student(source, trust_pickle=args.trust_pickle)
    for warning in imported.warnings + export_reference(imported, args.output):
        print(f"froster export: warning: {warning}", file=sys.stderr)
    heads = " and FROSTER's heads" if imported.heads else ""
    print(f"wrote {args.output}: the student{heads} from {source} in the reference's layout "
          f"(model_state with model.* keys); test it with the reference's "
          f"TEST.CUSTOM_LOAD True TEST.CUSTOM_LOAD_FILE {args.output}")
    return 0


@_guarded
def run_benchmark(args) -> int:
    from ..config import load_config
    from ..protocols import run_b2n, run_cross
    from .distributed import cleanup

    path, overrides = _config_and_overrides(args.config, required=False)
    trust_pickle = getattr(args, "trust_pickle", False)
    cfg = load_config(path, overrides, base=_checkpoint_config(getattr(args, "checkpoint", None),
                                                               trust_pickle))
    output = args.output or str(Path(cfg.output_dir) / f"{args.protocol}")
    info = _dist(cfg)
    try:
        if args.protocol == "b2n":
            run_b2n(cfg, args.splits, args.data_root, output, info, train_lists=args.train_lists,
                    zero_shot=args.zero_shot or cfg.zero_shot, dataset=args.dataset)
        else:
            run_cross(cfg, args.splits, args.data_root, args.dataset, output, info,
                      checkpoint=args.checkpoint, zero_shot=args.zero_shot or cfg.zero_shot,
                      trust_pickle=trust_pickle,
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
                    "processes: `torchrun --nproc_per_node 8 -m froster.cli train ...`. "
                    "With check_data=true the run first checks train_list and val_list as "
                    "`froster data check` does (into OUTPUT_DIR/data_check/) and refuses to "
                    "start while entries are broken, naming the report and a cleaned list "
                    "to pass instead.")
    p.add_argument("config", nargs="*", metavar="[CONFIG] [key=value ...]", help=CONFIG_HELP)
    p.set_defaults(run=run_train)

    p = subparsers.add_parser(
        "eval", help="multi-view evaluation of a checkpoint (or the frozen CLIP)",
        description="Top-1, top-5, mean class accuracy, per-class accuracy and a confusion "
                    "matrix on val_list with eval_class_file (or class_file). Without CONFIG "
                    "the checkpoint's own training config is used; key=value overrides it.")
    p.add_argument("config", nargs="*", metavar="[CONFIG] [key=value ...]", help=CONFIG_HELP)
    p.add_argument("--checkpoint", help=CHECKPOINT_HELP)
    p.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
    p.add_argument("--output", help="report folder (default: CHECKPOINT/eval, or beside a "
                                     "checkpoint file)")
    p.add_argument("--sampling", choices=("reference", "uniform"),
                   help="which frames make a test view (the same as sampling=...; default: "
                        "the config's, 'reference': the FROSTER reference decoder's frames)")
    p.set_defaults(run=run_eval)

    p = subparsers.add_parser(
        "average", help="uniform weight average of epoch checkpoints",
        description="`froster average RUN_DIR` averages RUN_DIR/epochs/epoch_NNN for NNN >= "
                    "--from-epoch into RUN_DIR/average; or give checkpoint folders and --output. "
                    "Training already writes RUN_DIR/average from a running sum; this command "
                    "is for other ranges of a run that kept its exports (keep_epochs=all).")
    p.add_argument("paths", nargs="+", metavar="RUN_DIR_OR_CHECKPOINTS")
    p.add_argument("--from-epoch", type=int, default=2, help="first epoch averaged (default 2)")
    p.add_argument("--to-epoch", type=int, default=None, help="last epoch averaged (default: last)")
    p.add_argument("--output", help="output folder (default: RUN_DIR/average)")
    p.set_defaults(run=run_average)

    p = subparsers.add_parser(
        "export", help="the student alone: a checkpoint folder, or a file for the reference code",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="froster export LAST_PT_OR_RUN_DIR OUTPUT_DIR\n"
                    "  the student of a training checkpoint (RUN_DIR/checkpoints/last.pt) as\n"
                    "  model.safetensors + config.json, for eval and predict.\n"
                    "froster export CHECKPOINT OUT.pth --to reference\n"
                    "  any checkpoint (folder, last.pt or run folder, or another project's file)\n"
                    "  as a file in the FROSTER reference's layout ({'model_state': model.*\n"
                    "  keys, + projector_v/t heads when the source has them}), which the\n"
                    "  reference tests with TEST.CUSTOM_LOAD True TEST.CUSTOM_LOAD_FILE OUT.pth.\n"
                    "  To export a run's averaged model, give RUN_DIR/average.")
    p.add_argument("source", metavar="SOURCE", help="training checkpoint (last.pt) or run folder; "
                                                    "with --to reference any checkpoint")
    p.add_argument("output", metavar="OUTPUT", help="folder (--to froster) or .pth file "
                                                    "(--to reference)")
    p.add_argument("--to", choices=("froster", "reference"), default="froster",
                   help="froster: a checkpoint folder (default); reference: a PySlowFast .pth")
    p.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
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
    cross.add_argument("--checkpoint", help=CHECKPOINT_HELP)
    cross.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
    cross.add_argument("--labels", help="class-text folder (default: label_rephrase beside --splits)")
    cross.add_argument("--no-full", action="store_true", help="skip the full-set evaluation")
    for q in (b2n, cross):
        q.add_argument("--data-root", required=True, help="folder the list paths are relative to")
        q.add_argument("--zero-shot", action="store_true", help="the frozen CLIP, no training")
        q.add_argument("--output", help="results folder (default: OUTPUT_DIR/<protocol>)")
        q.set_defaults(run=run_benchmark, command="benchmark")
