"""`Timeline`: a source decoded frame by frame, windows assembled, batched through the
model and scored as they complete."""

from __future__ import annotations

from contextlib import contextmanager
from fractions import Fraction
from typing import Callable, Iterator, Sequence

import torch

from ...data.stream import FrameStream
from ...data.transforms import test_transform
from ...errors import FrosterError
from ...prompts import ClassText
from ..labels import label_texts
from .scoring import Window, WindowScorer
from .windowing import Sample, WindowAssembler, WindowSampler, seconds

__all__ = ["Timeline"]


@contextmanager
def _one_thread():
    """Small per-frame tensor work on one intra-op thread. Waking torch's other threads for
    a 224 px crop costs more than the work itself (5-15x slower with 2 threads on a loaded
    2-core machine, found with bench/timeline.py); each output pixel is computed alone,
    so the result is the same."""
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class Timeline:
    """Windows of `source` against `labels`, as an iterator (see the module's docstring).

        >>> for w in rec.timeline("match.mp4", ["serve", "rally", "crowd"], stride=1.0):
        ...     print(f"{w.start:7.2f} {w.end:7.2f} {w.label}")

    The source is opened here (an unreadable one raises VideoDecodeError at once). After
    iterating, ``stream.error`` says why a stream ended early (None if it did not),
    ``interrupted`` whether Ctrl-C or `stop()` ended it; ``end_time`` is the time just
    after the last frame. ``on_frame(StreamFrame)`` sees every decoded frame (the
    annotated video uses it); when ``flush_when()`` returns True the complete windows are
    run without waiting for a full batch.
    """

    def __init__(self, recognizer, source, labels: Sequence[str | ClassText],
                 window: float | None = None, stride: float = 1.0, threshold: float = 0.0,
                 smooth: int = 1, top_k: int | None = None, templates: Sequence[str] | None = None,
                 batch_size: int | None = None, input_format: str | None = None,
                 input_options: dict | None = None, apply_rotation: bool | None = None,
                 on_frame: Callable | None = None, flush_when: Callable[[], bool] | None = None):
        classes = label_texts(labels)
        self.recognizer = recognizer
        self.names = [c.name for c in classes]
        view = recognizer.view
        self.num_frames = view.num_frames
        if window is not None and float(window) <= 0:
            raise FrosterError(f"window must be a positive number of seconds, got {window}")
        if float(stride) <= 0:
            raise FrosterError(f"stride must be a positive number of seconds, got {stride}")
        if window is not None:
            self.step = seconds(window) / self.num_frames
        else:
            self.step = seconds(view.sampling_rate) / seconds(view.target_fps)
        self.stride = seconds(stride)
        self.span = self.step * self.num_frames
        self.batch_size = batch_size or max(1, recognizer.batch_size * view.num_views)
        self.scorer = WindowScorer(self.names, threshold, smooth, top_k)
        self.on_frame, self.flush_when = on_frame, flush_when
        self.classifier = recognizer.label_embeddings(classes, templates)  # built once
        if isinstance(source, FrameStream):  # opened by the caller (e.g. to fail before loading a model)
            self.stream = source
        else:
            if apply_rotation is None:  # as the recognizer decodes files (default: applied)
                apply_rotation = view.apply_rotation
            self.stream = FrameStream(source, input_format, input_options,
                                      apply_rotation=apply_rotation)
        self.sampler = WindowSampler(self.num_frames, self.step, self.stride,
                                     tolerance=Fraction(self.stream.time_base) / 2)
        self.interrupted = False
        self._stop = False
        self._started = False
        self._assembler = WindowAssembler(self.sampler)
        self._pending: list[tuple[int, list[Sample]]] = []  # complete, not yet run

    @property
    def threshold(self) -> float:
        return self.scorer.threshold

    @property
    def end_time(self) -> float | None:
        return None if self.stream.end_time is None else float(self.stream.end_time)

    def settings(self) -> dict:
        """What produced the windows (written at the top of the outputs)."""
        return {"source": self.stream.name, "labels": self.names,
                "frames_per_window": self.num_frames, "step": float(self.step),
                "window": float(self.span), "stride": float(self.stride),
                "threshold": self.scorer.threshold, "smooth": self.scorer.smooth,
                "top_k": self.scorer.top_k, "model": self.recognizer.identity,
                "size": self.recognizer.size}

    @property
    def held_frames(self) -> int:
        """Sampled frames held now (by windows not yet complete or not yet run)."""
        held = {id(s) for samples in self._assembler.open.values() for s in samples if s}
        held |= {id(s) for _, samples in self._pending for s in samples}
        return len(held)

    def stop(self) -> None:
        """End after the windows already complete (e.g. from a Ctrl-C handler)."""
        self._stop = True

    def _convert(self, frame) -> torch.Tensor:
        """A sampled frame as the model input: displayed RGB, short side resized, centre crop."""
        with _one_thread():
            pixels = torch.from_numpy(self.stream.to_rgb(frame))
            return test_transform(pixels[None], self.recognizer.size, 1)[0, 0]

    def __iter__(self) -> Iterator[Window]:
        if self._started:
            raise RuntimeError("a Timeline is iterated once; make a new one")
        self._started = True
        assembler, pending = self._assembler, self._pending
        try:
            try:
                for item in self.stream:
                    if self.on_frame is not None:
                        self.on_frame(item)
                    pending += assembler.add(item.index, item.time, item.frame, self._convert)
                    if self._stop:
                        break
                    if pending and self._due(pending):
                        yield from self._run(pending)
                        if self._stop:
                            break
                else:
                    pending += assembler.finish(self._convert)
            except KeyboardInterrupt:
                self.interrupted = True
            if self._stop:
                self.interrupted = True
            yield from self._run(pending)
        finally:
            self.stream.close()

    def _due(self, pending) -> bool:
        """Run the complete windows now? A file fills its batches; a live source runs them
        at once (the next frame may be long in coming: a camera stalls, a pipe waits)."""
        if len(pending) >= self.batch_size or self.stream.live:
            return True
        return self.flush_when is not None and self.flush_when()

    def _run(self, pending: list) -> Iterator[Window]:
        """Run the pending windows in batches, yielding each (removed from `pending` as it goes)."""
        while pending:
            chunk = pending[: self.batch_size]
            with _one_thread():
                video = torch.stack([torch.stack([s.pixels for s in samples])
                                     for _, samples in chunk])
            frames = self.recognizer.encode(video[:, None])  # one view per window
            logits = self.recognizer.view_logits(frames, self.classifier).cpu()
            for i in range(len(chunk)):
                index, samples = pending.pop(0)
                probabilities, scores, top, label = self.scorer(logits[i])
                start = self.sampler.start(index)
                yield Window(index, float(start), float(start + self.span),
                             [s.frame for s in samples], [float(s.time) for s in samples],
                             logits[i], probabilities, scores, top, label, top[0][1])
