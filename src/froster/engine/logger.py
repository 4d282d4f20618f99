"""Run log: one JSON object per line in `<output_dir>/log.jsonl`, and TensorBoard scalars
when TensorBoard is installed. Only rank 0 writes; other ranks get a silent logger."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path


def finite(value):
    """`value` with every inf/nan float as None: log.jsonl stays standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


class RunLogger:
    def __init__(self, output_dir: str | Path, enabled: bool = True, tensorboard: bool = True):
        self.enabled = enabled
        self.path = Path(output_dir) / "log.jsonl"
        self.start = time.time()
        self.writer = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if tensorboard:
                try:
                    from torch.utils.tensorboard import SummaryWriter
                    self.writer = SummaryWriter(str(Path(output_dir) / "tensorboard"))
                except ImportError:  # tensorboard is optional
                    self.writer = None

    def log(self, kind: str, step: int | None = None, **values) -> None:
        if not self.enabled:
            return
        record = {"kind": kind, "time": round(time.time() - self.start, 3)}
        if step is not None:
            record["step"] = step
        record.update(values)
        with open(self.path, "a") as f:
            f.write(json.dumps(finite(record), allow_nan=False) + "\n")
        if self.writer is not None and step is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) \
                        and math.isfinite(value):
                    self.writer.add_scalar(f"{kind}/{key}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
