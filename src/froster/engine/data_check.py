"""``check_data=true``: `froster data check` on a run's video lists before it starts.

A run with broken entries would skip them one by one for hours (training replaces
each with another video, evaluation leaves it out of its metrics); with check_data it
refuses to start instead, and names the report and the cleaned list that leaves them out.
Entries that load but are sampled another way (warnings) are reported and kept.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..config import Config
from ..errors import FrosterError
from .distributed import DistInfo, main_first
from .inputs import list_file, require_data_root


def check_run_data(cfg: Config, info: DistInfo) -> None:
    """Check train_list (unless zero_shot) and val_list into OUTPUT_DIR/data_check/KEY/;
    raise FrosterError (one line) if any entry is broken. Rank 0 checks first, in one
    process per core (nothing else runs meanwhile; num_workers=0: in this process), and
    the other ranks then find its finished log and reach the same verdict."""
    from ..data.check import CheckSettings, check_list
    from ..data.jobs import cpu_cores

    lists = [("val_list", cfg.eval_class_file or cfg.class_file)]
    if not cfg.zero_shot:
        lists.insert(0, ("train_list", cfg.class_file))
    settings = CheckSettings.from_config(cfg)
    for key, class_file in lists:
        path = getattr(cfg, key)
        if not path:
            continue
        list_file(path, key)
        require_data_root(cfg.data_root, path)
        output = Path(cfg.output_dir) / "data_check" / key
        with main_first(info):
            result = check_list(path, cfg.data_root or None, class_file or None, settings,
                                workers=0 if cfg.num_workers == 0 else cpu_cores(), output=output,
                                progress=cfg.progress and info.is_main)
        report = output / "report.txt"
        if result.broken:
            raise FrosterError(f"check_data: {result.broken} of {result.total} videos in {path} "
                               f"are broken ({result.counts('broken')}); report: {report}; fix "
                               f"them, or leave them out with {key}={result.cleaned_list}")
        if info.is_main:
            warned = (f", {result.warned} sampled another way ({result.counts('warning')})"
                      if result.warned else "")
            print(f"check_data: {key}: {result.total} videos, none broken{warned}; "
                  f"report: {report}", file=sys.stderr)
