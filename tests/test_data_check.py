"""`froster data check`: a generated dataset with every problem the check names, each
reported under its own name (and the good files under none), the cleaned list, exit
statuses, a worker that dies, resuming (a really killed run), and check_data in train."""

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

from froster.data.check import CheckSettings, check_list, check_video, error_kind, fallback_kind
from froster.data.jobs import JobLog
from froster.data.synthetic import write_video

SRC = Path(__file__).resolve().parents[1] / "src"
KW = dict(width=64, height=48, options={"crf": "10"})


def audio_only(path):
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=16000)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                               layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def half_of(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    return target


#: file -> (label, the problem kinds the check must name; empty: fine)
EXPECTED = {
    "good.mp4": (0, set()),
    "good.avi": (1, set()),
    "missing.mp4": (2, {"missing"}),
    "zero.mp4": (0, {"empty"}),
    "random.mp4": (1, {"not_a_video"}),
    "dead_link.mp4": (2, {"not_a_video"}),       # an HTML error page saved as the video
    "truncated.mp4": (0, {"truncated"}),         # index at the end: lost, does not open
    "truncated_fast.mp4": (1, {"truncated"}),    # index first: opens, frames stop halfway
    "audio.mp4": (2, {"no_video_stream"}),
    "no_count.mkv": (0, {"no_frame_count"}),     # the container stores no count: path B
    "no_count.mp4": (1, {"no_frame_count"}),     # fragmented MP4: a fallback to path B
    "late.mp4": (2, {"late_start"}),             # timestamps from 5 s: a fallback to path B
    "cut.mkv": (0, {"no_frame_count", "frames_short_of_duration"}),  # half of an MKV
    "bad_label.mp4": (7, {"label_not_in_class_file"}),
}


def make_problem_set(root: Path) -> Path:
    """Every file of EXPECTED under root/videos, a list (a header line, a comment, lines in
    EXPECTED's order) and a 3-class file; returns the list."""
    v = root / "videos"
    v.mkdir(parents=True)
    good = Path(write_video(v / "good.mp4", 150, **KW))
    write_video(v / "good.avi", 90, codec="mpeg4", width=64, height=48, options={"qscale": "2"})
    (v / "zero.mp4").write_bytes(b"")
    (v / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 20000,
                                                                   np.uint8).tobytes())
    (v / "dead_link.mp4").write_text("<!DOCTYPE html><html><body>404 Not Found</body></html>")
    half_of(good, v / "truncated.mp4")
    fast = write_video(root / "fast.mp4", 300, container_options={"movflags": "faststart"}, **KW)
    half_of(Path(fast), v / "truncated_fast.mp4")
    audio_only(v / "audio.mp4")
    write_video(v / "no_count.mkv", 150, **KW)
    write_video(v / "no_count.mp4", 150, container_options={
        "movflags": "frag_keyframe+empty_moov"}, **KW)
    write_video(v / "late.mp4", 150, pts=[150 + i for i in range(150)],
                time_base=Fraction(1, 30), **KW)
    full = write_video(root / "long.mkv", 300, **KW)
    half_of(Path(full), v / "cut.mkv")
    (v / "bad_label.mp4").write_bytes(good.read_bytes())
    lines = ["path,label", "# every problem the check names"]
    lines += [f"videos/{name},{label}" for name, (label, _) in EXPECTED.items()]
    (root / "list.csv").write_text("\n".join(lines) + "\n")
    (root / "classes.json").write_text(json.dumps({"0": "a", "1": "b", "2": "c"}))
    return root / "list.csv"


@pytest.fixture(scope="module")
def problem_set(tmp_path_factory):
    return make_problem_set(tmp_path_factory.mktemp("problems"))


@pytest.fixture(scope="module")
def checked(problem_set, tmp_path_factory):
    out = tmp_path_factory.mktemp("check")
    result = check_list(problem_set, problem_set.parent, problem_set.parent / "classes.json",
                        workers=0, output=out, progress=False)
    return result, out


def kinds_by_file(report: dict) -> dict:
    found = {}
    for kind, problem in report["problems"].items():
        for entry in problem["entries"]:
            found.setdefault(Path(entry["path"]).name, set()).add(kind)
    return found


def test_every_problem_is_reported_under_its_own_name(checked):
    result, out = checked
    report = json.loads((out / "report.json").read_text())
    assert report == result.report
    found = kinds_by_file(report)
    assert {name: found.get(name, set()) for name in EXPECTED} == \
        {name: kinds for name, (_, kinds) in EXPECTED.items()}
    broken = [n for n, (_, kinds) in EXPECTED.items() if any(
        report["problems"][k]["severity"] == "broken" for k in kinds)]
    assert report["videos"] == len(EXPECTED) and report["broken"] == len(broken) == 8
    assert report["fine"] == 2 and report["with_warnings"] == 4
    entry = report["problems"]["missing"]["entries"][0]
    assert entry == {"line": 5, "path": "videos/missing.mp4", "label": 2,
                     "message": "file not found"}
    assert "7" in report["problems"]["label_not_in_class_file"]["entries"][0]["message"]
    assert "web page" in report["problems"]["not_a_video"]["entries"][1]["message"]
    # the short table: one row per problem kind with its count and first files
    table = (out / "report.txt").read_text()
    assert table.splitlines() == result.lines
    assert any(line.split()[:3] == ["truncated", "broken", "2"] and "truncated.mp4" in line
               for line in table.splitlines())


def test_the_cleaned_list_leaves_out_the_broken_entries_only(checked, problem_set):
    result, out = checked
    assert result.cleaned_list == out / "list_clean.csv"
    lines = result.cleaned_list.read_text().splitlines()
    kept = [n for n, (_, kinds) in EXPECTED.items()
            if not kinds or kinds <= {"no_frame_count", "late_start", "frames_short_of_duration"}]
    assert lines == ["path,label", "# every problem the check names"] + \
        [f"videos/{n},{EXPECTED[n][0]}" for n in kept]
    assert problem_set.read_text().count("\n") == len(EXPECTED) + 2  # the input is unchanged
    clean = check_list(result.cleaned_list, problem_set.parent, problem_set.parent /
                       "classes.json", workers=0, output=out / "again", progress=False)
    assert clean.broken == 0 and clean.warned == 4


def test_warnings_are_the_fallbacks_the_dataset_itself_reports(checked, problem_set):
    """The check names what VideoDataset's own loading says (not a rule of its own)."""
    from froster.data import VideoDataset, VideoItem

    result, _ = checked
    found = kinds_by_file(result.report)
    for name in ("no_count.mp4", "late.mp4", "good.mp4"):
        item = VideoItem(str(problem_set.parent / "videos" / name), 0, 1)
        views = VideoDataset([item], mode="test").load_test_views(item)
        expected = {fallback_kind(views.fallback)} if views.fallback else set()
        assert found.get(name, set()) == expected
        if views.fallback:  # the same words as the data report
            messages = [e["message"] for p in result.report["problems"].values()
                        for e in p["entries"] if e["path"].endswith(name)]
            assert messages == [views.fallback]


def test_uniform_sampling_has_no_path_b_warnings(problem_set):
    v = problem_set.parent / "videos"
    settings = CheckSettings(sampling="uniform")
    assert check_video(str(v / "no_count.mkv"), settings) == []
    assert check_video(str(v / "late.mp4"), settings) == []
    assert [k for k, _ in check_video(str(v / "no_count.mkv"))] == ["no_frame_count"]


def test_error_kinds_tell_a_cut_download_from_random_bytes(tmp_path):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(b"\x00\x00\x00\x20ftypisom" + bytes(100))
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(bytes(range(256)) * 4)
    message = "not a readable video (Invalid data found when processing input)"
    assert error_kind(str(cut), f"{cut}: {message}")[0] == "truncated"
    assert error_kind(str(noise), f"{noise}: {message}") == ("not_a_video", message)
    assert error_kind("x.mp4", "x.mp4: file not found") == ("missing", "file not found")
    assert fallback_kind("the header gives a duration but no frame count") == "no_frame_count"
    assert fallback_kind("something new") == "other_fallback"


def test_exit_statuses_through_the_cli(problem_set, tmp_path, cli_with):
    run = cli_with("froster.data.commands")
    root = problem_set.parent
    code, out, err = run("data", "check", problem_set, "--data-root", root, "--class-file",
                         root / "classes.json", "--output", tmp_path / "a", "--workers", 0,
                         "--no-progress")
    assert code == 1 and "broken" in out and "list_clean.csv" in out
    clean = tmp_path / "a" / "list_clean.csv"
    code, out, err = run("data", "check", clean, "--data-root", root, "--output",
                         tmp_path / "b", "--workers", 0, "--no-progress")
    assert code == 0, out + err  # warnings do not fail the check ...
    code, out, err = run("data", "check", clean, "--data-root", root, "--output",
                         tmp_path / "c", "--workers", 0, "--no-progress", "--strict")
    assert code == 1  # ... unless --strict
    assert (tmp_path / "c" / "list_clean_clean.csv").read_text().splitlines()[2:] == \
        ["videos/good.mp4,0", "videos/good.avi,1"]
    for argv, words in [((tmp_path / "none.csv",), "none.csv: file not found"),
                        ((problem_set, "--data-root", tmp_path / "nowhere"), "not a folder"),
                        ((problem_set, "--class-file", tmp_path / "none.json"), "not found")]:
        code, out, err = run("data", "check", *argv, "--output", tmp_path / "d")
        assert code == 2 and err.startswith("froster data check: error:") and words in err
        assert len(err.strip().splitlines()) == 1


def test_a_changed_file_is_checked_again(tmp_path):
    v = tmp_path / "v"
    v.mkdir()
    write_video(v / "a.mp4", 60, **KW)
    (v / "b.mp4").write_bytes(b"")
    (tmp_path / "l.txt").write_text("a.mp4 0\nb.mp4 0\n")
    first = check_list(tmp_path / "l.txt", v, workers=0, progress=False)
    assert first.broken == 1 and first.output == tmp_path / "l_check"
    again = check_list(tmp_path / "l.txt", v, workers=0, progress=False)
    assert again.resumed == 2 and again.report == first.report
    write_video(v / "b.mp4", 60, **KW)  # fixed
    fixed = check_list(tmp_path / "l.txt", v, workers=0, progress=False)
    assert fixed.resumed == 1 and fixed.broken == 0
    other = check_list(tmp_path / "l.txt", v, settings=CheckSettings(test_views=1), workers=0,
                       progress=False)
    assert other.resumed == 0  # other settings: nothing is reused


def test_log_drops_a_partial_last_line(tmp_path):
    path = tmp_path / "log.jsonl"
    with JobLog(path, {"x": 1}) as log:
        log.add("a", {"v": 1})
    with open(path, "a") as f:
        f.write('{"key": "b", "v"')  # killed in the middle of a line
    with JobLog(path, {"x": 1}) as log:
        assert list(log.done) == ["a"]
        log.add("c", {"v": 3})
    with JobLog(path, {"x": 1}) as log:
        assert {k: r["v"] for k, r in log.done.items()} == {"a": 1, "c": 3}
    assert JobLog(path, {"x": 2}).previous_header == {"x": 1}


def _die_on_crash_files(path, settings=CheckSettings()):
    if "crash" in path:
        os._exit(11)  # as a segfault inside FFmpeg would end the worker
    return []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the patched function reaches workers by fork")
def test_a_worker_that_dies_is_one_broken_entry(tmp_path, monkeypatch):
    import froster.data.check as check

    monkeypatch.setattr(check, "check_video", _die_on_crash_files)
    names = ["a.mp4", "crash.mp4", "b.mp4", "c.mp4", "d.mp4"]
    (tmp_path / "l.csv").write_text("".join(f"{n},0\n" for n in names))
    result = check_list(tmp_path / "l.csv", workers=2, output=tmp_path / "out", progress=False)
    assert set(result.report["problems"]) == {"decoder_crash"}
    assert [e["path"] for e in result.report["problems"]["decoder_crash"]["entries"]] == \
        ["crash.mp4"]
    assert result.report["fine"] == 4


def _check_command(list_file, root, output, workers="1"):
    return [sys.executable, "-m", "froster.cli", "data", "check", str(list_file), "--data-root",
            str(root), "--class-file", str(root / "classes.json"), "--output", str(output),
            "--workers", workers, "--no-progress"]


@pytest.mark.slow
def test_a_killed_check_goes_on_and_gives_the_same_report(tmp_path):
    make_problem_set(tmp_path)
    lines = (tmp_path / "list.csv").read_text().splitlines()
    many = lines + [f"videos/good.mp4,{i % 3}" for i in range(20)]  # enough to kill it midway
    (tmp_path / "list.csv").write_text("\n".join(many) + "\n")
    env = dict(os.environ, PYTHONPATH=str(SRC))
    log = tmp_path / "killed" / "entries.jsonl"
    proc = subprocess.Popen(_check_command(tmp_path / "list.csv", tmp_path, tmp_path / "killed"),
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if log.is_file() and log.read_text().count("\n") >= 6:  # the header + 5 entries
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the check finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the check and its worker process
    proc.wait()
    finished = log.read_text().count("\n") - 1
    assert 5 <= finished < len(many) - 2 and not (tmp_path / "killed" / "report.json").exists()

    resumed = subprocess.run(_check_command(tmp_path / "list.csv", tmp_path,
                                            tmp_path / "killed", "2"),
                             env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 1, resumed.stderr[-2000:]
    assert f"{finished} were checked by an earlier run" in resumed.stdout
    check_list(str(tmp_path / "list.csv"), str(tmp_path), str(tmp_path / "classes.json"),
               workers=0, output=tmp_path / "whole", progress=False)  # without a break
    for name in ("report.json", "report.txt", "list_clean.csv"):
        assert (tmp_path / "killed" / name).read_text() == (tmp_path / "whole" / name).read_text()
    report = json.loads((tmp_path / "whole" / "report.json").read_text())
    assert report["videos"] == len(EXPECTED) + 20 and report["fine"] == 2 + 20


@pytest.mark.slow
def test_train_with_check_data_refuses_broken_lists_and_names_the_cleaned_one(tmp_path,
                                                                              cli_with):
    from _engine_data import TINY, tiny_dataset

    data = tiny_dataset(tmp_path / "data", per_class=2, num_classes=2)
    listed = Path(data["train_list"]).read_text()
    Path(data["train_list"]).write_text(listed + "videos/gone.mp4,1\n")
    run = cli_with("froster.engine.commands")
    values = TINY | data | {"output_dir": str(tmp_path / "run"), "check_data": "true",
                            "epochs": 1, "batch_size": 2, "eval_every": 1}
    code, out, err = run("train", *[f"{k}={v}" for k, v in values.items()])
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    cleaned = tmp_path / "run" / "data_check" / "train_list" / "train_clean.csv"
    assert "1 of 5 videos in" in err and "missing" in err and f"train_list={cleaned}" in err
    assert "report.txt" in err and not (tmp_path / "run" / "checkpoints").exists()
    code, out, err = run("train", *[f"{k}={v}" for k, v in (values | {
        "train_list": cleaned}).items()])
    assert code == 0, err[-2000:]
    assert "check_data: train_list: 4 videos, none broken" in err  # progress: stderr
    assert "check_data: val_list: 4 videos, none broken" in err
