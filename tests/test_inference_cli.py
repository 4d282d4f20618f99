"""`froster predict` and `froster search` end to end on a tiny random-weight checkpoint
and the real clips in ../shared/videos: formats, bad files, resuming, error messages."""

import csv
import io
import json
import subprocess
import sys

import pytest

from froster.inference.api import Recognizer
from froster.inference.predict import predict

LABELS = "arm wrestling,yoga,cleaning pool,making a cake,playing cricket"


@pytest.fixture(scope="module")
def checkpoint(tiny_checkpoint):
    return tiny_checkpoint


@pytest.fixture
def cli(cli_with):
    """Run the real dispatcher with only this area's commands (the others may be absent)."""
    return cli_with("froster.inference.commands")


@pytest.fixture
def inputs(shared_dir, tmp_path):
    """The shared clips folder plus three bad inputs: zero bytes, text named .mp4, missing."""
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("this is not a video")
    return [shared_dir / "videos", tmp_path / "empty.mp4", tmp_path / "notes.mp4",
            tmp_path / "missing.mp4"]


def test_predict_json_lines_with_bad_files(cli, checkpoint, inputs, shared_dir):
    code, out, err = cli("predict", *inputs, "--labels", LABELS, "--checkpoint", checkpoint,
                         "--format", "jsonl", "--top-k", "0", "--workers", "2")
    assert code == 1  # finished, but some videos could not be read
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 12
    ok = [r for r in records if r["status"] == "ok"]
    bad = {r["video"].rsplit("/", 1)[-1]: r["error"] for r in records if r["status"] == "error"}
    clips = [row["file"] for row in csv.DictReader(open(shared_dir / "videos" / "clips.csv"))]
    assert sorted(r["video"].rsplit("/", 1)[-1] for r in ok) == sorted(clips)
    for r in ok:
        probs = [p["probability"] for p in r["predictions"]]
        assert len(probs) == 5 and sum(probs) == pytest.approx(1.0, abs=1e-4)
        assert probs == sorted(probs, reverse=True)
        assert r["error"] is None
    assert set(bad) == {"empty.mp4", "notes.mp4", "missing.mp4"}
    assert "empty file" in bad["empty.mp4"] and "file not found" in bad["missing.mp4"]
    assert "3 failed" in err and "missing.mp4" in err and "Traceback" not in err


def test_predict_matches_the_api(cli, checkpoint, shared_dir, tmp_path):
    clip = shared_dir / "videos" / "hitting_baseball.mp4"
    code, out, _ = cli("predict", clip, "--labels", LABELS, "--checkpoint", checkpoint,
                       "--format", "jsonl", "--top-k", "3", "--workers", "0")
    assert code == 0
    [record] = [json.loads(line) for line in out.splitlines()]
    expected = Recognizer.from_checkpoint(checkpoint, device="cpu", cache_dir=tmp_path / "c") \
        .classify(clip, LABELS.split(","), top_k=3)
    assert [p["label"] for p in record["predictions"]] == [name for name, _ in expected]
    assert [p["probability"] for p in record["predictions"]] == \
        pytest.approx([p for _, p in expected], abs=1e-6)


@pytest.mark.parametrize("flags,options", [(["--clean-prompts"], {"clean_prompts": True}),
                                           (["--precision", "bf16"], {"precision": "bf16"})])
def test_predict_options_reach_the_api(cli, checkpoint, shared_dir, tmp_path, flags, options):
    clip = shared_dir / "videos" / "hitting_baseball.mp4"
    code, out, _ = cli("predict", clip, "--labels", "hitting baseball,yoga,swimming", "--checkpoint",
                       checkpoint, "--format", "jsonl", "--top-k", "0", "--workers", "0",
                       "--device", "cpu", *flags)
    assert code == 0
    [record] = [json.loads(line) for line in out.splitlines()]
    got = {p["label"]: p["probability"] for p in record["predictions"]}
    labels = ["hitting baseball", "yoga", "swimming"]
    for settings, close in ((options, True), ({}, False)):
        expected = Recognizer.from_checkpoint(checkpoint, device="cpu", use_cache=False,
                                              **settings).classify(clip, labels)
        match = all(got[name] == pytest.approx(p, abs=1e-6) for name, p in expected)
        assert match == close, settings


def test_predict_csv_and_table(cli, checkpoint, inputs, tmp_path):
    output = tmp_path / "out" / "predictions.csv"
    code, out, err = cli("predict", *inputs, "--labels", LABELS, "--checkpoint", checkpoint,
                         "--output", output, "--top-k", "2")
    assert code == 1 and out == ""
    rows = list(csv.DictReader(output.open()))
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 9 * 2 and {r["rank"] for r in ok} == {"1", "2"}
    assert all(0 < float(r["probability"]) < 1 for r in ok)
    errors = [r for r in rows if r["status"] == "error"]
    assert len(errors) == 3 and all(r["error"] and not r["label"] for r in errors)

    code, out, _ = cli("predict", inputs[0] / "yoga.mp4", inputs[2], "--labels", LABELS,
                       "--checkpoint", checkpoint, "--top-k", "2")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].endswith("yoga.mp4") and lines[1].strip().startswith("1.")
    assert lines[3].endswith("notes.mp4") and "ERROR" in lines[4]


def test_predict_label_file_with_descriptions(cli, checkpoint, shared_dir, tmp_path):
    label_file = tmp_path / "classes.json"
    label_file.write_text(json.dumps({"0": "Yoga: a person holds poses on a mat",
                                      "1": "Juggling: a person throws and catches balls"}))
    code, out, _ = cli("predict", shared_dir / "videos" / "yoga.mp4", "--label-file", label_file,
                       "--checkpoint", checkpoint, "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sorted(r["label"] for r in rows) == ["Juggling", "Yoga"]
    assert sum(float(r["probability"]) for r in rows) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_predict_resumes_and_skips_done_videos(checkpoint, shared_dir, tmp_path, fmt, monkeypatch):
    rec = Recognizer.from_checkpoint(checkpoint, device="cpu", cache_dir=tmp_path / "c", num_workers=0)
    videos = sorted(str(p) for p in (shared_dir / "videos").iterdir()
                    if p.suffix in (".mp4", ".avi", ".gif"))
    bad = tmp_path / "bad.mp4"
    bad.write_text("x")
    output = tmp_path / f"out.{fmt}"
    labels = LABELS.split(",")
    first = predict(rec, videos[:4] + [str(bad)], labels, top_k=2, fmt=fmt, output=output)
    assert first.ok == 4 and len(first.failed) == 1
    if fmt == "json":  # one document, rewritten whole: never cut off
        assert [r["status"] for r in json.loads(output.read_text())] == ["ok"] * 4 + ["error"]
    else:  # simulate a run killed in the middle of writing a record
        with output.open("a") as f:
            f.write('{"video": "/x.mp4", "sta' if fmt == "jsonl" else f"{videos[5]},ok,1,yoga")

    decoded = []
    original = rec.stream
    monkeypatch.setattr(rec, "stream", lambda paths, *a, **k: decoded.extend(paths) or original(paths, *a, **k))
    second = predict(rec, videos + [str(bad)], labels, top_k=2, fmt=fmt, output=output)
    assert second.skipped == 4 and second.ok == len(videos) - 4
    assert decoded == videos[4:] + [str(bad)]  # failed videos are tried again
    if fmt in ("json", "jsonl"):
        text = output.read_text()
        records = json.loads(text) if fmt == "json" else [json.loads(x) for x in text.splitlines()]
        seen = [r["video"] for r in records]
    else:
        rows = list(csv.DictReader(output.open()))
        seen = [r["video"] for r in rows if r["rank"] in ("1", "")]
    assert sorted(seen) == sorted(videos + [str(bad)])  # every video once

    # nothing left to do
    decoded.clear()
    third = predict(rec, videos, labels, top_k=2, fmt=fmt, output=output)
    assert decoded == [] and third.skipped == len(videos)

    # another label set does not mix into the same file
    with pytest.raises(ValueError, match="another run"):
        predict(rec, videos, labels[:3], top_k=2, fmt=fmt, output=output)
    fresh = predict(rec, videos[:1], labels[:3], top_k=2, fmt=fmt, output=output, overwrite=True)
    assert fresh.ok == 1


def test_cli_resume_and_conflict_messages(cli, checkpoint, shared_dir, tmp_path):
    output = tmp_path / "p.jsonl"
    clip = shared_dir / "videos" / "yoga.mp4"
    assert cli("predict", clip, "--labels", "a,b", "--checkpoint", checkpoint, "-o", output)[0] == 0
    code, _, err = cli("predict", clip, "--labels", "a,b", "--checkpoint", checkpoint, "-o", output)
    assert code == 0 and "1 skipped" in err
    code, _, err = cli("predict", clip, "--labels", "a,c", "--checkpoint", checkpoint, "-o", output)
    assert code == 2 and "--overwrite" in err and "Traceback" not in err


@pytest.mark.parametrize("pretrained, message", [
    ("no-such-tag", "neither a file nor an open_clip pretrained tag"),
    ("/nonexistent/weights.pt", "CLIP weights file not found: /nonexistent/weights.pt"),
])
def test_unavailable_weights_give_a_clear_message(cli, shared_dir, pretrained, message):
    code, out, err = cli("predict", shared_dir / "videos" / "yoga.mp4", "--labels", "a,b",
                         "--model", "froster-tiny", "--pretrained", pretrained)
    assert code == 2 and out == ""
    assert err.startswith("froster predict: error:") and message in err
    assert "Traceback" not in err


def test_usage_errors(cli, checkpoint, shared_dir, tmp_path):
    clip = shared_dir / "videos" / "yoga.mp4"
    code, _, err = cli("predict", clip, "--checkpoint", checkpoint)
    assert code == 2 and "--labels" in err
    code, _, err = cli("predict", clip, "--labels", "a", "--checkpoint", checkpoint, "--model", "x")
    assert code == 2 and "either --checkpoint" in err
    code, _, err = cli("predict", clip, "--labels", "a", "--checkpoint", tmp_path / "nope")
    assert code == 2 and "config.json" in err
    code, _, err = cli("predict", clip, "--labels", "a", "--checkpoint", checkpoint,
                       "--template", "no placeholder")
    assert code == 2 and "{}" in err
    empty = tmp_path / "empty_dir"
    empty.mkdir()
    code, _, err = cli("predict", empty, "--labels", "a", "--checkpoint", checkpoint)
    assert code == 2 and "no videos found" in err
    code, _, err = cli("predict", clip, "--labels", "a", "--checkpoint", checkpoint,
                       "--device", "cpu", "--precision", "fp16")
    assert code == 2 and "precision=fp16 is for CUDA; on CPU use bf16 or fp32" in err


def test_random_weights_through_the_cli(cli, shared_dir):
    code, out, _ = cli("predict", shared_dir / "videos" / "yoga.mp4", "--labels", "a,b,c",
                       "--model", "froster-tiny", "--pretrained", "none", "--format", "jsonl",
                       "--template", "a video of {}.")
    assert code == 0 and len(json.loads(out)["predictions"]) == 3


def test_search_cli(cli, checkpoint, shared_dir, tmp_path):
    folder = tmp_path / "vids"
    folder.mkdir()
    for clip in (shared_dir / "videos").iterdir():
        (folder / clip.name).symlink_to(clip)
    code, out, err = cli("search", folder, "a person doing yoga", "--checkpoint", checkpoint,
                         "--format", "jsonl")
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["rank"] for r in records] == list(range(1, 10))
    assert len({r["video"] for r in records}) == 9
    scores = [r["score"] for r in records]
    assert scores == sorted(scores, reverse=True)
    assert "9 newly embedded" in err
    (folder / "zero.mp4").write_bytes(b"")
    code, out, err = cli("search", folder, "cricket", "--checkpoint", checkpoint, "--format", "csv",
                         "--top-k", "3")
    assert code == 1 and "0 newly embedded, 9 reused" in err and "zero.mp4" in err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["rank"] for r in rows] == ["1", "2", "3"]


def test_entry_point_prints_no_traceback(shared_dir, tmp_path):
    """The installed `froster` program, in a fresh process."""
    script = ("import sys, froster.cli as c; c.COMMAND_MODULES = ('froster.inference.commands',); "
              "sys.exit(c.main(sys.argv[1:]))")
    result = subprocess.run(
        [sys.executable, "-c", script, "predict", str(shared_dir / "videos" / "yoga.mp4"),
         "--labels", "a,b", "--model", "froster-tiny", "--pretrained", str(tmp_path / "w.pt")],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "CLIP weights file not found" in result.stderr and "Traceback" not in result.stderr
