"""The page in a real browser: headless Chromium (Debian's chromium + chromium-driver)
driven by Selenium against a real `froster serve` process. It uploads a clip, types
labels and sees the top label and its bar; it runs a timeline over a long video and seeks
by clicking its segments; it searches a library and inspects an evaluation.

Skipped, with the reason, only when Chromium is not installed and FROSTER_REQUIRE_BROWSER
is not set (CI sets it, and installs Chromium: .ci/run). Screenshots are written to
$FROSTER_SCREENSHOTS when set (docs/serve_*.png were made so), else to the test's folder.
"""

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from _serve_process import ROOT, start_server, stop
from _shared import require  # noqa: E402

from froster.inference.api import Recognizer

pytestmark = pytest.mark.slow

LABELS = ["arm wrestling", "yoga", "cleaning pool", "making a cake", "playing cricket",
          "hitting baseball"]
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def browser_paths():
    binary = next((shutil.which(name) for name in CHROMIUM if shutil.which(name)), None)
    driver = shutil.which("chromedriver") or next(
        (p for p in ("/usr/lib/chromium/chromedriver",) if os.path.exists(p)), None)
    return binary, driver


@pytest.fixture(scope="module")
def browser():
    binary, driver = browser_paths()
    if not (binary and driver):
        message = ("headless Chromium is not installed (apt-get install chromium "
                   "chromium-driver); the browser tests need it")
        if os.environ.get("FROSTER_REQUIRE_BROWSER"):
            pytest.fail(message + " and FROSTER_REQUIRE_BROWSER is set")
        pytest.skip(message)
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    profile = tempfile.mkdtemp(prefix="froster-chromium-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--window-size=1440,1100", "--hide-scrollbars", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver_ = webdriver.Chrome(service=Service(driver), options=options)
    driver_.set_script_timeout(60)
    yield driver_
    driver_.quit()
    shutil.rmtree(profile, ignore_errors=True)


def long_video(path: Path, shared: Path, seconds_each: float = 5.0) -> Path:
    """Three real clips one after the other (320x240 H.264, 30 fps), so the timeline has
    something to segment."""
    import av

    frames = []
    for name in ("arm_wrestling.mp4", "cleaning_pool.mp4", "yoga.mp4"):
        with av.open(str(shared / name)) as container:
            for k, frame in enumerate(container.decode(video=0)):
                if k >= seconds_each * 30:
                    break
                frames.append(frame.reformat(width=320, height=240, format="rgb24").to_ndarray())
    from froster.data.synthetic import write_video

    return Path(write_video(path, len(frames), 320, 240, frame=lambda i, w, h: frames[i]))


@pytest.fixture(scope="module")
def server(tiny_checkpoint, tmp_path_factory):
    shared = ROOT.parent / "shared" / "videos"
    require(shared)
    tmp = tmp_path_factory.mktemp("browser")
    library = tmp / "library"
    library.mkdir()
    for name in ("yoga.mp4", "arm_wrestling.mp4", "hitting_baseball.mp4", "cleaning_pool.mp4"):
        shutil.copy(shared / name, library / name)
    run = tmp / "run"
    make_run(tiny_checkpoint, tmp / "data", run)
    process, base = start_server(["--checkpoint", str(tiny_checkpoint), "--workers", "1",
                                  "--library", str(library), "--run", str(run)], tmp)
    yield base, shared, tmp
    assert stop(process) == 0


def make_run(checkpoint, data: Path, out: Path) -> None:
    """A `froster eval` output on a few generated videos (some misclassified)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from _engine_data import CLASSES, make_videos, write_classes, write_list

    from froster.cli import main

    entries = make_videos(data, 2, range(4), frames=40)
    val = write_list(data / "val.csv", entries)
    classes = write_classes(data / "classes.json", CLASSES)
    assert main(["eval", "--checkpoint", str(checkpoint), f"val_list={val}",
                 f"eval_class_file={classes}", f"data_root={data}", "num_workers=0",
                 "progress=false", "device=cpu", "--output", str(out / "eval")]) == 0


def screenshot(driver, name: str, tmp: Path) -> Path:
    folder = Path(os.environ.get("FROSTER_SCREENSHOTS") or tmp)
    folder.mkdir(parents=True, exist_ok=True)
    for _ in range(2):  # the page's height, then again once laid out at that size
        height, chrome = driver.execute_script(
            "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]")
        driver.set_window_size(1440, min(2600, height + chrome))
        time.sleep(0.3)
    path = folder / name
    driver.save_screenshot(str(path))
    driver.set_window_size(1440, 1100)
    return path


def wait(driver, script: str, timeout: float = 90):
    """Poll a JavaScript expression until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return ({script});")
        if value:
            return value
        time.sleep(0.1)
    status = driver.execute_script("return document.getElementById('status').textContent")
    raise AssertionError(f"timed out waiting for {script} (page status: {status!r})")


def open_with_video(driver, base, video: Path, labels=LABELS):
    from selenium.webdriver.common.by import By

    driver.get(base + "/")
    wait(driver, "document.getElementById('model-info').textContent.includes('views')")
    driver.find_element(By.ID, "video-file").send_keys(str(video))
    box = driver.find_element(By.ID, "labels")
    box.clear()
    box.send_keys("\n".join(labels))


def test_upload_a_clip_type_labels_and_see_the_top_label(browser, server, tiny_checkpoint,
                                                         tmp_path):
    from selenium.webdriver.common.by import By

    base, shared, _ = server
    clip = shared / "hitting_baseball.mp4"
    want = Recognizer.from_checkpoint(tiny_checkpoint, device="cpu",
                                      cache_dir=tmp_path / "c").classify(clip, LABELS, top_k=5)
    open_with_video(browser, base, clip)
    browser.find_element(By.ID, "classify").click()
    wait(browser, "document.querySelectorAll('#bars .bar').length === 5")
    bars = browser.find_elements(By.CSS_SELECTOR, "#bars .bar")
    names = [b.find_element(By.CLASS_NAME, "name").text for b in bars]
    values = [float(b.find_element(By.CLASS_NAME, "value").text) for b in bars]
    assert names == [n for n, _ in want]
    assert values == pytest.approx([p for _, p in want], abs=5e-5)  # shown to 4 decimals
    top = bars[0].find_element(By.CLASS_NAME, "fill")
    track = bars[0].find_element(By.CLASS_NAME, "track")
    assert top.size["width"] / track.size["width"] == pytest.approx(want[0][1], abs=0.02)
    assert wait(browser, "document.getElementById('frames').naturalWidth") > 0  # frames shown
    assert wait(browser, "document.getElementById('player').readyState >= 1")  # it plays

    browser.find_element(By.ID, "run-explain").click()
    wait(browser, "document.getElementById('explain-image').naturalWidth > 0")
    note = browser.find_element(By.ID, "explain-note").text
    assert note.startswith(f"'{want[0][0]}'")
    browser.execute_script("window.scrollTo(0, 0)")
    shot = screenshot(browser, "serve_try.png", tmp_path)
    assert shot.stat().st_size > 20_000


def test_a_timeline_is_drawn_and_its_segments_seek_the_video(browser, server, tmp_path,
                                                            tiny_checkpoint):
    from selenium.webdriver.common.by import By

    base, shared, _ = server
    video = long_video(tmp_path / "three_actions.mp4", shared)
    # a threshold between the windows' top scores, so that some windows are "no action"
    # and the timeline has several segments whatever the (random) model says
    recognizer = Recognizer.from_checkpoint(tiny_checkpoint, device="cpu", cache_dir=tmp_path / "c")
    scores = sorted(w.score for w in recognizer.timeline(video, LABELS))
    threshold = round((scores[len(scores) // 2] + scores[len(scores) // 2 - 1]) / 2, 2)
    open_with_video(browser, base, video)
    browser.execute_script(f"const t = document.getElementById('threshold'); t.value = {threshold};"
                           "t.dispatchEvent(new Event('input'))")
    browser.find_element(By.ID, "run-timeline").click()
    wait(browser, "document.getElementById('status').textContent.startsWith('done')", 180)
    segments = browser.find_elements(By.CSS_SELECTOR, "#chart .segment")
    starts = [float(s.get_attribute("data-start")) for s in segments]
    assert len(segments) >= 2 and starts == sorted(starts) and starts[0] == 0
    rows = browser.find_elements(By.CSS_SELECTOR, "#segment-table tbody tr")
    assert len(rows) == len(segments)
    wait(browser, "document.getElementById('player').readyState >= 1")
    rows[-1].click()  # the table seeks too
    wait(browser, f"Math.abs(document.getElementById('player').currentTime - {starts[-1]}) < 0.05")
    for k in (0, 1):  # click a segment: the video goes to its start
        browser.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))",
                               segments[k])
        now = wait(browser, f"Math.abs(document.getElementById('player').currentTime - {starts[k]}) < 0.05"
                            f" && document.getElementById('player').currentTime + 1e-3") - 1e-3
        assert now == pytest.approx(starts[k], abs=0.05)
        head = float(browser.find_element(By.ID, "playhead").get_attribute("x1"))
        left = float(segments[k].get_attribute("x"))
        assert head == pytest.approx(left, abs=1.0)
    lines = browser.find_elements(By.CSS_SELECTOR, "#chart polyline.score")
    assert len(lines) == len(LABELS)
    shot = screenshot(browser, "serve_timeline.png", tmp_path)

    # a threshold above every score: one "no action" segment, asked of the server again
    browser.execute_script("const t = document.getElementById('threshold'); t.value = 0.99;"
                           "t.dispatchEvent(new Event('input'))")
    wait(browser, "document.querySelectorAll('#segment-table tbody tr').length === 1")
    assert browser.find_element(By.CSS_SELECTOR, "#segment-table tbody td.label").text == "(no action)"
    assert shot.stat().st_size > 20_000


def test_search_the_library_and_inspect_the_run(browser, server, tmp_path):
    from selenium.webdriver.common.by import By

    base, _, _ = server
    browser.get(base + "/")
    wait(browser, "!document.getElementById('tab-search').disabled")
    browser.find_element(By.ID, "tab-search").click()
    browser.find_element(By.ID, "query").send_keys("a person doing yoga on a roof")
    browser.find_element(By.ID, "run-search").click()
    wait(browser, "document.querySelectorAll('#hits .hit').length === 4")
    wait(browser, "[...document.querySelectorAll('#hits img')].every(i => i.naturalWidth > 0)")
    browser.find_elements(By.CSS_SELECTOR, "#hits .hit")[0].click()
    wait(browser, "document.getElementById('search-player').readyState >= 1")
    screenshot(browser, "serve_search.png", tmp_path)

    browser.find_element(By.ID, "tab-inspect").click()
    wait(browser, "document.querySelectorAll('#per-class .bar').length === 4")
    stats = [s.text for s in browser.find_elements(By.CSS_SELECTOR, "#summary .stat .label")]
    assert "top-1 (%)" in stats
    plays = browser.find_elements(By.CSS_SELECTOR, "#wrong .play")
    if plays:  # a random model gets some wrong: play one
        plays[0].click()
        wait(browser, "document.getElementById('inspect-player').readyState >= 1")
    screenshot(browser, "serve_inspect.png", tmp_path)
    assert browser.find_element(By.ID, "evaluation").get_attribute("value") == "eval"
