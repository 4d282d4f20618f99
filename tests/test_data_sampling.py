"""Clip sampling (PySlowFast) and transforms, checked on known frames and pixels."""

import math
import random

import pytest
import torch

from froster.data import VideoDataset, VideoItem
from froster.data.views import ViewSpec
from froster.data.sampling.uniform import clip_size, test_view_indices, train_clip_indices
from froster.data.synthetic import read_frame_index, write_video
from froster.data.transforms import normalize, short_side_resize, test_transform, train_transform


def reference(start, size, n, total):
    """PySlowFast: torch.linspace(start, start + size - 1, n).clamp(0, total - 1).long()."""
    return torch.linspace(start, start + size - 1, n).clamp(0, total - 1).long().tolist()


# -- sampling ----------------------------------------------------------------------------
@pytest.mark.parametrize("fps, size", [(30, 128), (60, 256), (15, 64), (25, 128 * 25 / 30)])
def test_clip_size(fps, size):
    assert clip_size(fps) == pytest.approx(size)


def test_test_views_match_the_reference():
    # 300 frames at 30 fps: clip of 128, delta 172, starts 0, 86, 172
    views = test_view_indices(300, 30)
    assert views == [reference(s, 128, 8, 300) for s in (0, 86, 172)]
    assert views[0] == [0, 18, 36, 54, 72, 90, 108, 127] and views[-1][-1] == 299
    assert test_view_indices(300, 30, num_views=1) == [reference(86, 128, 8, 300)]  # centred
    for total, fps, views_n in [(250, 29.97, 3), (1000, 60, 5), (90, 24, 2)]:
        size = clip_size(fps)
        delta = max(total - size, 0)
        expected = [reference(i * math.floor(delta / (views_n - 1)), size, 8, total) for i in range(views_n)]
        assert test_view_indices(total, fps, num_views=views_n) == expected


def test_short_video_repeats_frames():
    views = test_view_indices(40, 30)  # shorter than one 128-frame clip
    assert views[0] == views[1] == views[2] == [0, 18, 36, 39, 39, 39, 39, 39]
    assert train_clip_indices(1, 30) == [0] * 8


def test_train_clip_is_random_inside_the_video():
    rng = random.Random(0)
    starts = set()
    for _ in range(200):
        idx = train_clip_indices(300, 30, rng=rng)
        assert len(idx) == 8 and 0 <= idx[0] <= 172 and idx[-1] <= 299
        assert all(b - a in (18, 19) for a, b in zip(idx, idx[1:]))  # 127 / 7 apart
        starts.add(idx[0])
    assert len(starts) > 100
    again = random.Random(0)
    assert train_clip_indices(300, 30, rng=again) == train_clip_indices(300, 30, rng=random.Random(0))


# -- which frames the datasets really return -----------------------------------------------
@pytest.fixture(scope="module")
def video60(tmp_path_factory):
    # 200 frames at 60 fps, each frame's colour says its index
    path = tmp_path_factory.mktemp("v") / "v60.mp4"
    return str(write_video(path, 200, width=40, height=32, fps=60, options={"crf": "0"}))


def frame_indices(video):
    return [read_frame_index(f) for f in video]


def test_test_dataset_returns_the_views(video60):
    # 4 frames x stride 8 at 30 fps = 64 source frames at 60 fps; starts 0, 68, 136
    view = ViewSpec(num_frames=4, sampling_rate=8, target_fps=30, num_views=3, num_crops=3,
                    sampling="uniform")
    ds = VideoDataset([VideoItem(video60, 3, 1)], mode="test", view=view, size=16,
                      short_side_range=(16, 20))
    sample = ds[0]
    assert sample["video"].shape == (9, 4, 3, 16, 16) and sample["video"].dtype == torch.uint8
    assert sample["label"] == 3 and sample["failed"] == []
    got = [frame_indices(v) for v in sample["video"]]
    expected = [[0, 21, 42, 63], [68, 89, 110, 131], [136, 157, 178, 199]]
    assert got == [view for view in expected for _ in range(3)]  # view-major, 3 crops each
    assert expected == test_view_indices(200, 60, 4, 8, 30, 3)


@pytest.mark.parametrize("stride, target_fps", [(2, 30), (8, 30), (4, 15)])
def test_train_dataset_returns_the_clip(video60, stride, target_fps):
    view = ViewSpec(num_frames=4, sampling_rate=stride, target_fps=target_fps, sampling="uniform")
    ds = VideoDataset([VideoItem(video60, 0, 1)], mode="train", view=view, size=16,
                      short_side_range=(16, 24), seed=5)
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        sample = ds[0]
        assert sample["video"].shape == (4, 3, 16, 16)
        rng = random.Random(f"5:{epoch}:0")  # the dataset's documented seeding
        expected = train_clip_indices(200, 60, 4, stride, target_fps, rng)
        assert frame_indices(sample["video"]) == expected
        span = stride * 4 / target_fps * 60
        assert expected[-1] - expected[0] == math.floor(expected[0] + span - 1 + 1e-9) - expected[0]


# -- transforms on known pixels ------------------------------------------------------------
def ramp(t=2, h=32, w=40):
    """Frames whose pixel value is its column number (T, H, W, 3)."""
    return torch.arange(w, dtype=torch.uint8).view(1, 1, w, 1).expand(t, h, w, 3).contiguous()


def test_train_crop_and_flip_on_known_pixels():
    seen = set()
    for seed in range(40):
        out = train_transform(ramp(), random.Random(seed), size=32, short_side_range=(32, 32))
        assert out.shape == (2, 3, 32, 32) and out.dtype == torch.uint8
        row = out[0, 0, 0].tolist()
        flipped = row[0] > row[-1]
        x0 = row[-1] if flipped else row[0]
        assert 0 <= x0 < 8  # the reference draws in [0, 40 - 32): 8 is never drawn
        expected = list(range(x0, x0 + 32))
        assert row == (expected[::-1] if flipped else expected)
        assert (out == out[:1, :1, :1]).all(dim=2).all()  # every row and channel the same
        seen.add((x0, flipped))
    assert {f for _, f in seen} == {True, False} and len({x for x, _ in seen}) > 4
    no_flip = [train_transform(ramp(), random.Random(s), 32, (32, 32), flip=False)[0, 0, 0, 0] <
               train_transform(ramp(), random.Random(s), 32, (32, 32), flip=False)[0, 0, 0, -1]
               for s in range(10)]
    assert all(no_flip)


def test_train_crop_offset_bounds_as_the_reference():
    # numpy's randint(0, side - size) in the reference: 0 .. side - size - 1, never side - size
    xs, ys = set(), set()
    tall = ramp(h=32, w=40).transpose(1, 2).contiguous()  # (2, 40, 32, 3): value = row
    for seed in range(300):
        out = train_transform(ramp(h=32, w=40), random.Random(seed), 32, (32, 32), flip=False)
        xs.add(out[0, 0, 0, 0].item())
        out = train_transform(tall, random.Random(seed), 32, (32, 32), flip=False)
        ys.add(out[0, 0, 0, 0].item())
    assert xs == ys == set(range(8))  # reaches 0 and side - size - 1
    square = train_transform(ramp(h=32, w=32), random.Random(0), 32, (32, 32), flip=False)
    assert square[0, 0, 0].tolist() == list(range(32))  # side == size: offset 0


def test_short_side_already_at_size_is_not_resized():
    # floor(53 / 19 * 19) == 52: the formula would drop a column; the reference skips the resize
    video = ramp(h=19, w=53).permute(0, 3, 1, 2)
    assert short_side_resize(video, 19) is video
    assert short_side_resize(video, 20).shape[-2:] == (20, math.floor(53 / 19 * 20))


def test_uint8_resize_is_within_one_grey_level_of_the_reference_float_resize(shared_dir):
    # the reference resizes normalised floats; froster resizes uint8 and normalises after
    import torch.nn.functional as F

    from froster.data import decode_frames

    mean, std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    frames = decode_frames(shared_dir / "videos" / "yoga.mp4", [0, 150, 299]).permute(0, 3, 1, 2)
    for short in (224, 250):
        size = (short, math.floor(frames.shape[-1] / frames.shape[-2] * short))
        float_first = F.interpolate((frames.float() / 255 - m) / s, size=size, mode="bilinear",
                                    align_corners=False)
        ours = normalize(short_side_resize(frames, short), mean, std)
        grey = ((float_first - ours) * s * 255).abs()
        assert grey.max() < 1.01 and 0.1 < grey.mean() < 0.35


def test_train_transform_takes_a_torch_generator():
    a = train_transform(ramp(), torch.Generator().manual_seed(3), 32, (32, 48))
    b = train_transform(ramp(), torch.Generator().manual_seed(3), 32, (32, 48))
    assert a.shape == (2, 3, 32, 32) and torch.equal(a, b)


def test_train_scale_is_random_in_range():
    shapes = set()
    for seed in range(30):
        rng = random.Random(seed)
        short = round(rng.uniform(32, 48))
        resized = short_side_resize(ramp().permute(0, 3, 1, 2), short)
        assert resized.shape[-2:] == (short, math.floor(40 / 32 * short))
        shapes.add(short)
        assert train_transform(ramp(), random.Random(seed), 32, (32, 48)).shape == (2, 3, 32, 32)
    assert min(shapes) < 36 and max(shapes) > 44


def test_test_crops_on_known_pixels():
    out = test_transform(ramp(w=48), size=32, num_crops=3)  # short side already 32
    assert out.shape == (3, 2, 3, 32, 32)
    assert [out[c, 0, 0, 0, 0].item() for c in range(3)] == [0, 8, 16]  # left, centre, right
    assert test_transform(ramp(w=48), size=32)[0, 0, 0, 0, 0].item() == 8  # centre crop
    portrait = ramp(h=32, w=48).transpose(1, 2).contiguous()  # (2, 48, 32, 3), value = row
    rows = test_transform(portrait, size=32, num_crops=3)[:, 0, 0, :, 0]
    assert rows[:, 0].tolist() == [0, 8, 16]  # top, centre, bottom
    small = test_transform(ramp(h=64, w=80), size=32)  # resized by half first
    assert small.shape == (1, 2, 3, 32, 32)
    assert abs(small[0, 0, 0, 0, 0].item() - 2 * 4) <= 1  # column 8 of 80 -> 4 of 40 -> crop x 4
    with pytest.raises(ValueError, match="num_crops"):
        test_transform(ramp(), 32, num_crops=2)


def test_normalize_any_leading_dims():
    video = torch.full((2, 3, 4, 3, 5, 5), 255, dtype=torch.uint8)
    video[..., 1, :, :] = 0
    out = normalize(video, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    assert out.dtype == torch.float32 and out.shape == video.shape
    assert torch.allclose(out[..., 0, :, :], torch.tensor(1.0))
    assert torch.allclose(out[..., 1, :, :], torch.tensor(-1.0))
    assert torch.allclose(out[..., 2, :, :], torch.tensor(1.0))
    assert normalize(video, (0.5,) * 3, (0.5,) * 3, dtype=torch.float16).dtype == torch.float16
    with pytest.raises(ValueError, match="channels"):
        normalize(torch.zeros(2, 4, 5, 5, dtype=torch.uint8), (0.5,) * 3, (0.5,) * 3)


def test_transform_rejects_wrong_input():
    with pytest.raises(ValueError, match="uint8 frames"):
        train_transform(ramp().float(), random.Random(0), 32, (32, 32))
    with pytest.raises(ValueError, match="crop size"):
        train_transform(ramp(), random.Random(0), 32, (24, 32))
