"""Datasets and loaders: workers, determinism, sharding, bad videos."""

import pytest
import torch

from froster.data import (
    FailureLog, ShardedSampler, VideoDataset, VideoItem, build_loader, read_annotations, set_epoch,
)
from froster.data.synthetic import read_frame_index, write_video
from froster.data.views import ViewSpec

SMALL = dict(view=ViewSpec(num_frames=2, sampling_rate=4), size=16, short_side_range=(16, 20))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """6 good videos (label = number) and 2 bad ones, listed in a CSV."""
    root = tmp_path_factory.mktemp("videos")
    for k in range(6):
        write_video(root / f"good {k}.mp4", 20 + 10 * k, width=24, height=20, options={"crf": "0"})
    (root / "zero.mp4").write_bytes(b"")
    (root / "text.mp4").write_text("not a video")
    lines = [f"good {k}.mp4,{k}" for k in range(6)] + ["zero.mp4,6", "text.mp4,7"]
    (root / "list.csv").write_text("\n".join(lines) + "\n")
    return read_annotations(root / "list.csv", data_root=root, num_classes=8)


def good_only(items):
    return [i for i in items if "good" in i.path]


def run_epoch(loader, log=None):
    out = []
    for batch in loader:
        if log is not None:
            log.add(batch)
        out.append(batch)
    return out


def test_train_loader_with_workers_is_deterministic(videos):
    ds = VideoDataset(good_only(videos), mode="train", seed=1, **SMALL)
    loaders = [build_loader(ds, batch_size=2, num_workers=w, seed=1) for w in (0, 2)]
    runs = []
    for loader in loaders:
        set_epoch(loader, 3)
        runs.append(run_epoch(loader))
    a, b = runs
    assert len(a) == len(b) == 3
    for x, y in zip(a, b):
        assert x["video"].shape == (2, 2, 3, 16, 16) and x["video"].dtype == torch.uint8
        assert torch.equal(x["video"], y["video"]) and torch.equal(x["index"], y["index"])
        assert torch.equal(x["label"], x["index"])  # labels travel with their videos
        assert x["failed"] == []
    set_epoch(loaders[0], 4)
    other = run_epoch(loaders[0])
    assert any(not torch.equal(x["index"], y["index"]) or not torch.equal(x["video"], y["video"])
               for x, y in zip(a, other))


def test_train_skips_bad_videos_and_reports_them(videos):
    ds = VideoDataset(videos, mode="train", seed=0, **SMALL)
    loader = build_loader(ds, batch_size=4, num_workers=2, drop_last=False)
    log = FailureLog()
    seen = 0
    for epoch in range(3):
        set_epoch(loader, epoch)
        for batch in run_epoch(loader, log):
            assert batch["video"].shape[0] == len(batch["label"]) == len(batch["index"])
            assert all("good" in videos[i].path for i in batch["index"].tolist())
            seen += len(batch["label"])
    assert seen == 3 * len(videos)  # every slot filled by a good video
    assert len(log) >= 6  # both bad videos are in every epoch
    assert sorted(p.rsplit("/", 1)[-1] for p in log.paths) == ["text.mp4", "zero.mp4"]
    report = log.report()
    assert "zero.mp4: empty file" in report and "text.mp4: not a readable video" in report
    assert f"{len(log)} video loads failed (2 distinct videos)" in report


def test_train_gives_up_with_a_clear_error(tmp_path):
    items = [VideoItem(str(tmp_path / f"missing{k}.mp4"), 0, k + 1) for k in range(3)]
    ds = VideoDataset(items, mode="train", max_retries=4, **SMALL)
    with pytest.raises(RuntimeError, match=r"5 videos in a row failed to load(.|\n)*missing\d.mp4: file not found"):
        ds[0]
    loader = build_loader(ds, batch_size=1, num_workers=1)
    with pytest.raises(RuntimeError, match="missing"):
        next(iter(loader))


@pytest.mark.parametrize("world_size", [1, 3])
def test_eval_sees_every_video_once_and_lists_failures(videos, world_size):
    ds = VideoDataset(videos, mode="test", **SMALL | {"view": SMALL["view"].replace(num_views=2)})
    log = FailureLog()
    indices, failed_index = [], []
    for rank in range(world_size):
        loader = build_loader(ds, batch_size=3, num_workers=2, rank=rank, world_size=world_size)
        for batch in run_epoch(loader, log):
            assert batch["video"].shape[1:] == (2, 2, 3, 16, 16)
            for v, i in zip(batch["video"], batch["index"].tolist()):
                # first view, the reference's rule: a window of ceil(4 * 1 / 30 * 30) = 4
                # frames plus the frame after it; samples linspace(0, 7, 2) clamped to 4
                assert [read_frame_index(f) for f in v[0]] == [0, 4]
            indices += batch["index"].tolist()
            failed_index += batch["failed_index"]
    assert sorted(indices + failed_index) == list(range(len(videos)))  # each exactly once
    assert sorted(failed_index) == [6, 7]
    report = log.report(total=len(ds))
    assert report.startswith("metrics computed over 6 of 8 videos; 2 failed to load")
    assert "zero.mp4" in report and "text.mp4" in report


def test_eval_batch_of_only_bad_videos(videos):
    ds = VideoDataset(videos[6:], mode="test", **SMALL | {"view": SMALL["view"].replace(num_views=1)})
    batch = next(iter(build_loader(ds, batch_size=2, num_workers=0)))
    assert batch["video"].shape == (0, 1, 2, 3, 16, 16) and batch["label"].shape == (0,)
    assert [f.path for f in batch["failed"]] == [videos[6].path, videos[7].path]


def test_sharded_sampler():
    # evaluation: disjoint, unpadded, complete
    shards = [list(ShardedSampler(10, r, 3, shuffle=False, pad=False)) for r in range(3)]
    assert [len(s) for s in shards] == [4, 3, 3]
    assert sorted(sum(shards, [])) == list(range(10))
    assert [len(ShardedSampler(10, r, 3, shuffle=False, pad=False)) for r in range(3)] == [4, 3, 3]
    # training: equal length, shuffled per epoch from the seed, disjoint before padding
    samplers = [ShardedSampler(10, r, 3, shuffle=True, seed=7) for r in range(3)]
    shards = [list(s) for s in samplers]
    assert [len(s) for s in shards] == [4, 4, 4] == [len(s) for s in samplers]
    assert set(sum(shards, [])) == set(range(10))
    assert shards == [list(ShardedSampler(10, r, 3, shuffle=True, seed=7)) for r in range(3)]
    for s in samplers:
        s.set_epoch(1)
    assert [list(s) for s in samplers] != shards
    with pytest.raises(ValueError, match="rank 3"):
        ShardedSampler(10, 3, 3)


def test_persistent_workers_see_each_epoch_and_a_resumed_epoch_is_its_tail(videos):
    """The epoch travels in the sampler's keys, so workers that outlive an epoch still draw
    that epoch's clips; a start offset gives exactly the rest of the epoch."""
    ds = VideoDataset(good_only(videos), mode="train", seed=2, **SMALL)
    persistent = build_loader(ds, batch_size=2, num_workers=2, seed=2)
    fresh = build_loader(ds, batch_size=2, num_workers=0, seed=2)
    assert persistent.persistent_workers and not fresh.persistent_workers
    for epoch in (0, 1, 2):
        set_epoch(persistent, epoch)
        set_epoch(fresh, epoch)
        for x, y in zip(run_epoch(persistent), run_epoch(fresh), strict=True):
            assert torch.equal(x["video"], y["video"]) and torch.equal(x["index"], y["index"])
    set_epoch(fresh, 1)
    whole = run_epoch(fresh)
    set_epoch(fresh, 1, start=2)  # one batch of 2 already taken
    tail = run_epoch(fresh)
    assert len(tail) == len(whole) - 1
    for x, y in zip(tail, whole[1:], strict=True):
        assert torch.equal(x["video"], y["video"]) and torch.equal(x["index"], y["index"])


def test_a_video_that_hangs_the_decoder_is_named_and_skipped(videos, monkeypatch):
    import time

    from froster.data import dataset as dataset_module

    real_open = dataset_module.open_video

    def open_video(path, *args, **kwargs):
        if path.endswith("good 3.mp4"):
            time.sleep(30)  # a decoder stuck on one file
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(dataset_module, "open_video", open_video)  # inherited by forked workers
    ds = VideoDataset(good_only(videos), mode="train", decode_timeout=0.5, **SMALL)
    log = FailureLog()
    start = time.monotonic()
    batches = run_epoch(build_loader(ds, batch_size=2, num_workers=1), log)
    assert time.monotonic() - start < 20 and len(batches) == 3
    assert [f.path for f in log.failures] == [ds.items[3].path]
    assert "decoding took longer than 0.5 s (decode_timeout)" in log.failures[0].message


def test_a_stalled_loader_names_the_videos_of_the_late_batch(videos, monkeypatch):
    """Where the time limit cannot interrupt the decoder (stuck outside Python), the wait for
    the batch ends with an error that names the batch's videos, not a silent stall."""
    import time

    from froster.data import dataset as dataset_module
    from froster.data.loader import LoaderStalled, batches

    real_open = dataset_module.open_video

    def open_video(path, *args, **kwargs):
        if path.endswith("good 4.mp4"):
            time.sleep(30)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(dataset_module, "open_video", open_video)
    ds = VideoDataset(good_only(videos), mode="test", **SMALL)  # no per-video limit
    loader = build_loader(ds, batch_size=2, num_workers=1, timeout=2)
    with pytest.raises(LoaderStalled, match="batch 3 of this epoch.*good 4.mp4, .*good 5.mp4"):
        for _ in batches(loader):
            pass
