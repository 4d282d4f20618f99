"""A procedural world of shapes doing actions: the offline open-vocabulary benchmark.

Every video shows one object (a shape with a colour, a texture and a size) doing one of
twelve actions over a background. Actions come in pairs that only time tells apart
(left/right, clockwise/anticlockwise, growing/shrinking, appearing/disappearing, ...);
the six BASE actions are trained on, the six NOVEL ones are named only by text. Why the
world is built this way is written down in docs/demo.md.

Some videos carry a *trail*: faint copies of the object at earlier moments, drawn
beneath it, as a long-exposure photograph or a comic's speed lines would show motion.
A trail is the only thing in a single frame that hints at an action, and only for some
actions (it is hidden under a growing object and invisible for fading or still ones).

Everything is a pure function of a seed: ``make_video(seed, action)`` returns the same
frames on every machine, and ``render_masks(scene)`` the object's own pixels in each frame
(where attention maps should point).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .defaults import SIGNATURE_PROB

__all__ = [
    "Action", "ACTIONS", "BASE_ACTIONS", "NOVEL_ACTIONS", "action_by_name",
    "SIGNATURE_COLOURS", "SIGNATURE_PROB",
    "SHAPES", "COLOURS", "TEXTURES", "BACKGROUNDS", "BACKGROUND_COLOURS",
    "Scene", "ObjectState", "sample_scene", "object_state", "render_frame", "render",
    "make_video", "frame_caption", "trail_visible", "object_mask", "render_masks",
]


@dataclass(frozen=True)
class Action:
    name: str         # class name, e.g. "Moving left"
    phrase: str       # how a caption says it, e.g. "moving to the left"
    description: str  # the class file's sentence, in words the captions ground
    split: str        # "base" or "novel"

    @property
    def slug(self) -> str:
        return self.name.lower().replace(" ", "_")

    @property
    def class_text(self) -> str:
        """`Name: description`, as in FROSTER's rephrased class files."""
        return f"{self.name}: {self.description}"


ACTIONS = (
    Action("Moving left", "moving to the left",
           "a shape moving to the left, from the right to the left.", "base"),
    Action("Moving right", "moving to the right",
           "a shape moving to the right, from the left to the right.", "novel"),
    Action("Moving up", "moving up",
           "a shape moving up, from the bottom to the top.", "base"),
    Action("Moving down", "moving down",
           "a shape moving down, from the top to the bottom.", "novel"),
    Action("Rotating clockwise", "rotating clockwise",
           "a shape rotating clockwise.", "base"),
    Action("Rotating anticlockwise", "rotating anticlockwise",
           "a shape rotating anticlockwise.", "novel"),
    Action("Growing", "growing",
           "a shape growing from small to large.", "base"),
    Action("Shrinking", "shrinking",
           "a shape shrinking from large to small.", "novel"),
    Action("Appearing", "appearing",
           "an empty background, then a faint shape, then a solid shape.", "base"),
    Action("Disappearing", "disappearing",
           "a solid shape, then a faint shape, then an empty background.", "novel"),
    Action("Bouncing", "bouncing",
           "a shape bouncing up and down at the bottom.", "base"),
    Action("Shaking", "shaking",
           "a shape shaking to the left and to the right.", "novel"),
)
BASE_ACTIONS = tuple(a.name for a in ACTIONS if a.split == "base")
NOVEL_ACTIONS = tuple(a.name for a in ACTIONS if a.split == "novel")
_BY_NAME = {a.name: a for a in ACTIONS} | {a.slug: a for a in ACTIONS}


def action_by_name(name: str) -> Action:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown action {name!r}; actions: {', '.join(a.name for a in ACTIONS)}") from None


SHAPES = ("circle", "square", "triangle", "cross")
COLOURS = {
    "red": (225, 40, 40), "green": (40, 200, 60), "blue": (50, 100, 235),
    "yellow": (235, 220, 50), "purple": (170, 60, 215), "orange": (245, 140, 30),
    "white": (240, 240, 240),
}
TEXTURES = ("plain", "striped")
BACKGROUNDS = ("plain", "gradient", "noisy")
BACKGROUND_COLOURS = {"black": (15, 15, 15), "grey": (105, 105, 105),
                      "brown": (95, 65, 40), "dark green": (25, 70, 35)}

#: Each action's usual colour, as a real action has its usual objects and places (a guitar,
#: a pool): within base and within novel actions all differ, and no novel action shares
#: its mirror's colour. A video takes it with probability `signature_prob`, else any colour.
#: It is what a single frame can know about an action (docs/demo.md); 0 removes it.
SIGNATURE_COLOURS = {
    "Moving left": "red", "Moving up": "green", "Rotating clockwise": "blue", "Growing": "yellow",
    "Appearing": "purple", "Bouncing": "orange",
    "Moving right": "green", "Moving down": "blue", "Rotating anticlockwise": "yellow",
    "Shrinking": "purple", "Disappearing": "orange", "Shaking": "red",
}

_SUPERSAMPLE = 2        # anti-aliasing: draw at twice the size and average
_TRAIL_LAGS = (0.12, 0.24, 0.36)     # trail copies, in fractions of the clip, behind "now"
_TRAIL_ALPHAS = (0.55, 0.38, 0.22)  # their opacity (times the video's trail strength)
_EXTENT = 1.15         # farthest point of any shape, in radii (a square's corner)
_MARGIN = 0.04         # kept free at the frame's edge
_SMALL_LARGE = 0.18     # radius / frame size above which a caption says "large"
_RADIUS_SMALL = (0.13, 0.16)   # radius ranges, as fractions of the frame
_RADIUS_LARGE = (0.2, 0.24)
_RADIUS_GROW = (0.12, 0.14)    # start of a growing object (end of a shrinking one)


@dataclass(frozen=True)
class Scene:
    """Everything that decides a video; sizes and positions are fractions of the frame."""

    action: str
    shape: str
    colour: str
    texture: str
    background: str
    background_colour: str
    radius: float          # at the start
    x: float               # centre at the start
    y: float
    angle: float           # degrees at the start
    amount: float          # how far it moves / turns / scales, by action
    trail: float           # 0 = no trail, else the trail's strength (0.6..1)
    gradient_angle: float  # direction of a gradient background
    noise_seed: int        # of a noisy background


@dataclass(frozen=True)
class ObjectState:
    x: float
    y: float
    radius: float
    angle: float    # degrees, clockwise on screen
    opacity: float


def sample_scene(rng: np.random.Generator, action: str, trail_prob: float = 0.5,
                 signature_prob: float = SIGNATURE_PROB) -> Scene:
    """A random scene of `action` whose whole motion stays inside the frame."""
    act = action_by_name(action).name
    shape = SHAPES[rng.integers(len(SHAPES))]
    texture = TEXTURES[rng.integers(len(TEXTURES))]
    if act.startswith("Rotating") and shape == "circle":
        texture = "striped"  # a plain circle turning looks still
    large = rng.random() < 0.5
    radius = rng.uniform(*_RADIUS_LARGE) if large else rng.uniform(*_RADIUS_SMALL)
    if act in ("Growing", "Shrinking"):
        radius = rng.uniform(*_RADIUS_GROW)
    reach = _EXTENT * radius + _MARGIN  # centre to frame edge, at the largest
    room = 1 - 2 * reach                # how far the centre can travel
    amount, x_span, y_span = 0.0, (0.0, 0.0), (0.0, 0.0)
    if act in ("Moving left", "Moving right"):
        amount = rng.uniform(0.3, min(0.5, room))
        x_span = (-amount, 0.0) if act == "Moving left" else (0.0, amount)
    elif act in ("Moving up", "Moving down"):
        amount = rng.uniform(0.3, min(0.5, room))
        y_span = (-amount, 0.0) if act == "Moving up" else (0.0, amount)
    elif act.startswith("Rotating"):
        amount = rng.uniform(100, 160) * (1 if act == "Rotating clockwise" else -1)
    elif act in ("Growing", "Shrinking"):
        amount = rng.uniform(1.6, 1.8)  # scale from small to large
        reach = _EXTENT * radius * amount + _MARGIN
        if act == "Shrinking":
            radius *= amount
    elif act == "Bouncing":
        amount = rng.uniform(0.25, min(0.4, room))
        y_span = (-amount, 0.0)
    elif act == "Shaking":
        amount = rng.uniform(0.1, min(0.15, room / 2))
        x_span = (-amount, amount)
    x = _inside(rng, reach, x_span)
    y = _inside(rng, reach, y_span)
    background = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    background_colour = list(BACKGROUND_COLOURS)[rng.integers(len(BACKGROUND_COLOURS))]
    colour = list(COLOURS)[rng.integers(len(COLOURS))]
    if rng.random() < signature_prob:
        colour = SIGNATURE_COLOURS[act]
    trail = float(rng.uniform(0.6, 1.0)) if rng.random() < trail_prob else 0.0
    if act in ("Appearing", "Disappearing"):
        trail = 0.0  # nothing moves, so nothing trails
    return Scene(act, shape, colour, texture, background, background_colour, float(radius),
                 float(x), float(y), float(rng.uniform(0, 360)), float(amount), trail,
                 float(rng.uniform(0, 360)), int(rng.integers(2**31)))


def _inside(rng: np.random.Generator, reach: float, span: tuple[float, float]) -> float:
    """A start coordinate such that start + span stays within [reach, 1 - reach]."""
    low, high = reach - span[0], 1 - reach - span[1]
    return float(rng.uniform(low, high)) if high > low else 0.5


def object_state(scene: Scene, s: float) -> ObjectState:
    """The object at time s in [0, 1] (start to end of the video)."""
    act, a = scene.action, scene.amount
    x, y, r, angle, opacity = scene.x, scene.y, scene.radius, scene.angle, 1.0
    if act == "Moving left":
        x -= a * s
    elif act == "Moving right":
        x += a * s
    elif act == "Moving up":
        y -= a * s
    elif act == "Moving down":
        y += a * s
    elif act.startswith("Rotating"):
        angle += a * s
    elif act == "Growing":
        r *= 1 + (a - 1) * s
    elif act == "Shrinking":
        r /= 1 + (a - 1) * s
    elif act == "Appearing":
        opacity = min(s / 0.7, 1.0)
    elif act == "Disappearing":
        opacity = min((1 - s) / 0.7, 1.0)
    elif act == "Bouncing":
        y -= a * abs(math.sin(2 * math.pi * s))  # two hops off the floor
    elif act == "Shaking":
        x += a * math.sin(4 * math.pi * s)       # two swings each way
    return ObjectState(x, y, r, angle, opacity)


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside test in the object's own coordinates (unit radius, v pointing down)."""
    if shape == "circle":
        return u * u + v * v <= 1.0
    if shape == "square":
        return np.maximum(abs(u), abs(v)) <= 0.8
    if shape == "triangle":  # equilateral, apex up, circumradius 1
        inside = np.ones_like(u, dtype=bool)
        for deg in (90, 210, 330):
            t = math.radians(deg)
            inside &= u * math.cos(t) + v * math.sin(t) <= 0.5
        return inside
    if shape == "cross":
        return ((abs(u) <= 0.32) & (abs(v) <= 0.95)) | ((abs(v) <= 0.32) & (abs(u) <= 0.95))
    raise ValueError(f"unknown shape {shape!r}")


def _object_coordinates(state: ObjectState, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel centre of a `size` canvas in the object's own coordinates (u, v)."""
    grid = (np.arange(size) + 0.5) / size
    dx = grid[None, :] - state.x
    dy = grid[:, None] - state.y
    t = math.radians(state.angle)  # y points down, so a growing angle turns clockwise
    u = (dx * math.cos(t) + dy * math.sin(t)) / state.radius
    v = (-dx * math.sin(t) + dy * math.cos(t)) / state.radius
    return u, v


def _draw_object(canvas: np.ndarray, scene: Scene, state: ObjectState, alpha: float) -> None:
    """Composite the object over `canvas` (float, H, W, 3, supersampled) in place."""
    alpha *= state.opacity
    if alpha <= 0 or state.radius <= 0:
        return
    u, v = _object_coordinates(state, canvas.shape[0])
    mask = _shape_mask(scene.shape, u, v)
    colour = np.array(COLOURS[scene.colour], np.float32)
    fill = np.broadcast_to(colour, canvas.shape).copy()
    if scene.texture == "striped":
        dark = (np.floor((u + 4) * 1.6) % 2 == 1)
        fill[dark] *= 0.4
    a = (mask * alpha)[..., None].astype(np.float32)
    canvas *= 1 - a
    canvas += a * fill


def _background(scene: Scene, size: int) -> np.ndarray:
    colour = np.array(BACKGROUND_COLOURS[scene.background_colour], np.float32)
    canvas = np.broadcast_to(colour, (size, size, 3)).astype(np.float32)
    if scene.background == "gradient":
        grid = (np.arange(size) + 0.5) / size - 0.5
        t = math.radians(scene.gradient_angle)
        ramp = grid[None, :] * math.cos(t) + grid[:, None] * math.sin(t)  # -0.7..0.7
        canvas = canvas * (1 + 0.9 * ramp[..., None]) + 40 * (ramp[..., None] + 0.7)
    elif scene.background == "noisy":
        noise = np.random.default_rng(scene.noise_seed).normal(0, 22, (size // _SUPERSAMPLE,) * 2 + (3,))
        noise = noise.repeat(_SUPERSAMPLE, 0).repeat(_SUPERSAMPLE, 1)
        canvas = canvas + noise.astype(np.float32)
    return canvas


def render_frame(scene: Scene, s: float, size: int = 32, trail: bool = True) -> np.ndarray:
    """One uint8 (size, size, 3) frame at time s; `trail=False` leaves the trail out."""
    big = size * _SUPERSAMPLE
    canvas = _background(scene, big)
    if trail and scene.trail > 0:
        for lag, alpha in reversed(list(zip(_TRAIL_LAGS, _TRAIL_ALPHAS))):
            _draw_object(canvas, scene, object_state(scene, max(s - lag, 0.0)), alpha * scene.trail)
    _draw_object(canvas, scene, object_state(scene, s), 1.0)
    canvas = canvas.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE, 3).mean(axis=(1, 3))
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


def render(scene: Scene, num_frames: int = 16, size: int = 32) -> np.ndarray:
    """uint8 (num_frames, size, size, 3): the whole video, from s = 0 to s = 1."""
    times = np.linspace(0.0, 1.0, num_frames) if num_frames > 1 else np.zeros(1)
    return np.stack([render_frame(scene, float(s), size) for s in times])


def make_video(seed: int | list[int], action: str, num_frames: int = 16, size: int = 32,
               trail_prob: float = 0.5, signature_prob: float = SIGNATURE_PROB) -> tuple[np.ndarray, Scene]:
    """The video of `action` drawn from `seed`: (frames, scene)."""
    scene = sample_scene(np.random.default_rng(seed), action, trail_prob, signature_prob)
    return render(scene, num_frames, size), scene


def object_mask(scene: Scene, s: float, size: int = 32) -> np.ndarray:
    """bool (size, size): the pixels of the object itself at time s, not its trail: those
    at least half covered by it at the drawing's supersampling. Empty when the object is
    invisible (opacity 0, as at the end of "Disappearing")."""
    state = object_state(scene, s)
    if state.opacity <= 0 or state.radius <= 0:
        return np.zeros((size, size), dtype=bool)
    big = size * _SUPERSAMPLE
    covered = _shape_mask(scene.shape, *_object_coordinates(state, big)).astype(np.float32)
    return covered.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean(axis=(1, 3)) >= 0.5


def render_masks(scene: Scene, num_frames: int = 16, size: int = 32) -> np.ndarray:
    """bool (num_frames, size, size): the object's mask in every frame of `render`."""
    times = np.linspace(0.0, 1.0, num_frames) if num_frames > 1 else np.zeros(1)
    return np.stack([object_mask(scene, float(s), size) for s in times])


def trail_visible(scene: Scene, s: float, size: int = 32, min_pixels: int = 3) -> bool:
    """Does the trail visibly change the frame at time s (so a viewer could see motion)?"""
    if scene.trail <= 0:
        return False
    with_trail = render_frame(scene, s, size, trail=True).astype(np.int16)
    without = render_frame(scene, s, size, trail=False).astype(np.int16)
    return int((abs(with_trail - without).max(axis=-1) > 24).sum()) >= min_pixels


def _where(x: float, y: float) -> str:
    col = "left" if x < 0.38 else "right" if x > 0.62 else ""
    row = "top" if y < 0.38 else "bottom" if y > 0.62 else ""
    if row:
        return f"at the {row} {col}".rstrip()
    return f"on the {col}" if col else "in the centre"


def frame_caption(scene: Scene, s: float, rng: np.random.Generator, size: int = 32,
                  mentions_action: bool | None = None) -> str:
    """What a person looking at this single frame could say about it.

    The action is named only when the frame shows it (a visible trail); otherwise the
    caption holds what any still image holds: shape, colour, texture, size, faintness,
    position and background. Optional words are dropped at random, as in alt texts;
    colour and background often, so that matching a caption needs shape and motion too.
    """
    state = object_state(scene, s)
    if mentions_action is None:
        mentions_action = trail_visible(scene, s, size)
    background = f"{scene.background} {scene.background_colour} background"
    if scene.background == "plain" and rng.random() < 0.5:
        background = f"{scene.background_colour} background"
    if state.opacity < 0.08:
        return f"an empty {background}"
    words = []
    if state.opacity < 0.6:
        words.append("faint")
    if rng.random() < 0.75:
        words.append("large" if state.radius > _SMALL_LARGE else "small")
    if rng.random() < 0.6:
        words.append(scene.colour)
    if scene.texture == "striped" and rng.random() < 0.75:
        words.append("striped")
    words.append(scene.shape if rng.random() < 0.85 else "shape")
    if mentions_action:
        words.append(action_by_name(scene.action).phrase)
    if rng.random() < 0.5:
        words.append(_where(state.x, state.y))
    if rng.random() < 0.5:
        words.append(f"on a {background}")
    prefix = ("", "", "a photo of ", "a picture of ", "a video of ")[rng.integers(5)]
    article = "an" if words[0][0] in "aeiou" else "a"
    return f"{prefix}{article} {' '.join(words)}"
