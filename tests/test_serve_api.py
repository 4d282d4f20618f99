"""`froster serve`'s API through FastAPI's TestClient on a tiny random-weight checkpoint and
the real clips in ../shared/videos: the same numbers as predict / timeline / explain /
search, batching that changes nothing, bad input answered and cleaned up, access rules."""

import asyncio
import json
import os
import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")
from _shared import SHARED, require
from fastapi.testclient import TestClient

from froster.inference.api import Recognizer
from froster.serve.decoder import Decoder
from froster.serve.server import open_app
from froster.serve.service import Service
from froster.serve.worker import ModelWorker

LABELS = ["arm wrestling", "yoga", "cleaning pool", "making a cake", "playing cricket"]
CLIPS = ["hitting_baseball.mp4", "yoga.mp4", "apply_eye_makeup.avi", "playing_cricket.gif"]
#: predict writes probabilities rounded to 6 decimals; batching several requests' clips in
#: one forward pass may move them by float noise (measured: <= 1e-7 here), never more.
TOLERANCE = 1e-6

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def recognizer(tiny_checkpoint, tmp_path_factory):
    return Recognizer.from_checkpoint(tiny_checkpoint, device="cpu", num_workers=0,
                                      cache_dir=tmp_path_factory.mktemp("text-cache"))


@pytest.fixture(scope="module")
def served(recognizer, tmp_path_factory):
    uploads = tmp_path_factory.mktemp("uploads")
    served = open_app(recognizer, upload_dir=uploads, workers=0, max_upload_mb=3.0,
                      max_labels=50)
    yield served
    served.close()


@pytest.fixture
def client(served):
    with TestClient(served.app, base_url="http://localhost") as client:
        yield client
    assert os.listdir(served.upload_dir) == []  # no request left a file behind


def classify(client, path, labels=LABELS, **fields):
    with open(path, "rb") as f:
        return client.post("/api/classify", files={"video": (Path(path).name, f)},
                           data={"labels": "\n".join(labels), **fields})


def predicted(cli_with, checkpoint, paths, labels=LABELS):
    cli = cli_with("froster.inference.commands")
    code, out, _ = cli("predict", *paths, "--labels", ",".join(labels), "--checkpoint", checkpoint,
                       "--format", "jsonl", "--top-k", "0", "--workers", "0")
    assert code == 0
    return {Path(r["video"]).name: r for r in map(json.loads, out.splitlines())}


def test_classify_gives_the_probabilities_predict_gives(client, cli_with, tiny_checkpoint,
                                                        shared_dir):
    paths = [shared_dir / "videos" / name for name in CLIPS]
    expected = predicted(cli_with, tiny_checkpoint, paths)
    for path in paths:
        response = classify(client, path, top_k="0", frames="1")
        assert response.status_code == 200, response.text
        got = response.json()
        want = expected[path.name]["predictions"]
        assert got["video"] == path.name and got["labels"] == 5 and got["views"] == 3
        assert [p["label"] for p in got["predictions"]] == [p["label"] for p in want]
        assert [p["probability"] for p in got["predictions"]] == \
            pytest.approx([p["probability"] for p in want], abs=TOLERANCE)
        assert got["frames"].startswith("data:image/jpeg;base64,")
    top2 = classify(client, paths[0], top_k="2").json()["predictions"]
    assert [p["label"] for p in top2] == [p["label"] for p in expected[paths[0].name]["predictions"][:2]]


def test_concurrent_requests_share_one_forward_pass_and_keep_their_numbers(
        recognizer, shared_dir, cli_with, tiny_checkpoint):
    paths = [shared_dir / "videos" / name for name in CLIPS]
    expected = predicted(cli_with, tiny_checkpoint, paths)
    labels = [LABELS, LABELS[::-1], LABELS[:3], LABELS]  # each request its own labels
    worker = ModelWorker(recognizer, batch_clips=12, max_wait=2.0)  # waits for all four
    service = Service(recognizer, worker, Decoder(recognizer, 0))

    async def all_at_once():
        return await asyncio.gather(*(service.classify(p, p.name, l, 0)
                                      for p, l in zip(paths, labels)))
    try:
        results = asyncio.run(all_at_once())
    finally:
        worker.close()
    assert (worker.batches, worker.largest_batch) == (1, 12)  # 4 videos x 3 views, one pass
    for path, result, chosen in zip(paths, results, labels):
        got = {p["label"]: p["probability"] for p in result["predictions"]}
        assert sorted(got) == sorted(chosen)
        if chosen == LABELS:
            for p in expected[path.name]["predictions"]:
                assert got[p["label"]] == pytest.approx(p["probability"], abs=TOLERANCE)
        else:  # other labels: as the library classifies the file alone
            for name, p in recognizer.classify(path, chosen):
                assert got[name] == pytest.approx(p, abs=TOLERANCE)


def test_labels_from_a_class_file(client, shared_dir, tmp_path):
    classes = tmp_path / "classes.json"
    classes.write_text(json.dumps({"0": "Yoga: a person holds poses on a mat", "1": "Rowing"}))
    with open(classes, "rb") as f:
        response = client.post("/api/labels", files={"label_file": ("classes.json", f)})
    assert response.json() == {"labels": ["Yoga: a person holds poses on a mat", "Rowing"]}
    with open(shared_dir / "videos" / "yoga.mp4", "rb") as v, open(classes, "rb") as f:
        got = client.post("/api/classify", files={"video": ("yoga.mp4", v),
                                                  "label_file": ("classes.json", f)}).json()
    assert sorted(p["label"] for p in got["predictions"]) == ["Rowing", "Yoga"]
    bad = tmp_path / "empty.txt"
    bad.write_text("")
    with open(bad, "rb") as f:
        response = client.post("/api/labels", files={"label_file": ("mine.txt", f)})
    assert response.status_code == 422 and "mine.txt" in response.json()["detail"]
    assert str(tmp_path) not in response.json()["detail"]


def test_bad_input_is_refused_with_the_reason_and_the_server_goes_on(client, shared_dir,
                                                                     tmp_path, served):
    clip = shared_dir / "videos" / "hitting_baseball.mp4"
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    cases = [
        ({"video": ("empty.mp4", b"")}, {"labels": "a,b"}, 422, "empty.mp4: empty file"),
        ({"video": ("noise.mp4", os.urandom(4096))}, {"labels": "a,b"}, 422,
         "noise.mp4: not a readable video"),
        ({"video": ("cut.mp4", truncated.read_bytes())}, {"labels": "a,b"}, 422,
         "cut.mp4: not a readable video"),
        ({"video": ("list.m3u8", b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n")}, {"labels": "a"},
         422, "a playlist"),
        ({"video": ("x.mp4", clip.read_bytes())}, {"labels": " , "}, 422, "no labels given"),
        ({"video": ("x.mp4", clip.read_bytes())}, {"labels": ",".join(map(str, range(51)))}, 422,
         "51 labels is more than the 50"),
        ({"clip": ("x.mp4", clip.read_bytes())}, {"labels": "a"}, 422, "no video in the form"),
        ({"video": ("big.mp4", b"\0" * 3_100_000)}, {"labels": "a"}, 413, "limit of 3 MB"),
    ]
    for files, data, status, message in cases:
        response = client.post("/api/classify", files=files, data=data)
        assert response.status_code == status, (message, response.text)
        assert message in response.json()["detail"]
        assert str(served.upload_dir) not in response.json()["detail"]  # named as sent
        assert os.listdir(served.upload_dir) == []
    for endpoint in ("/api/timeline", "/api/explain"):  # the other routes that take a video
        for name, data, message in (("noise.mp4", os.urandom(4096), "noise.mp4: "),
                                    ("empty.mp4", b"", "empty.mp4: empty file")):
            response = client.post(endpoint, files={"video": (name, data)}, data={"labels": "a,b"})
            assert response.status_code == 422 and message in response.json()["detail"], endpoint
            assert str(served.upload_dir) not in response.json()["detail"]
        assert os.listdir(served.upload_dir) == []
    response = client.post("/api/classify", content=b"labels=a", headers={
        "content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    response = client.post("/api/classify", content=b"--x--", headers={
        "content-type": "multipart/form-data; boundary=x", "content-length": "4500000"})
    assert response.status_code == 413 and "4.5 MB is over the limit of 3 MB" in response.json()["detail"]
    assert classify(client, clip).status_code == 200  # still serving


def test_a_full_server_answers_503_with_retry_after(client, served, shared_dir):
    worker = served.service.worker
    held = [worker.acquire() for _ in range(worker.queue_size)]
    try:
        response = classify(client, shared_dir / "videos" / "yoga.mp4")
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) >= 1 and "busy" in response.json()["detail"]
    finally:
        for release in held:
            release()
    assert classify(client, shared_dir / "videos" / "yoga.mp4").status_code == 200


def timeline_records(client, path, fmt="ndjson", **fields):
    with open(path, "rb") as f:
        response = client.post("/api/timeline", files={"video": (path.name, f)},
                               data={"labels": ",".join(LABELS), "format": fmt, **fields})
    assert response.status_code == 200, response.text
    if fmt == "sse":
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [block.split("\n") for block in response.text.strip().split("\n\n")]
        assert all(e[0].startswith("event: ") and e[1].startswith("data: ") for e in events)
        return [json.loads(e[1][6:]) for e in events]
    return [json.loads(line) for line in response.text.splitlines()]


def test_timeline_streams_what_froster_timeline_writes(client, cli_with, tiny_checkpoint,
                                                       shared_dir, tmp_path):
    clip = shared_dir / "videos" / "yoga.mp4"
    output = tmp_path / "yoga.jsonl"
    cli = cli_with("froster.inference.timeline.command")
    code, _, err = cli("timeline", clip, "--labels", ",".join(LABELS), "--checkpoint",
                       tiny_checkpoint, "-o", output, "--top-k", "0", "--threshold", "0.3",
                       "--smooth", "2", "--no-progress")
    assert code == 0, err
    want = [json.loads(line) for line in output.read_text().splitlines()]
    for fmt in ("ndjson", "sse"):
        got = timeline_records(client, clip, fmt, threshold="0.3", smooth="2")
        assert got[0]["type"] == "timeline" and got[-1]["type"] == "end"
        assert got[-1] == want[-1]
        for kind in ("window", "segment"):
            mine = [r for r in got if r["type"] == kind]
            theirs = [r for r in want if r["type"] == kind]
            assert len(mine) == len(theirs) > 0
            for a, b in zip(mine, theirs):
                assert {k: a[k] for k in b if k not in ("probability", "top")} == \
                    {k: v for k, v in b.items() if k not in ("probability", "top")}
                assert a["probability"] == pytest.approx(b["probability"], abs=TOLERANCE)
        windows = [r for r in got if r["type"] == "window"]
        assert all(len(w["logits"]) == len(w["scores"]) == 5 for w in windows)


def test_rescore_gives_the_segments_of_another_threshold(client, cli_with, tiny_checkpoint,
                                                         shared_dir, tmp_path):
    clip = shared_dir / "videos" / "yoga.mp4"
    got = timeline_records(client, clip)
    windows = [r for r in got if r["type"] == "window"]
    body = {"labels": LABELS, "windows": [{k: w[k] for k in ("start", "end", "logits")}
                                          for w in windows],
            "threshold": 0.35, "smooth": 3, "end_time": got[-1]["end_time"]}
    rescored = client.post("/api/timeline/rescore", json=body).json()
    output = tmp_path / "again.jsonl"
    code, _, _ = cli_with("froster.inference.timeline.command")(
        "timeline", clip, "--labels", ",".join(LABELS), "--checkpoint", tiny_checkpoint, "-o",
        output, "--threshold", "0.35", "--smooth", "3", "--no-progress")
    assert code == 0
    want = [json.loads(line) for line in output.read_text().splitlines()]
    assert [w["label"] for w in rescored["windows"]] == [w["label"] for w in want if w["type"] == "window"]
    segments = [w for w in want if w["type"] == "segment"]
    assert [(s["start"], s["end"], s["label"]) for s in rescored["segments"]] == \
        [(s["start"], s["end"], s["label"]) for s in segments]
    body["windows"][0]["logits"] = [0.0]
    response = client.post("/api/timeline/rescore", json=body)
    assert response.status_code == 422 and "1 logits for 5 labels" in response.json()["detail"]


def test_explain_draws_the_maps_of_recognizer_explain(client, recognizer, shared_dir):
    from io import BytesIO

    from PIL import Image

    clip = shared_dir / "videos" / "arm_wrestling.mp4"
    want = recognizer.explain(clip, LABELS, label="yoga", method="rollout")
    for fmt, kind in (("png", "PNG"), ("gif", "GIF")):
        with open(clip, "rb") as f:
            response = client.post("/api/explain", files={"video": (clip.name, f)}, data={
                "labels": ",".join(LABELS), "label": "yoga", "method": "rollout", "format": fmt})
        assert response.status_code == 200, response.text
        assert response.headers["x-label"] == "yoga" and response.headers["x-view"] == "2 of 3"
        assert float(response.headers["x-probability"]) == pytest.approx(want.probability, abs=1e-6)
        image = Image.open(BytesIO(response.content))
        assert image.format == kind
        if kind == "GIF":
            assert image.n_frames == want.frames.shape[0]
    with open(clip, "rb") as f:
        response = client.post("/api/explain", files={"video": (clip.name, f)},
                               data={"labels": "a,b", "label": "juggling"})
    assert response.status_code == 422 and "'juggling' is not one of the 2 labels" in \
        response.json()["detail"]


@pytest.fixture(scope="module")
def library(recognizer, tmp_path_factory):
    """A library folder: three clips, a symlink to a clip outside it, a secret beside it."""
    shared_dir = require(SHARED)
    root = tmp_path_factory.mktemp("library")
    shelf = root / "videos"
    (shelf / "sport").mkdir(parents=True)
    for name in ("yoga.mp4", "arm_wrestling.mp4"):
        shutil.copy(shared_dir / "videos" / name, shelf / name)
    shutil.copy(shared_dir / "videos" / "hitting_baseball.mp4", shelf / "sport" / "baseball.mp4")
    (shelf / "outside.mp4").symlink_to(shared_dir / "videos" / "cleaning_pool.mp4")
    (root / "secret.mp4").write_text("not for you")
    served = open_app(recognizer, upload_dir=tmp_path_factory.mktemp("up"), workers=0,
                      library=shelf)
    yield served, shelf
    served.close()


def test_search_ranks_the_library_as_froster_search(library):
    from froster.inference.search import VideoIndex

    served, shelf = library
    with TestClient(served.app, base_url="http://localhost") as client:
        got = client.get("/api/search", params={"q": "a person doing yoga", "top_k": 0}).json()
        index = VideoIndex(shelf, served.service.recognizer)
        assert index.load()  # the index file froster search reads and writes
        want = index.search("a person doing yoga")
        assert [(r["video"], r["score"]) for r in got["results"]] == \
            [(v, pytest.approx(s, abs=1e-6)) for v, s in want]
        assert sorted(r["video"] for r in got["results"]) == \
            ["arm_wrestling.mp4", "outside.mp4", "sport/baseball.mp4", "yoga.mp4"]
        hit = next(r for r in got["results"] if r["video"] == "sport/baseball.mp4")
        assert client.get(hit["url"]).content == (shelf / "sport" / "baseball.mp4").read_bytes()
        part = client.get(hit["url"], headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and len(part.content) == 100
        thumb = client.get(hit["thumbnail"])
        assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"  # a JPEG


@pytest.mark.parametrize("name", ["..%2Fsecret.mp4", "%2E%2E/secret.mp4", "sport/..%2F..%2Fsecret.mp4",
                                  "outside.mp4", "%2Fetc%2Fpasswd", "secret.mp4", "nothing.mp4"])
def test_library_serves_nothing_outside_it(library, name):
    served, _ = library
    with TestClient(served.app, base_url="http://localhost") as client:
        for prefix in ("/library/", "/api/thumbnail/"):
            response = client.get(prefix + name)
            assert response.status_code == 404, (prefix, name)
            assert b"not for you" not in response.content


def test_search_without_a_library_says_how(client):
    response = client.get("/api/search", params={"q": "x"})
    assert response.status_code == 404 and "--library" in response.json()["detail"]


@pytest.fixture(scope="module")
def run_folder(tiny_checkpoint, tmp_path_factory):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from _engine_data import CLASSES, make_videos, write_classes, write_list

    from froster.cli import main

    root = tmp_path_factory.mktemp("run")
    entries = make_videos(root, 2, range(4))
    bad = root / "broken.mp4"
    bad.write_bytes(b"not a video")
    val = write_list(root / "val.csv", entries + [(str(bad), 2)])
    classes = write_classes(root / "classes.json", CLASSES)
    assert main(["eval", "--checkpoint", str(tiny_checkpoint), f"val_list={val}",
                 f"eval_class_file={classes}", f"data_root={root}", "num_frames=2",
                 "sampling_rate=4", "test_views=2", "num_workers=0", "progress=false",
                 "device=cpu", "--output", str(root / "out" / "eval")]) == 1  # 1: a video failed
    return root / "out"


def test_inspect_shows_what_the_evaluation_wrote(recognizer, run_folder, tmp_path):
    from froster.engine.predictions import read_predictions

    served = open_app(recognizer, upload_dir=tmp_path, workers=0, run=run_folder)
    try:
        with TestClient(served.app, base_url="http://localhost") as client:
            listing = client.get("/api/run").json()
            assert [e["name"] for e in listing["evaluations"]] == ["eval"]
            detail = client.get("/api/run/evaluation", params={"name": "eval"}).json()
            metrics = json.loads((run_folder / "eval" / "metrics.json").read_text())
            assert detail["summary"]["top1"] == metrics["top1"]
            assert {c["label"]: c["accuracy"] for c in detail["per_class"]} == metrics["per_class"]
            records = read_predictions(run_folder / "eval" / "predictions.jsonl")
            wrong = [i for i, r in enumerate(records) if not r["correct"]]
            assert [w["index"] for w in detail["misclassified"]] == wrong
            assert sum(c["videos"] for c in detail["confused"]) == len(wrong)
            assert [w["top5"] for w in detail["misclassified"]] == [records[i]["top5"] for i in wrong]
            assert len(detail["failed_videos"]) == 1 and "broken.mp4" in detail["failed_videos"][0]
            video = client.get("/api/run/video", params={"name": "eval", "index": 0})
            assert video.content == Path(records[0]["video"]).read_bytes()
            for params in ({"name": "eval", "index": len(records)}, {"name": "../eval", "index": 0},
                           {"name": "eval", "index": -1}):
                assert client.get("/api/run/video", params=params).status_code == 404
    finally:
        served.close()


def test_a_token_is_needed_when_set_and_a_foreign_host_is_refused(recognizer, tmp_path, served):
    with TestClient(served.app, base_url="http://localhost") as client:
        assert client.get("/api/health").status_code == 200
        response = client.get("/api/health", headers={"host": "attacker.example"})
        assert response.status_code == 400 and "not served here" in response.json()["detail"]
    guarded = open_app(recognizer, upload_dir=tmp_path, workers=0, token="s3cret",
                       allowed_hosts=None)
    try:
        with TestClient(guarded.app, base_url="http://10.1.2.3") as client:
            for path in ("/api/health", "/", "/static/app.js", "/api/model"):
                response = client.get(path)
                assert response.status_code == 401 and "token" in response.json()["detail"]
            assert client.get("/api/health", headers={"authorization": "Bearer nope"}).status_code == 401
            assert client.get("/api/health", headers={"authorization": "Bearer s3cret"}).status_code == 200
            response = client.get("/?token=s3cret", follow_redirects=False)
            assert response.status_code == 303 and "froster_token=s3cret" in response.headers["set-cookie"]
            assert client.get("/").status_code == 200  # the cookie now
    finally:
        guarded.close()


def test_serve_refuses_an_open_host_without_a_token(cli_with):
    cli = cli_with("froster.serve.commands")
    code, _, err = cli("serve", "--model", "froster-tiny", "--pretrained", "none", "--host", "0.0.0.0")
    assert code == 2 and "--host 0.0.0.0 lets other machines in: give --token" in err
    code, _, err = cli("serve", "--model", "froster-tiny", "--host", "0.0.0.0", "--token", "x",
                       "--no-auth")
    assert code == 2 and "not both" in err


def test_the_page_and_the_api_docs_need_nothing_from_outside(client):
    page = client.get("/")
    assert page.status_code == 200 and "<title>froster serve</title>" in page.text
    outside = re.compile(r"""(src|href)\s*=\s*["']?(https?:)?//|url\(\s*["']?(https?:)?//|"""
                         r"""(fetch|import)\s*\(\s*["'](https?:)?//|@import""")
    for path in ("/", "/docs", "/static/app.js", "/static/style.css"):
        response = client.get(path)
        assert response.status_code == 200 and not outside.search(response.text), path
    spec = client.get("/openapi.json").json()
    assert {"/api/classify", "/api/timeline", "/api/explain", "/api/search", "/api/model",
            "/api/health", "/api/run/evaluation"} <= set(spec["paths"])
    form = spec["paths"]["/api/classify"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert {"video", "labels", "top_k"} <= set(form["schema"]["properties"])
    model = client.get("/api/model").json()
    assert model["view_settings"]["num_views"] == 3 and model["max_upload_bytes"] == 3_000_000
