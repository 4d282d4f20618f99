"""The demo world: deterministic from a seed, and each video really does its action."""

from dataclasses import replace

import numpy as np
import pytest

from froster.demo.world import (ACTIONS, BASE_ACTIONS, COLOURS, NOVEL_ACTIONS, SIGNATURE_COLOURS,
                                action_by_name, frame_caption, make_video, object_mask,
                                object_state, render_frame, render_masks, sample_scene,
                                trail_visible)

SIZE = 32
TIMES = np.linspace(0, 1, 16)


def test_same_seed_same_video_and_different_seed_different_video():
    for action in ACTIONS:
        a, scene_a = make_video(7, action.name)
        b, scene_b = make_video(7, action.name)
        c, _ = make_video(8, action.name)
        assert a.dtype == np.uint8 and a.shape == (16, SIZE, SIZE, 3)
        assert scene_a == scene_b and np.array_equal(a, b)
        assert not np.array_equal(a, c)


def test_split_is_half_and_half_and_novel_names_reuse_words():
    assert len(BASE_ACTIONS) == len(NOVEL_ACTIONS) == 6
    assert not set(BASE_ACTIONS) & set(NOVEL_ACTIONS)
    for name in ("Moving right", "Moving down", "Rotating anticlockwise"):
        assert name in NOVEL_ACTIONS and name.split()[0] in " ".join(BASE_ACTIONS)


def test_signature_colours_tell_actions_apart_within_a_split_but_not_mirrors():
    assert set(SIGNATURE_COLOURS) == {a.name for a in ACTIONS}
    assert set(SIGNATURE_COLOURS.values()) <= set(COLOURS)
    for names in (BASE_ACTIONS, NOVEL_ACTIONS):
        assert len({SIGNATURE_COLOURS[n] for n in names}) == len(names)
    for base, novel in zip(ACTIONS[0::2], ACTIONS[1::2]):  # the mirrored pairs
        assert (base.split, novel.split) == ("base", "novel")
        assert SIGNATURE_COLOURS[base.name] != SIGNATURE_COLOURS[novel.name]


@pytest.mark.parametrize("prob", [0.0, 0.6, 1.0])
def test_signature_prob_sets_the_share_of_usual_colours(prob):
    rng = np.random.default_rng(3)
    action = action_by_name("Shaking")
    colours = [sample_scene(rng, action.name, signature_prob=prob).colour for _ in range(700)]
    share = np.mean([c == SIGNATURE_COLOURS[action.name] for c in colours])
    expected = prob + (1 - prob) / len(COLOURS)  # the rest are drawn from all colours
    assert share == pytest.approx(expected, abs=0.05)
    assert len(set(colours)) == (1 if prob == 1.0 else len(COLOURS))


def _probe(action: str, seed: int):
    """The action's geometry with a white plain object on black, no trail: easy to measure."""
    scene = sample_scene(np.random.default_rng(seed), action)
    return replace(scene, colour="white", texture="plain", background="plain",
                   background_colour="black", trail=0.0)


def _mask(scene, s):
    frame = render_frame(scene, float(s), SIZE).astype(np.float64)
    return np.clip((frame.mean(axis=-1) - 15) / 225, 0, 1)  # object coverage per pixel


def _centroid(weights):
    ys, xs = np.mgrid[: weights.shape[0], : weights.shape[1]]
    total = weights.sum()
    return (xs * weights).sum() / total, (ys * weights).sum() / total


@pytest.mark.parametrize("action, axis, sign", [
    ("Moving left", 0, -1), ("Moving right", 0, 1), ("Moving up", 1, -1), ("Moving down", 1, 1)])
def test_moving_objects_go_the_named_way(action, axis, sign):
    for seed in range(5):
        scene = _probe(action, seed)
        track = np.array([_centroid(_mask(scene, s))[axis] for s in TIMES])
        steps = np.diff(track) * sign
        assert (steps > 0.3).all(), (action, seed, track)
        assert (track[-1] - track[0]) * sign > 0.3 * SIZE


@pytest.mark.parametrize("action, sign", [("Growing", 1), ("Shrinking", -1)])
def test_area_grows_or_shrinks(action, sign):
    for seed in range(5):
        scene = _probe(action, seed)
        area = np.array([_mask(scene, s).sum() for s in TIMES])
        assert (np.diff(area) * sign > 0).all(), (action, seed, area)
        assert max(area[0], area[-1]) > 2 * min(area[0], area[-1])


@pytest.mark.parametrize("action, sign", [("Appearing", 1), ("Disappearing", -1)])
def test_fading_changes_visibility_only(action, sign):
    scene = _probe(action, 0)
    ink = np.array([_mask(scene, s).sum() for s in TIMES])
    assert (np.diff(ink) * sign >= 0).all() and (ink[0] - ink[-1]) * -sign > 20
    visible = [_centroid(_mask(scene, s)) for s in TIMES if _mask(scene, s).sum() > 5]
    assert np.ptp(np.array(visible), axis=0).max() < 0.5  # it does not move


def _four_fold_phase(weights):
    """Orientation of a square, as the phase of its 4-fold angular moment (y down, so a
    growing phase turns clockwise on screen)."""
    cx, cy = _centroid(weights)
    ys, xs = np.mgrid[: weights.shape[0], : weights.shape[1]]
    dx, dy = xs - cx, ys - cy
    return np.angle((weights * np.hypot(dx, dy) ** 2 * np.exp(4j * np.arctan2(dy, dx))).sum())


@pytest.mark.parametrize("action, sign", [("Rotating clockwise", 1), ("Rotating anticlockwise", -1)])
def test_rotation_turns_the_named_way(action, sign):
    for seed in range(5):
        scene = replace(_probe(action, seed), shape="square", radius=0.24, x=0.5, y=0.5)
        phase = np.unwrap([_four_fold_phase(_mask(scene, s)) for s in TIMES])
        turned = np.degrees(np.diff(phase)) / 4 * sign
        assert (turned > 2).all(), (action, seed, turned)
        assert abs(np.degrees(phase[-1] - phase[0]) / 4 - scene.amount) < 15


def test_bouncing_hops_twice_and_shaking_swings_twice():
    scene = _probe("Bouncing", 0)
    y = {s: _centroid(_mask(scene, s))[1] for s in (0, 0.25, 0.5, 0.75, 1)}
    assert abs(y[0] - y[0.5]) < 0.5 and abs(y[0] - y[1]) < 0.5
    assert y[0.25] < y[0] - 0.25 * SIZE and y[0.75] < y[0] - 0.25 * SIZE
    scene = _probe("Shaking", 0)
    x = {s: _centroid(_mask(scene, s))[0] for s in (0, 0.125, 0.375, 0.625, 0.875)}
    assert x[0.125] > x[0] + 2 and x[0.625] > x[0] + 2
    assert x[0.375] < x[0] - 2 and x[0.875] < x[0] - 2


@pytest.mark.parametrize("action", [a.name for a in ACTIONS])
def test_objects_stay_inside_the_frame(action):
    for seed in range(20):
        scene = _probe(action, seed)
        for s in TIMES:
            cover = _mask(scene, s)
            border = np.concatenate([cover[0], cover[-1], cover[:, 0], cover[:, -1]])
            assert border.max() < 0.05, (action, seed, s)


def test_captions_name_the_action_only_when_a_frame_shows_it():
    rng = np.random.default_rng(0)
    scene = replace(sample_scene(np.random.default_rng(1), "Moving left"), trail=1.0)
    assert trail_visible(scene, 0.8) and not trail_visible(scene, 0.0)
    assert "moving to the left" in frame_caption(scene, 0.8, rng)
    assert "moving" not in frame_caption(scene, 0.0, rng)
    assert "moving" not in frame_caption(replace(scene, trail=0.0), 0.8, rng)
    fading = sample_scene(np.random.default_rng(1), "Disappearing", trail_prob=1.0)
    assert fading.trail == 0.0  # nothing moves, so nothing trails
    assert "faint" in frame_caption(fading, 0.8, rng)
    assert frame_caption(fading, 1.0, rng).startswith("an empty")


@pytest.mark.parametrize("action", [a.name for a in ACTIONS])
def test_object_masks_are_the_object_itself_not_its_trail(action):
    """Drawn white on black without a trail, the object's pixels are exactly the mask (a
    pixel half covered is 15 + 225 / 2 = 127.5, which rounds to 128); the trail never
    changes a pixel the object covers fully and mostly lies outside the mask; the masks are
    a pure function of the seed."""
    scene = sample_scene(np.random.default_rng([5, 1]), action, trail_prob=1.0)
    probe = replace(scene, colour="white", texture="plain", background="plain",
                    background_colour="black", trail=0.0)
    masks = render_masks(scene)
    assert masks.shape == (16, SIZE, SIZE) and masks.dtype == bool
    assert np.array_equal(masks, render_masks(scene)) and np.array_equal(masks, render_masks(probe))
    for k, s in enumerate(TIMES):
        state = object_state(scene, float(s))
        assert np.array_equal(masks[k], object_mask(scene, float(s)))
        if state.opacity >= 1:  # a fully drawn object: bright exactly on its mask
            assert np.array_equal(masks[k], render_frame(probe, float(s))[..., 0] >= 128)
        else:
            assert masks[k].any() == (state.opacity > 0)
    if action in ("Appearing", "Disappearing"):
        return  # the world never draws a trail for them (nothing moves)
    trailed = replace(probe, trail=1.0)
    plain = [render_frame(probe, float(s))[..., 0] for s in TIMES]
    differs = np.stack([render_frame(trailed, float(s))[..., 0] != p for s, p in zip(TIMES, plain)])
    assert differs.any() == (not action.startswith(("Rotating", "Growing")))  # hidden there
    if differs.any():
        assert not (differs & (np.stack(plain) == 240)).any()  # never under the object itself
        assert (differs & ~masks).sum() > (differs & masks).sum()


def test_the_mask_is_empty_once_the_object_has_disappeared():
    scene = sample_scene(np.random.default_rng(2), "Disappearing")
    assert object_mask(scene, 0.0).any() and object_mask(scene, 0.9).any()
    assert not object_mask(scene, 1.0).any()
