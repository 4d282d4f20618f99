"""The demo benchmark on disk is read by the real data pipeline, in FROSTER's layout."""

import json

import numpy as np

from froster.data.annotations import read_annotations, read_class_names
from froster.data.decode import decode_frames, read_video_info
from froster.demo.benchmark import BenchmarkSpec, video_seed, write_benchmark
from froster.demo.world import ACTIONS, BASE_ACTIONS, NOVEL_ACTIONS, make_video


def test_written_benchmark_reads_back_through_the_data_pipeline(tmp_path):
    spec = BenchmarkSpec(train_per_class=2, test_per_class=1, train_splits=2, seed=3)
    files = write_benchmark(tmp_path, spec)

    assert [p.name for p in files.train] == ["train_1.csv", "train_2.csv"]
    splits = [read_annotations(path, files.videos) for path in files.train]
    assert not {i.path for i in splits[0]} & {i.path for i in splits[1]}  # disjoint draws
    train = splits[1]
    val = read_annotations(files.val, files.videos)
    test = read_annotations(files.test, files.videos)
    assert len(train) == 2 * len(BASE_ACTIONS) and len(val) == len(BASE_ACTIONS)
    assert len(test) == len(NOVEL_ACTIONS)
    assert sorted({item.label for item in train}) == list(range(len(BASE_ACTIONS)))

    base = read_class_names(files.base_classes)
    novel = read_class_names(files.novel_classes)
    assert [c.split(":")[0] for c in base] == list(BASE_ACTIONS)
    assert [c.split(":")[0] for c in novel] == list(NOVEL_ACTIONS)
    assert all(": " in c for c in base + novel)  # "Name: description"
    assert read_class_names(files.root / "splits" / "test_idx2cls.csv") == list(NOVEL_ACTIONS)
    assert json.loads((files.root / "world.json").read_text())["seed"] == 3

    item = test[-1]
    action = ACTIONS.index(next(a for a in ACTIONS if a.name == NOVEL_ACTIONS[item.label]))
    assert item.path.endswith(f"{ACTIONS[action].slug}/test_0000.mp4")
    info = read_video_info(item.path)
    assert (info.num_frames, info.width, info.height, info.fps) == (16, 32, 32, 8.0)
    frames = decode_frames(item.path, list(range(0, 16, 2)))
    assert frames.shape == (8, 32, 32, 3) and frames.dtype.is_floating_point is False
    expected, _ = make_video(video_seed(3, "test", action, 0), ACTIONS[action].name)
    error = np.abs(frames.numpy().astype(int) - expected[::2].astype(int))
    assert error.max() <= 4  # lossless H.264 up to the RGB <-> YUV rounding


def test_video_seeds_do_not_depend_on_split_sizes(tmp_path):
    small = write_benchmark(tmp_path / "a", BenchmarkSpec(train_per_class=1, test_per_class=1,
                                                          train_splits=1))
    large = write_benchmark(tmp_path / "b", BenchmarkSpec(train_per_class=2, test_per_class=1))
    a = read_annotations(small.train[0], small.videos)[0].path
    b = read_annotations(large.train[0], large.videos)[0].path
    assert np.array_equal(decode_frames(a, range(16)).numpy(), decode_frames(b, range(16)).numpy())


def test_videos_are_the_same_bytes_whatever_the_number_of_processes(tmp_path):
    spec = BenchmarkSpec(train_per_class=2, test_per_class=1, train_splits=1)
    one, two = (write_benchmark(tmp_path / str(n), spec, workers=n) for n in (1, 2))
    files = sorted(p.relative_to(one.root) for p in one.root.rglob("*") if p.is_file())
    assert len(files) > 24
    assert files == sorted(p.relative_to(two.root) for p in two.root.rglob("*") if p.is_file())
    assert all((one.root / f).read_bytes() == (two.root / f).read_bytes() for f in files)
