"""`froster timeline`: what happens when in a long video or a live stream.

Exit status: 0 done (also a live stream ended with Ctrl-C), 1 the stream broke or the
file was truncated (the windows before are written), 2 nothing could be run (bad
arguments, labels, model, or a source that cannot be opened), 130 a file interrupted
with Ctrl-C (the windows so far are written).
"""

from __future__ import annotations

import sys

from ...cli_options import (
    add_parser,
    label_options,
    load_recognizer,
    model_options,
    output_option,
    progress,
    progress_option,
    read_labels,
    text_options,
    view_options,
)
from ...errors import FrosterError
from ..formats import TIMELINE_FORMATS

DESCRIPTION = """\
Run the model window by window over a long video or a live stream and say what happens
when. A window is --frames frames over --window seconds (default: the model's sampling,
8 frames 16/30 s apart = 4.27 s, whatever the video's frame rate), one window every
--stride seconds; window k starts at k * stride seconds after the first frame. Each
sample is the frame shown at its time: the last frame whose timestamp is not after it
(variable frame rates follow the timestamps). Every frame is decoded once, in order.

Per window: the labels' probabilities (softmax over the labels, as `froster predict`
with one view), averaged over the last --smooth windows; the label is the top one, or
"no action" when its probability is below --threshold. Consecutive windows with the same
label form a segment (cut halfway between window centres), printed as a table at the end.

Sources: a video file, a URL (rtsp://, http://, ...), a capture device (/dev/video0) or
- for a pipe on stdin (e.g. `ffmpeg ... -f mpegts - | froster timeline - ...`). A
JSONL output is flushed per window, so a live stream can be followed with `tail -f`.
Ctrl-C ends a stream cleanly: everything so far is written.

Exit status: 0 done (also a live stream ended with Ctrl-C); 1 the stream broke or the
file is truncated (the windows before are written); 2 nothing could be run; 130 a file
interrupted with Ctrl-C (what was done is written)."""


def _input_options(pairs) -> dict:
    options = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise FrosterError(f"--input-option {pair!r}: expected KEY=VALUE, e.g. rtsp_transport=tcp")
        options[key] = value
    return options


def run_timeline(args) -> int:
    from ...data.decode import VideoDecodeError
    from ...data.stream import FrameStream
    from ..formats import format_for
    from .output import run_timeline, segment_table

    labels = read_labels(args)
    if args.output:
        format_for(args.output, args.format, TIMELINE_FORMATS, default=None)  # fails now, not after the video
    if args.stride <= 0 or (args.window is not None and args.window <= 0):
        raise FrosterError("--stride and --window must be positive numbers of seconds")
    if args.smooth < 1:
        raise FrosterError(f"--smooth must be at least 1 window, got {args.smooth}")
    if not 0.0 <= args.threshold <= 1.0:
        raise FrosterError(f"--threshold must be a probability in [0, 1], got {args.threshold}")
    try:  # open the source first: a bad one fails before the model is loaded
        stream = FrameStream(args.source, args.input_format, _input_options(args.input_option),
                             apply_rotation=not args.ignore_rotation)
    except VideoDecodeError as e:
        raise FrosterError(str(e)) from None
    try:
        recognizer = load_recognizer(args, num_views=1, num_workers=0, sampling="reference")
        timeline = recognizer.timeline(stream, labels, window=args.window, stride=args.stride,
                                       threshold=args.threshold, smooth=args.smooth,
                                       top_k=args.top_k or None, templates=args.templates,
                                       batch_size=args.batch_size)
    except BaseException:
        stream.close()
        raise
    report = run_timeline(timeline, args.output, args.format, args.video, args.chart,
                          progress=progress(args))
    sys.stdout.write(segment_table(report.segments))
    sys.stdout.flush()
    print(f"froster timeline: {report.summary()}", file=sys.stderr)
    if report.error:
        return 1
    if report.interrupted and not stream.live:
        return 130
    return 0


def register(subparsers) -> None:
    p = add_parser(subparsers, "timeline", help="what happens when in a long video or a live stream",
                   description=DESCRIPTION)
    p.add_argument("source", metavar="VIDEO_OR_STREAM",
                   help="a video file, a URL, a capture device (/dev/video0) or - for stdin")
    label_options(p)
    windows = p.add_argument_group("windows")
    windows.add_argument("--window", type=float, default=None, metavar="SECONDS",
                         help="span of a window; default: frames x sampling rate / 30 fps = 4.27 s")
    windows.add_argument("--stride", type=float, default=1.0, metavar="SECONDS",
                         help="one window every this many seconds")
    windows.add_argument("--threshold", type=float, default=0.0, metavar="P",
                         help="below this probability a window is 'no action' (0: always the "
                              "top label). Probabilities are a softmax over the given labels, "
                              "so they say which label fits best, not whether any fits: with 5 "
                              "labels, 0.5 keeps windows where one label clearly wins")
    windows.add_argument("--smooth", type=int, default=1, metavar="K",
                         help="average the probabilities over the last K windows (1: none)")
    windows.add_argument("--top-k", type=int, default=3, metavar="N",
                         help="labels written per window (0: all)")
    view_options(windows, views=False, sampling=False, clip="window")
    windows.add_argument("--batch-size", type=int, default=8,
                         help="windows per forward pass (a live stream runs each window as "
                              "soon as it is complete) (config: eval_batch_size)")
    outputs = p.add_argument_group("outputs")
    output_option(outputs, "windows and segments: .jsonl (flushed per window), .json or .csv")
    outputs.add_argument("--format", choices=TIMELINE_FORMATS, default=None,
                         help="format of --output: json is one JSON document, jsonl one JSON "
                              "object per line; default: from its name")
    outputs.add_argument("--video", metavar="MP4",
                         help="write the input with the current label and probability bars "
                              "drawn on every frame (H.264, short side 360-720 px)")
    outputs.add_argument("--chart", metavar="PNG",
                         help="write a chart of each label's probability over time with the "
                              "segments")
    progress_option(outputs)
    inputs = p.add_argument_group("live inputs")
    inputs.add_argument("--input-format", metavar="FMT",
                        help="FFmpeg input format, e.g. v4l2, mpegts; default: probed (v4l2 "
                             "for /dev/video*)")
    inputs.add_argument("--input-option", action="append", metavar="KEY=VALUE",
                        help="FFmpeg input option (repeatable), e.g. rtsp_transport=tcp, "
                             "video_size=640x480, framerate=30")
    model_options(p)
    text_options(p)
    p.set_defaults(run=run_timeline)
