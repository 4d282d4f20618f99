"""A time limit on decoding one video inside a loader worker: a decoder stuck on one file
becomes that file's failure (named, skipped, counted), not a stall of every rank."""

from __future__ import annotations

import contextlib
import signal
import threading

from .decode import VideoDecodeError


class DecodeTimeout(VideoDecodeError):
    """A video took longer to decode than its time limit."""


@contextlib.contextmanager
def deadline(seconds: float, path: str):
    """Raise DecodeTimeout naming `path` if the block outlasts `seconds` (0: no limit).
    Works in a process's main thread (a loader worker's); elsewhere it sets no limit."""
    if not seconds or not hasattr(signal, "setitimer") \
            or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum, frame):
        raise DecodeTimeout(f"{path}: decoding took longer than {seconds:g} s (decode_timeout); "
                            f"the file may be damaged or far longer than a clip")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
