"""`froster serve` under load against the model's own batched `predict`, in one run.

A random-weight checkpoint (`ViT-B-16-2L` by default: ViT-B/16 widths, 2 layers per tower,
224 px; no download) is served by a real `froster serve` process (its defaults: batches
of 4 videos, 5 ms wait, min(4, cores) decoding processes). The videos are the real clips
of ../shared/videos, each --repeat times.

  serve_videos_per_s          videos/s classified through the server by 8 concurrent
                              clients (upload, decode, forward, JSON answer)
  predict_videos_per_s        videos/s of `predict` over the same videos in this process
                              (the same decoding workers and batch size: the model's own
                              batched path, as `froster predict` runs it)
  serve_over_batched_forward  their ratio (target >= 0.8); the two are timed in
                              alternating rounds, so that other load hits both
  latency_p50_s, latency_p95_s  one client, one 10-s clip (yoga.mp4) at a time
  rss_growth_200_requests     resident memory of the server's processes (the server and
                              its decoders) after 200 more requests / after a warm-up, on
                              a second server with --rss-model (default froster-tiny: 200
                              requests fit in minutes, and with small weights a leak is a
                              larger share of the memory, so the ratio is the stricter)

    python bench/serve.py                       # about 6 minutes on 2 busy CPU cores
    python bench/serve.py --model froster-tiny --repeat 4
    python bench/serve.py --device cuda --model ViT-B-16 --repeat 8

Prints one `key: value` line per figure.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import torch

from froster.checkpoint import build_student, export_student
from froster.inference.api import Recognizer
from froster.inference.predict import predict
from froster.inference.videos import find_videos
from froster.student_spec import StudentSpec

ROOT = Path(__file__).resolve().parents[1]
SHARED_VIDEOS = ROOT.parent / "shared" / "videos"
LABELS = ["arm wrestling", "cleaning pool", "applying eye makeup", "hitting baseball", "yoga",
          "making a cake", "playing bass guitar", "playing basketball", "playing cricket"]


def start_server(checkpoint: Path, args, tmp: Path) -> tuple[subprocess.Popen, str]:
    env = dict(os.environ, FROSTER_CACHE=str(tmp / "cache"), PYTHONUNBUFFERED="1",
               PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    command = [sys.executable, "-m", "froster.cli", "serve", "--checkpoint", str(checkpoint),
               "--port", "0", "--batch-size", str(args.batch_size), "--device", args.device]
    if args.workers is not None:
        command += ["--workers", str(args.workers)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, env=env)
    for line in process.stdout:
        if line.startswith("froster serve: http://"):
            return process, line.split()[2].rstrip("/")
    sys.exit("the server did not start")


def random_checkpoint(model: str, folder: Path) -> Path:
    torch.manual_seed(0)
    spec = StudentSpec(model=model, pretrained=None)
    student, _ = build_student(spec)
    return export_student(student, spec, folder)


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (MB)."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            with open(f"/proc/{current}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
            with open(f"/proc/{current}/task/{current}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return total


def classify(client: httpx.Client, base: str, path: Path) -> float:
    start = time.perf_counter()
    with open(path, "rb") as f:
        response = client.post(f"{base}/api/classify", files={"video": (path.name, f)},
                               data={"labels": "\n".join(LABELS)}, timeout=600)
    response.raise_for_status()
    return time.perf_counter() - start


def through_server(base: str, videos: list[Path], clients: int) -> float:
    """Seconds for `clients` concurrent clients to classify all `videos` (each once)."""
    queue = list(reversed(videos))
    lock = threading.Lock()

    def client_loop(_):
        with httpx.Client() as client:
            while True:
                with lock:
                    if not queue:
                        return
                    path = queue.pop()
                classify(client, base, path)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client_loop, range(clients)))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ViT-B-16-2L")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=1, help="copies of the 9 clips")
    parser.add_argument("--rounds", type=int, default=2, help="predict / serve rounds, interleaved")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, default=None, help="default: min(4, CPU cores)")
    parser.add_argument("--latency-requests", type=int, default=12)
    parser.add_argument("--rss-requests", type=int, default=200)
    parser.add_argument("--rss-model", default="froster-tiny")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)
    clips = find_videos(SHARED_VIDEOS)
    if not clips:
        sys.exit(f"no videos in {SHARED_VIDEOS}")
    videos = clips * args.repeat

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        checkpoint = random_checkpoint(args.model, tmp / "checkpoint")
        rec = Recognizer.from_checkpoint(checkpoint, device=args.device, cache_dir=tmp / "cache",
                                         batch_size=args.batch_size, num_workers=args.workers)
        rec.label_embeddings(LABELS)  # the text cache both sides read
        process, base = start_server(checkpoint, args, tmp)
        try:
            with httpx.Client() as client:  # warm-up: text tower, first batches
                for path in clips[:3]:
                    classify(client, base, path)
            predict_times, serve_times = [], []
            for _ in range(args.rounds):
                start = time.perf_counter()
                with open(os.devnull, "w") as sink:
                    summary = predict(rec, [str(v) for v in videos], LABELS, fmt="jsonl",
                                      stream=sink, progress=False)
                assert summary.ok == len(videos), summary.report()
                predict_times.append(time.perf_counter() - start)
                serve_times.append(through_server(base, videos, args.clients))
            predict_rate = len(videos) / min(predict_times)
            serve_rate = len(videos) / min(serve_times)

            ten_seconds = SHARED_VIDEOS / "yoga.mp4"
            with httpx.Client() as client:
                latencies = sorted(classify(client, base, ten_seconds)
                                   for _ in range(args.latency_requests))
            health = httpx.get(f"{base}/api/health").json()
        finally:
            stop(process)
        del rec

        small = random_checkpoint(args.rss_model, tmp / "small")
        process, base = start_server(small, args, tmp)
        try:
            through_server(base, clips * 3, args.clients)  # warm-up
            before = tree_rss_mb(process.pid)
            many = (clips * (args.rss_requests // len(clips) + 1))[:args.rss_requests]
            through_server(base, many, args.clients)
            after = tree_rss_mb(process.pid)
        finally:
            stop(process)

    def quantile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(round(q * (len(latencies) - 1))))]

    print(f"model: {args.model} ({args.device}), {len(videos)} videos, {args.clients} clients, "
          f"batch {args.batch_size} videos")
    print(f"serve_videos_per_s: {serve_rate:.3f}")
    print(f"predict_videos_per_s: {predict_rate:.3f}")
    print(f"serve_over_batched_forward: {serve_rate / predict_rate:.3f}")
    print(f"latency_p50_s: {quantile(0.5):.3f}")
    print(f"latency_p95_s: {quantile(0.95):.3f}")
    print(f"rss_model: {args.rss_model}, {args.rss_requests} requests")
    print(f"rss_mb_after_warm_up: {before:.1f}")
    print(f"rss_growth_200_requests: {after / before:.3f}")
    print(f"largest_batch_clips: {health['largest_batch']}")


if __name__ == "__main__":
    main()
