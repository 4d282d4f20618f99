"""`froster data prepare`: the copies decode, have the asked short side and keyframe
interval, keep every frame with its timestamp and the frame rate; unreadable inputs are
listed and skipped; a resumed run (also after a real kill) skips finished files; and the
copy trains and evaluates through the normal pipeline."""

import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from froster.data.decode import read_video_info
from froster.data.prepare import (LOG_FILE, REPORT_FILE, PrepareSettings, output_size,
                                  prepare_dataset, prepare_video)
from froster.data.synthetic import read_frame_index, write_video

SRC = Path(__file__).resolve().parents[1] / "src"
H264 = {"crf": "10"}

#: name -> (width, height, fps, write_video arguments)
VIDEOS = {
    "land.mp4": (128, 96, 30, {}),
    "portrait.mkv": (48, 80, 25, {}),
    "clip.avi": (64, 48, 25, {"codec": "mpeg4", "options": {"qscale": "2"}}),
    "sub/vfr.mp4": (64, 48, 30, {"pts": [round(i * 33.3 + (i % 5) * 7) for i in range(75)],
                                 "time_base": Fraction(1, 1000)}),
    "rotated.mp4": (64, 48, 30, {"rotation": 90}),
}


def make_source(root: Path, copies: int = 0) -> Path:
    """VIDEOS (+ `copies` copies of land.mp4) and two unreadable files under root/videos,
    a list naming all of them and a class file."""
    v = root / "videos"
    (v / "sub").mkdir(parents=True)
    for name, (w, h, fps, extra) in VIDEOS.items():
        kwargs = {"options": H264} | extra
        write_video(v / name, 75 if "pts" in extra else 60 + 3 * len(name), width=w, height=h,
                    fps=fps, **kwargs)
    for i in range(copies):
        (v / f"copy{i}.mp4").write_bytes((v / "land.mp4").read_bytes())
    (v / "zero.mp4").write_bytes(b"")
    (v / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 9000,
                                                                   np.uint8).tobytes())
    names = list(VIDEOS) + [f"copy{i}.mp4" for i in range(copies)] + ["zero.mp4", "random.mp4"]
    (root / "train.csv").write_text("".join(f"videos/{n},{i % 2}\n" for i, n in enumerate(names)))
    (root / "classes.json").write_text(json.dumps({"0": "a", "1": "b"}))
    return root


def stream_facts(path: Path) -> dict:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        keyframes = [p.is_keyframe for p in c.demux(s) if p.size]
        c.seek(0)
        frames = list(c.decode(s))
        return {"format": c.format.name, "codec": s.codec_context.name,
                "size": (frames[0].width, frames[0].height), "rate": s.average_rate,
                "time_base": s.time_base, "pts": [f.pts for f in frames],
                "rotation": frames[0].rotation, "keyframes": keyframes,
                "index": [read_frame_index(f.to_ndarray(format="rgb24")) for f in frames]}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    src = make_source(tmp_path_factory.mktemp("src"))
    dst = tmp_path_factory.mktemp("dst") / "copy"
    result = prepare_dataset(src, dst, settings=PrepareSettings(short_side=32, keyint=8),
                             workers=0, progress=False)
    return src, dst, result


@pytest.mark.parametrize("name", list(VIDEOS))
def test_copies_have_the_asked_size_and_keyframes_and_keep_frames_and_timestamps(prepared, name):
    src, dst, _ = prepared
    before, after = stream_facts(src / "videos" / name), stream_facts(dst / "videos" / name)
    assert after["codec"] == "h264"
    width, height = after["size"]
    assert min(width, height) == 32 and width % 2 == 0 and height % 2 == 0
    w0, h0 = before["size"]
    assert (width > height) == (w0 > h0) and abs(width / height - w0 / h0) < 0.07
    assert [i for i, key in enumerate(after["keyframes"]) if key] == \
        list(range(0, len(after["keyframes"]), 8))
    for key in ("rate", "time_base", "pts", "rotation", "index"):  # frames and times kept
        assert after[key] == before[key], key
    expected = "matroska" if name.endswith(".mkv") else "mov"
    assert after["format"].startswith(expected)  # file names kept; .avi holds an MP4
    info = read_video_info(dst / "videos" / name)
    assert info.num_frames == len(before["pts"])


@pytest.mark.parametrize("name", list(VIDEOS))
def test_the_reference_rule_samples_the_same_frames_from_the_copy(prepared, name):
    """Frame count, duration, rate and pts are kept, so the windows and views are too."""
    import random

    from froster.data.decode import open_video
    from froster.data.sampling import get_sampling
    from froster.data.views import ViewSpec

    src, dst, _ = prepared
    rule, spec = get_sampling("reference"), ViewSpec(num_frames=4, sampling_rate=4, num_views=3)

    def sampled(path):
        with open_video(path, apply_rotation=False) as video:
            views = rule.test_views(video, spec)
            train = rule.train_clip(video, spec, random.Random(0))
        return [[read_frame_index(f) for f in s.frames.numpy()] for s in (views, train)] + \
            [views.fallback, train.fallback]

    assert sampled(dst / "videos" / name) == sampled(src / "videos" / name)


def test_unreadable_inputs_are_listed_and_skipped(prepared):
    src, dst, result = prepared
    report = json.loads((dst / REPORT_FILE).read_text())
    assert report == result.report
    assert (report["videos"], report["written"], report["failed"]) == (7, 5, 2)
    assert [(f["path"], f["kind"]) for f in report["failures"]] == \
        [("videos/random.mp4", "not_a_video"), ("videos/zero.mp4", "empty")]  # walked in order
    assert not (dst / "videos/zero.mp4").exists() and not (dst / "videos/random.mp4").exists()
    assert not list(dst.rglob("*.partial"))
    # the list and class file come along unchanged: data_root=DST works as it is
    for name in ("train.csv", "classes.json"):
        assert (dst / name).read_bytes() == (src / name).read_bytes()


def test_a_second_run_skips_finished_files_and_redoes_a_deleted_one(tmp_path):
    src = make_source(tmp_path / "src")
    dst = tmp_path / "dst"
    settings = PrepareSettings(short_side=24, keyint=4)
    first = prepare_dataset(src, dst, [src / "train.csv"], settings, workers=0, progress=False)
    stamps = {p: p.stat().st_mtime_ns for p in dst.rglob("*.mp4")}
    again = prepare_dataset(src, dst, [src / "train.csv"], settings, workers=0, progress=False)
    assert again.resumed == 7 and again.report == first.report
    assert {p: p.stat().st_mtime_ns for p in dst.rglob("*.mp4")} == stamps
    (dst / "videos/land.mp4").unlink()
    third = prepare_dataset(src, dst, [src / "train.csv"], settings, workers=0, progress=False)
    assert third.resumed == 6 and (dst / "videos/land.mp4").is_file()
    with pytest.raises(ValueError, match="other settings"):
        prepare_dataset(src, dst, [src / "train.csv"], PrepareSettings(short_side=48),
                        workers=0, progress=False)


def test_container_mp4_gives_mkv_inputs_a_frame_count(tmp_path):
    path = write_video(tmp_path / "a.mkv", 40, width=64, height=48, options=H264)
    out = prepare_video(path, tmp_path / "out" / "a.mkv", PrepareSettings(short_side=16,
                                                                          container="mp4"))
    assert (out["width"], out["height"], out["frames"]) == (22, 16, 40)
    with av.open(str(tmp_path / "out" / "a.mkv")) as c:
        assert c.format.name.startswith("mov") and c.streams.video[0].frames == 40


def test_sizes_and_bad_settings(tmp_path, cli_with):
    assert output_size(1280, 720, 320) == (568, 320)
    assert output_size(720, 1280, 320) == (320, 568)
    assert output_size(340, 256, 320) == (424, 320)  # also upward: the asked short side
    run = cli_with("froster.data.commands")
    (tmp_path / "src").mkdir()
    for argv, words in [(("--short-side", "33"), "even"), (("--keyint", "0"), "at least 1"),
                        ((), "no videos to prepare")]:
        code, out, err = run("data", "prepare", tmp_path / "src", tmp_path / "dst", *argv)
        assert code == 2 and words in err and err.startswith("froster data prepare: error:")
    code, out, err = run("data", "prepare", tmp_path / "src", tmp_path / "src")
    assert code == 2 and "never overwritten" in err


def _prepare_command(src, dst, workers="1"):
    return [sys.executable, "-m", "froster.cli", "data", "prepare", str(src), str(dst),
            "--short-side", "32", "--keyint", "8", "--workers", workers, "--no-progress"]


@pytest.mark.slow
def test_a_killed_prepare_goes_on_without_redoing_finished_files(tmp_path):
    src = make_source(tmp_path / "src", copies=8)
    env = dict(os.environ, PYTHONPATH=str(SRC))
    dst = tmp_path / "killed"
    proc = subprocess.Popen(_prepare_command(src, dst), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        log = dst / LOG_FILE
        if log.is_file() and log.read_text().count("\n") >= 5:  # the header + 4 videos
            break
        time.sleep(0.01)
    assert proc.poll() is None, "prepare finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = [json.loads(line)["key"] for line in (dst / LOG_FILE).read_text().splitlines()[1:]]
    assert 4 <= len(done) < 13 and not (dst / REPORT_FILE).exists()
    before = {rel: (dst / rel).stat() for rel in done if (dst / rel).exists()}

    resumed = subprocess.run(_prepare_command(src, dst, "2"), env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 1, resumed.stderr[-2000:]  # the two unreadable inputs
    assert f"{len(done)} were done by an earlier run" in resumed.stdout
    for rel, stat in before.items():  # finished files were not written again
        now = (dst / rel).stat()
        assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns), rel
    whole = prepare_dataset(src, tmp_path / "whole", settings=PrepareSettings(32, 8),
                            workers=0, progress=False)
    report = json.loads((dst / REPORT_FILE).read_text())
    same = {"dst_root": "", "output_bytes": 0}  # x264 output can differ by a few bytes
    assert report | same == whole.report | same
    for path in (tmp_path / "whole").rglob("*.*"):  # the frames of an uninterrupted run
        rel = path.relative_to(tmp_path / "whole")
        if path.suffix in (".mp4", ".mkv", ".avi"):
            ours, theirs = stream_facts(dst / rel), stream_facts(path)
            assert ours == theirs, rel
    assert not list(dst.rglob("*.partial"))


@pytest.mark.slow
def test_the_copy_trains_and_evaluates_through_the_normal_pipeline(tmp_path, cli_with):
    from _engine_data import TINY, tiny_dataset

    data = tiny_dataset(tmp_path / "data", per_class=2, num_classes=3)
    run = cli_with("froster.data.commands", "froster.engine.commands")
    code, out, err = run("data", "prepare", tmp_path / "data", tmp_path / "copy", "--list",
                         data["train_list"], "--short-side", "24", "--keyint", "4",
                         "--workers", "0", "--no-progress")
    assert code == 0, err
    assert (tmp_path / "copy" / "train.csv").read_bytes() == Path(data["train_list"]).read_bytes()
    values = TINY | data | {"data_root": str(tmp_path / "copy"), "check_data": "true",
                            "output_dir": str(tmp_path / "run"), "epochs": 1,
                            "batch_size": 2, "eval_every": 1, "average_from_epoch": 0}
    code, out, err = run("train", *[f"{k}={v}" for k, v in values.items()])
    assert code == 0, err[-2000:]
    assert "check_data: train_list: 6 videos, none broken;" in err  # progress lines: stderr
    metrics = json.loads((tmp_path / "run" / "eval/epoch_001/metrics.json").read_text())
    assert metrics["evaluated"] == metrics["total"] == 6 and metrics["failed_videos"] == []
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["videos"]["train_failed"] == 0
