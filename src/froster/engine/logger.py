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
        self.tensorboard = tensorboard and enabled
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._open_writer()

    def _open_writer(self, purge_step: int | None = None) -> None:
        if not self.tensorboard:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(self.path.parent / "tensorboard"),
                                        purge_step=purge_step)
        except ImportError:  # tensorboard is optional
            self.writer = None

    def sync(self) -> None:
        """Flush the log to the disk (before a training state is written: a state never
        covers steps whose lines a crash of the machine could lose)."""
        if not self.enabled:
            return
        from ..files import fsync_path

        if self.path.is_file():
            fsync_path(self.path)
        if self.writer is not None:
            self.writer.flush()

    def rewind(self, step: int) -> int:
        """Resuming from a state saved after `step`: drop what was logged after it (the
        steps about to run again, a finished run's `end`, a line cut short by a kill), so
        that the resumed run's log has each line once; TensorBoard's events after `step`
        are purged too. Returns the number of lines dropped."""
        if not self.enabled:
            return 0
        from ..files import atomic_write

        dropped, kept = 0, []
        if self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    dropped += 1
                    continue
                if record.get("kind") == "end" or record.get("step", 0) > step:
                    dropped += 1
                    continue
                kept.append(line + "\n")
            atomic_write(self.path, lambda p: Path(p).write_text("".join(kept), encoding="utf-8"))
        if self.writer is not None:
            self.writer.close()
            self._open_writer(purge_step=step + 1)
        return dropped

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
