"""`froster train | eval | average | export | benchmark | diff` (run under `torchrun` for
several processes; only rank 0 writes)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..cli_options import (
    CHECKPOINT_HELP,
    TRUST_PICKLE_HELP,
    add_parser,
    device_and_precision,
    output_option,
    throughput_options,
    view_options,
)
from ..errors import FrosterError

CONFIG_HELP = ("a YAML config: a file, or the name of a shipped one (e.g. b2n_k400; see "
               "`froster train --list-configs`); key=value arguments override its fields")
CONFIG_METAVAR = "[CONFIG] [key=value ...]"


def _config_and_overrides(items, required: bool = False):
    """Split positional words into a config (the first without '=': a file or a shipped
    config's name) and overrides."""
    from ..config import find_config

    config = None
    overrides = []
    for item in items or ():
        if "=" in item:
            overrides.append(item)
        elif config is None:
            config = item
        else:
            raise FrosterError(f"unexpected argument {item!r}: only one config, then key=value")
    if required and config is None:
        raise FrosterError("give a config, e.g. b2n_k400 or configs/b2n_k400.yaml (then "
                           "key=value overrides)")
    return (find_config(config) if config else None), overrides


def _session(cfg):
    """The command's distributed part: a barrier at its end when it succeeds, none when a
    rank fails (that rank leaves at once; `distributed.session`)."""
    from .distributed import session
    return session(cfg.device, cfg.dist_timeout)


def run_train(args) -> int:
    if args.list_configs:
        from ..config import shipped_configs

        print("\n".join(sorted(shipped_configs())))
        return 0
    from .distributed import recorded
    return recorded(_train)(args)  # under torchrun an exception also goes to its error file


def _train(args) -> int:
    from ..config import load_config
    from .train import train

    path, overrides = _config_and_overrides(args.config, required=False)
    cfg = load_config(path, overrides)
    with _session(cfg) as info:
        result = train(cfg, info)
    if info.is_main:
        print(json.dumps(result, indent=2, default=str) if args.json else train_summary(result))
    return 0


def train_summary(result: dict) -> str:
    """What a finished run made, in a few lines (the whole result: `--json`)."""
    lines = [f"run: {result['output_dir']} (record: {result['record']})"]
    if result.get("stopped"):
        lines.append(f"stopped by {result['stopped']} at step {result['step']} "
                     f"({result['epochs_done']} epochs done); state: {result['state']}; "
                     "resume=auto continues it")
        if result.get("requeue"):
            lines.append(result["requeue"])
    if result.get("train"):
        lines.append("last epoch: " + "  ".join(f"{k} {v:.4g}" for k, v in result["train"].items()))
    for key, title in (("checkpoint", "zero-shot checkpoint"), ("average", "averaged student")):
        if result.get(key):
            lines.append(f"{title}: {result[key]}")
    for key, title in (("eval", "eval"), ("eval_average", "eval of the average")):
        if result.get(key):
            summary = result[key]
            lines.append(f"{title}: " + "  ".join(
                f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items()))
    return "\n".join(lines)


#: eval's flags -> the config keys they set (the same flags as predict's)
EVAL_FLAGS = {"views": "test_views", "frames": "num_frames", "sampling_rate": "sampling_rate",
              "sampling": "sampling", "precision": "eval_precision",
              "batch_size": "eval_batch_size", "workers": "num_workers", "device": "device"}


def eval_overrides(args) -> list[str]:
    """key=value overrides from eval's flags (given flags only)."""
    overrides = [f"{key}={getattr(args, flag)}" for flag, key in EVAL_FLAGS.items()
                 if getattr(args, flag) is not None]
    if args.ignore_rotation:
        overrides.append("apply_rotation=false")
    return overrides


def run_eval(args) -> int:
    from ..checkpoint import load_student
    from ..config import load_config
    from ..interop import run_config_of
    from .evaluate import evaluate_checkpoint
    from .train import student_spec

    path, overrides = _config_and_overrides(args.config, required=False)
    cfg = load_config(path, overrides + eval_overrides(args),
                      base=run_config_of(args.checkpoint, args.trust_pickle))
    if not args.checkpoint and not cfg.zero_shot:
        raise FrosterError("give --checkpoint CKPT (a folder made by train/average/export), or "
                           "zero_shot=true to evaluate the frozen CLIP named by the config")
    with _session(cfg) as info:
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
    if info.is_main:
        from .record import load_record, summary_line

        print(metrics.describe())
        for line in metrics.failed:
            print(f"failed: {line}", file=sys.stderr)
        for line in metrics.fallback:
            print(f"sampled with a fallback: {line}", file=sys.stderr)
        print(summary_line(load_record(Path(output) / "metrics.json")))
        print(f"report: {output}/metrics.json, {output}/report.md, {output}/confusion.csv, "
              f"{output}/predictions.jsonl")
    return 1 if metrics.failed else 0


def _eval_folder(checkpoint: str) -> Path:
    """CHECKPOINT/eval for a folder; NAME_eval beside a checkpoint file."""
    path = Path(checkpoint)
    return path.parent / f"{path.stem}_eval" if path.is_file() else path / "eval"


def run_average(args) -> int:
    from .averaging import average_folders, average_run

    paths = [Path(p) for p in args.paths]
    is_run = any((paths[0] / name).exists() for name in ("epochs", "config.yaml", "checkpoints"))
    if len(paths) == 1 and is_run:
        folder = average_run(paths[0], args.from_epoch, args.to_epoch, args.output)
    else:
        if not args.output:
            raise FrosterError("averaging explicit checkpoint folders needs --output DIR")
        folder = average_folders(paths, args.output)
    print(f"averaged checkpoint: {folder}")
    return 0


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
    progress = state.get("progress")
    when = (f"at step {progress['epoch_step']} of epoch {state['epoch'] + 1} (a mid-epoch state)"
            if progress else f"after epoch {state['epoch']}")
    print(f"exported the student {when} to {args.output}")
    return 0


def _export_reference(args) -> int:
    from ..interop import export_reference, read_checkpoint
    from .checkpoints import LAST

    if not str(args.output).endswith((".pth", ".pyth", ".pt")):
        raise FrosterError(f"--to reference writes one file: give OUTPUT as a .pth file, "
                           f"not {args.output}")
    source = Path(args.source)
    if source.is_dir() and (source / LAST).is_file():  # a run folder: its training state
        source = source / LAST
    imported = read_checkpoint(source, trust_pickle=args.trust_pickle)
    for warning in imported.warnings + export_reference(imported, args.output):
        print(f"froster export: warning: {warning}", file=sys.stderr)
    heads = " and FROSTER's heads" if imported.heads else ""
    print(f"wrote {args.output}: the student{heads} from {source} in the reference's layout "
          f"(model_state with model.* keys); test it with the reference's "
          f"TEST.CUSTOM_LOAD True TEST.CUSTOM_LOAD_FILE {args.output}")
    return 0


def run_benchmark(args) -> int:
    from ..config import load_config
    from ..interop import run_config_of
    from .protocols import run_b2n, run_cross

    path, overrides = _config_and_overrides(args.config, required=False)
    trust_pickle = getattr(args, "trust_pickle", False)
    cfg = load_config(path, overrides, base=run_config_of(getattr(args, "checkpoint", None),
                                                         trust_pickle))
    output = args.output or str(Path(cfg.output_dir) / f"{args.protocol}")
    with _session(cfg) as info:
        if args.protocol == "b2n":
            run_b2n(cfg, args.splits, args.data_root, output, info, train_lists=args.train_lists,
                    zero_shot=args.zero_shot or cfg.zero_shot, dataset=args.dataset)
        else:
            run_cross(cfg, args.splits, args.data_root, args.dataset, output, info,
                      checkpoint=args.checkpoint, zero_shot=args.zero_shot or cfg.zero_shot,
                      trust_pickle=trust_pickle, labels=args.label_dir, full=not args.no_full)
    return 0


def run_diff(args) -> int:
    """Never needs torch; a path without a record is a FrosterError (exit 2)."""
    from .record import diff_records, format_diff, load_record

    rows = diff_records(load_record(args.run_a), load_record(args.run_b))
    print(format_diff(rows, args.run_a, args.run_b))
    return 1 if rows else 0


def register(subparsers) -> None:
    p = add_parser(
        subparsers, "train", help="train a student (FROSTER, fine-tuning or zero-shot) from a config",
        description="Train as CONFIG says; key=value arguments override its fields, e.g. "
                    "`froster train b2n_k400 epochs=2 resume=latest`. Several processes: "
                    "`torchrun --nproc_per_node 8 -m froster.cli train ...`, or `srun froster "
                    "train ...` with one SLURM task per GPU. SIGTERM/SIGUSR1 save the state "
                    "and stop (exit 0); resume=auto continues at the next batch; a folder "
                    "holding a state is not started over without overwrite=true "
                    "(docs/cluster.md). Progress goes to stderr; stdout gets a summary of what "
                    "the run made (--json: the whole result as JSON). With check_data=true the "
                    "run first checks train_list and val_list as `froster data check` does "
                    "(into OUTPUT_DIR/data_check/) and refuses to start while entries are "
                    "broken, naming the report and a cleaned list to pass instead.")
    p.add_argument("config", nargs="*", metavar=CONFIG_METAVAR, help=CONFIG_HELP)
    p.add_argument("--json", action="store_true", help="print the run's result as JSON")
    p.add_argument("--list-configs", action="store_true",
                   help="list the shipped configs' names and exit")
    p.set_defaults(run=run_train)

    p = add_parser(
        subparsers, "eval", help="multi-view evaluation of a checkpoint (or the frozen CLIP)",
        description="Top-1, top-5, mean class accuracy, per-class accuracy and a confusion "
                    "matrix on val_list with eval_class_file (or class_file). Without CONFIG "
                    "the checkpoint's own training config is used; key=value and the flags "
                    "below override it (each flag names its config key). Exit status: 0 "
                    "every video evaluated, 1 some videos could not be read (listed; the "
                    "metrics say over how many videos they were computed), 2 nothing could "
                    "be run.")
    p.add_argument("config", nargs="*", metavar=CONFIG_METAVAR, help=CONFIG_HELP)
    p.add_argument("--checkpoint", help=CHECKPOINT_HELP)
    p.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
    output_option(p, "report folder; default: CHECKPOINT/eval, or NAME_eval beside a "
                     "checkpoint file", metavar="DIR")
    views = p.add_argument_group("views and throughput (default: the config's)")
    view_options(views)
    device_and_precision(views)
    throughput_options(views, batch_help="videos per rank per forward pass", batch_default=None)
    p.set_defaults(run=run_eval)

    p = add_parser(
        subparsers, "average", help="uniform weight average of epoch checkpoints",
        description="`froster average RUN_DIR` averages RUN_DIR/epochs/epoch_NNN for NNN >= "
                    "--from-epoch into RUN_DIR/average; or give checkpoint folders and --output. "
                    "Training already writes RUN_DIR/average from a running sum; this command "
                    "is for other ranges of a run that kept its exports (keep_epochs=all).")
    p.add_argument("paths", nargs="+", metavar="RUN_DIR_OR_CHECKPOINTS")
    p.add_argument("--from-epoch", type=int, default=2, help="first epoch averaged")
    p.add_argument("--to-epoch", type=int, default=None, help="last epoch averaged; default: the last")
    output_option(p, "output folder; default: RUN_DIR/average", metavar="DIR")
    p.set_defaults(run=run_average)

    p = add_parser(
        subparsers, "export", help="the student alone: a checkpoint folder, or a file for the reference code",
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
                   help="froster: a checkpoint folder; reference: a PySlowFast .pth")
    p.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
    p.set_defaults(run=run_export)

    p = add_parser(
        subparsers, "diff", help="what differs between two runs' reproduction records",
        description="List every field that differs between the reproduction records of two "
                    "runs (versions, devices, seeds, precision, sampling, views, file hashes, "
                    "videos evaluated/failed, config). Each of RUN_A, RUN_B is a run folder "
                    "(record.json), a benchmark's results.json or an eval's metrics.json (or "
                    "the folder holding it). Exit status: 0 the records match, 1 they differ, "
                    "2 a path has no record.")
    p.add_argument("run_a", metavar="RUN_A")
    p.add_argument("run_b", metavar="RUN_B")
    p.set_defaults(run=run_diff)

    p = add_parser(subparsers, "benchmark", help="the paper's protocols: b2n, cross")
    sub = p.add_subparsers(dest="protocol", metavar="PROTOCOL", required=True)
    b2n = add_parser(
        sub, "b2n", help="base-to-novel: train per split, base/novel/HM, mean ± std",
        description="e.g. `froster benchmark b2n b2n_k400 --splits "
                    "froster_splits/zs_label_db/B2N_k400 --data-root /data/k400`")
    b2n.add_argument("config", nargs="*", metavar=CONFIG_METAVAR, help=CONFIG_HELP)
    b2n.add_argument("--splits", required=True, help="split folder, e.g. .../zs_label_db/B2N_k400")
    b2n.add_argument("--train-lists", nargs="+", metavar="NAME",
                     help="training lists in the split folder; default: every train*.csv")
    b2n.add_argument("--dataset", help="k400, hmdb, ucf or ssv2, for the paper's numbers; "
                                       "default: from the folder name")
    cross = add_parser(
        sub, "cross", help="cross-dataset: a checkpoint on each test split, mean ± std",
        description="e.g. `froster benchmark cross --checkpoint runs/k400/average --dataset ucf "
                    "--splits froster_splits/zs_label_db --data-root /data/ucf101`")
    cross.add_argument("config", nargs="*", metavar=CONFIG_METAVAR, help=CONFIG_HELP)
    cross.add_argument("--splits", required=True, help="folder with ucf101_split1/, ... "
                                                       "(e.g. froster_splits/zs_label_db)")
    cross.add_argument("--dataset", required=True, choices=("ucf", "hmdb", "k600"))
    cross.add_argument("--checkpoint", help=CHECKPOINT_HELP)
    cross.add_argument("--trust-pickle", action="store_true", help=TRUST_PICKLE_HELP)
    cross.add_argument("--label-dir", metavar="DIR",
                       help="folder of class-text files; default: label_rephrase beside --splits")
    cross.add_argument("--no-full", action="store_true", help="skip the full-set evaluation")
    for q in (b2n, cross):
        q.add_argument("--data-root", required=True, help="folder the list paths are relative to")
        q.add_argument("--zero-shot", action="store_true", help="the frozen CLIP, no training")
        output_option(q, "results folder; default: OUTPUT_DIR/<protocol>", metavar="DIR")
        q.set_defaults(run=run_benchmark, command="benchmark")
