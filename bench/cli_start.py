"""How long `froster --help` and each sub-command's --help take, warm (the files in the
page cache after a first untimed run), each a fresh process as a user starts it.

    python bench/cli_start.py               # 5 runs each, the median
    python bench/cli_start.py --runs 9

Prints `key: value` lines: `help_seconds` (median of `froster --help`; target <= 1.0),
`help_seconds_<command>` per sub-command (nested ones joined by `_`), the slowest of
those, and `python_start_seconds` (an empty `python -c pass`, the floor) run in the same
interleaved rounds, so that the machine's load hits all of them alike.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def froster_command() -> list[str]:
    """The installed `froster` script if it runs this checkout's code, else python -m."""
    script = shutil.which("froster")
    return [script] if script else [sys.executable, "-m", "froster.cli"]


def sub_commands() -> list[tuple[str, ...]]:
    sys.path.insert(0, str(SRC))
    from froster.cli import build_parser

    def walk(parser, prefix=()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield prefix + (name,)
                    yield from walk(sub, prefix + (name,))
    return list(walk(build_parser()))


def timed(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {result.stderr.decode()[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each (median)")
    args = parser.parse_args()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(SRC), *filter(None, [os.environ.get("PYTHONPATH")])]))
    froster = froster_command()
    cases = {"python_start": [sys.executable, "-c", "pass"], "help": [*froster, "--help"]}
    for command in sub_commands():
        cases["help_" + "_".join(command)] = [*froster, *command, "--help"]
    times: dict[str, list[float]] = {name: [] for name in cases}
    for argv in cases.values():  # warm-up: files into the page cache
        timed(argv, env)
    for _ in range(args.runs):
        for name, argv in cases.items():
            times[name].append(timed(argv, env))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"command: {' '.join(froster)} --help")
    print(f"runs: {args.runs}")
    print(f"python_start_seconds: {median.pop('python_start'):.3f}")
    print(f"help_seconds: {median.pop('help'):.3f}")
    for name, value in median.items():
        print(f"{name.replace('help_', 'help_seconds_', 1)}: {value:.3f}")
    slowest = max(median, key=median.get)
    print(f"help_seconds_slowest_command: {median[slowest]:.3f} ({slowest[5:]})")


if __name__ == "__main__":
    sys.exit(main())
