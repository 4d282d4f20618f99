"""``sampling: reference``: the frames of the reference's PyAV decoder, on real and generated
files, against the rule as method.md states it, restated here with plain PyAV and torch."""

import math
import random
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from _shared import SHARED, require
import torch

from froster.data import VideoDataset, VideoItem, open_video
from froster.data.decode import VideoDecodeError
from froster.data.sampling import reference
from froster.data.sampling.uniform import test_view_indices
from froster.data.views import ViewSpec
from froster.data.sampling.timestamps import decode_window, decode_windows
from froster.data.synthetic import read_frame_index, write_video

VIDEOS = SHARED / "videos"

CODECS = {
    "mp4": dict(codec="libx264", options={"crf": "0"}),
    "avi": dict(codec="mpeg4", options={"qscale": "2"}),
    "mkv": dict(codec="ffv1", pix_fmt="bgr0"),
    "webm": dict(codec="libvpx-vp9", options={"lossless": "1", "deadline": "realtime"}),
    "mp4-one-keyframe": dict(codec="libx264", options={"crf": "0", "sc_threshold": "0"}),
}


# -- method.md's rule, restated -------------------------------------------------------------
class Decoded:
    """A file decoded from the start with plain PyAV: header facts and (pts, frame) per
    frame in the decoder's output order; `rule` converts the frames it takes to RGB."""

    def __init__(self, path):
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            self.fps = float(stream.average_rate)
            self.count, self.duration = stream.frames, stream.duration
            self.frames = [(f.pts, f) for f in container.decode(video=0)]

    def delta_a(self, T=8, r=16, F=30):
        return max(self.count - max(1.0, math.ceil(r * (T - 1) / F * self.fps)), 0)


def rule(d: Decoded, T=8, r=16, F=30, views=3, start=None, path=None):
    """The clips (lists of RGB frames) of method.md's "Frame sampling as the reference runs
    it": every test view, or one training clip at frame ``start``."""
    S = max(1.0, r * T / F * d.fps)
    clips = []
    if (path or ("A" if d.duration is not None else "B")) == "A":
        W = max(1.0, math.ceil(r * (T - 1) / F * d.fps))
        delta = max(d.count - W, 0)
        starts = [start] if start is not None else [delta * i / views for i in range(views)]
        tb = d.duration / d.count
        for s in starts:
            start_pts, end_pts = int(s * tb), int((s + W - 1) * tb)
            window = {}
            # a backward seek to a keyframe before start_pts gives these frames from there on
            for pts, image in d.frames:
                if pts < start_pts:
                    continue
                window[pts] = image
                if pts > end_pts:
                    break
            frames = [window[p] for p in sorted(window)]
            index = torch.linspace(0, S - 1, T).clamp(0, len(frames) - 1).long().tolist()
            clips.append([frames[i].to_rgb().to_ndarray() for i in index])
    else:
        kept = {pts: image for pts, image in d.frames if pts >= 0}
        frames = [kept[p] for p in sorted(kept)]
        delta = max(len(frames) - S, 0)
        if start is not None:
            starts = [start]
        elif views == 1:
            starts = [math.floor(delta / 2)]
        else:
            starts = [i * math.floor(delta / (views - 1)) for i in range(views)]
        for s in starts:
            index = torch.linspace(s, s + S - 1, T).clamp(0, len(frames) - 1).long().tolist()
            clips.append([frames[i].to_rgb().to_ndarray() for i in index])
    return clips


def indices(frames):
    return [read_frame_index(f) for f in frames]


def rule_indices(d: Decoded, **kwargs):
    return [indices(clip) for clip in rule(d, **kwargs)]


def ours(path, spec=ViewSpec(), start=None, mode="test"):
    with open_video(path, apply_rotation=False) as video:
        if mode == "test":
            return reference.test_views(video, spec)
        return reference.train_clip(video, spec, random.Random(0), start)


# -- the example of method.md ----------------------------------------------------------------
@pytest.fixture(scope="module")
def clip300(tmp_path_factory):
    """300 frames at 30 fps, MP4, each frame's colour says its number."""
    return write_video(tmp_path_factory.mktemp("v") / "v300.mp4", 300, width=40, height=32,
                       options={"crf": "0"})


def test_method_md_example_through_the_dataset(clip300):
    dataset = VideoDataset([VideoItem(clip300, 0, 1)], mode="test", size=32)  # the defaults
    sample = dataset[0]
    views = [indices(v) for v in sample["video"]]
    assert views[2] == [126, 144, 162, 180, 198, 216, 234, 237]  # path A, view 3 of 3
    assert views[0] == [0, 18, 36, 54, 72, 90, 108, 112]  # the window ends at frame 112
    assert views == rule_indices(Decoded(clip300))
    assert sample["fallback"] == []
    # the uniform option keeps the even sampling: [172, 190, ..., 299] for view 3
    uniform = VideoDataset([VideoItem(clip300, 0, 1)], mode="test", size=32,
                           view=ViewSpec(sampling="uniform"))
    assert [indices(v) for v in uniform[0]["video"]] == test_view_indices(300, 30)
    assert test_view_indices(300, 30)[2] == [172, 190, 208, 226, 244, 262, 280, 299]


def test_one_view_starts_at_the_beginning_on_path_a(clip300):
    # delta * 0 / 1: the reference's single view is the first window, not the centre
    one = ours(clip300, ViewSpec(num_views=1))
    assert indices(one.frames) == [0, 18, 36, 54, 72, 90, 108, 112]
    assert indices(one.frames) == rule_indices(Decoded(clip300), views=1)[0]


# -- real clips ------------------------------------------------------------------------------
REAL = ["apply_eye_makeup.avi", "arm_wrestling.mp4", "playing_basketball.mp4",
        "playing_cricket.gif"]  # AVI 25 fps; MP4 28 fps, keyframes mid-clip; 29.97 fps; GIF


@pytest.mark.parametrize("name", REAL)
def test_real_clips_give_the_reference_frames(name):
    path = VIDEOS / name
    require(path, "a shared video")
    d = Decoded(path)
    assert d.duration is not None  # path A: MP4, AVI and this GIF report a duration
    expected = rule(d)
    got = ours(path)
    assert got.fallback is None
    np.testing.assert_array_equal(got.frames.numpy(), np.stack([f for clip in expected for f in clip]))
    delta = d.delta_a()
    for start in (delta * 0.37, float(delta)):  # training clips at fixed starts (0: view 1)
        clip = ours(path, start=start, mode="train")
        np.testing.assert_array_equal(clip.frames.numpy(), np.stack(rule(d, start=start)[0]))


def test_avi_timestamps_out_of_order_are_sorted_as_the_reference_does():
    path = VIDEOS / "apply_eye_makeup.avi"
    require(path, "a shared video")
    d = Decoded(path)
    order = [pts for pts, _ in d.frames]
    assert order[:4] == [1, 2, 4, 3]  # PyAV's pts for this packed-B-frame AVI
    # so the reference's windows (and ours) differ from frames counted in decoding order
    by_position = [frame.to_ndarray(format="rgb24") for _, frame in d.frames[:40]]
    by_pts = [frame.to_ndarray(format="rgb24") for _, frame in sorted(d.frames[:40], key=lambda x: x[0])]
    assert any(not np.array_equal(a, b) for a, b in zip(by_position, by_pts))
    first = rule(d)[0]
    np.testing.assert_array_equal(ours(path).frames[:8].numpy(), np.stack(first))


# -- generated files: every container, both branches ------------------------------------------
@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("containers")
    return {name: write_video(root / f"{name}.{name.split('-')[0]}", 200, width=32, height=24,
                              fps=30, **kw)
            for name, kw in CODECS.items()}


@pytest.mark.parametrize("ext", sorted(CODECS))
def test_generated_files_through_the_dataset(generated, ext):
    path = generated[ext]
    d = Decoded(path)
    assert (d.duration is not None) == (ext not in ("mkv", "webm"))  # path A or path B
    spec = dict(view=ViewSpec(num_frames=8, sampling_rate=16, target_fps=30, num_views=3), size=16,
                short_side_range=(16, 18))
    test = VideoDataset([VideoItem(path, 0, 1)], mode="test", **spec)[0]
    assert [indices(v) for v in test["video"]] == rule_indices(d) and test["fallback"] == []
    train = VideoDataset([VideoItem(path, 0, 1)], mode="train", **spec)
    delta = d.delta_a() if d.duration is not None else max(200 - 128, 0)
    for start in (0.0, 11.5, delta * 0.8, float(delta)):
        sampled = train.load_train_clip(train.items[0], random.Random(0), start=start)
        assert indices(sampled.frames) == rule_indices(d, start=start)[0], start
    if ext in ("mkv", "webm"):  # path B: the offset rule over all frames, as the uniform option
        assert [indices(v) for v in test["video"]] == test_view_indices(200, 30)


@pytest.mark.parametrize("name, passes", [("mp4-one-keyframe", 1), ("mp4", 3)])
def test_views_whose_seeks_land_together_share_one_decoding_pass(generated, name, passes):
    with open_video(generated[name], apply_rotation=False) as video:
        calls = []
        decode_from = video.decode_from
        video.decode_from = lambda seek: calls.append(seek) or decode_from(seek)
        got = reference.test_views(video, ViewSpec())
    # a keyframe at 0 only: one pass; keyframes every 25 frames (x264's scene cuts on these
    # frames): the views' seeks land on different keyframes, one pass each
    assert len(calls) == passes
    assert indices(got.frames) == [i for clip in rule_indices(Decoded(generated[name])) for i in clip]


def test_the_training_start_is_drawn_uniformly(clip300):
    dataset = VideoDataset([VideoItem(clip300, 0, 1)], mode="train", size=32, seed=3)
    firsts = set()
    for epoch in range(12):
        dataset.set_epoch(epoch)
        clip = indices(dataset[0]["video"])
        rng = random.Random(f"3:{epoch}:0")  # the dataset's seeding; the start is drawn first
        start = rng.uniform(0, 300 - 112)
        assert clip == rule_indices(Decoded(clip300), start=start)[0]
        assert clip[-1] - clip[0] in (111, 112)  # a window of 112 frames, not a 128-frame span
        firsts.add(clip[0])
    assert len(firsts) > 6


def test_float32_linspace_as_the_reference(tmp_path):
    # 27 fps, 32 frames x 8: float32 linspace gives 110 at sample 15 where float64 gives 111
    path = write_video(tmp_path / "v27.mp4", 260, width=32, height=24, fps=27, options={"crf": "0"})
    spec = ViewSpec(num_frames=32, sampling_rate=8, num_views=1)
    got = indices(ours(path, spec).frames)
    span = 8 * 32 / 30 * 27
    assert got[15] == 110 and int(15 * (span - 1) / 31) == 111
    assert got == rule_indices(Decoded(path), T=32, r=8, views=1)[0]


def test_small_timestamp_offsets_stay_as_the_reference_has_them(tmp_path):
    # the first frame at pts 2 (an MP4 B-frame delay): windows measured from pts 0
    path = write_video(tmp_path / "late2.mp4", 200, width=32, height=24, options={"crf": "0"},
                       pts=[2 + i for i in range(200)], time_base=Fraction(1, 30))
    d = Decoded(path)
    assert d.frames[0][0] > 0
    got = ours(path)
    assert got.fallback is None
    assert indices(got.frames) == [i for clip in rule_indices(d) for i in clip]
    assert indices(got.frames)[:8] == [0, 18, 36, 54, 72, 90, 108, 110]  # 2 frames short


# -- where the reference fails or misbehaves ---------------------------------------------------
def fallback_case(tmp_path, name):
    kw = dict(width=32, height=24, options={"crf": "0"})
    if name == "no frame count":  # fragmented MP4: a duration but frames == 0
        return write_video(tmp_path / "frag.mp4", 200, container_options={
            "movflags": "frag_keyframe+empty_moov"}, **kw), "no frame count"
    if name == "late start":  # timestamps from 5 s (an edit list)
        return write_video(tmp_path / "late.mp4", 200, pts=[150 + i for i in range(200)],
                           time_base=Fraction(1, 30), **kw), "timestamps start"
    if name == "gap":  # 100 frames, a 60 s pause, 100 frames: windows land in the gap
        return write_video(tmp_path / "gap.mp4", 200, pts=list(range(100)) +
                           list(range(2000, 2100)), time_base=Fraction(1, 30), **kw), "holds 0 frames"
    raise KeyError(name)


@pytest.mark.parametrize("case, train_start", [("no frame count", 3.0), ("late start", 3.0),
                                               ("gap", 63.0)])
def test_fallback_to_path_b_says_why(tmp_path, case, train_start):
    path, words = fallback_case(tmp_path, case)
    d = Decoded(path)
    got = ours(path)
    assert got.fallback and words in got.fallback
    assert indices(got.frames) == [i for clip in rule_indices(d, path="B") for i in clip]
    train = ours(path, start=train_start, mode="train")
    assert train.fallback and words in train.fallback
    assert indices(train.frames) == rule_indices(d, path="B", start=train_start)[0]
    if case == "gap":  # a training window outside the gap follows the reference
        assert ours(path, start=3.0, mode="train").fallback is None


def test_truncated_file_is_an_error_not_a_fallback(tmp_path):
    fast = write_video(tmp_path / "fast.mp4", 300, width=64, height=48, options={"crf": "0"},
                       container_options={"movflags": "faststart"})
    cut = tmp_path / "cut_fast.mp4"
    cut.write_bytes(Path(fast).read_bytes()[: Path(fast).stat().st_size // 2])
    with pytest.raises(VideoDecodeError, match="cut_fast.mp4: truncated or corrupt"):
        ours(cut)


def test_fallback_video_is_counted_in_the_dataset_and_loader(tmp_path):
    from froster.data import FailureLog, build_loader

    good = write_video(tmp_path / "good.mp4", 150, width=32, height=24, options={"crf": "0"})
    path, _ = fallback_case(tmp_path, "no frame count")
    items = [VideoItem(good, 0, 1), VideoItem(path, 1, 2)]
    for mode in ("train", "test"):
        dataset = VideoDataset(items, mode=mode, size=16, short_side_range=(16, 18),
                               view=ViewSpec(num_views=2))
        log = FailureLog()
        for batch in build_loader(dataset, batch_size=2, num_workers=0, drop_last=False):
            log.add(batch)
        assert log.fallback_paths == [path] and not log.failures
        report = log.report(total=2 if mode == "test" else None)
        assert "1 video sampled with a fallback:" in report and f"{path}: " in report


# -- the window decoder itself -----------------------------------------------------------------
class FakeFrame:
    def __init__(self, pts, tag):
        self.pts, self.tag = pts, tag


class FakeVideo:
    """decode_from() yields frames with the given pts; a seek lands at `landing` if set."""

    def __init__(self, pts, landing=None):
        self.pts, self.landing, self.calls = pts, landing, []
        self.first_pts, self.error, self.path = pts[0], None, "fake.mp4"

    def seek_landing(self, seek):
        return self.landing if self.landing is not None else max(0, min(seek, len(self.pts) - 1)) // 10

    def decode_from(self, seek):
        self.calls.append(seek)
        frames = [FakeFrame(p, i) for i, p in enumerate(self.pts)]
        if seek is not None and self.landing is not None:
            return iter(frames[self.landing:])
        if seek is not None:  # a good seek: the last keyframe (every 10th frame) at or before
            return iter(frames[max(0, min(seek, len(frames) - 1)) // 10 * 10:])
        return iter(frames)


def tags(window, positions):
    return [window.frame_at(p).tag for p in positions]


def test_window_keeps_the_first_frame_after_the_end_and_orders_by_pts():
    video = FakeVideo([0, 1, 2, 4, 3, 5, 6, 8, 7, 9, 10, 11, 12])
    window = decode_window(video, 2, 7, set(range(10)))
    assert window.pts == [2, 3, 4, 5, 6, 8]  # 7 comes after 8 (> end): never seen
    assert window.inside == 5 and tags(window, range(6)) == [2, 4, 3, 5, 6, 7]
    assert video.calls == [0]  # max(2 - 1024, 0)


def test_window_repeated_pts_the_later_frame_wins():
    video = FakeVideo([0, 1, 2, 2, 3, 4])
    window = decode_window(video, 0, 3, {0, 1, 2, 3, 4})
    assert window.pts == [0, 1, 2, 3, 4] and window.frame_at(2).tag == 3


def test_window_reordered_too_far_is_decoded_again_keeping_every_frame():
    pts = [0, 1, 2, 3, 7, 8, 9, 4, 5, 6, 10, 11]
    kept_all = decode_window(FakeVideo(pts), 0, 10, set(range(12)), depth=None)
    video = FakeVideo(pts)
    window = decode_window(video, 0, 10, set(range(12)), depth=2)
    assert window.pts == kept_all.pts == list(range(12))
    assert tags(window, range(12)) == tags(kept_all, range(12))
    assert video.calls == [0, 0]  # the second pass, same seek


def test_window_seek_that_lands_late_decodes_from_the_start():
    pts = [512 * i for i in range(100)]
    video = FakeVideo(pts, landing=60)  # a broken index: the seek lands at frame 60
    window = decode_window(video, 512 * 30, 512 * 50, set(range(30)))
    assert video.calls == [512 * 30 - 1024, None]
    assert window.restarted and "landed at pts 30720" in window.restarted
    assert window.pts == pts[30:52]


def test_shared_pass_gives_each_window_its_own_frames():
    pts = [0, 1, 2, 4, 3, 5, 6, 8, 7, 9, 10, 11, 12, 13, 14]
    bounds = [(2, 7), (3, 9), (5, 12)]  # seeks to 0: all land on the keyframe at 0
    video = FakeVideo(pts)
    shared = decode_windows(video, bounds, set(range(12)))
    assert video.calls == [0]
    alone = [decode_window(FakeVideo(pts), s, e, set(range(12))) for s, e in bounds]
    for a, b in zip(shared, alone):
        assert a.pts == b.pts and a.inside == b.inside
        assert tags(a, range(len(a.pts))) == tags(b, range(len(b.pts)))


def test_window_memory_is_bounded_but_the_result_is_not_changed():
    avi = VIDEOS / "apply_eye_makeup.avi"
    require(avi, "a shared video")
    with open_video(avi, apply_rotation=False) as video:
        every = decode_window(video, 10, 120, set(), depth=None)
        last = len(every.pts) - 1
        few = decode_window(video, 10, 120, {0, 18, 36}, depth=1)  # pts [.., 4, 3, ..]: depth 1
        redone = decode_window(video, 10, 120, {0, 18, 36}, depth=0)  # out of order: decoded again
        assert few.pts == redone.pts == every.pts
        assert len(few.frames) <= 5 and len(redone.frames) == len(every.pts)
        for window in (few, redone):
            for p in (0, 18, 36, last):
                np.testing.assert_array_equal(video.to_rgb([window.frame_at(p)]).numpy(),
                                              video.to_rgb([every.frame_at(p)]).numpy())
