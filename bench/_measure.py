"""Helpers shared by the benchmarks: K400-like class texts and peak-memory sampling."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

K400_CLASSES = Path(__file__).resolve().parents[1].parent / \
    "shared/benchmarks/froster_splits/label_rephrase/k400_rephrased_classes.json"


def k400_class_texts(count: int) -> list[str]:
    if K400_CLASSES.is_file():
        texts = list(json.loads(K400_CLASSES.read_text()).values())
        return (texts * (count // len(texts) + 1))[:count]
    return [f"Action {i}: a person does action number {i} in front of the camera"
            for i in range(count)]


class PeakRSS:
    """Peak resident memory above the level at entry, sampled every millisecond (CPU)."""

    def __init__(self):
        self.peak_mb = 0.0

    @staticmethod
    def rss_mb() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    def __enter__(self):
        self.base, self.peak, self.running = self.rss_mb(), self.rss_mb(), True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, self.rss_mb())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.peak_mb = max(self.peak, self.rss_mb()) - self.base


def track_large_allocations() -> None:
    """Re-run this process with glibc returning every large block to the OS on free, so
    that resident memory follows live tensor memory and PeakRSS can see a step's peak
    (otherwise freed memory stays resident and a second step shows no growth)."""
    import os
    import sys

    if os.environ.get("MALLOC_MMAP_THRESHOLD_") is None:
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
