"""bench/gpu.py, the GPU smoke benchmark, runs its stages at tiny size on CPU and prints
every figure issue 21 names (`n/a` where only CUDA can give one), so it works the first
time a GPU machine runs it."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KEYS = ["gpu_tests_passed", "gpu_tests_failed", "gpu_tests_skipped", "train_step_clips_per_s",
        "train_step_clips_per_s_fp16_batch2", "train_step_clips_per_s_bf16_batch2",
        "train_step_clips_per_s_bf16_batch4", "mfu", "peak_mem_gb_b16_batch8",
        "text_share_of_step", "loader_clips_per_s_per_core",
        "loader_clips_per_s_per_core_340x256", "loader_clips_per_s_per_core_1280x720",
        "loop_over_model_step", "eval_videos_per_s", "eval_videos_per_s_fp32",
        "eval_videos_per_s_tf32", "eval_videos_per_s_bf16"]


@pytest.mark.slow
def test_the_gpu_benchmark_runs_its_stages_on_cpu():
    result = subprocess.run([sys.executable, "bench/gpu.py", "--skip-tests"], cwd=ROOT,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    values = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    assert [k for k in KEYS if k not in values] == []
    for key in ("train_step_clips_per_s_bf16_batch2", "loader_clips_per_s_per_core_1280x720",
                "loop_over_model_step", "eval_videos_per_s_bf16", "text_share_of_step"):
        assert float(values[key]) > 0, key
    assert 0 < float(values["text_share_of_step"]) < 1.5
    assert values["mfu"].startswith("n/a") and values["eval_videos_per_s_tf32"].startswith("n/a")
