"""Display rotation per mode: training, evaluation and benchmarks ignore it (as the
reference); predict, search and the Recognizer apply it unless told not to."""

import numpy as np
import pytest

from froster.config import load_config
from froster.data import VideoDataset, VideoItem
from froster.data.views import ViewSpec
from froster.data.synthetic import write_video
from froster.engine.evaluate import eval_dataset


def top_half_white(i, w, h):
    a = np.zeros((h, w, 3), np.uint8)
    a[: h // 2] = 255
    return a


@pytest.fixture(scope="module")
def rotated(tmp_path_factory):
    """Square frames, top half white, stored with a 90 degree display rotation: a player
    shows the white half on the left."""
    path = tmp_path_factory.mktemp("rot") / "rot.mp4"
    return write_video(path, 60, width=32, height=32, options={"crf": "0"}, rotation=90,
                       frame=top_half_white)


def white_side(video):
    """'top' or 'left': where the white half of uint8 (..., 3, H, W) frames is."""
    v = video.float().mean(dim=tuple(range(video.dim() - 3)))  # (3, H, W)
    h, w = v.shape[-2:]
    top, left = v[:, : h // 2].mean() - v[:, h // 2:].mean(), v[..., : w // 2].mean() - v[..., w // 2:].mean()
    assert max(abs(top), abs(left)) > 150  # one half clearly white
    return "top" if abs(top) > abs(left) else "left"


@pytest.mark.parametrize("sampling", ["reference", "uniform"])
def test_training_and_evaluation_ignore_rotation_by_default(rotated, tmp_path, sampling):
    cfg = load_config(overrides=[f"sampling={sampling}"])
    assert cfg.apply_rotation is False
    item = VideoItem(rotated, 0, 1)
    view = ViewSpec(num_frames=2, sampling_rate=4, sampling=sampling)
    small = dict(size=16, short_side_range=(16, 18))
    assert white_side(VideoDataset([item], mode="test", view=view, **small)[0]["video"]) == "top"
    assert white_side(VideoDataset([item], mode="train", view=view, **small)[0]["video"]) == "top"
    assert white_side(VideoDataset([item], mode="test", view=view.replace(apply_rotation=True),
                                   **small)[0]["video"]) == "left"
    # the engine's datasets read the config
    lst = tmp_path / "val.csv"
    lst.write_text(f"{rotated},0\n")
    for value, side in (("false", "top"), ("true", "left")):
        cfg = load_config(overrides=[f"apply_rotation={value}", f"sampling={sampling}",
                                     "num_frames=2", "sampling_rate=4"])
        dataset = eval_dataset(cfg, str(lst), 1, 16)
        assert dataset.view.apply_rotation is (value == "true") and dataset.view.sampling == sampling
        assert white_side(dataset[0]["video"]) == side


def test_paper_configs_ignore_rotation():
    from pathlib import Path

    configs = Path(__file__).resolve().parents[1] / "configs"
    for name in ("b2n_k400", "b2n_hmdb", "b2n_ucf", "b2n_ssv2", "cross_k400", "b2n_k400_vificlip"):
        cfg = load_config(configs / f"{name}.yaml")
        assert cfg.apply_rotation is False and cfg.sampling == "reference", name


def test_recognizer_applies_rotation_unless_told_not_to(rotated):
    from froster.inference.api import Recognizer

    shown = Recognizer.from_pretrained("froster-tiny", None, device="cpu", use_cache=False,
                                       num_workers=0)
    stored = Recognizer.from_pretrained("froster-tiny", None, device="cpu", use_cache=False,
                                        num_workers=0, apply_rotation=False)
    assert shown.view.apply_rotation is True and shown.view.sampling == "reference"
    assert white_side(shown.load_video(rotated)) == "left"
    assert white_side(stored.load_video(rotated)) == "top"
    assert shown.view_settings != stored.view_settings  # caches and run keys tell them apart
    uniform = Recognizer.from_pretrained("froster-tiny", None, device="cpu", use_cache=False,
                                         sampling="uniform")
    assert uniform.view_settings["sampling"] == "uniform"
    with pytest.raises(ValueError, match="sampling='even'"):
        Recognizer.from_pretrained("froster-tiny", None, device="cpu", sampling="even")


@pytest.mark.parametrize("command", ["predict", "search"])
def test_cli_flags_reach_the_recognizer(rotated, command):
    from froster.cli import build_parser
    from froster.cli_options import load_recognizer

    head = [command, str(rotated), "--labels", "a,b"] if command == "predict" \
        else [command, str(rotated), "a query"]
    model = ["--model", "froster-tiny", "--pretrained", "none", "--device", "cpu", "--no-cache"]
    default = load_recognizer(build_parser().parse_args(head + model))
    assert default.view.apply_rotation is True and default.view.sampling == "reference"
    flagged = load_recognizer(build_parser().parse_args(head + model + ["--ignore-rotation",
                                                              "--sampling", "uniform"]))
    assert flagged.view.apply_rotation is False and flagged.view.sampling == "uniform"
