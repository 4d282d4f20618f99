"""`Recognizer.timeline`: window times exact to the frame (constant, NTSC, millisecond and
variable frame rates), logits equal to `Recognizer.logits` on the same frames, segments,
threshold and smoothing on a video of known content, pipes, damaged and broken streams,
bounded memory. Tiny random-weight CLIP, or a rigged one whose logits follow the colour."""

import io
import math
import os
import threading
from fractions import Fraction

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from froster.data import decode_frames
from froster.data.decode import VideoDecodeError
from froster.data.synthetic import read_frame_index, write_video
from froster.inference.api import Recognizer
from froster.inference.timeline import (SegmentBuilder, Window, WindowSampler, WindowScorer,
                                        segments)

LABELS = ["red", "green", "blue"]
SPAN = 8 * 16 / 30  # the default window: 8 frames 16/30 s apart


@pytest.fixture
def recognizer(tmp_path, one_thread):
    torch.manual_seed(0)
    return Recognizer.from_pretrained("froster-tiny", None, device="cpu", cache_dir=tmp_path / "cache")


def expected_frames(frame_times, k, stride=1.0, step=16 / 30, tolerance=0.0):
    """The oracle: sample j of window k takes the last frame whose time <= its time."""
    out = []
    for j in range(8):
        t = k * stride + j * step
        out.append(max(i for i, ft in enumerate(frame_times) if ft <= t + tolerance + 1e-12))
    return out


def frame_indices_seen(timeline):
    """Hook every decoded frame: stream index -> the index its colour encodes."""
    seen = {}
    timeline.on_frame = lambda item: seen.__setitem__(
        item.index, read_frame_index(item.frame.to_ndarray(format="rgb24")))
    return seen


# -- window times -----------------------------------------------------------------------------
@pytest.mark.parametrize("fps, count", [(30, 450), (25, 400), (30000 / 1001, 450)])
def test_window_times_exact_to_the_frame(recognizer, tmp_path, fps, count):
    path = write_video(tmp_path / "v.mp4", count, 32, 32, fps=fps, options={"crf": "0", "g": "30"})
    rate = Fraction(fps).limit_denominator(1001)
    times = [float(i / rate) for i in range(count)]
    timeline = recognizer.timeline(path, LABELS, stride=1.0)
    seen = frame_indices_seen(timeline)
    windows = list(timeline)
    # a window exists when its last sample is not after the last frame
    assert len(windows) == math.floor(times[-1] - 7 * 16 / 30) + 1
    assert [w.index for w in windows] == list(range(len(windows)))
    for w in windows:
        assert w.start == pytest.approx(w.index * 1.0, abs=1e-9)
        assert w.end == pytest.approx(w.start + SPAN, abs=1e-9)
        assert w.frames == expected_frames(times, w.index)
        assert w.frame_times == pytest.approx([times[i] for i in w.frames], abs=1e-9)
    if fps == 30:  # 8 x 16 at 30 fps: every 16th frame from frame 30k
        assert windows[3].frames == [90 + 16 * j for j in range(8)]
    assert all(seen[i] == i for i in range(count))  # stream numbering = frame order
    assert timeline.stream.decoded == count and timeline.end_time == pytest.approx(count / float(rate))


def test_millisecond_timestamps_do_not_shift_a_sample(recognizer, tmp_path):
    # MKV stores milliseconds: frame 2 at 30 fps is 67 ms, after the exact 66.67 ms
    path = write_video(tmp_path / "v.mkv", 300, 32, 32, codec="ffv1", pix_fmt="bgr0")
    windows = list(recognizer.timeline(path, LABELS, stride=0.1, window=2 / 30 * 8))
    # step = 2/30 s: window k (start k/10 s) takes frames 3k + 2j exactly
    assert len(windows) > 50
    for w in windows:
        assert w.frames == [3 * w.index + 2 * j for j in range(8)]


def test_variable_frame_rate_follows_timestamps(recognizer, tmp_path):
    pts = [10 * i + (i * i) // 20 for i in range(400)]  # gaps grow from 10 ms to 50 ms
    path = write_video(tmp_path / "vfr.mp4", 400, 32, 32, options={"crf": "0", "g": "25"},
                       pts=pts, time_base=Fraction(1, 1000))
    times = [p / 1000 for p in pts]
    timeline = recognizer.timeline(path, LABELS, stride=0.5)
    seen = frame_indices_seen(timeline)
    windows = list(timeline)
    assert len(windows) == math.floor((times[-1] - 7 * 16 / 30) / 0.5) + 1
    for w in windows:
        assert w.frames == expected_frames(times, w.index, stride=0.5, tolerance=0.0005)
        assert all(seen[i] == i for i in w.frames)


def test_sampler_fills_each_slot_once():
    """Frames at 1/30 s: every (window, sample) slot is filled by exactly one frame."""
    sampler = WindowSampler(8, Fraction(8, 15), Fraction(1), Fraction(1, 60))
    frames = [Fraction(i, 30) for i in range(301)]
    filled = {}
    for i, (a, b) in enumerate(zip(frames, frames[1:])):
        for slot in sampler.slots(a, b):
            assert slot not in filled
            filled[slot] = i
    assert filled[(2, 0)] == 60 and filled[(2, 7)] == 60 + 112
    assert sampler.last_complete_window(Fraction(300, 30)) == 6  # 6 + 7 * 8/15 <= 10


def test_short_stream_gives_one_window(recognizer, tmp_path):
    path = write_video(tmp_path / "short.mp4", 60, 32, 32, options={"crf": "0"})  # 2 s
    [window] = list(recognizer.timeline(path, LABELS))
    assert window.frames == [0, 16, 32, 48, 59, 59, 59, 59]  # later samples: the last frame


# -- the model part ---------------------------------------------------------------------------
@pytest.mark.parametrize("clip", ["making_a_cake.mp4", "apply_eye_makeup.avi"])
def test_window_logits_equal_recognizer_logits(recognizer, shared_dir, clip):
    path = shared_dir / "videos" / clip
    labels = ["making a cake", "applying eye makeup: brushes near the eyes", "yoga"]
    windows = list(recognizer.timeline(path, labels, stride=1.0, batch_size=3))
    assert len(windows) >= 3
    for w in windows:
        frames = decode_frames(path, w.frames)  # uint8 (T, H, W, 3), as displayed
        expected = recognizer.logits(frames, labels)
        assert torch.allclose(w.logits, expected, atol=1e-5, rtol=1e-5)
        assert torch.allclose(w.probabilities, expected.softmax(-1), atol=1e-6)
    assert recognizer.text_tower_calls == 1  # the classifier was built once


def test_rotation_is_applied_or_ignored(recognizer, tmp_path):
    def marked(i, w, h):
        a = np.zeros((h, w, 3), np.uint8)
        a[: h // 3, : w // 4] = 255
        a[..., 1] = (i * 8) % 256
        return a

    path = write_video(tmp_path / "rot.mp4", 150, 48, 32, options={"crf": "0"}, rotation=90,
                       frame=marked)
    shown = recognizer.timeline(path, LABELS, stride=2.0)
    assert (shown.stream.width, shown.stream.height) == (32, 48)
    stored = recognizer.timeline(path, LABELS, stride=2.0, apply_rotation=False)
    for a, b in zip(shown, stored):
        rotated = decode_frames(path, a.frames)  # decode_frames applies the rotation
        assert torch.allclose(a.logits, recognizer.logits(rotated, LABELS), atol=1e-5)
        unrotated = torch.from_numpy(np.stack([np.rot90(f, -1) for f in rotated.numpy()]))
        assert torch.allclose(b.logits, recognizer.logits(unrotated.contiguous(), LABELS), atol=1e-5)


# -- segments, threshold, smoothing -------------------------------------------------------------
COLOURS = {"red": (220, 20, 20), "green": (20, 220, 20), "black": (0, 0, 0), "blue": (20, 20, 220)}


def colour_of(i):
    """Frame i of the known-content video: red to 10.2 s, green to 20, black to 30, blue to 40."""
    return "red" if i < 306 else "green" if i < 600 else "black" if i < 900 else "blue"


@pytest.fixture
def colour_video(tmp_path):
    def frame(i, w, h):
        return np.broadcast_to(np.array(COLOURS[colour_of(i)], np.uint8), (h, w, 3)).copy()

    return write_video(tmp_path / "colours.mp4", 1200, 64, 48, options={"crf": "10"}, frame=frame)


@pytest.fixture
def colour_model(recognizer, monkeypatch):
    """Logits that follow the colour: a frame's embedding is its mean colour above 10 %
    (unit length; black is all zeros) and the labels red, green, blue are the axes."""
    def encode(videos):
        colour = (videos.float().mean(dim=(-2, -1)) / 255 - 0.1).clamp(min=0)
        return F.normalize(colour, dim=-1)

    monkeypatch.setattr(recognizer, "encode", encode)
    monkeypatch.setattr(recognizer, "label_embeddings", lambda labels, templates=None: torch.eye(3))
    recognizer.model.clip.logit_scale.data.fill_(math.log(1 / 0.07))
    return recognizer


def test_segments_of_a_video_of_known_content(colour_model, colour_video):
    timeline = colour_model.timeline(colour_video, LABELS, threshold=0.5)
    windows = list(timeline)
    assert len(windows) == 37  # 36 + 7 * 16/30 <= 39.97 s, the last frame
    # a window's label is the colour most of its samples show (black shows nothing)
    for w in windows:
        counts = {c: [colour_of(i) for i in w.frames].count(c) for c in LABELS}
        best = max(counts.values())
        assert w.label == (max(LABELS, key=counts.get) if best else None), w.index
    got = [(round(s.start, 4), round(s.end, 4), s.label, s.windows)
           for s in segments(windows, timeline.end_time)]
    # cut halfway between the centres (start + 2.133 s) of the last and the next window
    assert got == [(0.0, 10.6333, "red", 9), (10.6333, 21.6333, "green", 11),
                   (21.6333, 28.6333, None, 7), (28.6333, 40.0, "blue", 10)]
    no_action = segments(windows)[2]
    assert no_action.probability == pytest.approx(1 / 3, abs=1e-6)  # uniform over 3 labels


def test_threshold_turns_weak_windows_into_no_action(colour_model, colour_video):
    # window 19 sees 2 green frames of 8 (p = 0.947), window 27 2 blue ones; 0.96 drops them
    windows = list(colour_model.timeline(colour_video, LABELS, threshold=0.96))
    assert windows[19].label is None and windows[27].label is None
    assert 0.94 < windows[19].score < 0.96 and windows[18].label == "green"
    got = [(round(s.start, 4), s.label) for s in segments(windows)]
    assert got == [(0.0, "red"), (10.6333, "green"), (20.6333, None), (29.6333, "blue")]


def test_smoothing_averages_the_last_k_windows(colour_model, colour_video):
    plain = list(colour_model.timeline(colour_video, LABELS))
    smooth = list(colour_model.timeline(colour_video, LABELS, smooth=3, top_k=2))
    for k, w in enumerate(smooth):
        expected = torch.stack([p.probabilities for p in plain[max(0, k - 2): k + 1]]).mean(0)
        assert torch.allclose(w.probabilities, plain[k].probabilities)
        assert torch.allclose(w.scores, expected, atol=1e-6)
        assert w.label == LABELS[int(expected.argmax())] and w.score == pytest.approx(float(expected.max()))
        assert len(w.top) == 2 and w.top[0][0] == w.label
    # the change to green shows later: window 9 still has two red windows behind it
    assert plain[9].label == "green" and smooth[9].label == "red" and smooth[10].label == "green"


def test_scorer_and_segment_builder_by_hand():
    scorer = WindowScorer(["a", "b"], threshold=0.6, smooth=2)
    logits = [torch.tensor([2.0, 0.0]), torch.tensor([0.0, 2.0]), torch.tensor([0.0, 0.0])]
    p = [lg.softmax(-1) for lg in logits]
    results = [scorer(lg) for lg in logits]
    assert torch.allclose(results[1][1], (p[0] + p[1]) / 2)  # 0.5, 0.5: a tie
    assert results[0][3] == "a" and results[1][3] is None  # 0.5 is below 0.6: no action
    assert torch.allclose(results[2][1], (p[1] + p[2]) / 2)  # the first window left the average
    assert results[2][3] == "b" and results[2][2][0][1] == pytest.approx((float(p[1][1]) + 0.5) / 2)

    def window(k, label, score):
        return Window(k, 2.0 * k, 2.0 * k + 4, [], [], None, None, None, [], label, score)

    builder = SegmentBuilder()
    closed = [builder.add(window(k, lab, s)) for k, (lab, s) in
              enumerate([("a", 0.9), ("a", 0.7), (None, 0.4), ("b", 0.8)])]
    assert closed[:2] == [None, None] and closed[2].label == "a"
    a, none, b = builder.finish(end_time=7.5)
    assert (a.start, a.end, a.probability, a.windows) == (0.0, 5.0, pytest.approx(0.8), 2)
    assert (none.start, none.end, none.label) == (5.0, 7.0, None)
    assert (b.start, b.end) == (7.0, 7.5)  # the stream ended before the last window's end
    with pytest.raises(ValueError, match="smooth"):
        WindowScorer(["a"], smooth=0)
    with pytest.raises(ValueError, match="threshold"):
        WindowScorer(["a"], threshold=1.5)


# -- streams ---------------------------------------------------------------------------------
def test_pipe_gives_the_file_windows_as_frames_arrive(recognizer, tmp_path):
    path = write_video(tmp_path / "v.ts", 450, 32, 32, options={"crf": "0", "g": "30"})
    from_file = list(recognizer.timeline(path, LABELS, stride=1.0))
    data = open(path, "rb").read()
    read_end, write_end = os.pipe()
    first_window = threading.Event()
    state = {}

    def feed():
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(data[: len(data) * 2 // 3])
            pipe.flush()
            # the rest only once a window came out (or after a minute, failing the test)
            state["early"] = first_window.wait(timeout=60)
            pipe.write(data[len(data) * 2 // 3:])

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        timeline = recognizer.timeline(f"pipe:{read_end}", LABELS, stride=1.0)
        assert timeline.stream.live
        from_pipe = []
        for w in timeline:
            from_pipe.append(w)
            first_window.set()
    finally:
        first_window.set()
        writer.join()
        os.close(read_end)
    assert state["early"], "no window came out before the stream ended"
    assert [w.frames for w in from_pipe] == [w.frames for w in from_file]
    for a, b in zip(from_pipe, from_file):
        assert torch.allclose(a.logits, b.logits, atol=1e-5)


class BreakingReader(io.RawIOBase):
    """A non-seekable byte stream that fails with a read error after `limit` bytes."""

    def __init__(self, data: bytes, limit: int):
        self.data, self.limit, self.pos = data, limit, 0

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.pos >= self.limit:
            raise ConnectionResetError("connection reset by peer")
        n = min(len(buffer), self.limit - self.pos, 4096)
        buffer[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n


def test_broken_stream_keeps_the_windows_so_far(recognizer, tmp_path):
    path = write_video(tmp_path / "v.ts", 600, 32, 32, options={"crf": "0", "g": "30"})
    data = open(path, "rb").read()
    timeline = recognizer.timeline(BreakingReader(data, len(data) // 2), LABELS)
    windows = list(timeline)
    assert 5 <= len(windows) < 16  # about 10 s of 20 s were read
    assert "connection reset" in timeline.stream.error
    full = list(recognizer.timeline(path, LABELS))
    assert [w.frames for w in windows] == [w.frames for w in full[: len(windows)]]


def test_corrupt_packets_are_skipped_and_counted(recognizer, tmp_path):
    path = write_video(tmp_path / "v.mkv", 300, 32, 32, codec="mjpeg", pix_fmt="yuvj420p",
                       options={"qscale": "2"})
    import av

    with av.open(str(path)) as c:
        packets = [(p.pos, p.size) for p in c.demux(video=0) if p.size]
    data = bytearray(open(path, "rb").read())
    for i in (100, 101, 150):  # frames 100, 101 and 150 get garbage in the middle
        pos, size = packets[i]
        data[pos + size // 4: pos + size // 2] = b"\xff" * (size // 2 - size // 4)
    bad = tmp_path / "corrupt.mkv"
    bad.write_bytes(bytes(data))
    timeline = recognizer.timeline(bad, LABELS)
    seen = frame_indices_seen(timeline)
    windows = list(timeline)
    assert timeline.stream.corrupt_packets == 3 and timeline.stream.error is None
    assert len(windows) == 7 and timeline.end_time == pytest.approx(10.0, abs=0.01)
    # a sample on a lost frame takes the one shown instead (the frame before it); the
    # frames after a loss keep their own times (from their timestamps)
    assert [seen[i] for i in windows[5].frames] == [149] + [150 + 16 * j for j in range(1, 8)]
    assert windows[5].frame_times == pytest.approx([149 / 30] + [5 + 16 * j / 30 for j in range(1, 8)],
                                                   abs=0.0006)  # milliseconds in MKV
    assert [seen[i] for i in windows[3].frames] == [90 + 16 * j for j in range(8)]


def test_unreadable_sources_raise_naming_them(recognizer, tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("not a video\n" * 100)
    for name, words in [("missing.mp4", "file not found"), ("empty.mp4", "empty file"),
                        ("notes.mp4", "cannot open")]:
        with pytest.raises(VideoDecodeError, match=words) as err:
            recognizer.timeline(tmp_path / name, LABELS)
        assert str(tmp_path / name) in str(err.value)
    with pytest.raises(ValueError, match="stride"):
        recognizer.timeline(tmp_path / "missing.mp4", LABELS, stride=0)


def test_memory_holds_only_the_frames_the_windows_need(recognizer, tmp_path):
    path = write_video(tmp_path / "long.mp4", 1800, 32, 32, options={"crf": "0", "g": "60"})
    timeline = recognizer.timeline(path, LABELS, batch_size=4)
    held = []
    timeline.on_frame = lambda item: held.append(timeline.held_frames)
    windows = list(timeline)
    assert len(windows) == 57 and timeline.stream.decoded == 1800  # each frame decoded once
    # open windows (5 at stride 1 s over 4.27 s) and 4 waiting for the batch, 8 frames each
    assert max(held) <= (5 + 4) * 8
    assert max(held[len(held) // 2:]) <= max(held[: len(held) // 2])  # no growth with length


def test_demo_world_action_video_has_known_cuts(tmp_path):
    from froster.demo.long_video import write_action_video
    from froster.data.stream import FrameStream

    parts = write_action_video(tmp_path / "a.mp4", ["Moving left", "Growing", "Shaking"],
                               seconds=2.0, fps=8)
    assert parts == [(0.0, 2.0, "Moving left"), (2.0, 4.0, "Growing"), (4.0, 6.0, "Shaking")]
    stream = FrameStream(tmp_path / "a.mp4")
    frames = [stream.to_rgb(item.frame).astype(int) for item in stream]
    assert len(frames) == 48 and float(stream.end_time) == 6.0
    within = np.abs(frames[14] - frames[15]).mean()  # one scene, 1/15 of its motion apart
    across = np.abs(frames[15] - frames[16]).mean()  # a new scene (shape, colours, place)
    assert across > 3 * within


def test_a_first_ctrl_c_on_a_pipe_ends_the_data_without_raising_anywhere():
    """Ctrl-C while a pipe is read only sets a flag (a KeyboardInterrupt raised inside PyAV's
    read callback could be swallowed there); the next read ends the data; a second Ctrl-C
    raises; the usual handler comes back after."""
    import signal

    from froster.data.pipe import PipeReader

    # as in a terminal (a script's background job starts with SIGINT ignored: see below)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, b"x" * 10)
        reader = PipeReader(read_fd)
        buffer = bytearray(4)
        assert reader.readinto(buffer) == 4
        signal.raise_signal(signal.SIGINT)  # would raise KeyboardInterrupt under the default
        assert reader.interrupted and reader.readinto(buffer) == 0 and reader.ended
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
        reader.restore_handler()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
        os.close(write_fd)
        os.close(read_fd)


def test_a_pipe_leaves_an_ignored_ctrl_c_alone_and_restores_it_when_it_cannot_open(monkeypatch):
    """Where Ctrl-C is ignored (a background job), the reader installs nothing; where the
    pipe holds no video, opening fails and the usual handler is back (a handler left on a
    dead reader would swallow the program's next Ctrl-C)."""
    import signal

    from froster.data import pipe, stream

    pipes = []

    class Reader(pipe.PipeReader):  # "-" reads a pipe of this test's instead of stdin
        def __init__(self, fd=0):
            pipes.append(os.pipe())
            os.write(pipes[-1][1], b"not a video at all " * 100)
            os.close(pipes[-1][1])
            super().__init__(pipes[-1][0])

    monkeypatch.setattr(pipe, "PipeReader", Reader)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        Reader()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with pytest.raises(stream.VideoDecodeError, match="stdin: cannot open"):
            stream.FrameStream("-")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
        for read_fd, _ in pipes:
            os.close(read_fd)
