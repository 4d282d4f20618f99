"""The demo's attention measurement: the scores on maps whose answer is known, and the
novel subset's clips and masks belonging to the frames the evaluation sees."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from froster.demo.attention import AttentionSpec, novel_subset, score_maps
from froster.demo.benchmark import BenchmarkSpec, write_benchmark
from froster.demo.run import demo_settings


def test_scores_of_maps_with_a_known_answer():
    masks = torch.zeros(1, 3, 32, 32, dtype=torch.bool)
    masks[0, 0, 0:16, 0:16] = True     # frame 0: object on 2 x 2 patches (8 px patches, 4 x 4 grid)
    masks[0, 1, 20:24, 26:30] = True   # frame 1: object on one patch
    # frame 2: no object (not counted)
    on_object = torch.zeros(1, 3, 4, 4)
    on_object[0, 0, 0:2, 0:2] = 1.0
    on_object[0, 1, 2, 3] = 1.0
    on_object[0, 2] = 1.0
    scores = score_maps(on_object, masks)
    assert scores["frames"].tolist() == [2]
    # frame 0: all mass on patches fully covered; frame 1: the patch is a quarter object
    assert scores["mass"].item() == pytest.approx((1.0 + 0.25) / 2)
    assert scores["pointing"].item() == 1.0
    uniform = score_maps(torch.ones(1, 3, 4, 4), masks)
    assert uniform["mass"].item() == pytest.approx(uniform["chance_mass"].item())
    assert uniform["chance_mass"].item() == pytest.approx((256 / 1024 + 16 / 1024) / 2)
    assert uniform["chance_pointing"].item() == pytest.approx((4 / 16 + 1 / 16) / 2)
    elsewhere = torch.zeros(1, 3, 4, 4)
    elsewhere[0, :, 3, 0] = 1.0        # the bottom-left patch, never on the object
    away = score_maps(elsewhere, masks)
    assert away["mass"].item() == 0 and away["pointing"].item() == 0


def test_the_novel_subset_is_what_the_evaluation_sees_with_its_masks(tmp_path):
    spec, _, cfg = demo_settings(quick=True)
    spec = replace(spec, test_per_class=3)
    files = write_benchmark(tmp_path / "bench", spec)
    cfg = replace(cfg, data_root=str(files.videos))
    subset = novel_subset(files, spec, cfg, AttentionSpec(per_class=2,
                                                          figure_videos=(("Shaking", 1), ("Growing", 0))))
    assert len(subset.names) == 12 and subset.clips.shape == (12, 8, 3, 32, 32)
    assert subset.masks.shape == (12, 8, 32, 32) and subset.masks.dtype == torch.bool
    assert subset.labels.tolist() == [c for c in range(6) for _ in range(2)]
    assert subset.names[subset.figure[0]] == "shaking/test_0001.mp4" and len(subset.figure) == 1
    from froster.engine.evaluate import eval_dataset

    dataset = eval_dataset(cfg, str(files.test), 6, spec.size)  # the evaluation's own clips
    for i in (0, 5, 11):
        index = [k for k, item in enumerate(dataset.items) if item.path.endswith(subset.names[i])][0]
        assert torch.equal(subset.clips[i], dataset.load_test_views(dataset.items[index]).frames[0])
    # the masks sit on the object: pixels there differ from the frame's median (background)
    frames = subset.clips.float()
    background = frames.flatten(-2).median(dim=-1).values[..., None, None]
    differs = (frames - background).abs().amax(dim=2) > 30
    visible = subset.masks.flatten(2).any(-1)
    inside = (differs & subset.masks).flatten(2).sum(-1)[visible].float()
    assert (inside / subset.masks.flatten(2).sum(-1)[visible]).mean() > 0.8
    with pytest.raises(RuntimeError, match="is not frames"):  # other frames: masks would not fit
        novel_subset(files, spec, replace(cfg, sampling="reference"), AttentionSpec(per_class=1))
