"""Reading a pipe (stdin) for FFmpeg so that Ctrl-C still works while it waits for data."""

from __future__ import annotations

import io
import os
import queue
import signal
import threading

__all__ = ["PipeReader"]


class PipeReader(io.RawIOBase):
    """A pipe (stdin) read by a helper thread, handed to FFmpeg from a bounded queue.

    With torch loaded, Ctrl-C's SIGINT may be delivered to one of its threads, and a read()
    blocked in the main thread would then wait for the next data before Python could raise
    KeyboardInterrupt. Here the main thread only waits on the queue, in short slices; a
    Ctrl-C there ends the data (PyAV cannot pass KeyboardInterrupt through its read
    callback) and is raised again by `FrameStream` once FFmpeg has returned.

    While the pipe is read, a first Ctrl-C only sets a flag (when Ctrl-C is Python's
    default handler and this is the main thread): the next read ends the data. Raised as
    KeyboardInterrupt at an arbitrary point, it could land inside PyAV's callback wrapper,
    be swallowed there, and leave the stream waiting for data that never comes. A second
    Ctrl-C raises as usual."""

    def __init__(self, fd: int = 0, chunk: int = 1 << 16, depth: int = 64):
        super().__init__()
        self.name = "stdin" if fd == 0 else f"pipe:{fd}"
        self.fd, self.chunk = fd, chunk
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.pending = b""
        self.ended = False
        self.interrupted = False
        self._previous_handler = None
        if threading.current_thread() is threading.main_thread() \
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous_handler = signal.signal(signal.SIGINT, self._on_sigint)
        threading.Thread(target=self._pump, daemon=True, name="froster-pipe").start()

    def _on_sigint(self, signum, frame) -> None:
        if self.interrupted:  # a second Ctrl-C: the usual KeyboardInterrupt
            raise KeyboardInterrupt
        self.interrupted = True

    def restore_handler(self) -> None:
        if self._previous_handler is not None \
                and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, self._previous_handler)
            self._previous_handler = None

    def _pump(self) -> None:
        while True:
            try:
                data = os.read(self.fd, self.chunk)
            except OSError as e:
                self.queue.put(e)
                return
            self.queue.put(data)
            if not data:
                return

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.interrupted:
            self.ended = True
            return 0
        if not self.pending:
            if self.ended:
                return 0
            try:
                while True:
                    try:
                        item = self.queue.get(timeout=0.1)
                        break
                    except queue.Empty:  # let Python handle a pending Ctrl-C
                        if self.interrupted:
                            self.ended = True
                            return 0
            except KeyboardInterrupt:
                self.interrupted = self.ended = True
                return 0
            if isinstance(item, OSError):
                raise item
            if not item:
                self.ended = True
                return 0
            self.pending = item
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n
