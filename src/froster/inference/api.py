"""Python API for open-vocabulary recognition: load a model once, then classify videos
against any labels, or embed videos and texts for retrieval.

    >>> from froster import Recognizer
    >>> rec = Recognizer.from_checkpoint("runs/k400/average")       # or .from_pretrained()
    >>> rec.classify("clip.mp4", ["juggling", "abseiling: descending a rock face on a rope"])
    [('juggling', 0.83), ('abseiling', 0.17)]

A video is seen exactly as the evaluation sees it: ``num_views`` temporal views of
``num_frames`` frames (``sampling="reference"``, the reference decoder's frames, or
``"uniform"``), short side resized to the model's input size and one centre crop, decoded
by the same dataset code (`froster.data.VideoDataset`). Unlike training and evaluation,
display rotation is applied by default (``apply_rotation=True``): frames as a person sees
the video.
Logits are the model's per-view logits (logit_scale * cosine, averaged over frames)
*summed over the views*, against the prompt-ensemble classifier (the 28 templates + the
bare class text by default, method.md; a plain label gets the reference's prompts,
"a photo of juggling. juggling", unless ``clean_prompts=True``). The towers run in fp32
as the reference tests (``precision="bf16"``/``"fp16"`` for speed; the logits stay fp32).
Probabilities are the softmax of those summed
logits over the given labels: they sum to 1 over the label set, so they say how the
labels compare with each other, not whether any of them is present.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

import torch
import torch.nn.functional as F

from ..clip import preprocess_config
from ..data.annotations import VideoItem
from ..data.dataset import VideoDataset
from ..data.loader import build_loader
from ..data.transforms import normalize, test_transform
from ..data.views import DEFAULT_VIEW, ViewSpec
from ..engine.precision import autocast
from ..errors import FrosterError
from ..model import VideoCLIP
from ..prompts import ALL_PROMPTS, BARE, ClassText, PromptBank, make_prompt
from .identity import checkpoint_identity, pretrained_identity, weights_identity
from .labels import label_index, label_names, label_texts, rank
from .text_cache import TextCache, text_key

__all__ = ["Recognizer", "VideoResult", "PREDICT_VIEW"]

#: How `froster predict` sees a video: the evaluation's views, rotated as displayed.
PREDICT_VIEW = DEFAULT_VIEW.replace(apply_rotation=True)


@dataclass
class VideoResult:
    """One video out of `Recognizer.stream`: per-view frame embeddings (V, T, D), or an error."""

    index: int
    path: str
    frames: torch.Tensor | None = None
    error: str | None = None
    fallback: str | None = None  # why the sampling rule was not followed, if it was not

    @property
    def ok(self) -> bool:
        return self.error is None


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Recognizer:
    """A video-text model loaded once, with the test-time view settings and a text cache.

    `identity` names the exact weights (for the text-embedding cache and search indexes);
    when not given it is computed from the weights on first use. `view` is how a video is
    seen (`froster.data.views.ViewSpec`; default `PREDICT_VIEW`: the evaluation's 3 views of
    8 x 16 frames at 30 fps by the reference's sampling, one centre crop, rotated as
    displayed); `num_frames`, `sampling_rate`, `target_fps`, `num_views`, `sampling` and
    `apply_rotation` override its fields. `clean_prompts`: plain labels without the
    reference's repeated name; `precision`: fp32 (default), bf16 or fp16 (CUDA only) for
    the towers.
    """

    def __init__(self, model: VideoCLIP, tokenizer, identity: str | None = None, *,
                 device: str | torch.device | None = None, view: ViewSpec | None = None,
                 num_frames: int | None = None, sampling_rate: int | None = None,
                 target_fps: float | None = None, num_views: int | None = None,
                 sampling: str | None = None, apply_rotation: bool | None = None,
                 templates: Sequence[str] = ALL_PROMPTS, cache_dir: str | os.PathLike | None = None,
                 use_cache: bool = True, batch_size: int = 4, num_workers: int | None = None,
                 clean_prompts: bool = False, precision: str = "fp32"):
        from ..engine.precision import eval_autocast_dtype

        changes = {"num_frames": num_frames, "sampling_rate": sampling_rate,
                   "target_fps": target_fps, "num_views": num_views, "sampling": sampling,
                   "apply_rotation": apply_rotation}
        self.view = (view or PREDICT_VIEW).replace(
            num_crops=1, **{k: v for k, v in changes.items() if v is not None})
        self.device = torch.device(device) if device is not None else _default_device()
        self.precision = precision
        self.dtype = eval_autocast_dtype(precision, self.device, key="precision")
        self.clean_prompts = bool(clean_prompts)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self._identity = identity
        self.templates = tuple(templates)
        self.cache = TextCache(cache_dir) if use_cache else None
        self.batch_size = batch_size
        self.num_workers = min(4, os.cpu_count() or 1) if num_workers is None else num_workers
        config = preprocess_config(model.clip)
        self.size = config["size"]
        # normalisation constants live on the model's device, put there once
        self.mean = torch.tensor(config["mean"], device=self.device).view(3, 1, 1)
        self.std = torch.tensor(config["std"], device=self.device).view(3, 1, 1)
        self.text_tower_calls = 0  # how many times the text tower ran (cache misses)

    # -- loading ---------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device=None, trust_pickle: bool = False,
                        **kwargs) -> "Recognizer":
        """A student exported by froster (a folder with model.safetensors + config.json), or
        another project's checkpoint file as released (FROSTER reference, Open-VCLIP,
        ViFi-CLIP; see froster.interop). Frames per view, sampling rate and target fps default
        to the ones the checkpoint records (its training run's), else 8 x 16 at 30 fps."""
        from ..checkpoint import load_student

        model, tokenizer, config = load_student(path, device="cpu", trust_pickle=trust_pickle)
        identity = checkpoint_identity(path, model.temporal, model.neighbor_padding)
        recorded = (config.get("extra") or {}).get("config") or {}
        for key, kind in (("num_frames", int), ("sampling_rate", int), ("target_fps", float)):
            if kwargs.get(key) is None and recorded.get(key):  # a clip spans what it did in training
                kwargs[key] = kind(recorded[key])
        if kwargs.get("clean_prompts") is None:  # the prompt form the model was trained with
            kwargs["clean_prompts"] = bool(recorded.get("clean_prompts", False))
        return cls(model, tokenizer, identity, device=device, **kwargs)

    @classmethod
    def from_pretrained(cls, model: str = "ViT-B-16", pretrained: str | None = "openai", *,
                        temporal: str = "neighbor", neighbor_padding: str = "zeros",
                        quick_gelu: bool | None = None, device=None, **kwargs) -> "Recognizer":
        """A CLIP through open_clip: `pretrained` is a tag (e.g. "openai", downloaded by
        open_clip where there is a network), a local weights file, or None (random weights).
        Raises `froster.clip.WeightsUnavailableError` with what to do when weights cannot be had."""
        from .. import backbones
        from ..checkpoint import build_student
        from ..student_spec import StudentSpec

        backbone = backbones.get(temporal)()
        if backbone.adds_parameters and not backbone.starts_as_clip:
            raise FrosterError(f"temporal={temporal!r} adds a module that only training sets "
                               f"(a plain CLIP would run it with random weights); pass a "
                               f"trained checkpoint instead (froster train ... temporal={temporal})")
        spec = StudentSpec(model=model, pretrained=pretrained, quick_gelu=quick_gelu,
                           temporal=temporal, neighbor_padding=neighbor_padding)
        if kwargs.get("clean_prompts") is None:
            kwargs["clean_prompts"] = False
        student, tokenizer = build_student(spec)
        identity = pretrained_identity(model, pretrained,
                                       f"{model}:qg={quick_gelu}:{temporal}:{neighbor_padding}")
        return cls(student, tokenizer, identity, device=device, **kwargs)

    @property
    def identity(self) -> str:
        if self._identity is None:
            self._identity = weights_identity(self.model.temporal, self.model.neighbor_padding,
                                              self.model.clip)
        return self._identity

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """The one rule for where tensors live: on the model's device. Inputs are moved
        here; only what leaves the library (a printed row, a written file) goes back to
        the CPU, at that edge."""
        return tensor.to(self.device, non_blocking=True)

    @property
    def view_settings(self) -> dict:
        """The view as predict's run key and the search index record it (this key order)."""
        view = self.view
        return {"num_frames": view.num_frames, "sampling_rate": view.sampling_rate,
                "target_fps": view.target_fps, "num_views": view.num_views,
                "num_crops": 1, "size": self.size, "sampling": view.sampling,
                "apply_rotation": view.apply_rotation}

    @property
    def run_settings(self) -> dict:
        """What else changes the numbers: the prompt form and the towers' precision."""
        return {"clean_prompts": self.clean_prompts, "precision": self.precision}

    # -- text ------------------------------------------------------------------------
    def _encode_prompts(self, texts: list[ClassText], templates: tuple[str, ...]) -> torch.Tensor:
        key = None
        if self.cache is not None:  # keyed by the exact prompts, so names/descriptions count
            prompts = [make_prompt(template, t, self.clean_prompts)
                       for t in texts for template in templates]
            extra = [str(len(templates))]
            if self.precision != "fp32":  # fp32 keys stay as they were before this option
                extra.append(self.precision)
            key = text_key(self.identity, prompts, extra)
        if key is not None and (cached := self.cache.get(key)) is not None:
            return cached.to(self.device)
        bank = PromptBank(texts, self.tokenizer, templates, self.clean_prompts)
        embeddings = []
        with torch.inference_mode():
            for start in range(0, len(texts), 256):  # bounded memory for huge label sets
                tokens = bank.stacked(bank.all_templates())[start:start + 256]  # plans on the host
                self.text_tower_calls += 1
                with autocast(self.device, self.dtype):
                    classes = self.model.encode_classes(tokens)
                embeddings.append(F.normalize(classes.float(), dim=-1))
        embeddings = torch.cat(embeddings)
        if key is not None:
            self.cache.put(key, embeddings)
        return embeddings

    def label_embeddings(self, labels: Sequence[str | ClassText],
                         templates: Sequence[str] | None = None) -> torch.Tensor:
        """(C, D) classifier: every label's prompts encoded, normalised, averaged, normalised.
        Labels are names or "Name: description"; templates default to the 29-prompt ensemble.
        Cached on disk by (model, labels, templates)."""
        return self._encode_prompts(label_texts(labels), tuple(templates or self.templates))

    def embed_texts(self, texts: Sequence[str], templates: Sequence[str] = (BARE,)) -> torch.Tensor:
        """(N, D) L2-normalised embeddings of free texts (each text as written by default;
        pass templates=ALL_PROMPTS for the label ensemble)."""
        texts = [ClassText(name=" ".join(t.split()), text=" ".join(t.split())) for t in texts]
        if not texts or not all(t.text for t in texts):
            raise FrosterError("empty text")
        return self._encode_prompts(texts, tuple(templates))

    # -- video -----------------------------------------------------------------------
    def dataset(self, paths: Sequence[str | os.PathLike]) -> VideoDataset:
        """The evaluation's test dataset over `paths` with this recognizer's view settings."""
        items = [VideoItem(os.fspath(p), 0, i + 1) for i, p in enumerate(paths)]
        return VideoDataset(items, mode="test", view=self.view, size=self.size, decode_threads=1)

    def load_video(self, video) -> torch.Tensor:
        """uint8 (V, T, 3, S, S) model input for one video.

        - a path: decoded into the test views (raises VideoDecodeError for a bad file);
        - uint8 (T, H, W, 3) frames of one clip, or (V, T, H, W, 3) several clips: each
          resized (short side S) and centre-cropped like a test view;
        - uint8 (V, T, 3, S, S) or (T, 3, S, S): taken as they are.
        """
        if not isinstance(video, torch.Tensor):
            dataset = self.dataset([video])
            return dataset.load_test_views(dataset.items[0]).frames
        if video.dtype != torch.uint8:
            raise ValueError(f"a frame tensor must be uint8, got {video.dtype} (use `encode` "
                             "for normalised float input)")
        if video.shape[-1] == 3 and video.dim() in (4, 5):
            clips = video if video.dim() == 5 else video[None]
            return torch.cat([test_transform(clip, self.size, 1) for clip in clips])
        if video.shape[-3] == 3 and video.dim() in (4, 5):
            return video if video.dim() == 5 else video[None]
        raise ValueError(f"cannot read a video from a tensor of shape {tuple(video.shape)}: "
                         "expected uint8 (T, H, W, 3), (V, T, H, W, 3) or (V, T, 3, S, S)")

    def encode(self, videos: torch.Tensor) -> torch.Tensor:
        """uint8 or normalised float (B, V, T, 3, S, S) -> (B, V, T, D) frame embeddings."""
        if videos.dim() != 6:
            raise ValueError(f"expected (batch, views, frames, 3, H, W), got {tuple(videos.shape)}")
        videos = self.to_device(videos)
        if videos.dtype == torch.uint8:
            videos = normalize(videos, self.mean, self.std)
        batch, views = videos.shape[:2]
        with torch.inference_mode(), autocast(self.device, self.dtype):
            frames = self.model.encode_frames(videos.flatten(0, 1))
        return frames.float().view(batch, views, *frames.shape[1:])

    def view_logits(self, frames: torch.Tensor, classifier: torch.Tensor) -> torch.Tensor:
        """(B, V, T, D) frame embeddings, (C, D) classifier -> (B, C) logits summed over views."""
        frames = self.to_device(frames)
        batch, views = frames.shape[:2]
        with torch.inference_mode():
            per_view = self.model.logits(frames.flatten(0, 1),
                                         self.to_device(classifier).to(frames.dtype))
        return per_view.view(batch, views, -1).sum(dim=1)

    @staticmethod
    def video_embedding(frames: torch.Tensor) -> torch.Tensor:
        """(..., V, T, D) frame embeddings -> (..., D): mean over views and frames, L2-normalised.
        Its dot product with a class embedding ranks labels exactly as the summed logits do."""
        return F.normalize(frames.mean(dim=(-3, -2)), dim=-1)

    def stream(self, paths: Sequence[str | os.PathLike], batch_size: int | None = None,
               num_workers: int | None = None, progress: bool | None = False,
               desc: str = "videos") -> Iterator[VideoResult]:
        """Decode `paths` in worker processes, batch them, and yield a VideoResult per
        video in input order; a video that cannot be read comes with its error."""
        if not paths:
            return
        from tqdm import tqdm

        dataset = self.dataset(paths)
        workers = self.num_workers if num_workers is None else num_workers
        workers = min(workers, len(paths))
        loader = build_loader(dataset, batch_size=batch_size or self.batch_size,
                              num_workers=workers, shuffle=False,
                              pin_memory=self.device.type == "cuda",
                              prefetch_factor=2 if workers else None)
        if workers and self.device.type == "cpu":
            # The forward pass keeps every core busy; decoding at low priority fills the
            # gaps instead of stalling the model's threads (which wait on each other).
            loader.worker_init_fn = functools.partial(_low_priority, loader.worker_init_fn)
        bar = tqdm(total=len(paths), desc=desc, unit="video", disable=not progress if
                   progress is not None else None, dynamic_ncols=True)
        try:
            for batch in loader:
                results = []
                if len(batch["index"]):
                    frames = self.encode(batch["video"])  # stays on the model's device
                    fallback = dict(batch["fallback"])
                    results += [VideoResult(int(i), path, frames[k], fallback=fallback.get(path))
                                for k, i in enumerate(batch["index"])
                                for path in [dataset.items[int(i)].path]]
                results += [VideoResult(int(i), dataset.items[int(i)].path, error=f.message)
                            for i, f in zip(batch["failed_index"], batch["failed"])]
                for result in sorted(results, key=lambda r: r.index):
                    bar.update(1)
                    yield result
        finally:
            bar.close()

    # -- the user-facing calls ---------------------------------------------------------
    def logits(self, video, labels: Sequence[str | ClassText],
               templates: Sequence[str] | None = None) -> torch.Tensor:
        """(C,) view-summed logits of one video (path or frame tensor) against `labels`."""
        classifier = self.label_embeddings(labels, templates)
        frames = self.encode(self.load_video(video)[None])
        return self.view_logits(frames, classifier)[0]

    def classify(self, video, labels: Sequence[str | ClassText], top_k: int | None = None,
                 templates: Sequence[str] | None = None) -> list[tuple[str, float]]:
        """Ranked [(label name, probability)] for one video; probabilities are the softmax
        over all `labels` of the view-summed logits (so they sum to 1 over the labels)."""
        names = label_names(labels)
        probs = self.logits(video, labels, templates).softmax(dim=-1)
        return rank(names, probs, top_k)

    def explain(self, video, labels: Sequence[str | ClassText], label: str | None = None,
                method: str = "gradient", head_fusion: str = "mean",
                templates: Sequence[str] | None = None):
        """Where the model looks: per-frame attention maps of one view of `video` for one
        label (`froster.explain`, docs/explain.md).

        The view is the middle one of the test views (`num_views // 2`: with 3 views, the
        one in the middle of the video), prepared and classified exactly as `classify`
        prepares and classifies each view (same transform, same prompt-ensemble
        classifier). `label`: a label's name (default: this view's top label). `method`:
        "gradient" (Chefer et al. 2021, default) or "rollout" (Abnar & Zuidema 2020);
        `head_fusion`: "mean" or "max" over the heads. Returns an `Explanation`: the frames
        as the model saw them (uint8 (T, S, S, 3)), the maps at the patch grid (T, h, w)
        and upsampled to the frames (T, S, S), each summing to 1 over the clip, the label
        and its probability (softmax over `labels` of this view's logits; `classify`
        sums all the views' logits, so the two can differ).
        """
        from ..explain.maps import Explanation, explain_clips, upsample

        names = label_names(labels)
        target = None if label is None else label_index(names, label)
        classifier = self.label_embeddings(labels, templates)
        views = self.load_video(video)
        view = views.shape[0] // 2
        clip = views[view]
        inputs = normalize(self.to_device(clip[None]), self.mean, self.std)
        with autocast(self.device, self.dtype):  # the towers' precision, as `encode`
            result = explain_clips(self.model, inputs, classifier.to(inputs.dtype), target,
                                   method, head_fusion)
        logits = result.logits[0].cpu()
        index = int(result.target[0])
        maps = result.maps[0].cpu()
        return Explanation(frames=clip.permute(0, 2, 3, 1).contiguous(), maps=maps,
                           pixel_maps=upsample(maps, tuple(clip.shape[-2:])), label=names[index],
                           probability=float(logits.softmax(dim=-1)[index]), labels=names,
                           logits=logits, view=view, views=views.shape[0], method=method,
                           head_fusion=head_fusion)

    def timeline(self, source, labels: Sequence[str | ClassText], window: float | None = None,
                 stride: float = 1.0, **options):
        """Windows of a long video or a live stream, yielded as they are known.

        `source`: a file, a URL, a capture device, "-" (stdin) or a binary file object.
        A window is `num_frames` frames over `window` seconds (default: the model's
        sampling, 8 x 16 frames at 30 fps = 4.27 s), one every `stride` seconds; each has
        its times, logits (as `logits` on its frames), probabilities, smoothed scores,
        top labels and label (None below `threshold`). Options: threshold, smooth, top_k,
        templates, batch_size, input_format, input_options, apply_rotation, on_frame.
        See `froster.inference.timeline`; `timeline.segments(windows)` merges them."""
        from .timeline import Timeline

        return Timeline(self, source, labels, window=window, stride=stride, **options)

    def embed_videos(self, videos: Iterable, batch_size: int | None = None,
                     num_workers: int | None = None, progress: bool = False) -> torch.Tensor:
        """(N, D) L2-normalised video embeddings (paths and/or frame tensors). A path that
        cannot be read raises VideoDecodeError; use `stream` to go on past bad files."""
        from ..data.decode import VideoDecodeError

        videos = list(videos)
        out: list[torch.Tensor | None] = [None] * len(videos)
        paths = [(i, v) for i, v in enumerate(videos) if not isinstance(v, torch.Tensor)]
        for i, v in enumerate(videos):
            if isinstance(v, torch.Tensor):
                out[i] = self.video_embedding(self.encode(self.load_video(v)[None]))[0]
        for result in self.stream([p for _, p in paths], batch_size, num_workers, progress):
            if not result.ok:
                raise VideoDecodeError(result.error)
            out[paths[result.index][0]] = self.video_embedding(result.frames)
        return torch.stack(out).cpu() if out else torch.empty(0, self.model.embed_dim)


def _low_priority(init, worker_id: int) -> None:
    if init is not None:
        init(worker_id)
    try:
        os.nice(19)
    except OSError:  # not permitted here: decode at normal priority
        pass
