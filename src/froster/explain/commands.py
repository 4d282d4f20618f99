"""`froster explain`: where the model looks, as per-frame attention maps of a video for a
label, drawn as a PNG grid (and optionally a GIF or MP4).

Exit status: 0 written; 2 nothing could be made (bad arguments, labels, model, weights,
or a video that cannot be read).
"""

from __future__ import annotations

import argparse
import os
import sys

from ..cli_options import (
    add_parser,
    label_options,
    load_recognizer,
    model_options,
    output_option,
    read_labels,
    recognizer_options,
    text_options,
    view_options,
)
from ..errors import FrosterError
from . import HEAD_FUSIONS, names

FROZEN = "frozen"

DESCRIPTION = """\
Show which patches of which frames a label's score comes from. The video is prepared as
`froster predict` prepares it; the middle of its --views test views is explained (with 3
views: the clip in the middle of the video), against the same prompt-ensemble classifier.

Methods: 'gradient' (default; Chefer et al. 2021, as ViFi-CLIP's figures): the attention
of every layer weighted by the gradient of the label's logit, positive part, averaged
over heads, accumulated through the layers; 'rollout' (Abnar & Zuidema 2020): the
attention of every layer (heads fused by --head-fusion), plus the identity for the
residual, multiplied through the layers; it ignores the label. Under the default
neighbour-frame attention, relevance flows across frames: a frame's map can credit
patches that the other frames' tokens looked at (docs/explain.md).

The picture: a row of the frames as the model saw them (resized, centre-cropped), then one
row per model, the map over each frame in jet colours (blue low, red high), each row on
its own scale, captioned with the model, the label and its probability (softmax over the
labels of the explained view's logits). --compare frozen adds the frozen CLIP the model
was fine-tuned from (per frame, no temporal modelling), as the paper's figure compares
FROSTER with its baselines; --compare CKPT adds another checkpoint. Every row explains
the same label: --label, else the first model's top label.

Exit status: 0 written; 2 nothing could be made (bad arguments, labels, model or
weights, or a video that cannot be read)."""

EPILOG = """\
examples:
  froster explain clip.mp4 --labels "juggling,abseiling,playing guitar" \\
      --checkpoint runs/k400/average --compare frozen -o maps.png --gif maps.gif
  froster explain clip.mp4 --label-file classes.json --label juggling --model ViT-B-16 \\
      --method rollout --head-fusion max -o maps.png"""


def register(subparsers) -> None:
    p = add_parser(subparsers, "explain",
                   help="show where the model looks: per-frame attention maps of a video",
                   description=DESCRIPTION, epilog=EPILOG)
    p.add_argument("video", metavar="VIDEO", help="a video file")
    label_options(p)
    maps = p.add_argument_group("maps")
    maps.add_argument("--label", metavar="NAME",
                      help="the label to explain, one of the labels (default: the top one)")
    maps.add_argument("--method", choices=names(), default="gradient",
                      help="gradient or rollout")
    maps.add_argument("--head-fusion", choices=HEAD_FUSIONS, default="mean",
                      help="how the heads of each attention are combined (max as TC-CLIP's "
                           "figures)")
    maps.add_argument("--compare", action="append", default=[], metavar="frozen|CKPT",
                      help="add a row: 'frozen' for the frozen CLIP the model started from, or "
                           "another checkpoint (repeatable)")
    maps.add_argument("--frozen-pretrained", metavar="TAG_OR_FILE",
                      help="weights of --compare frozen (default: the CLIP weights the "
                           "checkpoint's config names; 'openai' for other projects' files)")
    out = p.add_argument_group("output")
    output_option(out, "the grid picture; default: VIDEO's name + _explain.png, here",
                  metavar="PNG")
    out.add_argument("--gif", metavar="FILE", help="also an animated GIF, one picture per frame")
    out.add_argument("--mp4", metavar="FILE", help="also an H.264 MP4, one picture per frame")
    out.add_argument("--fps", type=float, default=2.0,
                     help="pictures per second of --gif/--mp4")
    model_options(p)
    views = p.add_argument_group("views (as froster predict takes them; the middle view is explained)")
    view_options(views)
    text_options(p)
    p.set_defaults(run=run_explain, batch_size=1, workers=0)


def run_explain(args) -> int:
    from ..data.decode import VideoDecodeError

    labels = read_labels(args)
    output = args.output or f"{os.path.splitext(os.path.basename(args.video))[0]}_explain.png"
    _check_outputs(args, output)
    if args.fps <= 0:
        raise FrosterError(f"--fps must be positive, got {args.fps}")
    if args.views is not None and args.views < 1:
        raise FrosterError(f"--views must be at least 1, got {args.views}")
    recognizer = load_recognizer(args)
    models = [recognizer] + [_load_compared(args, entry, recognizer) for entry in args.compare]
    rows = list(zip(_row_names(args), models))
    try:
        explained = _explain_rows(rows, args, labels)
    except VideoDecodeError as err:
        print(f"froster explain: error: {err}", file=sys.stderr)
        return 2
    _write(explained, args, output)
    first = explained[0][1]
    print(f"froster explain: '{first.label}' (p={first.probability:.3f}, view {first.view + 1} "
          f"of {first.views}), {args.method} maps of {len(explained)} model(s) written to "
          f"{', '.join(p for p in (output, args.gif, args.mp4) if p)}", file=sys.stderr)
    return 0


def _check_outputs(args, output: str) -> None:
    for path, suffixes, option in ((output, (".png", ".jpg", ".jpeg", ".webp"), "--output"),
                                   (args.gif, (".gif",), "--gif"), (args.mp4, (".mp4",), "--mp4")):
        if not path:
            continue
        if not path.lower().endswith(suffixes):
            raise FrosterError(f"{option} {path}: expected a file name ending with "
                               f"{' or '.join(suffixes)}")
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise FrosterError(f"{option} {path}: the folder {folder} does not exist")


def _explain_rows(rows, args, labels):
    """[(name, Explanation)]: the first model's label (or --label) for every row."""
    explained = []
    label = args.label
    for name, recognizer in rows:
        result = recognizer.explain(args.video, labels, label=label, method=args.method,
                                    head_fusion=args.head_fusion)
        label = result.label
        explained.append((name, result))
    return explained


def _write(explained, args, output: str) -> None:
    from .render import MapRow, animation, draw_grid, save_gif, save_mp4

    first = explained[0][1]
    rows = [MapRow([name, f"{r.label}: p = {r.probability:.2f}"], r.frames, r.maps)
            for name, r in explained]
    fusion = "" if args.method == "gradient" and args.head_fusion == "mean" else \
        f", heads: {args.head_fusion}"
    what = f"where '{first.label}' comes from" if args.method == "gradient" else \
        "where information flows from (the same for every label)"
    title = (f"{os.path.basename(args.video)}: {what} ({args.method}{fusion}; view "
             f"{first.view + 1} of {first.views})")
    draw_grid(rows, title).save(output)
    if args.gif or args.mp4:
        pictures = animation(rows, os.path.basename(args.video))
        if args.gif:
            save_gif(pictures, args.gif, args.fps)
        if args.mp4:
            save_mp4(pictures, args.mp4, args.fps)


def _row_names(args) -> list[str]:
    """A caption per row: checkpoints by the shortest path tails that tell them apart
    (`runs/k400/average` -> `k400/average`), the frozen CLIP and --model by what they are."""
    entries = [args.checkpoint or None] + [None if c == FROZEN else c for c in args.compare]
    paths = [os.path.normpath(e).split(os.sep) for e in entries if e]
    keep = next((k for k in range(2, max(map(len, paths), default=2) + 1)
                 if len({tuple(p[-k:]) for p in paths}) == len({tuple(p) for p in paths})), None)
    names = []
    for entry in entries:
        if entry:
            parts = os.path.normpath(entry).split(os.sep)
            names.append(os.sep.join(parts[-keep:]) if keep else entry)
        elif not names:
            names.append(f"{args.model} ({args.pretrained}), {args.temporal}")
        else:
            names.append("frozen CLIP")
    return names


def _load_compared(args, entry: str, main):
    """A Recognizer for one --compare entry, set to take the main model's frames (frames
    per view, sampling rate, fps), so that every row explains the same frames."""
    compared = argparse.Namespace(**vars(args))
    if entry == FROZEN:
        model, pretrained, quick_gelu = _frozen_clip(args)
        compared.model, compared.pretrained = model, pretrained
        recognizer = _load_frozen(compared, quick_gelu, main)
    else:
        compared.checkpoint, compared.model = entry, None
        recognizer = load_recognizer(compared)
    recognizer.view = main.view  # every row explains the same frames
    return recognizer


def _frozen_clip(args) -> tuple[str, str, bool | None]:
    """(architecture, weights, quick_gelu) of the CLIP the model was fine-tuned from."""
    if args.model:
        return args.model, args.frozen_pretrained or args.pretrained, None
    from ..interop import froster_folder

    config = froster_folder.read_config(args.checkpoint)
    if config is None:  # another project's file: FROSTER, Open-VCLIP and ViFi-CLIP start from OpenAI's
        from ..interop import read_checkpoint

        spec = read_checkpoint(args.checkpoint, trust_pickle=args.trust_pickle).spec
        return spec.model, args.frozen_pretrained or "openai", spec.quick_gelu
    pretrained = args.frozen_pretrained or config.get("pretrained") or \
        ((config.get("extra") or {}).get("config") or {}).get("pretrained")
    from ..clip import NO_WEIGHTS

    if pretrained in NO_WEIGHTS:
        raise FrosterError(f"--compare frozen: {args.checkpoint} records no pretrained CLIP weights "
                           f"(its CLIP started from random weights), so there is no frozen CLIP to "
                           f"compare with; pass --frozen-pretrained TAG_OR_FILE")
    return config["model"], pretrained, config.get("quick_gelu")


def _load_frozen(args, quick_gelu, main):
    """The frozen CLIP as a Recognizer, with the main model's prompts and precision."""
    from ..clip import WeightsUnavailableError
    from ..inference.api import Recognizer

    options = recognizer_options(args, view=main.view, num_frames=None, sampling_rate=None,
                                 num_views=None, sampling=None, apply_rotation=None,
                                 batch_size=1, num_workers=0, precision=main.precision,
                                 clean_prompts=main.clean_prompts, templates=main.templates)
    try:
        return Recognizer.from_pretrained(args.model, args.pretrained, temporal="mean",
                                          quick_gelu=quick_gelu, **options)
    except WeightsUnavailableError as err:
        raise WeightsUnavailableError(
            f"--compare frozen needs the {args.model} weights the model started from "
            f"({args.pretrained}): {err} (or pass --frozen-pretrained TAG_OR_FILE)") from None
