""""Pretraining" a tiny CLIP on single frames of the world and their captions.

Like CLIP, the model sees appearance and language, never time: each sample is one
frame with a caption of what that frame shows (see `world.frame_caption`). It learns
the shared words (colours, shapes, sizes, left/right/top/bottom, faint, backgrounds)
and, from frames whose motion trail is visible, some of the action words. Frames
come from every action, base and novel, as CLIP's web images come from every kind of
activity; the benchmark's own videos are never used (they have their own seeds).

The loss is open_clip's symmetric InfoNCE (`open_clip.loss.ClipLoss`) on an open_clip
architecture built by `froster.clip.create_clip`; the result is a plain state dict in
a `.safetensors` file that `create_clip(model, pretrained=path)` loads.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from open_clip.loss import ClipLoss

from ..clip import create_clip, preprocess_config
from ..model import VideoCLIP
from .benchmark import video_seed
from .parallel import map_in_processes
from .world import ACTIONS, SIGNATURE_PROB, frame_caption, render_frame, sample_scene, trail_visible

__all__ = ["PretrainConfig", "FrameCorpus", "make_corpus", "contrastive_loss", "pretrain",
           "save_clip", "UsedRows"]


@dataclass(frozen=True)
class PretrainConfig:
    model: str = "froster-demo"
    scenes: int = 1500           # scenes drawn (all actions equally often)
    frames_per_scene: int = 4    # random moments of each scene
    steps: int = 600
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 50
    size: int = 32
    trail_prob: float = 0.5
    signature_prob: float = SIGNATURE_PROB
    seed: int = 0
    #: optimise only the token embedding's rows that the run's captions use (`UsedRows`):
    #: AdamW's updates of the others are weight decay alone, applied at the end; the same
    #: algorithm for a sixth less work per step (docs/demo.md)
    used_token_rows: bool = False


@dataclass
class FrameCorpus:
    """Frames with what is needed to caption them again at every epoch."""

    images: torch.Tensor          # uint8 (N, 3, H, W)
    scenes: list                  # Scene of each frame
    times: list[float]            # moment s in [0, 1]
    shows_action: list[bool]      # is the trail visible in the frame

    def __len__(self) -> int:
        return len(self.times)

    def captions(self, indices, rng: np.random.Generator) -> list[str]:
        return [frame_caption(self.scenes[i], self.times[i], rng, mentions_action=self.shows_action[i])
                for i in indices]


def make_corpus(scenes: int, frames_per_scene: int = 4, size: int = 32, trail_prob: float = 0.5,
                seed: int = 0, signature_prob: float = SIGNATURE_PROB,
                workers: int | None = None) -> FrameCorpus:
    """`scenes` scenes (each from its own seed) and `frames_per_scene` random moments of
    each, drawn in `workers` processes (default: one per core for a large corpus)."""
    draw = partial(_draw_scene, frames_per_scene=frames_per_scene, size=size,
                   trail_prob=trail_prob, seed=seed, signature_prob=signature_prob)
    images, kept_scenes, times, shows = [], [], [], []
    for scene, moments in map_in_processes(draw, range(scenes), workers):
        for image, s, visible in moments:
            images.append(image)
            kept_scenes.append(scene)
            times.append(s)
            shows.append(visible)
    tensor = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return FrameCorpus(tensor, kept_scenes, times, shows)


def _draw_scene(number: int, frames_per_scene: int, size: int, trail_prob: float, seed: int,
                signature_prob: float):
    """Scene `number` and its moments: (scene, [(frame, time, trail visible)])."""
    action_index = number % len(ACTIONS)
    rng = np.random.default_rng(video_seed(seed, "pretrain", action_index, number))
    scene = sample_scene(rng, ACTIONS[action_index].name, trail_prob, signature_prob)
    moments = [(render_frame(scene, float(s), size), float(s), trail_visible(scene, float(s), size))
               for s in rng.uniform(0, 1, frames_per_scene)]
    return scene, moments


def _normalise(images: torch.Tensor, clip) -> torch.Tensor:
    cfg = preprocess_config(clip)
    mean = torch.tensor(cfg["mean"], device=images.device).view(1, 3, 1, 1) * 255
    std = torch.tensor(cfg["std"], device=images.device).view(1, 3, 1, 1) * 255
    return (images.float() - mean) / std


def contrastive_loss(clip, images: torch.Tensor, tokens: torch.Tensor, loss_fn=None) -> torch.Tensor:
    """CLIP's InfoNCE on uint8 (B, 3, H, W) images and (B, L) caption tokens.

    Text goes through `VideoCLIP.encode_text`, which stops each caption at its end
    token: the same result as open_clip's, for a fraction of the work on short captions.
    """
    loss_fn = loss_fn or ClipLoss()
    image_features = clip.encode_image(_normalise(images, clip), normalize=True)
    text_features = VideoCLIP(clip, temporal="mean").encode_text(tokens)
    return loss_fn(image_features, text_features, clip.logit_scale.exp())


def _param_groups(clip, weight_decay: float) -> list[dict]:
    decay = [p for p in clip.parameters() if p.ndim >= 2]
    no_decay = [p for p in clip.parameters() if p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_at(step: int, cfg: PretrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(cfg.steps - cfg.warmup_steps, 1)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class PretrainResult:
    clip: torch.nn.Module
    tokenizer: Callable
    path: Path | None
    losses: list[float] = field(default_factory=list)
    corpus_seconds: float = 0.0
    train_seconds: float = 0.0


def pretrain(cfg: PretrainConfig = PretrainConfig(), out: str | os.PathLike | None = None,
             log: Callable[[str], None] | None = None, corpus: FrameCorpus | None = None,
             device: str | torch.device = "cpu") -> PretrainResult:
    """Train a random-weight `cfg.model` on captioned frames on `device`; save to `out` if
    given (the saved weights and the returned model are on the CPU)."""
    torch.manual_seed(cfg.seed)
    start = time.perf_counter()
    corpus = corpus or make_corpus(cfg.scenes, cfg.frames_per_scene, cfg.size, cfg.trail_prob,
                                   cfg.seed, cfg.signature_prob)
    corpus_seconds = time.perf_counter() - start
    clip, tokenizer = create_clip(cfg.model)
    device = torch.device(device)
    clip.to(device).train()
    batches = _batches(cfg, corpus, tokenizer)
    full_embedding = clip.token_embedding
    if cfg.used_token_rows:
        clip.token_embedding = UsedRows(full_embedding, torch.cat([t for _, t in batches]))
    optimizer = torch.optim.AdamW(_param_groups(clip, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)
    loss_fn = ClipLoss()
    losses, rates = [], []
    start = time.perf_counter()
    for step, (batch, tokens) in enumerate(batches):
        rates.append(lr_at(step, cfg))
        for group in optimizer.param_groups:
            group["lr"] = rates[-1]
        loss = contrastive_loss(clip, corpus.images[batch].to(device), tokens.to(device), loss_fn)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(clip.parameters(), 1.0)
        optimizer.step()
        with torch.no_grad():
            clip.logit_scale.clamp_(0, math.log(100))  # as open_clip's trainer does
        losses.append(loss.item())
        if log and (step % 50 == 0 or step == cfg.steps - 1):
            log(f"pretrain step {step + 1}/{cfg.steps} loss {loss.item():.3f} "
                f"({time.perf_counter() - start:.0f} s)")
    if cfg.used_token_rows:
        clip.token_embedding.write_back(full_embedding, [1 - lr * cfg.weight_decay for lr in rates])
        clip.token_embedding = full_embedding
    clip.cpu().eval()
    path = save_clip(clip, out) if out is not None else None
    return PretrainResult(clip, tokenizer, path, losses, corpus_seconds, time.perf_counter() - start)


def _batches(cfg: PretrainConfig, corpus: FrameCorpus, tokenizer) -> list[tuple[np.ndarray, torch.Tensor]]:
    """Every step's (frame indices, caption tokens), drawn up front from the run's generator:
    a fresh shuffle of the corpus whenever an epoch runs out, new captions every time."""
    rng = np.random.default_rng([cfg.seed, 99])
    order = np.array([], dtype=np.int64)
    batches = []
    for _ in range(cfg.steps):
        if len(order) < cfg.batch_size:
            order = np.concatenate([order, rng.permutation(len(corpus))])
        batch, order = order[: cfg.batch_size], order[cfg.batch_size:]
        batches.append((batch, tokenizer(corpus.captions(batch, rng))))
    return batches


class UsedRows(torch.nn.Module):
    """A token embedding trained on the rows `tokens` use, and nothing else.

    The vocabulary has 49408 rows and the captions use about a hundred. AdamW leaves a row
    whose gradient is always zero at zero moments, so its only update is the decoupled
    weight decay, w *= 1 - lr * weight_decay, at every step; `write_back` applies those
    to the other rows at the end, in the same order. The used rows get the same updates as
    in the full table (up to the order in which float sums are taken)."""

    def __init__(self, embedding: torch.nn.Embedding, tokens: torch.Tensor):
        super().__init__()
        weight = embedding.weight
        self.used = torch.unique(tokens.to(weight.device))
        self.weight = torch.nn.Parameter(weight.detach()[self.used].clone())
        lookup = torch.zeros(weight.shape[0], dtype=torch.long, device=weight.device)
        lookup[self.used] = torch.arange(len(self.used), device=weight.device)
        self.register_buffer("lookup", lookup, persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.embedding(self.lookup[tokens], self.weight)

    @torch.no_grad()
    def write_back(self, embedding: torch.nn.Embedding, decays) -> None:
        """Into the full `embedding`: the trained rows, and the others after `decays`."""
        weight = embedding.weight
        unused = torch.ones(weight.shape[0], dtype=torch.bool, device=weight.device)
        unused[self.used] = False
        rest = weight[unused]
        for decay in decays:
            rest.mul_(decay)
        weight[unused] = rest
        weight[self.used] = self.weight


def save_clip(clip, path: str | os.PathLike) -> Path:
    """An ordinary open_clip state dict; `.safetensors` by suffix, else `torch.save`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in clip.state_dict().items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path
