"""What happens when in a long video or a live stream: the model run window by window.

A *window* is one clip as the model sees it: ``T`` frames (the recognizer's
``num_frames``, 8) ``step`` seconds apart, where ``step = sampling_rate / target_fps``
(16 / 30 s) unless ``window`` seconds are asked for (then ``step = window / T``). Its span
is ``T * step`` (4.27 s by default) whatever the video's frame rate. Window ``k`` starts
at ``k * stride`` seconds (time 0 is the first frame) and ends at ``start + T * step``;
its sample ``j`` is at ``start + j * step``.

Which frame a sample takes: the frame *shown* at that time, i.e. the last frame whose
timestamp is at most the sample time. Timestamps are taken as exact to half a tick of
the stream's time base, so that the millisecond timestamps of MKV/WebM (frame 2 at 30 fps
is stored as 67 ms, not 66.67 ms) do not move a sample by a frame. A window exists when
its last sample is not after the last frame; a stream shorter than one window gives one
window whose late samples repeat the last frame.

Each frame is decoded once, in order; a frame that some sample takes is converted,
rotated as displayed and resized/cropped to the model's input right away (exactly as
`Recognizer.classify` transforms a frame tensor), and held only until the windows that
use it have run. Complete windows are batched through the visual tower against the
classifier built once (text cache); a window's logits are those of
``Recognizer.logits(frames, labels)`` on its (T, H, W, 3) frames.

Per window: ``probabilities`` = softmax of the logits over the labels; ``scores`` = their
mean over the last ``smooth`` windows (the window itself and up to ``smooth - 1`` before
it, as mmaction2's webcam demo averages); ``top`` = labels ranked by score; ``label`` =
the top label when its score is at least ``threshold``, else None ("no action").
A *segment* is a run of consecutive windows with the same label (None included). Windows
overlap, so a segment's time is cut halfway between the centres of its first/last window
and its neighbours' (each window stands for the ``stride`` seconds around its centre); the
first segment starts at the first window's start, the last ends at the last window's end
(or the stream's end, if earlier).
"""

from ...lazy import lazy_exports

_EXPORTS = {"Timeline": "runner", "Window": "scoring", "WindowScorer": "scoring",
            "Segment": "segmentation", "SegmentBuilder": "segmentation",
            "segments": "segmentation",
            "WindowSampler": "windowing", "seconds": "windowing"}

__all__ = list(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
