"""Do the models look at the object? Attention maps measured on the demo world.

The world knows where its object is (`world.render_masks`: the object's own pixels, not
its trail). On a fixed subset of the novel classes' test videos (the first `per_class`
test videos of each novel action, 6 x 20 = 120 by default), each model explains the
video's **true** label with `froster.explain` (the clip the evaluation sees, one view;
the novel classes' prompt-ensemble classifier, as `Recognizer.explain`), and its maps are
scored against the object's mask in each frame it saw, over the frames where the object
is visible:

- **mass**: the share of the frame's relevance that lies on the object's pixels (a
  patch's relevance spread evenly over its pixels);
- **pointing**: whether the frame's most relevant patch touches the object (the pointing
  game), as a share of frames.

Per video the scores are averaged over its frames, per model over the videos; rows with
training splits give mean ± std over the splits. A uniform map scores the object's share
of the frame (mass) and the share of patches that touch it (pointing): the chance levels.
Both methods are measured (`gradient`, which depends on the label, and `rollout`, which
does not).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.annotations import VideoItem
from ..data.dataset import VideoDataset
from ..data.sampling.uniform import test_view_indices
from ..errors import MissingFileError
from ..data.transforms import normalize
from ..explain.maps import explain_clips
from .benchmark import video_seed
from .world import ACTIONS, action_by_name, render, render_masks, sample_scene

__all__ = ["AttentionSpec", "NovelSubset", "novel_subset", "score_maps", "measure_models",
           "row_models", "run_models", "merge_measured", "summarise", "attention_table", "draw_attention_figure"]

#: decoded frames must match the rendered ones this closely (lossless H.264, 4:4:4)
_MAX_DECODE_ERROR = 8


@dataclass(frozen=True)
class AttentionSpec:
    per_class: int = 20                    # novel test videos per class measured
    methods: tuple[str, ...] = ("gradient", "rollout")
    #: videos shown in attention.png: (novel action, test video number), fixed beforehand
    figure_videos: tuple[tuple[str, int], ...] = (("Moving right", 0), ("Shrinking", 0), ("Shaking", 0))
    batch_size: int = 40


@dataclass
class NovelSubset:
    names: list[str]             # the videos' paths relative to the data root
    labels: torch.Tensor         # (N,) novel class index (the true label)
    clips: torch.Tensor          # uint8 (N, T, 3, S, S) as the evaluation sees them
    masks: torch.Tensor          # bool (N, T, S, S): the object's pixels in those frames
    figure: list[int]            # indices of the figure's videos


def novel_subset(files, bench_spec, cfg, spec: AttentionSpec) -> NovelSubset:
    """The first `spec.per_class` novel test videos of each class, decoded as the evaluation
    decodes them (one test view), with the object's masks in the frames the view took."""
    lines = [line.split(",") for line in Path(files.test).read_text().split("\n") if line.strip()]
    chosen, taken = [], {}
    for path, label in lines:
        label = int(label)
        if taken.get(label, 0) < spec.per_class:
            taken[label] = taken.get(label, 0) + 1
            chosen.append((path, label))
    items = [VideoItem(str(Path(files.videos) / p), label, i) for i, (p, label) in enumerate(chosen)]
    dataset = VideoDataset(items, mode="test", view=cfg.view().replace(num_crops=1),
                           size=bench_spec.size, seed=cfg.seed)
    view = cfg.test_views // 2
    indices = test_view_indices(bench_spec.num_frames, bench_spec.fps, cfg.num_frames,
                                cfg.sampling_rate, cfg.target_fps, cfg.test_views)[view]
    clips, masks = [], []
    for item, (path, _) in zip(items, chosen):
        clip = dataset.load_test_views(item).frames[view]
        action = action_by_name(Path(path).parent.name)
        number = int(Path(path).stem.rsplit("_", 1)[1])
        scene = sample_scene(np.random.default_rng(video_seed(bench_spec.seed, "test",
                                                              ACTIONS.index(action), number)),
                             action.name, bench_spec.trail_prob, bench_spec.signature_prob)
        rendered = render(scene, bench_spec.num_frames, bench_spec.size)[indices]
        error = np.abs(clip.permute(0, 2, 3, 1).numpy().astype(int) - rendered.astype(int)).max()
        if error > _MAX_DECODE_ERROR:  # the masks would not belong to these frames
            raise RuntimeError(f"{item.path}: the decoded view is not frames {indices} of the "
                               f"world's video (off by {error} levels)")
        clips.append(clip)
        masks.append(torch.from_numpy(render_masks(scene, bench_spec.num_frames, bench_spec.size)[indices]))
    position = {(Path(p).parent.name, int(Path(p).stem.rsplit("_", 1)[1])): i
                for i, (p, _) in enumerate(chosen)}
    figure = [position[key] for a, n in spec.figure_videos
              if (key := (action_by_name(a).slug, n)) in position]
    return NovelSubset([p for p, _ in chosen], torch.tensor([label for _, label in chosen]),
                       torch.stack(clips), torch.stack(masks), figure)


def score_maps(maps: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per video (N,): mass on the object and pointing hits, each averaged over the frames
    where the object is visible (and the map is not empty); the same for a uniform map
    (chance); and how many frames counted. `maps` (N, T, h, w), `masks` bool (N, T, S, S)."""
    n, frames, h, w = maps.shape
    size = masks.shape[-1]
    patch = size // h
    touching = masks.view(n, frames, h, patch, w, patch).any(dim=5).any(dim=3)  # (N, T, h, w)
    on_object = masks.view(n, frames, h, patch, w, patch).float().mean(dim=(3, 5))
    total = maps.sum(dim=(-2, -1))
    counted = masks.any(dim=-1).any(dim=-1) & (total > 0)
    mass = (maps * on_object).sum(dim=(-2, -1)) / total.clamp_min(1e-30)
    top = maps.flatten(2).argmax(dim=-1, keepdim=True)
    hit = touching.flatten(2).gather(2, top)[..., 0].float()
    chance_mass = masks.float().mean(dim=(-2, -1))
    chance_pointing = touching.float().mean(dim=(-2, -1))

    def per_video(values):
        return (values * counted).sum(dim=1) / counted.sum(dim=1).clamp_min(1)

    return {"mass": per_video(mass), "pointing": per_video(hit),
            "chance_mass": per_video(chance_mass), "chance_pointing": per_video(chance_pointing),
            "frames": counted.sum(dim=1)}


@torch.no_grad()
def _classifier(model, tokenizer, class_texts):
    from ..inference.api import Recognizer

    recognizer = Recognizer(model, tokenizer, device="cpu", use_cache=False, num_workers=0)
    return recognizer.label_embeddings(class_texts), recognizer


def measure_models(models, subset: NovelSubset, class_texts, spec: AttentionSpec) -> dict:
    """{method: {"mass": [per model], "pointing": [...]}, "figure": {method: [maps of the
    figure's videos per model], "probability": [the true label's, per model]}} for
    `models`, a list of (VideoCLIP, tokenizer)."""
    out = {method: {"mass": [], "pointing": []} for method in spec.methods}
    figure = {method: [] for method in spec.methods} | {"probability": []}
    for model, tokenizer in models:
        model.eval()
        classifier, recognizer = _classifier(model, tokenizer, class_texts)
        for method in spec.methods:
            maps, logits = [], []
            for start in range(0, len(subset.labels), spec.batch_size):
                clips = normalize(subset.clips[start:start + spec.batch_size], recognizer.mean,
                                  recognizer.std)
                result = explain_clips(model, clips, classifier,
                                       subset.labels[start:start + spec.batch_size], method)
                maps.append(result.maps)
                logits.append(result.logits)
            maps = torch.cat(maps)
            if method == spec.methods[0]:  # the true label's probability, for the figure
                probabilities = torch.cat(logits).softmax(dim=-1)
                figure["probability"].append(
                    probabilities[subset.figure, subset.labels[subset.figure]].tolist())
            scores = score_maps(maps, subset.masks)
            out[method]["mass"].append(100 * float(scores["mass"].mean()))
            out[method]["pointing"].append(100 * float(scores["pointing"].mean()))
            out[method].setdefault("chance_mass", 100 * float(scores["chance_mass"].mean()))
            out[method].setdefault("chance_pointing", 100 * float(scores["chance_pointing"].mean()))
            out[method].setdefault("frames", int(scores["frames"].sum()))
            figure[method].append(maps[subset.figure])
    out["figure"] = figure
    return out


def row_models(row_cfg, row_dir: Path, zero_shot: bool):
    """The models of one demo row: the frozen CLIP it starts from (zero-shot), or the
    trained student of each training split (`<row_dir>/train_K/average`)."""
    if zero_shot:
        return run_models(row_cfg, None)
    runs = sorted(p for p in Path(row_dir).iterdir() if p.is_dir() and p.name.startswith("train"))
    return [model for run in runs for model in run_models(row_cfg, run)]


def run_models(row_cfg, run_dir: Path | None):
    """[(model, tokenizer)] of one training run: its averaged student, or its last epoch's
    export without an average; the frozen CLIP of `row_cfg` when `run_dir` is None."""
    from ..checkpoint import build_student, load_student
    from ..engine.checkpoints import epoch_folders
    from ..engine.train import student_spec

    if run_dir is None:
        return [build_student(student_spec(row_cfg))]
    average = Path(run_dir) / "average"
    if (average / "model.safetensors").is_file():
        return [load_student(average, announce=False)[:2]]
    epochs = epoch_folders(run_dir)
    if not epochs:
        raise MissingFileError(f"{run_dir}: the training run left no checkpoint")
    return [load_student(epochs[max(epochs)], announce=False)[:2]]


def merge_measured(parts: list[dict], methods) -> dict:
    """One `measure_models` result from several (each a run's models, in split order)."""
    merged = {method: {"mass": [], "pointing": []} for method in methods}
    figure = {method: [] for method in methods} | {"probability": []}
    for part in parts:
        for method in methods:
            for key in ("mass", "pointing"):
                merged[method][key] += part[method][key]
            for key in ("chance_mass", "chance_pointing", "frames"):
                merged[method].setdefault(key, part[method][key])
        for key in figure:
            figure[key] += part["figure"][key]
    merged["figure"] = figure
    return merged


def summarise(measured: dict, methods) -> dict:
    """Mean and standard deviation over the models of one row (its training splits)."""
    summary = {}
    for method in methods:
        entry = measured[method]
        summary[method] = {"splits": {k: entry[k] for k in ("mass", "pointing")},
                           "chance_mass": entry["chance_mass"],
                           "chance_pointing": entry["chance_pointing"], "frames": entry["frames"]}
        for key in ("mass", "pointing"):
            values = entry[key]
            summary[method][key] = statistics.fmean(values)
            summary[method][f"{key}_std"] = statistics.pstdev(values) if len(values) > 1 else 0.0
    return summary


def attention_table(rows, methods, videos: int) -> str:
    """Markdown: per row and method, mass on the object and pointing accuracy (%)."""
    header = "| model | " + " | ".join(f"mass on object, {m} | pointing, {m}" for m in methods) + " |"
    lines = [header, "|---|" + "---|---|" * len(methods)]
    for row in rows:
        cells = []
        for m in methods:
            a = row["attention"][m]
            cells += [f"{a['mass']:.1f} ± {a['mass_std']:.1f}",
                      f"{a['pointing']:.1f} ± {a['pointing_std']:.1f}"]
        lines.append(f"| {row['method']} | " + " | ".join(cells) + " |")
    first = rows[0]["attention"]
    lines.append("| uniform map (chance) | " + " | ".join(
        f"{first[m]['chance_mass']:.1f} | {first[m]['chance_pointing']:.1f}" for m in methods) + " |")
    return "\n".join(lines) + (f"\n\nOver {videos} novel test videos ({first[methods[0]]['frames']} "
                               "frames with the object visible); mean ± std over the training "
                               "splits.\n")


def draw_attention_figure(rows, subset: NovelSubset, class_names, path, method: str = "gradient",
                          title: str = "") -> Path:
    """The figure's videos, one block each: the frames, then each row's first model."""
    from PIL import Image, ImageDraw

    from ..drawing import default_font
    from ..explain.render import MapRow, draw_grid

    blocks = []
    for k, index in enumerate(subset.figure):
        frames = subset.clips[index].permute(0, 2, 3, 1)
        label = class_names[int(subset.labels[index])]
        map_rows = [MapRow([row["method"], f"{label}: p = {row['figure']['probability'][0][k]:.2f}"],
                           frames, row["figure"][method][0][k]) for row in rows]
        blocks.append(draw_grid(map_rows, f"{subset.names[index]} (true label: {label})"))
    width = max(b.size[0] for b in blocks)
    top = 30
    image = Image.new("RGB", (width, top + sum(b.size[1] for b in blocks)), "white")
    ImageDraw.Draw(image).text((8, 6), title, fill="black", font=default_font(16))
    y = top
    for block in blocks:
        image.paste(block, (0, y))
        y += block.size[1]
    path = Path(path)
    image.save(path)
    return path
