"""`froster demo`: the synthetic base-to-novel demo, end to end (see docs/demo.md)."""

from __future__ import annotations

import argparse

from ..cli_options import add_parser
from ..errors import FrosterError
from .defaults import DEFAULT_TIME, DEMO_EPOCHS, FULL_EPOCHS, FULL_TIME, SIGNATURE_PROB


def register(subparsers) -> None:
    parser = add_parser(
        subparsers, "demo", help="run the offline synthetic base-to-novel demo end to end",
        description="Run FROSTER's base-to-novel experiment on a small synthetic world, with "
                    "no network and no pretrained weights:\n"
                    "  1. write a benchmark of 32x32 videos of 12 actions (6 base, 6 novel);\n"
                    "  2. 'pretrain' a tiny CLIP (froster-demo) on captioned single frames;\n"
                    "  3. train and evaluate the paper's Table 1 rows with the real engine on\n"
                    "     three training splits: frozen CLIP zero-shot, plain fine-tuning, FROSTER;\n"
                    "  4. measure each model's attention maps against the object's mask on 120\n"
                    "     novel test videos (share on the object, pointing game);\n"
                    "  5. check the paper's conclusions on the table (held / did not hold).\n"
                    "Writes results.json, results.md, results.png (bar chart) and attention.png\n"
                    "(maps of the three models) to --output and prints the tables.\n\n"
                    f"Takes {DEFAULT_TIME} on 2 CPU cores (the seven training runs side by side,\n"
                    "one single-threaded process per core; a GPU is used when there is one);\n"
                    f"--full runs the larger protocol of docs/demo.md ({FULL_TIME}); --quick\n"
                    "takes seconds and is a smoke test only (its numbers mean nothing).")
    parser.add_argument("-o", "--output", default="froster_demo", metavar="DIR",
                        help="folder for the benchmark, weights, runs and results "
                             "(default: froster_demo)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true",
                      help="tiny benchmark, a few pretraining steps and 1 epoch (seconds)")
    size.add_argument("--full", action="store_true",
                      help="the protocol of docs/demo.md section 4 (64 training videos per base "
                           "class and split, 100 test videos per class, 1000 pretraining "
                           f"steps), one run after the other as before: {FULL_TIME}")
    parser.add_argument("--seed", type=int, default=0, help="seed of the world and the runs")
    parser.add_argument("--signature-prob", type=_probability, default=SIGNATURE_PROB, metavar="P",
                        help="share of videos in their action's usual colour: what a still frame "
                             "shows of an action, as a guitar does of 'playing guitar' (default: "
                             f"{SIGNATURE_PROB}); 0 gives the control world, where frozen CLIP is "
                             "near chance")
    parser.add_argument("--epochs", type=_positive, default=None, metavar="N",
                        help="training epochs of the fine-tuning and FROSTER rows (default: "
                             f"{DEMO_EPOCHS}; {FULL_EPOCHS} with --full, 1 with --quick); "
                             "--full --epochs 20 shows plain fine-tuning forgetting the novel "
                             "classes while FROSTER keeps them (about 2.5 times --full's "
                             "training time)")
    from ..backbones import names  # no torch: the registry lists names only

    parser.add_argument("--temporal", choices=names(), default="neighbor", metavar="BACKBONE",
                        help="video backbone of the trained student (default: neighbor, as "
                             f"FROSTER); one of: {', '.join(names())}")
    parser.add_argument("--backbones", nargs="?", const="all", default=None, metavar="NAMES",
                        help="instead of the three rows, the paper's Table 3 analogue: "
                             "fine-tuning vs FROSTER for every backbone (or the comma-"
                             "separated NAMES), writing backbones.{json,md,png}, with --full's "
                             "protocol; about 12 times its training time (see docs/demo.md); "
                             "run again with the same --output, it goes on where it stopped")
    parser.add_argument("--keep-runs", action="store_true",
                        help="keep every run's training state and per-epoch exports for "
                             "inspection (about 1 GB; by default the demo leaves under 100 MB: "
                             "the benchmark, the pretrained CLIP, FROSTER's students, logs and "
                             "reports)")
    # None: `_run` sets OpenMP's wait policy itself (see there)
    parser.set_defaults(run=_run, omp_wait_policy=None)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of epochs >= 1, got {text!r}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a probability between 0 and 1, got {text!r}")
    return value


def _run(args) -> int:
    """OpenMP's wait policy, unless the user set OMP_WAIT_POLICY (then theirs everywhere):
    PASSIVE in this process (--full decodes in a worker beside the model's threads, where
    sleeping threads are right; the default only coordinates here); the default's
    pretraining process, alone on the machine, spins (ACTIVE) if its cores are free when it
    starts; its runs are single-threaded, so no thread of theirs ever waits."""
    import os

    user_policy = os.environ.get("OMP_WAIT_POLICY")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported
    if args.backbones is not None:
        from ..backbones import names
        from .backbones import run_backbones_demo

        chosen = names() if args.backbones == "all" else \
            [n.strip() for n in args.backbones.split(",") if n.strip()]
        unknown = [n for n in chosen if n not in names()]
        if unknown or not chosen:
            raise FrosterError(f"--backbones: unknown backbone(s) {', '.join(unknown) or '(none)'}; "
                               f"choose from {', '.join(names())}")
        run_backbones_demo(args.output, quick=args.quick, seed=args.seed,
                           signature_prob=args.signature_prob, epochs=args.epochs, names=chosen,
                           keep_runs=args.keep_runs)
        return 0
    from .run import run_demo

    run_demo(args.output, quick=args.quick, seed=args.seed, signature_prob=args.signature_prob,
             epochs=args.epochs, temporal=args.temporal, keep_runs=args.keep_runs, full=args.full,
             pretrain_wait_policy=user_policy)
    return 0
