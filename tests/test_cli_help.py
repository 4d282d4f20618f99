"""`froster --help` and every sub-command's --help answer without importing torch, or any
module outside the standard library: the CLI loads the heavy libraries only when a command
runs. Checked in a fresh interpreter through sys.modules, for whatever sub-commands exist."""

import json
import re
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import argparse, contextlib, io, json, sys

    before = set(sys.modules)  # what the interpreter loaded at start-up (site, .pth hooks)
    from froster.cli import build_parser, main

    def commands(parser, prefix=()):
        # every sub-command path, nested ones included (e.g. benchmark b2n)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield prefix + (name,)
                    yield from commands(sub, prefix + (name,))

    def foreign():
        return {m.split(".")[0] for m in set(sys.modules) - before} \
            - set(sys.stdlib_module_names) - {"froster"}

    def listed(names):
        first = {"torch", "open_clip", "numpy", "PIL", "av", "torchvision"}
        return sorted(names, key=lambda name: (name not in first, name.startswith("_"), name.lower()))

    # what building the parser loaded, then what each help loaded on top of that
    parser = build_parser()
    seen = foreign()
    report = {"(parser)": {"usage": True, "foreign": listed(seen)}}
    for argv in [(), *commands(parser)]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            try:
                main([*argv, "--help"])
            except SystemExit:
                pass
        now = foreign()
        report[" ".join(argv) or "(top)"] = {"usage": out.getvalue().startswith("usage:"),
                                            "foreign": listed(now - seen),
                                            "text": out.getvalue()}
        seen = now
    print(json.dumps(report))
""")


def test_help_of_every_command_imports_only_the_standard_library():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"(top)", "train", "eval", "predict", "demo", "benchmark b2n"} <= set(report)
    assert all(entry["usage"] for entry in report.values()), report
    heavy = {name: entry["foreign"][:8] for name, entry in report.items() if entry["foreign"]}
    assert heavy == {}, f"--help imported modules outside the standard library: {heavy}"


def test_cli_makes_idle_openmp_threads_sleep_unless_the_user_chose():
    """Set before torch loads OpenMP (spinning threads on shared cores: bench/omp_wait.py)."""
    import os

    script = ("import os, sys; import froster.cli; assert 'OMP_WAIT_POLICY' not in os.environ "
              "or os.environ['OMP_WAIT_POLICY'] == 'ACTIVE'; froster.cli.main(['diff', 'a', 'b']); "
              "print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    for given, expected in ((None, "PASSIVE False"), ("ACTIVE", "ACTIVE False")):
        run_env = env if given is None else env | {"OMP_WAIT_POLICY": given}
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                env=run_env, timeout=60)
        assert result.stdout.split() == expected.split(), result.stderr[-2000:]


def option_helps(text: str) -> dict[str, str]:
    """Each option's help paragraph in a --help text, by its first flag."""
    helps, current = {}, None
    for line in text.splitlines():
        match = re.match(r"^  (-[-\w]+)", line)
        if match:
            current = match.group(1)
            helps[current] = line
        elif current and line.startswith("    "):
            helps[current] += " " + line.strip()
        else:
            current = None
    return helps


def test_every_option_shows_its_default_once():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=120)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    checked = 0
    for command, entry in report.items():
        for flag, text in option_helps(entry.get("text", "")).items():
            checked += 1
            assert "(default: None)" not in text and "(default: False)" not in text, (command, text)
            assert text.count("default") <= 1, (command, text)
    assert checked > 100
    # predict's and eval's view flags are the same, and name their config keys
    predict, evaluate = (option_helps(report[c]["text"]) for c in ("predict", "eval"))
    for flag, key in (("--frames", "num_frames"), ("--views", "test_views"),
                      ("--sampling", "sampling"), ("--precision", "eval_precision")):
        assert f"config: {key}" in predict[flag] and f"config: {key}" in evaluate[flag]
