"""Decoding: real clips, every container we promise, VFR, rotation, seeking, bad files."""

import csv
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from _shared import SHARED, require

from froster.data import decode
from froster.data.decode import VideoDecodeError, decode_frames, read_video_info
from froster.data.synthetic import read_frame_index, write_video

VIDEOS = SHARED / "videos"

CODECS = {
    "mp4": dict(codec="libx264", options={"crf": "0"}),
    "webm": dict(codec="libvpx-vp9", options={"lossless": "1", "deadline": "realtime"}),
    "avi": dict(codec="mpeg4", options={"qscale": "2"}),
    "gif": dict(codec="gif", pix_fmt="rgb8"),
    "mkv": dict(codec="ffv1", pix_fmt="bgr0"),
}


def indices_of(frames):
    return [read_frame_index(f) for f in frames.numpy()]


# -- the real clips ----------------------------------------------------------------------
@pytest.fixture
def real_clips():
    require(VIDEOS, "shared videos")
    with open(VIDEOS / "clips.csv") as f:
        return [VIDEOS / row["file"] for row in csv.DictReader(f)]


def test_real_clips_decode_with_right_shapes(real_clips):
    assert len(real_clips) == 9
    portrait = 0
    for path in real_clips:
        info = read_video_info(path)
        assert info.num_frames > 50 and 20 <= info.fps <= 35, (path, info)
        assert abs(info.duration - info.num_frames / info.fps) < 0.5, (path, info)
        n = info.num_frames
        idx = [0, n // 3, n - 1, n // 3, 1]
        frames = decode_frames(path, idx)
        assert frames.shape == (5, info.height, info.width, 3) and frames.dtype.is_floating_point is False
        assert (frames[1] == frames[3]).all()  # a repeated index gives the same frame
        assert 20 < frames.float().mean() < 235 and frames.float().std() > 10  # real images
        # the same frames as a plain decode from the start
        with av.open(str(path)) as c:
            plain = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        assert len(plain) == n
        for k, i in enumerate(idx):
            np.testing.assert_array_equal(frames[k].numpy(), plain[i])
        portrait += info.height > info.width
    assert portrait == 1  # making_a_cake.mp4


# -- generated videos with known content -----------------------------------------------------
@pytest.mark.parametrize("ext", sorted(CODECS))
def test_containers_and_codecs_return_exact_frames(tmp_path, ext):
    path = write_video(tmp_path / f"v.{ext}", 90, width=40, height=32, **CODECS[ext])
    info = read_video_info(path)
    assert (info.num_frames, info.width, info.height) == (90, 40, 32)
    idx = [0, 1, 45, 89, 30, 30, 2]
    frames = decode_frames(path, idx)
    assert frames.shape == (7, 32, 40, 3)
    assert indices_of(frames) == idx


def test_seeks_instead_of_decoding_from_the_start(tmp_path):
    path = write_video(tmp_path / "long.mp4", 900, width=32, height=32, options={"crf": "0", "g": "30"})
    video = decode._open(path)
    frames = video.read([850, 866, 880])
    assert indices_of(frames) == [850, 866, 880]
    assert video.decoded < 100  # decoded from the keyframe at 840, not from frame 0
    video.close()


def test_seeks_in_webm_with_exact_frame_numbers(tmp_path):
    path = write_video(tmp_path / "long.webm", 600, width=32, height=32,
                       codec="libvpx-vp9", options={"lossless": "1", "g": "50", "deadline": "realtime"})
    video = decode._open(path)
    assert indices_of(video.read([590, 10, 555])) == [590, 10, 555]
    video.close()


@pytest.mark.parametrize("ext", ["mp4", "mkv"])
def test_variable_frame_rate(tmp_path, ext):
    # gaps between frames grow from 10 ms to 40 ms: not one frame rate
    pts = [10 * i + (i * i) // 20 for i in range(400)]
    path = write_video(tmp_path / f"vfr.{ext}", 400, width=32, height=32, options={"crf": "0", "g": "25"},
                       pts=pts, time_base=Fraction(1, 1000))
    info = read_video_info(path)
    assert info.num_frames == 400
    assert info.fps == pytest.approx(400 / info.duration, rel=0.02)  # the average rate
    idx = [0, 5, 200, 390, 399, 201]
    assert indices_of(decode_frames(path, idx)) == idx


@pytest.mark.parametrize("degrees, k", [(90, 1), (-90, 3), (180, 2)])
def test_rotation_metadata_is_applied(tmp_path, degrees, k):
    def marked(i, w, h):  # white top-left corner on black
        a = np.zeros((h, w, 3), np.uint8)
        a[: h // 4, : w // 4] = 255
        return a

    path = write_video(tmp_path / "rot.mp4", 3, width=48, height=32, options={"crf": "0"},
                       rotation=degrees, frame=marked)
    info = read_video_info(path)
    frame = decode_frames(path, [1])[0].numpy()
    expected = np.rot90(marked(0, 48, 32), k)  # counter-clockwise, as FFmpeg's display matrix
    assert (info.width, info.height) == (expected.shape[1], expected.shape[0])
    assert frame.shape == expected.shape
    assert np.abs(frame.astype(int) - expected).mean() < 8


def test_rotate_helper_direction():
    a = np.arange(6).reshape(2, 3)
    assert decode.rotate_frame(a, 90).tolist() == [[2, 5], [1, 4], [0, 3]]  # counter-clockwise
    assert decode.rotate_frame(a, -90).tolist() == [[3, 0], [4, 1], [5, 2]]
    assert decode.rotate_frame(a, 0) is a


def test_short_and_one_frame_videos(tmp_path):
    one = write_video(tmp_path / "one.mp4", 1, width=32, height=32, options={"crf": "0"})
    assert read_video_info(one).num_frames == 1
    assert indices_of(decode_frames(one, [0, 0, 0])) == [0, 0, 0]
    gif = write_video(tmp_path / "one.gif", 1, width=32, height=32, codec="gif", pix_fmt="rgb8")
    assert decode_frames(gif, [0, 0]).shape == (2, 32, 32, 3)


# -- bad files ---------------------------------------------------------------------------
def audio_only(path):
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=16000)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 16000
            frame.pts = i * 1024
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_bad_files_raise_errors_naming_the_file(tmp_path):
    (tmp_path / "zero.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 50)
    audio_only(tmp_path / "sound.m4a")
    expected = {
        "missing.mp4": "file not found",
        "zero.mp4": "empty file",
        "text.mp4": "not a readable video",
        "sound.m4a": "no video stream",
    }
    for name, words in expected.items():
        for call in (read_video_info, lambda p: decode_frames(p, [0])):
            with pytest.raises(VideoDecodeError) as e:
                call(tmp_path / name)
            assert str(tmp_path / name) in str(e.value) and words in str(e.value)


def test_truncated_files(tmp_path):
    # index at the end (the default): the cut loses it, the file does not open
    full = write_video(tmp_path / "full.mp4", 300, width=64, height=48, options={"crf": "0"})
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(Path(full).read_bytes()[: Path(full).stat().st_size // 2])
    with pytest.raises(VideoDecodeError, match="cut.mp4: not a readable video"):
        read_video_info(cut)
    # index first ("faststart"): opens, but the second half of the frames is gone
    fast = write_video(tmp_path / "fast.mp4", 300, width=64, height=48, options={"crf": "0"},
                       container_options={"movflags": "faststart"})
    cut = tmp_path / "cut_fast.mp4"
    cut.write_bytes(Path(fast).read_bytes()[: Path(fast).stat().st_size // 2])
    assert indices_of(decode_frames(cut, [0, 10])) == [0, 10]
    with pytest.raises(VideoDecodeError, match="cut_fast.mp4: truncated or corrupt.*frame 290"):
        decode_frames(cut, [0, 290])


def test_out_of_range_index(tmp_path):
    path = write_video(tmp_path / "v.mp4", 30, width=32, height=32, options={"crf": "0"})
    with pytest.raises(VideoDecodeError, match="frame 100 requested but the video has 30 frames"):
        decode_frames(path, [100])
    with pytest.raises(ValueError, match="negative"):
        decode_frames(path, [-1])
