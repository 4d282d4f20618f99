"""`froster timeline` end to end: the three output formats against the API, the annotated
video and the chart, a truncated file (exit 1), bad input (exit 2), and Ctrl-C on a pipe."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import froster
from froster.data.synthetic import write_video
from froster.inference.api import Recognizer
from froster.inference.timeline.render import PALETTE, AnnotatedVideo, output_size

LABELS = "red,green,blue"


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint):
    return tiny_checkpoint


@pytest.fixture
def cli(cli_with, one_thread):
    """The real dispatcher with only this area's commands."""
    return cli_with("froster.inference.timeline.command")


def colour_frames(i, w, h):
    """Red for 10.2 s, then green (30 fps; no window sees as many red frames as green ones)."""
    colour = (220, 20, 20) if i < 306 else (20, 220, 20)
    return np.broadcast_to(np.array(colour, np.uint8), (h, w, 3)).copy()


@pytest.fixture
def colour_model(monkeypatch):
    """Every Recognizer's logits follow the frames' colour (labels red, green, blue)."""
    def encode(self, videos):
        colour = (videos.float().mean(dim=(-2, -1)) / 255 - 0.1).clamp(min=0)
        return F.normalize(colour, dim=-1)

    monkeypatch.setattr(Recognizer, "encode", encode)
    monkeypatch.setattr(Recognizer, "label_embeddings", lambda self, labels, templates=None: torch.eye(3))


def test_outputs_agree_with_the_api(cli, checkpoint, tmp_path):
    video = write_video(tmp_path / "v.mp4", 450, 48, 32, options={"crf": "0", "g": "30"})
    common = ["timeline", video, "--labels", LABELS, "--checkpoint", checkpoint, "--stride", "1.5",
              "--smooth", "2", "--top-k", "2", "--threshold", "0.45", "--no-progress"]
    code, out, err = cli(*common, "-o", tmp_path / "t.jsonl")
    assert code == 0, err
    lines = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert lines[0]["type"] == "timeline" and lines[0]["labels"] == LABELS.split(",")
    windows = [r for r in lines if r["type"] == "window"]
    segments = [r for r in lines if r["type"] == "segment"]
    assert lines[-1]["type"] == "end" and lines[-1]["frames_decoded"] == 450
    assert lines[-1]["error"] is None and not lines[-1]["interrupted"]

    rec = Recognizer.from_checkpoint(checkpoint, device="cpu", cache_dir=tmp_path / "c")
    expected = list(rec.timeline(video, LABELS.split(","), stride=1.5, smooth=2, top_k=2,
                                 threshold=0.45))
    assert len(windows) == len(expected) == 8  # 7 * 1.5 + 7 * 16/30 <= 449 / 30 s
    for record, w in zip(windows, expected):
        assert (record["window"], record["frames"]) == (w.index, w.frames)
        assert record["start"] == pytest.approx(w.start) and record["end"] == pytest.approx(w.end)
        assert record["label"] == w.label and [t["label"] for t in record["top"]] == [n for n, _ in w.top]
        assert [t["probability"] for t in record["top"]] == pytest.approx([p for _, p in w.top], abs=2e-6)
    # the table on stdout lists the segments
    assert out.splitlines()[0].split()[:4] == ["start", "end", "duration", "label"]
    assert len(out.splitlines()) == 1 + len(segments)
    assert "8 windows" in err and "450 frames decoded once" in err

    code, _, _ = cli(*common, "-o", tmp_path / "t.csv")
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    window_rows = [r for r in rows if r["type"] == "window"]
    assert len(window_rows) == 8 * 2 and {r["rank"] for r in window_rows} == {"1", "2"}
    assert [r["candidate"] for r in window_rows if r["rank"] == "1"] == \
        [r["top"][0]["label"] for r in windows]
    assert [r["label"] or None for r in window_rows if r["rank"] == "2"] == [r["label"] for r in windows]
    assert len([r for r in rows if r["type"] == "segment"]) == len(segments)

    code, _, _ = cli(*common, "-o", tmp_path / "t.json")
    document = json.loads((tmp_path / "t.json").read_text())
    assert document["windows"] == [{k: v for k, v in r.items() if k != "type"} for r in windows]
    assert document["segments"] == [{k: v for k, v in r.items() if k != "type"} for r in segments]
    assert document["end"]["windows"] == 8


def test_annotated_video_and_chart(cli, checkpoint, tmp_path, colour_model, monkeypatch):
    video = write_video(tmp_path / "colours.mp4", 450, 64, 48, options={"crf": "10"}, frame=colour_frames)
    backlog = []  # seconds of frames waiting for their window, after each frame
    add_frame = AnnotatedVideo.add_frame
    monkeypatch.setattr(AnnotatedVideo, "add_frame", lambda self, item: (
        add_frame(self, item), backlog.append(self.backlog_seconds)))
    code, out, err = cli("timeline", video, "--labels", LABELS, "--checkpoint", checkpoint,
                         "--threshold", "0.5", "--video", tmp_path / "annotated.mp4",
                         "--chart", tmp_path / "chart.png", "--no-progress")
    assert code == 0, err
    assert [line.split()[4] for line in out.splitlines()[1:]] == ["red", "green"]
    # frames wait only until their window is known: past span / 2 + 2 strides the complete
    # windows run without a full batch (a batch of 8 would hold about 9 s of frames)
    assert len(backlog) == 450 and max(backlog) <= 8 * 16 / 30 / 2 + 2 * 1.0 + 0.05
    with av.open(str(video)) as c:
        source_times = [f.time for f in c.decode(video=0)]
    with av.open(str(tmp_path / "annotated.mp4")) as c:
        stream = c.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = [(f.time, f.to_ndarray(format="rgb24")) for f in c.decode(stream)]
    assert (stream.width, stream.height) == output_size(64, 48) == (480, 360)  # small: enlarged
    assert len(frames) == 450  # every input frame, at the input's times
    assert [t for t, _ in frames] == pytest.approx(source_times, abs=1e-3)

    def painted(image, label):  # pixels in the label's colour (its bar and swatch)
        return int((np.abs(image.astype(int) - PALETTE[label]).sum(-1) < 40).sum())

    red_part, green_part = frames[90][1], frames[420][1]  # 3 s and 14 s
    # the current label's bar is long (probability about 1), the others' are empty
    assert painted(red_part, 0) > 1500 and painted(red_part, 1) < 300
    assert painted(green_part, 1) > 1500 and painted(green_part, 0) < 300
    # the panel darkens the top-left corner; the rest of the frame is the input's colour
    assert red_part[5:15, 5:15].mean(axis=(0, 1))[0] < 150
    assert np.abs(red_part[300:350, 400:470].mean(axis=(0, 1)) - (220, 20, 20)).max() < 20

    chart = Image.open(tmp_path / "chart.png").convert("RGB")
    assert chart.size[0] == 1000
    pixels = set(map(tuple, np.asarray(chart).reshape(-1, 3)))
    assert {PALETTE[0], PALETTE[1], PALETTE[2]} <= pixels  # each label's line or band


def test_annotated_video_of_a_rotated_input(cli, checkpoint, tmp_path):
    video = write_video(tmp_path / "rot.mp4", 150, 48, 32, options={"crf": "0"}, rotation=90)
    code, _, err = cli("timeline", video, "--labels", LABELS, "--checkpoint", checkpoint,
                       "--video", tmp_path / "a.mp4", "--no-progress")
    assert code == 0, err
    with av.open(str(tmp_path / "a.mp4")) as c:
        stream = c.streams.video[0]
        assert (stream.width, stream.height) == (360, 540) and stream.frames == 150


def test_truncated_file_keeps_its_windows_and_exits_1(cli, checkpoint, tmp_path):
    full = write_video(tmp_path / "full.mp4", 600, 48, 32, options={"crf": "0"},
                       container_options={"movflags": "faststart"})
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(Path(full).read_bytes()[: Path(full).stat().st_size // 2])
    code, out, err = cli("timeline", cut, "--labels", LABELS, "--checkpoint", checkpoint,
                         "-o", tmp_path / "t.jsonl", "--no-progress")
    assert code == 1
    assert f"{cut}: truncated or corrupt" in err and "the header says 600 frames" in err
    assert "Traceback" not in err
    records = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    windows = [r for r in records if r["type"] == "window"]
    assert 3 <= len(windows) <= 10 and records[-1]["error"].startswith("truncated")
    assert out.startswith("     start")  # the table of what was seen


def test_bad_input_is_one_line_and_exit_2(cli, checkpoint, tmp_path):
    (tmp_path / "notes.mp4").write_text("this is not a video\n" * 100)
    video = write_video(tmp_path / "v.mp4", 30, 32, 32)
    cases = [
        # the source is checked before the model is loaded (the checkpoint here is missing)
        (["timeline", tmp_path / "missing.mp4", "--labels", LABELS, "--checkpoint", tmp_path / "nope"],
         "missing.mp4: file not found"),
        (["timeline", tmp_path / "notes.mp4", "--labels", LABELS, "--checkpoint", checkpoint],
         "notes.mp4: cannot open"),
        (["timeline", video, "--labels", LABELS, "--checkpoint", checkpoint, "--stride", "0"],
         "--stride and --window must be positive"),
        (["timeline", video, "--labels", LABELS, "--checkpoint", checkpoint, "-o", tmp_path / "t.txt"],
         "cannot tell the format"),
        (["timeline", video, "--checkpoint", checkpoint], "give the labels"),
        (["timeline", video, "--labels", LABELS, "--checkpoint", checkpoint, "--threshold", "2"],
         "--threshold must be a probability"),
    ]
    for argv, words in cases:
        code, out, err = cli(*argv)
        assert code == 2, (argv, err)
        assert words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_ctrl_c_on_a_pipe_writes_everything_so_far(checkpoint, tmp_path):
    """A live pipe: half the stream arrives and stays open, Ctrl-C, everything is written."""
    video = write_video(tmp_path / "v.ts", 900, 32, 32, options={"crf": "0", "g": "30"})
    data = Path(video).read_bytes()
    output = tmp_path / "live.jsonl"
    src = str(Path(froster.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]),
               FROSTER_CACHE=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    # Ctrl-C as in a terminal, also where this test runs as a background job (which starts
    # with SIGINT ignored, and the child would inherit that)
    as_in_a_terminal = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                        "sys.argv[0] = 'froster'; runpy.run_module('froster.cli', run_name='__main__')")
    proc = subprocess.Popen(
        [sys.executable, "-c", as_in_a_terminal, "timeline", "-", "--labels", LABELS, "--checkpoint",
         str(checkpoint), "-o", str(output), "--chart", str(tmp_path / "c.png"), "--no-progress"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        proc.stdin.write(data[: len(data) // 2])  # about 15 s of video; the pipe stays open
        proc.stdin.flush()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:  # windows arrive live
            if output.is_file() and output.read_text().count('"type": "window"') >= 3:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read().decode()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
        proc.stdin.close()
    assert code == 0, err  # a live stream ended by Ctrl-C ends cleanly
    assert "interrupted" in err and "Traceback" not in err
    records = [json.loads(line) for line in output.read_text().splitlines()]
    windows = [r for r in records if r["type"] == "window"]
    assert records[-1]["type"] == "end" and records[-1]["interrupted"] is True
    assert any(r["type"] == "segment" for r in records) and (tmp_path / "c.png").is_file()
    assert out.startswith("     start")
    # the windows that came through the pipe are the file's windows
    rec = Recognizer.from_checkpoint(checkpoint, device="cpu", cache_dir=tmp_path / "c")
    expected = list(rec.timeline(video, LABELS.split(","), top_k=3))
    assert 3 <= len(windows) < len(expected)
    for record, w in zip(windows, expected):
        assert record["frames"] == w.frames
        assert [t["probability"] for t in record["top"]] == pytest.approx([p for _, p in w.top], abs=2e-6)
