"""`froster timeline`: what happens when in a long video or a live stream.

Exit status: 0 done (also a live stream ended with Ctrl-C), 1 the stream broke or the
file was truncated (the windows before are written), 2 nothing could be run (bad
arguments, labels, model, or a source that cannot be opened), 130 a file interrupted
with Ctrl-C (the windows so far are written).
"""

from __future__ import annotations

import argparse
import sys

from ..cli import guarded as _guarded
from .commands import _clip_options, _label_options, _load, _model_group, _progress, \
    _read_labels, _text_options

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
            raise ValueError(f"--input-option {pair!r}: expected KEY=VALUE, e.g. rtsp_transport=tcp")
        options[key] = value
    return options


@_guarded
def run_timeline(args) -> int:
    from ..data.decode import VideoDecodeError
    from ..data.stream import FrameStream
    from .timeline_output import format_for, run_timeline, segment_table

    labels = _read_labels(args)
    if args.output:
        format_for(args.output, args.format)  # a bad name fails now, not after the video
    if args.stride <= 0 or (args.window is not None and args.window <= 0):
        raise ValueError("--stride and --window must be positive numbers of seconds")
    if args.smooth < 1:
        raise ValueError(f"--smooth must be at least 1 window, got {args.smooth}")
    if not 0.0 <= args.threshold <= 1.0:
        raise ValueError(f"--threshold must be a probability in [0, 1], got {args.threshold}")
    try:  # open the source first: a bad one fails before the model is loaded
        stream = FrameStream(args.source, args.input_format, _input_options(args.input_option),
                             apply_rotation=not args.ignore_rotation)
    except VideoDecodeError as e:
        raise ValueError(str(e)) from None
    try:
        recognizer = _load(args)
        timeline = recognizer.timeline(stream, labels, window=args.window, stride=args.stride,
                                       threshold=args.threshold, smooth=args.smooth,
                                       top_k=args.top_k or None, templates=args.templates,
                                       batch_size=args.batch_size)
    except BaseException:
        stream.close()
        raise
    report = run_timeline(timeline, args.output, args.format, args.video, args.chart,
                          progress=_progress(args))
    sys.stdout.write(segment_table(report.segments))
    sys.stdout.flush()
    print(f"froster timeline: {report.summary()}", file=sys.stderr)
    if report.error:
        return 1
    if report.interrupted and not stream.live:
        return 130
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "timeline", help="what happens when in a long video or a live stream",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="VIDEO_OR_STREAM",
                   help="a video file, a URL, a capture device (/dev/video0) or - for stdin")
    _label_options(p)
    windows = p.add_argument_group("windows")
    windows.add_argument("--window", type=float, default=None, metavar="SECONDS",
                         help="span of a window (default: frames x sampling rate / 30 fps = 4.27 s)")
    windows.add_argument("--stride", type=float, default=1.0, metavar="SECONDS",
                         help="one window every this many seconds (default 1)")
    windows.add_argument("--threshold", type=float, default=0.0, metavar="P",
                         help="below this probability a window is 'no action' (default 0: always "
                              "the top label). Probabilities are a softmax over the given labels, "
                              "so they say which label fits best, not whether any fits: with 5 "
                              "labels, 0.5 keeps windows where one label clearly wins")
    windows.add_argument("--smooth", type=int, default=1, metavar="K",
                         help="average the probabilities over the last K windows (default 1: none)")
    windows.add_argument("--top-k", type=int, default=3, metavar="N",
                         help="labels written per window (0: all; default 3)")
    _clip_options(windows, "window")
    windows.add_argument("--batch-size", type=int, default=8,
                         help="windows per forward pass (default 8; a live stream runs each "
                              "window as soon as it is complete)")
    windows.add_argument("--ignore-rotation", action="store_true",
                         help="frames as stored, not as displayed (default: the display "
                              "rotation is applied, as froster predict does)")
    outputs = p.add_argument_group("outputs")
    outputs.add_argument("--output", "-o", metavar="FILE",
                         help="windows and segments: .jsonl (flushed per window), .json or .csv")
    outputs.add_argument("--format", choices=("jsonl", "json", "csv"), default=None,
                         help="format of --output (default: from its name)")
    outputs.add_argument("--video", metavar="MP4",
                         help="write the input with the current label and probability bars "
                              "drawn on every frame (H.264, short side 360-720 px)")
    outputs.add_argument("--chart", metavar="PNG",
                         help="write a chart of each label's probability over time with the "
                              "segments")
    outputs.add_argument("--no-progress", action="store_true", help="no progress bar")
    inputs = p.add_argument_group("live inputs")
    inputs.add_argument("--input-format", metavar="FMT",
                        help="FFmpeg input format, e.g. v4l2, mpegts (default: probed; v4l2 "
                             "for /dev/video*)")
    inputs.add_argument("--input-option", action="append", metavar="KEY=VALUE",
                        help="FFmpeg input option (repeatable), e.g. rtsp_transport=tcp, "
                             "video_size=640x480, framerate=30")
    _model_group(p)
    _text_options(p)
    p.set_defaults(run=run_timeline, views=1, workers=0, sampling="reference")  # for _load; windows sample by time
