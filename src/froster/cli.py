"""`froster` command line: a thin layer over the library. Each area registers its own
sub-commands (training/evaluation, prediction/search, the demo, ...).

A user's mistake (`froster.errors.FrosterError`: a bad argument, a missing file, weights
that cannot be had) prints as one line and exits with 2; any other error is a bug and
shows its traceback; `--debug` shows the traceback of both."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

#: OpenMP's wait policy for a command that does not choose its own (`omp_wait_policy` in the
#: parser's defaults; None: the command sets it itself before torch loads). Idle threads sleep
#: instead of spinning: where cores are shared (other jobs, a decoding worker beside the
#: model, two ranks on two cores) spinning threads made CPU training 5-7x slower here
#: (bench/omp_wait.py); the arithmetic is the same either way. A user's own setting wins.
DEFAULT_OMP_WAIT_POLICY = "PASSIVE"

COMMAND_MODULES = (
    "froster.engine.commands",              # train, eval, average, export, benchmark, diff
    "froster.inference.commands",           # predict, search
    "froster.inference.timeline.command",   # timeline
    "froster.explain.commands",             # explain
    "froster.interop.commands",             # import
    "froster.demo.commands",                # demo
    "froster.data.commands",                # data check, data prepare
    "froster.serve.commands",               # serve
)


def build_parser() -> argparse.ArgumentParser:
    from .cli_options import HelpFormatter
    from .version import __version__

    parser = argparse.ArgumentParser(
        prog="froster", formatter_class=HelpFormatter,
        description="Open-vocabulary video action recognition with FROSTER: train CLIP on "
                    "videos with a frozen CLIP teacher, evaluate the paper's protocols, and "
                    "recognise actions in any video with any class names.")
    parser.add_argument("--version", action="version", version=f"froster {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv=None) -> int:
    from .errors import FrosterError

    logging.getLogger().setLevel(logging.ERROR)  # open_clip logs routine notices as warnings
    parser = build_parser()
    args = parser.parse_args(argv)
    policy = getattr(args, "omp_wait_policy", DEFAULT_OMP_WAIT_POLICY)
    if policy:  # before the command imports torch, which loads OpenMP
        os.environ.setdefault("OMP_WAIT_POLICY", policy)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except FrosterError as err:
        if getattr(args, "debug", False):
            raise
        print(f"froster {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
