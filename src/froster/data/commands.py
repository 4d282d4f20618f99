"""`froster data check` and `froster data prepare` (docs/data.md).

Exit status: 0 when every entry (video) is fine, 1 when the run finished but some are
broken (check) or could not be read (prepare), 2 when nothing could be run.
"""

from __future__ import annotations

import argparse

from ..cli_options import add_parser, progress, progress_option

CHECK_DESCRIPTION = """\
Check every entry of a video list before a run, the way training and evaluation will
load it: the file exists, opens and has a video stream; the frame count, duration and
frame rate that `sampling: reference` relies on are there and agree (the cases where
it falls back to another way of sampling are named); every test view and the last
training clip decode; the label is in the class file.

Writes into --output (default: LIST's folder, LIST_STEM_check/):
  report.json       counts per problem and every entry with a problem
  report.txt        the short table printed here
  STEM_clean.EXT    the list without its broken entries (the input is never changed)
  entries.jsonl     finished entries: a killed check goes on where it stopped when run
                    again (entries whose file changed since are checked again)

Broken (left out of the cleaned list): missing, empty, not_a_video, truncated,
no_video_stream, undecodable, decoder_crash, label_not_in_class_file.
Warnings (kept; the video loads but is sampled another way, as the training report
counts): no_frame_count, no_frame_rate, bad_duration, late_start, no_timestamps,
short_window, ffmpeg_error, seek_failed, negative_timestamps, frames_short_of_duration.

Exit status: 0 all fine (warnings allowed, unless --strict), 1 some broken (listed),
2 the check cannot run (unreadable list or class file, bad options).
`froster train ... check_data=true` runs the same check on train_list and val_list
first and refuses to start while entries are broken.
"""

PREPARE_DESCRIPTION = """\
Re-encode a dataset for fast decoding: every video under SRC_ROOT (or every one that
the --list files name) becomes H.264 at the given short side (the long side in
proportion, both even) with a keyframe every --keyint frames, tuned for fast decoding
(--tune), at the same relative path and file name under DST_ROOT. Kept: every decoded
frame with its timestamp (time base and pts), the frame rate, the display rotation.
Dropped: audio. Matroska/WebM inputs stay Matroska (--container auto) so the reference
sampling takes the same path on the copy; --container mp4 writes MP4 for all.

Lists and class files need no change: train with data_root=DST_ROOT. Lists inside
SRC_ROOT (without --list: every .csv, .txt and .json file there) are copied unchanged.

Each output is written to a hidden .NAME.partial file and renamed when complete;
DST_ROOT/prepare_log.jsonl records finished videos, so running the same command again
goes on where a killed run stopped. Unreadable inputs are listed and skipped (all in
DST_ROOT/prepare_report.json). The pixels and the decoded frame count may differ from
the originals (docs/fidelity.md).

Exit status: 0 every video written, 1 some inputs skipped (listed), 2 cannot run.
"""


def _workers(value: str) -> int:
    workers = int(value)
    if workers < 0:
        raise argparse.ArgumentTypeError("give 0 (this process) or more worker processes")
    return workers


def run_check(args) -> int:
    import dataclasses

    from ..errors import FrosterError
    from .check import CheckSettings, check_list

    settings = CheckSettings(last_train_clip=not args.quick)
    if args.config:
        from ..config import load_config
        settings = CheckSettings.from_config(load_config(args.config),
                                             last_train_clip=not args.quick)
    if args.sampling:
        settings = dataclasses.replace(settings, sampling=args.sampling)
    try:
        result = check_list(args.list, args.data_root, args.class_file, settings, args.workers,
                            args.output, strict=args.strict, restart=args.restart,
                            progress=progress(args))
    except PermissionError as e:
        raise FrosterError(f"{e.filename}: permission denied") from None
    for line in result.lines:
        print(line)
    kept = result.report["cleaned_videos"]
    print(f"cleaned list ({kept} of {result.total} videos): {result.cleaned_list}")
    print(f"report: {result.output / 'report.json'}, {result.output / 'report.txt'}")
    resumed = f"; {result.resumed} were checked by an earlier run" if result.resumed else ""
    print(f"checked in {result.seconds:.1f} s{resumed}")
    dropped = result.total - kept
    return 1 if dropped else 0


def run_prepare(args) -> int:
    from ..errors import FrosterError
    from .prepare import PrepareSettings, prepare_dataset

    settings = PrepareSettings(short_side=args.short_side, keyint=args.keyint, crf=args.crf,
                               preset=args.preset, tune=args.tune, container=args.container)
    try:
        result = prepare_dataset(args.src_root, args.dst_root, args.list or (), settings,
                                 args.workers, progress=progress(args), restart=args.restart)
    except PermissionError as e:
        raise FrosterError(f"{e.filename}: permission denied") from None
    for line in result.lines:
        print(line)
    resumed = f"; {result.resumed} were done by an earlier run" if result.resumed else ""
    print(f"prepared in {result.seconds:.1f} s{resumed}; train on it with "
          f"data_root={args.dst_root}")
    return 1 if result.failed else 0


def register(subparsers) -> None:
    p = add_parser(
        subparsers, "data", help="check a dataset before a run; re-encode it for fast decoding",
        description="`froster data check LIST --data-root ROOT` finds broken entries before "
                    "a run; `froster data prepare SRC_ROOT DST_ROOT` writes a copy that "
                    "decodes several times faster (docs/data.md).")
    sub = p.add_subparsers(dest="data_command", metavar="COMMAND", required=True)

    c = add_parser(sub, "check", description=CHECK_DESCRIPTION,
                   help="check every entry of a video list (exit 1 if some are broken)")
    c.add_argument("list", metavar="LIST", help="a video list ('path,label' or 'path label' "
                                                "lines, as training reads them)")
    c.add_argument("--data-root", metavar="ROOT", help="the folder the list's paths are "
                                                       "relative to (default: as written)")
    c.add_argument("--class-file", metavar="F", help="class file the labels index (without "
                                                     "it labels are not checked)")
    c.add_argument("--workers", type=_workers, default=None, metavar="N",
                   help="worker processes (default: one per CPU core; 0: this process)")
    c.add_argument("--output", metavar="DIR", help="report folder (default: "
                                                   "LIST_STEM_check/ beside LIST)")
    c.add_argument("--config", metavar="CONFIG",
                   help="a run's YAML config: its sampling, num_frames, sampling_rate, "
                        "target_fps, test_views and apply_rotation say how videos will be "
                        "loaded (default: the reference's 8 x 16 frames at 30 fps, 3 views)")
    c.add_argument("--sampling", choices=("reference", "uniform"),
                   help="the sampling rule to check against (default: the config's, "
                        "'reference')")
    c.add_argument("--strict", action="store_true",
                   help="count warnings as broken: leave them out of the cleaned list, exit 1")
    c.add_argument("--quick", action="store_true",
                   help="decode the test views only, not the last training clip (about half "
                        "the time on originals with long keyframe intervals; a file cut near "
                        "its end may pass)")
    c.add_argument("--restart", action="store_true",
                   help="check every entry again, ignoring what an earlier run finished")
    progress_option(c)
    c.set_defaults(run=run_check, command="data check")

    q = add_parser(sub, "prepare", description=PREPARE_DESCRIPTION,
                   help="re-encode a dataset (H.264, short side, keyframe interval) for fast "
                        "decoding")
    q.add_argument("src_root", metavar="SRC_ROOT", help="the dataset's folder")
    q.add_argument("dst_root", metavar="DST_ROOT", help="the folder of the copy")
    q.add_argument("--list", action="append", metavar="LIST",
                   help="only the videos this list names (paths relative to SRC_ROOT); may "
                        "be given several times (default: every video file under SRC_ROOT)")
    q.add_argument("--short-side", type=int, default=320, metavar="PX",
                   help="short side of the copies in pixels, even")
    q.add_argument("--keyint", type=int, default=16, metavar="FRAMES",
                   help="a keyframe every this many frames")
    q.add_argument("--crf", type=int, default=23, help="x264 quality, 0 (lossless) .. 51")
    q.add_argument("--preset", default="medium", help="x264 speed preset; veryfast: half the time, 1.4 dB lower PSNR")
    q.add_argument("--tune", choices=("fastdecode", "none"), default="fastdecode",
                   help="fastdecode: x264's tuning for fast decoding (CAVLC, no deblocking "
                        "filter; about 2x faster to decode, files ~15%% larger); none: x264's "
                        "own settings")
    q.add_argument("--container", choices=("auto", "mp4"), default="auto",
                   help="auto: Matroska for Matroska/WebM inputs (the reference sampling "
                        "takes the same path on the copy), MP4 for the rest; mp4: MP4 for all")
    q.add_argument("--workers", type=_workers, default=None, metavar="N",
                   help="worker processes (default: one per CPU core; 0: this process)")
    q.add_argument("--restart", action="store_true",
                   help="re-encode every video, ignoring what an earlier run finished")
    progress_option(q)
    q.set_defaults(run=run_prepare, command="data prepare")
