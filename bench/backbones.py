"""The video backbones of the paper's Table 3 side by side: their size at ViT-B/16, and the
time and memory of a FROSTER training step against VCLIP's `neighbor` (bench/throughput.py's
2-layer ViT-B/16 setting: random weights, batch 1 x 8 frames of 224 px, 400 K400 class
texts x 2 prompts (the same template in every step), the frozen teacher and its text
cache shared by every student).

    python bench/backbones.py
    python bench/backbones.py --device cuda --model ViT-B-16   # full depth on a GPU

Prints, for each backbone <name>:
- params_added_M_<name>: parameters the backbone adds to a full ViT-B/16 CLIP (12 blocks);
- params_trainable_M_<name>: what trains with `train_params: added` (the added modules,
  logit_scale and FROSTER's two heads); for neighbor and mean, which add nothing and can
  only train everything, the `all` count (every CLIP parameter and the heads);
- step_over_neighbor_<name>: seconds of a training step (forward + backward, `train_params:
  all`) over neighbor's, same batch, interleaved rounds, median per backbone (the text
  tower's 800 prompts are most of a step at this size);
- visual_step_over_neighbor_<name>: the same for the visual tower alone (forward +
  backward of the frame embeddings): the backbone's own cost;
- peak_mem_over_neighbor_<name>: memory of training over neighbor's, `train_params: all`:
  the student's weights and FROSTER's heads and AdamW's state (two fp32 tensors per
  trainable parameter), counted, plus the peak of one forward + backward (activations and
  gradients), sampled; the teacher (shared, the same for all) is left out;
- peak_mem_added_over_all_<name>: the same with `train_params: added` over `all`.
On CPU, memory is the peak resident set above the level before the student is built
(large blocks returned to the OS on free, see _measure.track_large_allocations).
"""

from __future__ import annotations

import argparse
import copy
import gc
import logging
import random
import statistics
import sys
import time
from functools import partial

import torch
from _measure import PeakRSS, k400_class_texts, track_large_allocations

from froster import backbones
from froster.clip import create_clip
from froster.distill import Froster, FrozenTeacher
from froster.model import VideoCLIP
from froster.prompts import PromptBank

NAMES = backbones.names()


def progress(message: str, start=time.perf_counter()) -> None:
    print(f"[{time.perf_counter() - start:6.0f} s] {message}", file=sys.stderr, flush=True)
ADDED = [n for n in NAMES if backbones.get(n)().adds_parameters]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def count_parameters(model_name: str) -> dict[str, float]:
    """Added and trainable parameters (millions) of each backbone at full depth."""
    torch.manual_seed(0)
    clip, _ = create_clip(model_name)
    plain = sum(p.numel() for p in clip.parameters())
    embed = clip.text_projection.shape[-1]
    heads = 2 * 2 * embed * embed  # projector_v and projector_t: two D x D matrices each
    out = {}
    for name in NAMES:
        student = VideoCLIP(clip, temporal=name)
        added = sum(p.numel() for p in student.added_parameters())
        if added:
            student.set_train_params("added")
            trainable = sum(p.numel() for p in student.parameters() if p.requires_grad) + heads
            student.set_train_params("all")
        else:
            trainable = plain + heads
        out[f"params_added_M_{name}"] = added / 1e6
        out[f"params_trainable_M_{name}"] = trainable / 1e6
        student.backbone.detach(clip)
        assert sum(p.numel() for p in clip.parameters()) == plain
    return out


def froster(clip, teacher: FrozenTeacher, name: str, train_params: str, device) -> Froster:
    """A FROSTER model of backbone `name` whose teacher (and its text cache) is `teacher`,
    shared by every model of the benchmark."""
    torch.manual_seed(0)
    student = VideoCLIP(copy.deepcopy(clip), temporal=name)
    student.set_train_params(train_params)
    model = Froster(student, teacher_clip=teacher.encoder.clip).to(device).train()
    model._teacher = teacher  # one text cache for all
    return model


def train_step(model, bank, video, labels, templates) -> None:
    model.zero_grad(set_to_none=True)
    model(video, labels, bank, templates).loss.backward()


def adamw_state_mb(model) -> float:
    """AdamW's state: two fp32 tensors per trainable parameter (counted, not sampled)."""
    return 2 * 4 * sum(p.numel() for p in model.parameters() if p.requires_grad) / 2**20


def weights_mb(model) -> float:
    return 4 * sum(p.numel() for p in model.parameters()) / 2**20


def built_and_stepped(clip, teacher, name, train_params, bank, templates, video, labels, device):
    """(model, MB of training it): its weights and AdamW's state (counted) plus the peak of
    one forward + backward above the level before it (sampled: activations and gradients).
    With a frozen text tower the student's classifier is computed before, as it is cached
    after a real run's first steps (so is the teacher's, before all of this)."""
    model = froster(clip, teacher, name, train_params, device)
    if not model.student.text_trainable:
        model.class_embeddings(bank, templates, device)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    with PeakRSS() as mem:
        train_step(model, bank, video, labels, templates)
        sync(device)
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if device.type == "cuda" \
        else mem.peak_mb
    return model, weights_mb(model) + adamw_state_mb(model) + peak


def interleaved_times(steps: dict, rounds: int, device) -> dict[str, float]:
    """Median seconds of each `steps[name]()`, the backbones taking turns in every round."""
    times = {name: [] for name in steps}
    for _ in range(rounds):
        for name, run in steps.items():
            sync(device)
            start = time.perf_counter()
            run()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def visual_step(student, video) -> None:
    """Forward and backward of the visual tower alone: the backbone's own cost."""
    student.zero_grad(set_to_none=True)
    student.encode_frames(video).sum().backward()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="ViT-B-16-2L", help="model of the step measurements")
    parser.add_argument("--params-model", default="ViT-B-16", help="model of the parameter counts")
    parser.add_argument("--classes", type=int, default=400)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds after a warm-up")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    track_large_allocations()
    logging.getLogger().setLevel(logging.ERROR)
    device = torch.device(args.device)

    progress(f"counting parameters at {args.params_model}")
    results = count_parameters(args.params_model)

    torch.manual_seed(0)
    clip, tokenizer = create_clip(args.model)
    teacher = FrozenTeacher(copy.deepcopy(clip)).to(device)
    bank = PromptBank(k400_class_texts(args.classes), tokenizer)
    templates = bank.training_templates(random.Random(0))  # every step: one template + bare
    progress("the teacher's text embeddings (cached, as after a run's first steps)")
    for i in templates:
        teacher.prompt_embeddings(bank, i)
    size = clip.visual.image_size[0]
    video = torch.randn(args.batch, args.frames, 3, size, size, device=device)
    labels = torch.randint(0, args.classes, (args.batch,), device=device)

    peaks, models = {}, {}
    for name in ADDED:  # train_params: added first, each model dropped after its step
        progress(f"peak memory of training {name} (added)")
        model, peaks[name, "added"] = built_and_stepped(clip, teacher, name, "added", bank,
                                                        templates, video, labels, device)
        del model
    for name in NAMES:  # train_params: all, kept for the timing (this step is their warm-up)
        progress(f"peak memory of training {name} (all)")
        models[name], peaks[name, "all"] = built_and_stepped(clip, teacher, name, "all",
                                                             bank, templates, video, labels, device)
        models[name].zero_grad(set_to_none=True)
    progress(f"step times, {args.rounds} interleaved rounds")
    seconds = interleaved_times({name: partial(train_step, m, bank, video, labels, templates)
                                 for name, m in models.items()}, args.rounds, device)
    progress(f"visual tower times, {args.rounds + 1} interleaved rounds")
    for model in models.values():
        visual_step(model.student, video)  # warm-up
    visual = interleaved_times({name: partial(visual_step, m.student, video)
                                for name, m in models.items()}, args.rounds + 1, device)
    progress("done")

    print(f"model: {args.model} (steps and memory), {args.params_model} (parameters)")
    print(f"device: {device.type}")
    print(f"shape: batch {args.batch} x {args.frames} frames, {args.classes} classes x 2 prompts")
    for key, value in results.items():
        print(f"{key}: {value:.3f}")
    for name in NAMES:
        print(f"step_seconds_{name}: {seconds[name]:.4g}")
        print(f"visual_step_seconds_{name}: {visual[name]:.4g}")
        print(f"peak_mem_mb_{name}: {peaks[name, 'all']:.0f}")
        if name in ADDED:
            print(f"peak_mem_mb_added_{name}: {peaks[name, 'added']:.0f}")
    for name in NAMES:
        if name != "neighbor":
            print(f"step_over_neighbor_{name}: {seconds[name] / seconds['neighbor']:.2f}")
            print(f"visual_step_over_neighbor_{name}: {visual[name] / visual['neighbor']:.2f}")
            print(f"peak_mem_over_neighbor_{name}: "
                  f"{peaks[name, 'all'] / peaks['neighbor', 'all']:.2f}")
    for name in ADDED:
        print(f"peak_mem_added_over_all_{name}: {peaks[name, 'added'] / peaks[name, 'all']:.2f}")


if __name__ == "__main__":
    main()
