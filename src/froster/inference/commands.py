"""`froster predict` and `froster search`.

Exit status: 0 when every video was handled, 1 when the run finished but some videos
could not be read (they are listed in the output and on stderr), 2 when nothing could be
run (bad arguments, labels, checkpoint or weights).
"""

from __future__ import annotations

import argparse
import sys

from ..cli_options import (
    add_parser,
    format_option,
    label_options,
    load_recognizer,
    model_options,
    output_option,
    progress,
    progress_option,
    read_labels,
    text_options,
    throughput_options,
    view_options,
)
from ..errors import FrosterError
from .formats import RESULT_FORMATS, format_for


def _inference_options(parser: argparse.ArgumentParser) -> None:
    model_options(parser)
    views = parser.add_argument_group("views and throughput")
    view_options(views)
    throughput_options(views)
    progress_option(views)
    text_options(parser)


def run_predict(args) -> int:
    from .predict import collect_videos, predict

    labels = read_labels(args)
    videos = collect_videos(args.videos)
    if not videos:
        raise FrosterError(f"no videos found in {', '.join(args.videos)}")
    fmt = format_for(args.output, args.format)
    recognizer = load_recognizer(args)
    summary = predict(recognizer, videos, labels, top_k=args.top_k, fmt=fmt, output=args.output,
                      overwrite=args.overwrite, progress=progress(args))
    print(f"froster predict: {summary.report(args.output)}", file=sys.stderr)
    return 1 if summary.failed else 0


def run_search(args) -> int:
    from .search import search_folder

    recognizer = load_recognizer(args)
    ranking, report = search_folder(recognizer, args.folder, args.query, top_k=args.top_k,
                                    templates=args.templates, index_file=args.index,
                                    progress=progress(args))
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

    records = [{"rank": i, "video": video, "score": round(score, 6)}
               for i, (video, score) in enumerate(ranking, start=1)]
    if fmt == "json":
        out.write(json.dumps(records, indent=1) + "\n")
    elif fmt == "jsonl":
        out.writelines(json.dumps(record) + "\n" for record in records)
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["rank", "video", "score"])
        writer.writerows([r["rank"], r["video"], f"{r['score']:.6f}"] for r in records)
    else:
        out.writelines(f"{i:>4}. {score:+.4f}  {video}\n"
                       for i, (video, score) in enumerate(ranking, start=1))


def register(subparsers) -> None:
    p = add_parser(
        subparsers, "predict", help="recognise actions in videos with any labels",
        description="Rank the given labels for each video (3 temporal views x 1 centre crop, "
                    "view logits summed, softmax over the labels). Labels are names or "
                    "'Name: description'; each is encoded with the 28 templates + the bare "
                    "text, averaged. Exit status: 0 all videos done, 1 some videos could not "
                    "be read (listed in the output and on stderr), 2 nothing could be run.")
    p.add_argument("videos", nargs="+", metavar="VIDEO_OR_DIR",
                   help="video files and/or folders (scanned recursively)")
    label_options(p)
    p.add_argument("--top-k", type=int, default=5, help="labels shown per video (0: all)")
    format_option(p, RESULT_FORMATS)
    output_option(p, "write here; a json, jsonl or csv file is resumed: videos already done "
                     "are skipped")
    p.add_argument("--overwrite", action="store_true", help="start --output afresh")
    _inference_options(p)
    p.set_defaults(run=run_predict)

    s = add_parser(
        subparsers, "search", help="rank the videos of a folder by a text query",
        description="Embed the folder's videos once (index stored in DIR/.froster_index."
                    "safetensors, updated for new, changed and removed files) and rank them "
                    "by cosine similarity to the query. Exit status: 0, 1 when some videos "
                    "could not be read, 2 when nothing could be run.")
    s.add_argument("folder", metavar="DIR")
    s.add_argument("query", help="free text, e.g. 'a person riding a horse on a beach'")
    s.add_argument("--top-k", type=int, default=0, help="videos shown (0: all)")
    format_option(s, RESULT_FORMATS)
    output_option(s, "write the ranking here")
    s.add_argument("--index", metavar="FILE",
                   help="index file; default: DIR/.froster_index.safetensors")
    _inference_options(s)
    s.set_defaults(run=run_search)
