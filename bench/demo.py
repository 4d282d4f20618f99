"""The demo's exact savings, each measured side by side with what it replaced (interleaved
rounds in one run, so the machine's load hits both alike), on a smaller copy of its work:

- `benchmark_write`: drawing and encoding the benchmark's videos in one process per core
  instead of one (the files are the same bytes);
- `corpus`: drawing the pretraining frames likewise (the same frames);
- `train_epoch` / `eval`: one data-loading worker beside the model instead of decoding in
  the main process (`num_workers` 1 vs 0; the same weights and logits);
- `epoch_end`: what `Trainer.save` does at an epoch's end with `keep_epochs: none` (running
  average + training state) instead of `all` (plus the student's export).

    python bench/demo.py              # about 3 minutes on 2 quiet cores
    python bench/demo.py --rounds 3

Prints `key: value` lines: each variant's median seconds and `<part>_speedup` (old / new),
and `identical_*` checks. The whole demo's time comes from `froster demo` itself
(results.json `timings`).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from froster.demo.benchmark import BenchmarkSpec, write_benchmark
from froster.demo.parallel import cpu_cores
from froster.demo.pretrain import make_corpus
from froster.demo.run import demo_settings
from froster.engine.distributed import DistInfo
from froster.engine.evaluate import evaluate_checkpoint
from froster.engine.train import Trainer


def interleaved(variants: dict, rounds: int) -> dict[str, float]:
    """Median seconds of each variant (a function of the round), alternating the order."""
    times = {name: [] for name in variants}
    for r in range(rounds):
        for name in (list(variants) if r % 2 == 0 else list(variants)[::-1]):
            start = time.perf_counter()
            variants[name](r)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def report(part: str, old: str, new: str, seconds: dict[str, float]) -> None:
    print(f"{part}_seconds_{old}: {seconds[old]:.2f}")
    print(f"{part}_seconds_{new}: {seconds[new]:.2f}")
    print(f"{part}_speedup: {seconds[old] / seconds[new]:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per part")
    parser.add_argument("--train-per-class", type=int, default=32,
                        help="training videos per base class (the demo: 64 in each of 3 splits)")
    parser.add_argument("--test-per-class", type=int, default=16,
                        help="test videos per class (the demo: 100)")
    parser.add_argument("--scenes", type=int, default=300,
                        help="pretraining scenes of 4 frames (the demo: 1500)")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)
    cores = cpu_cores()
    print(f"cores: {cores}")
    print(f"torch_threads: {torch.get_num_threads()}")
    spec = BenchmarkSpec(train_per_class=args.train_per_class, test_per_class=args.test_per_class,
                         train_splits=1)

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seconds = interleaved({
            "one_process": lambda r: write_benchmark(root / f"one_{r}", spec, workers=1),
            "per_core": lambda r: write_benchmark(root / f"cores_{r}", spec, workers=cores),
        }, args.rounds)
        videos = sorted(p.relative_to(root / "one_0") for p in (root / "one_0").rglob("*.mp4"))
        print(f"benchmark_videos: {len(videos)}")
        report("benchmark_write", "one_process", "per_core", seconds)
        print("identical_videos: " + str(all((root / "one_0" / v).read_bytes() ==
                                             (root / "cores_0" / v).read_bytes()
                                             for v in videos)).lower())

        corpora = {}
        seconds = interleaved({
            "one_process": lambda r: corpora.__setitem__(1, make_corpus(args.scenes, workers=1)),
            "per_core": lambda r: corpora.__setitem__(cores, make_corpus(args.scenes, workers=cores)),
        }, args.rounds)
        print(f"corpus_frames: {len(corpora[1])}")
        report("corpus", "one_process", "per_core", seconds)
        print(f"identical_corpus: {str(torch.equal(corpora[1].images, corpora[cores].images)).lower()}")

        bench = root / "one_0"
        _, _, cfg = demo_settings()
        cfg = replace(cfg, pretrained=None, data_root=str(bench / "videos"), distill=False,
                      epochs=1000, average_from_epoch=1, train_list=str(bench / "splits/train_1.csv"),
                      class_file=str(bench / "splits/train_rephrased.json"))
        trainers = {}
        for workers in (0, 1):
            torch.manual_seed(0)
            trainers[workers] = Trainer(replace(cfg, num_workers=workers,
                                                output_dir=str(root / f"run_w{workers}")), DistInfo())
        print(f"train_steps_per_epoch: {trainers[0].steps_per_epoch}")
        seconds = interleaved({f"workers_{w}": (lambda r, w=w: trainers[w].train_epoch())
                               for w in (0, 1)}, args.rounds)
        report("train_epoch", "workers_0", "workers_1", seconds)
        a, b = (trainers[w].model.state_dict() for w in (0, 1))
        print(f"identical_weights: {str(all(torch.equal(a[k], b[k]) for k in a)).lower()}")

        metrics = {}

        def evaluate(workers: int) -> None:
            trainer = trainers[workers]
            metrics[workers] = evaluate_checkpoint(
                trainer.student, trainer.tokenizer, trainer.cfg, str(bench / "splits/val.csv"),
                str(bench / "splits/train_rephrased.json"), DistInfo(), None, "eval")
        seconds = interleaved({f"workers_{w}": (lambda r, w=w: evaluate(w)) for w in (0, 1)},
                              args.rounds)
        print(f"eval_videos: {metrics[0].total}")
        report("eval", "workers_0", "workers_1", seconds)
        print(f"identical_metrics: {str(metrics[0].summary() == metrics[1].summary()).lower()}")

        # each keeps its own run folder, so neither removes the other's exports
        trainers[0].cfg = replace(trainers[0].cfg, keep_epochs="all")
        trainers[1].cfg = replace(trainers[1].cfg, keep_epochs="none")

        def epoch_end(trainer: Trainer) -> None:
            trainer.epoch += 1
            trainer.save()
        seconds = interleaved({"keep_all": lambda r: epoch_end(trainers[0]),
                               "keep_none": lambda r: epoch_end(trainers[1])}, max(args.rounds, 3))
        report("epoch_end", "keep_all", "keep_none", seconds)


if __name__ == "__main__":
    sys.exit(main())
