"""`froster predict` and `froster search`.

Exit status: 0 when every video was handled, 1 when the run finished but some videos
could not be read (they are listed in the output and on stderr), 2 when nothing could be
run (bad arguments, labels, checkpoint or weights).
"""

from __future__ import annotations

import argparse
import sys

from ..cli import guarded as _guarded


def _model_options(parser: argparse.ArgumentParser) -> None:
    _model_group(parser)
    views = parser.add_argument_group("views and throughput")
    views.add_argument("--views", type=int, default=3, help="temporal views per video (default 3)")
    _clip_options(views)
    views.add_argument("--sampling", choices=("reference", "uniform"), default="reference",
                       help="which frames make a view: 'reference', those the FROSTER "
                            "reference decoder takes (what its models were trained and tested "
                            "on); 'uniform', views spread evenly over the whole video")
    views.add_argument("--ignore-rotation", action="store_true",
                       help="decode frames as stored, ignoring the video's display rotation, "
                            "as the reference does (without it: rotated as a player shows them)")
    views.add_argument("--batch-size", type=int, default=4, help="videos per forward pass (default 4)")
    views.add_argument("--workers", type=int, default=None,
                       help="decoding worker processes (default: min(4, CPU cores))")
    views.add_argument("--no-progress", action="store_true", help="no progress bar")
    _text_options(parser)


def _model_group(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model (one of --checkpoint or --model)")
    group.add_argument("--checkpoint", metavar="CKPT",
                       help="a froster checkpoint folder (model.safetensors + config.json), or a "
                            "FROSTER reference / Open-VCLIP / ViFi-CLIP checkpoint file as "
                            "released (e.g. swa_2_22.pth)")
    group.add_argument("--trust-pickle", action="store_true",
                       help="allow a --checkpoint file that needs full unpickling (it could run "
                            "code: only for files from a source you trust)")
    group.add_argument("--model", metavar="ARCH",
                       help="an open_clip architecture, e.g. ViT-B-16 (plain CLIP, no fine-tuning)")
    group.add_argument("--pretrained", metavar="TAG_OR_FILE", default="openai",
                       help="open_clip tag or local weights file for --model; 'none' for "
                            "random weights (only useful for testing)")
    from ..backbones import names  # no torch: the registry lists names only

    group.add_argument("--temporal", choices=names(), default="neighbor",
                       help="video backbone of --model (default: neighbor, as FROSTER); "
                            "a checkpoint records its own")
    group.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    group.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                       help="the towers' precision: fp32 as the reference tests; bf16 or fp16 "
                            "(CUDA only) are faster and differ slightly (docs/fidelity.md)")
    group.add_argument("--clean-prompts", action=argparse.BooleanOptionalAction, default=None,
                       help="plain labels get clean prompts ('a photo of a person juggling.') "
                            "instead of the reference's ('... juggling. juggling'); None: as "
                            "the checkpoint was trained, else the reference's")


def _clip_options(group, clip: str = "view") -> None:
    group.add_argument("--frames", type=int, default=None,
                       help=f"frames per {clip} (default: the checkpoint's training frames, else 8)")
    group.add_argument("--sampling-rate", type=int, default=None,
                       help=f"frame step at 30 fps within a {clip} (default: the checkpoint's, "
                            "else 16)")


def _text_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", default=None,
                        help="text-embedding cache (default: $FROSTER_CACHE or ~/.cache/froster)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the text cache")
    parser.add_argument("--template", action="append", dest="templates", metavar="TEMPLATE",
                        help="a prompt template with {} for the label (repeatable); replaces "
                             "the default prompts")


def _label_options(parser: argparse.ArgumentParser) -> None:
    labels = parser.add_argument_group("labels (one of)")
    labels.add_argument("--labels", help="labels separated by --separator, e.g. 'juggling,abseiling'")
    labels.add_argument("--label-file", metavar="FILE",
                        help="class file: JSON ({\"0\": \"Name: description\"} or a list), "
                             "CSV (index,name) or text (one per line)")
    labels.add_argument("--separator", default=",", help="separator of --labels")


def _read_labels(args) -> list[str]:
    from ..data.annotations import read_class_names

    if bool(args.labels) == bool(args.label_file):
        raise ValueError("give the labels with either --labels 'a,b,c' or --label-file FILE")
    if args.labels:
        labels = [label.strip() for label in args.labels.split(args.separator) if label.strip()]
    else:
        labels = read_class_names(args.label_file)
    if not labels:
        raise ValueError("no labels given")
    return labels


def _load(args):
    from .api import Recognizer

    if bool(args.checkpoint) == bool(args.model):
        raise ValueError("give either --checkpoint CKPT or --model ARCH [--pretrained TAG]")
    options = dict(device=args.device, num_views=args.views, num_frames=args.frames,
                   sampling_rate=args.sampling_rate, sampling=args.sampling,
                   apply_rotation=not args.ignore_rotation, cache_dir=args.cache_dir,
                   use_cache=not args.no_cache, batch_size=args.batch_size,
                   num_workers=args.workers, precision=args.precision,
                   clean_prompts=args.clean_prompts)
    if args.templates:
        for template in args.templates:
            if template.count("{}") != 1:
                raise ValueError(f"template {template!r} must contain {{}} exactly once")
        options["templates"] = tuple(args.templates)
    if args.checkpoint:
        return Recognizer.from_checkpoint(args.checkpoint, trust_pickle=args.trust_pickle, **options)
    for key, default in (("num_frames", 8), ("sampling_rate", 16)):
        options[key] = default if options[key] is None else options[key]
    return Recognizer.from_pretrained(args.model, args.pretrained, temporal=args.temporal, **options)


def _progress(args) -> bool | None:
    return False if args.no_progress else None  # None: shown when stderr is a terminal


@_guarded
def run_predict(args) -> int:
    from .predict import collect_videos, format_for, predict

    labels = _read_labels(args)
    videos = collect_videos(args.videos)
    if not videos:
        raise ValueError(f"no videos found in {', '.join(args.videos)}")
    fmt = format_for(args.output, args.format)
    recognizer = _load(args)
    summary = predict(recognizer, videos, labels, top_k=args.top_k, fmt=fmt, output=args.output,
                      overwrite=args.overwrite, progress=_progress(args))
    print(f"froster predict: {summary.report(args.output)}", file=sys.stderr)
    return 1 if summary.failed else 0


@_guarded
def run_search(args) -> int:
    from .predict import format_for
    from .search import search_folder

    recognizer = _load(args)
    ranking, report = search_folder(recognizer, args.folder, args.query, top_k=args.top_k,
                                    templates=args.templates, index_file=args.index,
                                    progress=_progress(args))
    fmt = format_for(args.output, args.format)
    out = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout
    try:
        write_ranking(ranking, fmt, out)
    finally:
        if args.output:
            out.close()
    print(f"froster search: {report.report()}", file=sys.stderr)
    return 1 if report.failed else 0


def write_ranking(ranking, fmt: str, out) -> None:
    import csv
    import json

    if fmt == "json":
        for i, (video, score) in enumerate(ranking, start=1):
            out.write(json.dumps({"rank": i, "video": video, "score": round(score, 6)}) + "\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["rank", "video", "score"])
        writer.writerows([i, video, f"{score:.6f}"] for i, (video, score) in enumerate(ranking, 1))
    else:
        for i, (video, score) in enumerate(ranking, start=1):
            out.write(f"{i:>4}. {score:+.4f}  {video}\n")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="recognise actions in videos with any labels",
        description="Rank the given labels for each video (3 temporal views x 1 centre crop, "
                    "view logits summed, softmax over the labels). Labels are names or "
                    "'Name: description'; each is encoded with the 28 templates + the bare "
                    "text, averaged. Exit status: 0 all videos done, 1 some videos could not "
                    "be read (listed in the output and on stderr), 2 nothing could be run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("videos", nargs="+", metavar="VIDEO_OR_DIR",
                   help="video files and/or folders (scanned recursively)")
    _label_options(p)
    p.add_argument("--top-k", type=int, default=5, help="labels shown per video (0: all)")
    p.add_argument("--format", choices=("table", "json", "jsonl", "csv"), default=None,
                   help="output format (default: from --output's suffix, else table); "
                        "json is JSON Lines, one object per video")
    p.add_argument("--output", "-o", metavar="FILE",
                   help="write here; a json/csv file is resumed: videos already done are skipped")
    p.add_argument("--overwrite", action="store_true", help="start --output afresh")
    _model_options(p)
    p.set_defaults(run=run_predict)

    s = subparsers.add_parser(
        "search", help="rank the videos of a folder by a text query",
        description="Embed the folder's videos once (index stored in DIR/.froster_index."
                    "safetensors, updated for new, changed and removed files) and rank them "
                    "by cosine similarity to the query. Exit status: 0, 1 when some videos "
                    "could not be read, 2 when nothing could be run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("folder", metavar="DIR")
    s.add_argument("query", help="free text, e.g. 'a person riding a horse on a beach'")
    s.add_argument("--top-k", type=int, default=0, help="videos shown (0: all)")
    s.add_argument("--format", choices=("table", "json", "jsonl", "csv"), default=None)
    s.add_argument("--output", "-o", metavar="FILE")
    s.add_argument("--index", metavar="FILE", help="index file (default: DIR/.froster_index.safetensors)")
    _model_options(s)
    s.set_defaults(run=run_search)

    from .timeline_command import register as register_timeline

    register_timeline(subparsers)
