"""A real `froster serve` process under load and bad input: 32 concurrent clients x 4
requests on the real clips of ../shared/videos, every one answered with predict's numbers;
then path traversal, empty, random, truncated and oversized uploads, a full queue and cut
uploads, after each of which the server still answers correctly and keeps no file."""

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from _serve_process import ROOT, raw_request, start_server, stop
from _shared import require  # noqa: E402

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from froster.inference.api import Recognizer

LABELS = ["arm wrestling", "yoga", "cleaning pool", "making a cake", "playing cricket",
          "hitting baseball", "playing basketball"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tiny_checkpoint, tmp_path_factory):
    shared = ROOT.parent / "shared" / "videos"
    require(shared)
    tmp = tmp_path_factory.mktemp("load")
    library = tmp / "library"
    library.mkdir()
    shutil.copy(shared / "yoga.mp4", library / "yoga.mp4")
    (tmp / "secret.txt").write_text("not for you")
    uploads = tmp / "uploads"
    uploads.mkdir()
    process, base = start_server(["--checkpoint", str(tiny_checkpoint), "--workers", "2",
                                  "--upload-dir", str(uploads), "--library", str(library),
                                  "--max-upload-mb", "5", "--max-labels", "100",
                                  "--queue-size", "40"], tmp)
    yield base, uploads, shared, tmp
    assert stop(process) == 0, (tmp / "server.log").read_text()[-3000:]
    assert os.listdir(uploads) == []


@pytest.fixture(scope="module")
def expected(tiny_checkpoint, server, tmp_path_factory):
    _, _, shared, _ = server
    recognizer = Recognizer.from_checkpoint(tiny_checkpoint, device="cpu",
                                            cache_dir=tmp_path_factory.mktemp("c"))
    clips = sorted(p for p in shared.iterdir() if p.suffix in (".mp4", ".avi", ".gif"))
    return {p.name: dict(recognizer.classify(p, LABELS)) for p in clips}


def classify(client, base, path, labels=LABELS):
    with open(path, "rb") as f:
        return client.post(f"{base}/api/classify", files={"video": (path.name, f)},
                           data={"labels": "\n".join(labels), "top_k": "0"}, timeout=300)


def check(response, want):
    assert response.status_code == 200, response.text
    got = {p["label"]: p["probability"] for p in response.json()["predictions"]}
    assert got.keys() == want.keys()
    for label, p in want.items():
        assert got[label] == pytest.approx(p, abs=1e-6), label


def test_32_clients_4_requests_each_all_answered_and_correct(server, expected):
    base, uploads, shared, _ = server
    clips = sorted(expected)

    def client_session(k):
        answers = []
        with httpx.Client() as client:
            for r in range(4):
                name = clips[(k * 4 + r) % len(clips)]
                answers.append((name, classify(client, base, shared / name)))
        return answers

    with ThreadPoolExecutor(32) as pool:
        sessions = list(pool.map(client_session, range(32)))
    answers = [a for s in sessions for a in s]
    assert len(answers) == 128
    for name, response in answers:
        assert response.json()["video"] == name
        check(response, expected[name])
    health = httpx.get(f"{base}/api/health").json()
    assert health["in_progress"] == 0 and health["largest_batch"] > 3  # requests shared passes
    assert os.listdir(uploads) == []


def test_bad_input_battery_and_the_server_goes_on(server, expected, tmp_path):
    base, uploads, shared, _ = server
    clip = shared / "arm_wrestling.mp4"
    host = urlsplit(base).netloc.encode()

    def get(path: bytes) -> str:
        return raw_request(base, b"GET " + path + b" HTTP/1.1\r\nHost: " + host +
                           b"\r\nConnection: close\r\n\r\n")

    with httpx.Client() as client:
        # paths out of the library and the static folder, sent as they are
        for path in (b"/library/../secret.txt", b"/library/..%2Fsecret.txt",
                     b"/library/%2E%2E/%2E%2E/etc/passwd", b"/library//etc/passwd",
                     b"/static/../../../../etc/passwd", b"/api/thumbnail/../secret.txt"):
            response = get(path)
            assert response.startswith("HTTP/1.1 404") and "not for you" not in response, path
        assert get(b"/library/yoga.mp4").startswith("HTTP/1.1 200")

        def form(files, labels="a\nb"):
            return client.post(f"{base}/api/classify", files=files, data={"labels": labels})

        truncated = clip.read_bytes()[: clip.stat().st_size // 3]
        for files, labels, status, message in (
                ({"video": ("zero.mp4", b"")}, "a\nb", 422, "zero.mp4: empty file"),
                ({"video": ("noise.mp4", os.urandom(100_000))}, "a\nb", 422, "noise.mp4: not a readable video"),
                ({"video": ("cut.mp4", truncated)}, "a\nb", 422, "cut.mp4: not a readable video"),
                ({"video": ("x.mp4", clip.read_bytes())}, "", 422, "no labels given"),
                ({"video": ("x.mp4", clip.read_bytes())}, "\n".join(map(str, range(101))), 422,
                 "101 labels is more than the 100"),
                ({"video": ("big.mp4", os.urandom(5_200_000))}, "a", 413, "limit of 5 MB")):
            response = form(files, labels)
            assert response.status_code == status and message in response.json()["detail"], response.text
            check(classify(client, base, clip), expected[clip.name])  # still right afterwards

        # a declared size over the limit: refused before a byte of the body is read
        response = raw_request(base, b"POST /api/classify HTTP/1.1\r\nHost: " + host +
                               b"\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                               b"Content-Length: 900000000000\r\n\r\n")
        assert response.startswith("HTTP/1.1 413") and "over the limit of 5 MB" in response
        # a body over the limit without a declared size (chunked)
        chunks = (b"--b\r\nContent-Disposition: form-data; name=\"video\"; filename=\"c.mp4\"\r\n\r\n",
                  *(os.urandom(1 << 20) for _ in range(7)))
        response = client.post(f"{base}/api/classify", content=iter(chunks),
                               headers={"content-type": "multipart/form-data; boundary=b"})
        assert response.status_code == 413
        check(classify(client, base, clip), expected[clip.name])

        # a full queue: 40 uploads that never finish hold every place; the next gets 503
        head = (b"POST /api/classify HTTP/1.1\r\nHost: " + host + b"\r\nContent-Type: multipart/"
                b"form-data; boundary=b\r\nContent-Length: 3000000\r\n\r\n--b\r\nContent-Disposition:"
                b" form-data; name=\"video\"; filename=\"slow.mp4\"\r\n\r\n" + b"\0" * 50_000)
        held = [raw_request(base, head, keep_open=True) for _ in range(40)]
        deadline = time.monotonic() + 30
        while httpx.get(f"{base}/api/health").json()["in_progress"] < 40 and time.monotonic() < deadline:
            time.sleep(0.1)
        response = classify(client, base, clip)
        assert response.status_code == 503 and int(response.headers["retry-after"]) >= 1
        assert len(os.listdir(uploads)) == 40  # the unfinished uploads, on disk
        for sock in held:  # the clients give up: their places and files are released
            sock.close()
        deadline = time.monotonic() + 30
        while (os.listdir(uploads) or httpx.get(f"{base}/api/health").json()["in_progress"]) \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        assert os.listdir(uploads) == []
        check(classify(client, base, clip), expected[clip.name])

        # a client that leaves in the middle of a timeline: its place and file are freed
        with open(shared / "yoga.mp4", "rb") as f, client.stream(
                "POST", f"{base}/api/timeline", files={"video": ("yoga.mp4", f)},
                data={"labels": "a\nb", "stride": "0.25"}) as response:
            assert response.status_code == 200
            assert '"type": "timeline"' in next(response.iter_lines())
        deadline = time.monotonic() + 30
        while (os.listdir(uploads) or httpx.get(f"{base}/api/health").json()["in_progress"]) \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        assert os.listdir(uploads) == [] and httpx.get(f"{base}/api/health").json()["in_progress"] == 0
        search = client.get(f"{base}/api/search", params={"q": "yoga"}).json()
        assert [r["video"] for r in search["results"]] == ["yoga.mp4"]
    assert os.listdir(uploads) == []
