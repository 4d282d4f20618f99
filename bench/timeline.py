"""`froster timeline` against the model forward alone, and its memory on a 10x longer video.

The base video is the real clips of ../shared/videos, scaled to 640x360 at 30 fps and
joined into --seconds of H.264 (no B-frames, so that the 10x video is the base's packets
copied ten times with shifted timestamps). Random ViT-B/16 widths with 2 layers per tower
(`ViT-B-16-2L`, as bench/throughput.py), 4 labels, the text embeddings cached before
timing, batches of --batch-size windows.

  timeline_over_forward  windows/s of the whole tool (decode every frame in order, pick
                         and transform the sampled frames, forward, smoothing, segments,
                         JSONL written per window, the chart) / windows/s of normalise +
                         visual forward + logits alone on the same windows, pre-decoded
                         (the exact tensors a first run of the tool built); timed in
                         alternating rounds, so that load from other processes hits both;
                         also in CPU seconds of the process (steadier on a loaded machine).
  decoded_frames_ratio   frames the tool decoded / frames in the video (1.0: each once).
  rss_growth_10x         peak RSS growth of a run on the 10x video / on the base video
                         (the same tool and settings, after a warm-up run; RSS sampled
                         every ms, glibc returning large freed blocks at once).

    python bench/timeline.py                  # minutes on 2 quiet cores; 30 when 8 others run
    python bench/timeline.py --seconds 60 --rounds 3 --device cuda

Prints one `key: value` line per figure.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import torch
from _measure import PeakRSS, track_large_allocations

from froster.inference.api import Recognizer
from froster.inference.videos import find_videos
from froster.inference.timeline.output import run_timeline

SHARED_VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "videos"
LABELS = ["yoga", "arm wrestling", "cleaning pool", "making a cake"]
WIDTH, HEIGHT, FPS = 640, 360, 30


def make_base_video(path: Path, seconds: float) -> int:
    """The shared clips at 640x360, 30 fps, one after the other (repeated if needed)."""
    clips = find_videos(SHARED_VIDEOS)
    if not clips:
        sys.exit(f"no videos in {SHARED_VIDEOS}")
    wanted, written = int(seconds * FPS), 0
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"preset": "veryfast", "crf": "23",
                                                               "bf": "0", "g": "60"})
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        while written < wanted:
            for clip in clips:
                with av.open(str(clip)) as source:
                    for frame in source.decode(video=0):
                        image = frame.reformat(width=WIDTH, height=HEIGHT, format="yuv420p")
                        image.pts, image.time_base = written, Fraction(1, FPS)
                        for packet in stream.encode(image):
                            out.mux(packet)
                        written += 1
                        if written == wanted:
                            break
                if written == wanted:
                    break
        for packet in stream.encode():
            out.mux(packet)
    return written


def repeat_video(base: Path, path: Path, times: int) -> int:
    """`times` copies of `base` one after the other, without re-encoding."""
    with av.open(str(base)) as source:
        packets = [p for p in source.demux(video=0) if p.size]
        template = source.streams.video[0]
        step = packets[1].pts - packets[0].pts
        length = packets[-1].pts - packets[0].pts + step
        with av.open(str(path), "w") as out:
            stream = out.add_stream_from_template(template)
            for r in range(times):
                for packet in packets:
                    packet.pts += length if r else 0
                    packet.dts += length if r else 0
                    packet.stream = stream
                    out.mux(packet)
    return len(packets) * times


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="ViT-B-16-2L")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the base video")
    parser.add_argument("--rounds", type=int, default=3, help="forward / tool rounds, interleaved")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per forward")
    parser.add_argument("--stride", type=float, default=1.0, help="seconds between windows")
    parser.add_argument("--rss-stride", type=float, default=4.0,
                        help="stride of the memory runs (fewer forwards on the 10x video; every "
                             "frame is still decoded)")
    parser.add_argument("--rss-batch-size", type=int, default=4,
                        help="windows per forward in the memory runs (the base video must fill "
                             "a batch, or its peak is lower only for that)")
    args = parser.parse_args()
    track_large_allocations()
    logging.getLogger().setLevel(logging.ERROR)
    device = torch.device(args.device)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base, long = tmp / "base.mp4", tmp / "long.mp4"
        base_frames = make_base_video(base, args.seconds)
        long_frames = repeat_video(base, long, 10)
        torch.manual_seed(0)
        rec = Recognizer.from_pretrained(args.model, None, device=device, cache_dir=tmp / "cache")
        classifier = rec.label_embeddings(LABELS)  # warms the text cache for the tool

        def tool(path: Path, stride: float, output: Path, batch_size: int = args.batch_size):
            timeline = rec.timeline(path, LABELS, stride=stride, batch_size=batch_size)
            report = run_timeline(timeline, output, chart=tmp / "chart.png", progress=False)
            assert report.error is None and rec.text_tower_calls == 1, report.summary()
            return report

        # a first run (also the warm-up) records the exact model inputs the tool builds
        batches = []
        encode = rec.encode
        rec.encode = lambda video: (batches.append(video), encode(video))[1]
        first = tool(base, args.stride, tmp / "first.jsonl")
        del rec.encode

        def forward_only() -> None:
            for batch in batches:
                rec.view_logits(rec.encode(batch), classifier).softmax(-1).cpu()
        forward_s, tool_s, forward_cpu, tool_cpu = [], [], [], []
        for _ in range(args.rounds):  # interleaved, so that load from others hits both
            sync(device)
            start, cpu = time.perf_counter(), time.process_time()
            forward_only()
            sync(device)
            forward_s.append(time.perf_counter() - start)
            forward_cpu.append(time.process_time() - cpu)
            start, cpu = time.perf_counter(), time.process_time()
            report = tool(base, args.stride, tmp / "t.jsonl")
            sync(device)
            tool_s.append(time.perf_counter() - start)
            tool_cpu.append(time.process_time() - cpu)
            assert report.windows == first.windows
        del batches

        # memory: base and 10x with the same settings, batches full on both
        rss = dict(stride=args.rss_stride, batch_size=args.rss_batch_size)
        tool(base, output=tmp / "warm.jsonl", **rss)  # warm-up for the memory runs
        with PeakRSS() as base_mem:
            base_report = tool(base, output=tmp / "base.jsonl", **rss)
        with PeakRSS() as long_mem:
            long_report = tool(long, output=tmp / "long.jsonl", **rss)

    n = first.windows
    print(f"model: {args.model} (random weights), device: {device}, torch threads: "
          f"{torch.get_num_threads()}, cores: {os.cpu_count()}")
    print(f"video: {WIDTH}x{HEIGHT} H.264 at {FPS} fps, base {base_frames} frames "
          f"({base_frames / FPS:.0f} s), 10x {long_frames} frames; labels: {len(LABELS)}")
    print(f"windows: {n} per round (stride {args.stride} s, {rec.num_frames} frames over "
          f"{rec.num_frames * rec.sampling_rate / rec.target_fps:.2f} s), batch {args.batch_size}, "
          f"{args.rounds} rounds")
    print("round_ratios: " + ", ".join(f"{f / t:.3f}" for f, t in zip(forward_s, tool_s)))
    print(f"forward_windows_per_s: {n * args.rounds / sum(forward_s):.3f}")
    print(f"tool_windows_per_s: {n * args.rounds / sum(tool_s):.3f}")
    print(f"timeline_over_forward: {sum(forward_s) / sum(tool_s):.3f}")
    # CPU seconds of this process (all its threads): steadier when other processes load the
    # machine, since time they take from us is not counted
    print(f"timeline_over_forward_cpu_time: {sum(forward_cpu) / sum(tool_cpu):.3f}")
    print(f"decoded_frames_base: {first.frames_decoded} of {base_frames}")
    print(f"decoded_frames_10x: {long_report.frames_decoded} of {long_frames}")
    print(f"decoded_frames_ratio: {long_report.frames_decoded / long_frames:.3f}")
    print(f"rss_runs: stride {args.rss_stride} s, batch {args.rss_batch_size}, "
          f"{base_report.windows} and {long_report.windows} windows")
    print(f"peak_rss_growth_mb_base: {base_mem.peak_mb:.1f}")
    print(f"peak_rss_growth_mb_10x: {long_mem.peak_mb:.1f}")
    print(f"rss_growth_10x: {long_mem.peak_mb / base_mem.peak_mb:.3f}")


if __name__ == "__main__":
    main()
