"""What the app does, without HTTP: classify, timeline, explain and rescore over the one
`Recognizer`, with the model's work done by the `ModelWorker` and the decoding by the
`Decoder`. Every number comes from the library calls the command line makes:

- classify: the test views `froster predict` decodes (the same dataset item), the visual
  tower (batched with other requests' clips), `Recognizer.view_logits` against the
  prompt-ensemble classifier, softmax, `rank`; so the probabilities are predict's;
- timeline: `Recognizer.timeline` (the `Timeline` of `froster timeline`) on the file, its
  tower calls going through the worker; windows as `Window.record`, segments by
  `SegmentBuilder`;
- explain: `Recognizer.explain` on the decoded views, drawn by `froster.explain.render`.
"""

from __future__ import annotations

import asyncio
import collections
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from ..errors import FrosterError
from ..inference.labels import rank
from ..prompts import ClassText

__all__ = ["MAX_LABELS", "LabelError", "Service", "check_labels", "parse_labels"]

MAX_LABELS = 1000


class LabelError(FrosterError):
    """The labels of a request are missing, too many or malformed (HTTP 422)."""


def parse_labels(values: Sequence[str], max_labels: int = MAX_LABELS) -> list[str]:
    """Labels from form values: each value one label, or a single value with one label per
    line (or, without line breaks, separated by commas, as `--labels`)."""
    if len(values) == 1:
        text = values[0]
        values = text.splitlines() if "\n" in text.strip() else text.split(",")
    return check_labels(values, max_labels)


def check_labels(labels: Sequence[str], max_labels: int = MAX_LABELS) -> list[str]:
    """The labels, spaces tidied and empty ones dropped; LabelError for none or too many."""
    labels = [" ".join(str(v).split()) for v in labels]
    labels = [v for v in labels if v]
    if not labels:
        raise LabelError("no labels given: send at least one (field 'labels', one per line "
                         "or comma-separated, or a class file in 'label_file')")
    if len(labels) > max_labels:
        raise LabelError(f"{len(labels)} labels is more than the {max_labels} this server "
                         "takes (froster serve --max-labels)")
    for label in labels:
        try:
            ClassText.parse(label)
        except ValueError as err:
            raise LabelError(f"label {label!r}: {err}") from None
    return labels


class _ThroughWorker:
    """The recognizer as a `Timeline` uses it, with every model call made by the worker
    (so that a long video's windows are batched with the other requests' clips)."""

    def __init__(self, recognizer, worker):
        self._recognizer, self._worker = recognizer, worker

    def __getattr__(self, name):
        return getattr(self._recognizer, name)

    def label_embeddings(self, labels, templates=None):
        return self._worker.call(self._recognizer.label_embeddings, labels, templates).result()

    def encode(self, videos: torch.Tensor) -> torch.Tensor:
        batch, views = videos.shape[:2]
        frames = self._worker.encode(videos.flatten(0, 1)).result()
        return frames.view(batch, views, *frames.shape[1:])

    def view_logits(self, frames, classifier):
        return self._worker.call(self._recognizer.view_logits, frames, classifier).result()


class Service:
    def __init__(self, recognizer, worker, decoder, max_labels: int = MAX_LABELS,
                 classifiers: int = 32):
        self.recognizer, self.worker, self.decoder = recognizer, worker, decoder
        self.max_labels = max_labels
        self._classifiers: collections.OrderedDict = collections.OrderedDict()
        self._classifier_slots = classifiers

    # -- labels --------------------------------------------------------------------------
    def _classifier(self, labels: tuple[str, ...]) -> torch.Tensor:
        """(C, D) classifier, kept for the last few label sets (runs in the model thread;
        the recognizer's disk cache is behind it)."""
        if labels in self._classifiers:
            self._classifiers.move_to_end(labels)
            return self._classifiers[labels]
        classifier = self.recognizer.label_embeddings(list(labels))
        self._classifiers[labels] = classifier
        while len(self._classifiers) > self._classifier_slots:
            self._classifiers.popitem(last=False)
        return classifier

    async def classifier(self, labels: Sequence[str]) -> torch.Tensor:
        return await asyncio.wrap_future(self.worker.call(self._classifier, tuple(labels)))

    # -- classify ------------------------------------------------------------------------
    async def classify(self, path: str | os.PathLike, name: str, labels: Sequence[str],
                       top_k: int = 5, frames: bool = False) -> dict:
        """{"video", "predictions": [{"label", "probability"}], "fallback", ...}: softmax
        over `labels` of the view-summed logits, ranked (`froster predict`'s record)."""
        names = [ClassText.parse(label).name for label in labels]
        top_k = min(top_k, len(names)) if top_k and top_k > 0 else len(names)
        classifier, decoded = await asyncio.gather(self.classifier(labels),
                                                   self.decoder.views(path, name))
        view_logits = self.recognizer.view_logits
        logits = await asyncio.wrap_future(self.worker.encode(
            decoded.views, then=lambda f: view_logits(f[None], classifier)[0].cpu()))
        ranked = rank(names, logits.softmax(-1), top_k)
        result = {"video": name, "predictions": [{"label": label, "probability": p}
                                                 for label, p in ranked],
                  "labels": len(names), "views": int(decoded.views.shape[0]),
                  "frames_per_view": int(decoded.views.shape[1]), "fallback": decoded.fallback}
        if frames:
            from .pictures import frame_sheet

            sheet = await asyncio.to_thread(frame_sheet, decoded.views)
            result["frames"] = "data:image/jpeg;base64," + _base64(sheet)
        return result

    # -- explain -------------------------------------------------------------------------
    async def explain(self, path: str | os.PathLike, name: str, labels: Sequence[str],
                      label: str | None = None, method: str = "gradient",
                      head_fusion: str = "mean"):
        """`Recognizer.explain` of the video (its middle test view), in the model thread."""
        decoded = await self.decoder.views(path, name)
        return await asyncio.wrap_future(self.worker.call(
            self.recognizer.explain, decoded.views, list(labels), label=label, method=method,
            head_fusion=head_fusion))

    # -- timeline ------------------------------------------------------------------------
    def timeline(self, path: str | os.PathLike, name: str, labels: Sequence[str],
                 stride: float = 1.0, window: float | None = None, threshold: float = 0.0,
                 smooth: int = 1, top_k: int | None = None) -> Iterator[dict]:
        """The records `froster timeline -o x.jsonl` writes, one at a time (blocking: run it
        in a thread), each window with every label's logit and score too (for the chart);
        a segment comes as soon as it is closed (the file has them all at the end)."""
        from ..data.stream import FrameStream
        from ..inference.timeline import SegmentBuilder, Timeline
        from ..inference.timeline.output import TimelineReport

        from ..data.decode import VideoDecodeError

        try:
            stream = FrameStream(os.fspath(path), apply_rotation=self.recognizer.view.apply_rotation)
        except VideoDecodeError as err:  # named as the client sent it, not by our file
            raise VideoDecodeError(str(err).replace(os.fspath(path), name)) from None
        stream.name = name
        try:
            timeline = Timeline(_ThroughWorker(self.recognizer, self.worker), stream,
                                list(labels), window=window, stride=stride,
                                threshold=threshold, smooth=smooth, top_k=top_k or None)
        except BaseException:
            stream.close()
            raise
        builder, report = SegmentBuilder(), TimelineReport(name)
        windows = iter(timeline)
        try:
            yield {"type": "timeline", **timeline.settings(), "duration": stream.duration}
            for w in windows:
                report.windows += 1
                closed = builder.add(w)
                yield {"type": "window", **w.record(), "logits": _rounded(w.logits, 5),
                       "scores": _rounded(w.scores, 6)}
                if closed is not None:  # a segment is known once the next one starts
                    yield {"type": "segment", **closed.record()}
        finally:  # also when the client went away: the file is closed now
            windows.close()
            stream.close()
        report.error = stream.error
        report.frames_decoded, report.corrupt_packets = stream.decoded, stream.corrupt_packets
        report.dropped_frames, report.end_time = stream.dropped, timeline.end_time
        sent = len(builder.segments)
        for segment in builder.finish(report.end_time)[sent:]:
            yield {"type": "segment", **segment.record()}
        yield {"type": "end", **report.end_record()}

    @staticmethod
    def rescore(labels: Sequence[str], windows: Sequence[dict], threshold: float = 0.0,
                smooth: int = 1, end_time: float | None = None) -> dict:
        """Windows' labels and the segments again for another threshold or smoothing, from
        the logits a timeline gave (no model: `WindowScorer` and `SegmentBuilder`)."""
        from ..inference.timeline import SegmentBuilder, Window, WindowScorer

        names = [ClassText.parse(label).name for label in labels]
        scorer, builder, out = WindowScorer(names, threshold, smooth), SegmentBuilder(), []
        for i, record in enumerate(windows):
            logits = torch.tensor(record["logits"], dtype=torch.float32)
            if logits.shape != (len(names),):
                raise FrosterError(f"window {i}: {logits.numel()} logits for {len(names)} labels")
            probabilities, scores, top, label = scorer(logits)
            window = Window(i, float(record["start"]), float(record["end"]), [], [], logits,
                            probabilities, scores, top, label, top[0][1])
            builder.add(window)
            out.append({"window": i, "label": label, "probability": round(top[0][1], 6),
                        "scores": _rounded(scores, 6)})
        segments = [s.record() for s in builder.finish(end_time)]
        return {"threshold": threshold, "smooth": smooth, "windows": out, "segments": segments}


def _rounded(values: torch.Tensor, digits: int) -> list[float]:
    return [round(float(v), digits) for v in values]


def _base64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


def explanation_picture(explanation, name: str, fmt: str = "png", folder: Path | None = None,
                        fps: float = 2.0) -> bytes:
    """The picture `froster explain` draws for one model: the PNG grid, or the GIF."""
    import io
    import tempfile

    from ..explain.render import MapRow, animation, draw_grid, save_gif

    e = explanation
    rows = [MapRow(["this model", f"{e.label}: p = {e.probability:.2f}"], e.frames, e.maps)]
    if fmt == "gif":
        handle, path = tempfile.mkstemp(suffix=".gif", dir=folder)
        os.close(handle)
        try:
            save_gif(animation(rows, name), path, fps)
            return Path(path).read_bytes()
        finally:
            os.unlink(path)
    fusion = "" if e.method == "gradient" and e.head_fusion == "mean" else f", heads: {e.head_fusion}"
    what = f"where '{e.label}' comes from" if e.method == "gradient" else \
        "where information flows from (the same for every label)"
    title = f"{name}: {what} ({e.method}{fusion}; view {e.view + 1} of {e.views})"
    buffer = io.BytesIO()
    draw_grid(rows, title).save(buffer, format="PNG")
    return buffer.getvalue()
