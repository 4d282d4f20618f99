"""The default demo's time, stage by stage, and the exactness of what makes it fast.

1. `demo_*`: one whole default demo (`froster.demo.run.run_demo`, a fresh folder), its
   stages' seconds and its CPU time. The benchmark is written while pretraining runs in a
   process of its own, so `benchmark_seconds` lies inside `prepare_seconds`; the seven runs
   go side by side (`runs_seconds`, wall), and `zero_shot_seconds`, `fine_tune_seconds`,
   `froster_seconds` and `attention_seconds` are each the sum of its runs' own seconds (one
   core each).
2. The layout, measured side by side on a smaller copy of the demo's work (interleaved
   rounds in one run, so the machine's load hits both alike):
   - `side_by_side`: two training runs (fine-tuning and FROSTER on one split) in two
     single-threaded processes at once, against the same two one after the other here
     with torch's default threads (as --full runs them); `identical_weights_in_process`:
     a run in such a process gives the same weights as the same run here on one thread;
   - `omp_single_thread`: a single-threaded training run with OMP_WAIT_POLICY ACTIVE and
     PASSIVE (no thread ever waits, so the policy should not matter).
3. The savings kept from before, each against what it replaced:
   - `benchmark_write`: drawing and encoding the videos in one process per core instead of
     one (the files are the same bytes); `corpus`: the pretraining frames likewise;
   - `train_epoch` / `eval`: one data-loading worker beside the model instead of decoding
     in the main process (`num_workers` 1, as --full, vs 0, as the default; the same
     weights and logits);
   - `epoch_end`: `Trainer.save` at an epoch's end with `keep_epochs: none` (running
     average + training state) instead of `all` (plus the student's export).

    python bench/demo.py               # about 8 minutes on 2 quiet cores
    python bench/demo.py --no-demo     # parts 2 and 3 only (about 4 minutes)

Prints `key: value` lines: seconds, `<part>_speedup` (old / new) and `identical_*` checks.
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
from froster.demo.jobs import cpu_seconds, run_in_processes
from froster.demo.parallel import cpu_cores
from froster.demo.pretrain import PretrainConfig, make_corpus, pretrain
from froster.demo.settings import demo_settings
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


def whole_demo(root: Path) -> None:
    from froster.demo.run import run_demo

    cpu, start = cpu_seconds(), time.perf_counter()
    result = run_demo(root / "demo", log=lambda message: None)
    wall, used = time.perf_counter() - start, cpu_seconds() - cpu
    t = result["timings"]
    print(f"demo_seconds: {wall:.1f}")
    print(f"demo_cpu_seconds: {used:.1f}")
    print(f"demo_cpu_percent: {100 * used / wall:.0f}")
    for key in ("benchmark", "pretrain", "prepare", "runs", "zero_shot", "fine_tune", "froster",
                "attention"):
        print(f"{key}_seconds: {t[key]:.1f}")
    print(f"report_seconds: {t['total'] - t['prepare'] - t['runs']:.1f}")
    for row in result["rows"]:
        print(f"{row['key']}_base_novel_hm: {row['base']:.1f} / {row['novel']:.1f} / {row['hm']:.1f}")
    print(f"conclusions_held: {str(result['conclusions_held']).lower()}")


def _trainer(cfg, output_dir: str, threads: int | None = None) -> Trainer:
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    return Trainer(replace(cfg, output_dir=output_dir), DistInfo())


def train_run(job: tuple) -> dict:
    """(cfg, output_dir, epochs): train that many epochs here; the weights' sums back."""
    cfg, output_dir, epochs = job
    trainer = _trainer(cfg, output_dir)
    start = time.perf_counter()
    for _ in range(epochs):
        trainer.train_epoch()
    state = trainer.model.state_dict()
    return {"seconds": time.perf_counter() - start, "threads": torch.get_num_threads(),
            "state": {k: v.clone() for k, v in state.items()}}


def layout(bench: Path, clip: Path, root: Path, rounds: int, epochs: int) -> None:
    _, _, cfg = demo_settings()
    cfg = replace(cfg, pretrained=str(clip), data_root=str(bench / "videos"), device="cpu",
                  epochs=1000, average_from_epoch=1, train_list=str(bench / "splits/train_1.csv"),
                  class_file=str(bench / "splits/train_rephrased.json"))
    pair = [(replace(cfg, distill=d), str(root / f"run_{d}_{{}}"), epochs) for d in (False, True)]
    default_threads = torch.get_num_threads()

    def after_another(r):  # --full's layout: one run, then the other, on all threads
        torch.set_num_threads(default_threads)
        for c, out, n in pair:
            train_run((replace(c, num_workers=1), out.format(f"seq{r}"), n))

    def side_by_side(r):
        jobs = [(c, out.format(f"par{r}"), n) for c, out, n in pair]
        list(run_in_processes(train_run, jobs, workers=2, threads=1))

    seconds = interleaved({"after_another": after_another, "side_by_side": side_by_side}, rounds)
    report("side_by_side", "after_another", "side_by_side", seconds)
    # a run in a single-threaded process == the same run here on one thread
    (_, there), = run_in_processes(train_run, [(pair[1][0], pair[1][1].format("p"), 1)], 1)
    torch.set_num_threads(1)
    here = train_run((pair[1][0], pair[1][1].format("h"), 1))
    torch.set_num_threads(default_threads)
    same = all(torch.equal(here["state"][k], there["state"][k]) for k in here["state"])
    print(f"identical_weights_in_process: {str(same).lower()}")

    trained = {"ACTIVE": [], "PASSIVE": []}  # each run's own seconds, without the start

    def policy(name):
        def one(r):
            job = (pair[0][0], pair[0][1].format(f"{name}{r}"), epochs)
            (_, out), = run_in_processes(train_run, [job], 1, env={"OMP_WAIT_POLICY": name})
            trained[name].append(out["seconds"])
        return one
    interleaved({name: policy(name) for name in trained}, rounds)
    active, passive = (statistics.median(trained[name]) for name in ("ACTIVE", "PASSIVE"))
    print(f"omp_single_thread_seconds_active: {active:.2f}")
    print(f"omp_single_thread_seconds_passive: {passive:.2f}")
    print(f"omp_single_thread_passive_over_active: {passive / active:.3f}")


def savings(args, root: Path, bench: Path) -> None:
    cores = cpu_cores()
    spec = BenchmarkSpec(train_per_class=args.train_per_class, test_per_class=args.test_per_class,
                         train_splits=1)
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

    _, _, cfg = demo_settings(full=True)
    cfg = replace(cfg, pretrained=None, data_root=str(bench / "videos"), distill=False,
                  epochs=1000, average_from_epoch=1, train_list=str(bench / "splits/train_1.csv"),
                  class_file=str(bench / "splits/train_rephrased.json"))
    trainers = {}
    for workers in (0, 1):
        trainers[workers] = _trainer(replace(cfg, num_workers=workers), str(root / f"run_w{workers}"))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per part")
    parser.add_argument("--no-demo", action="store_true", help="skip the whole demo (part 1)")
    parser.add_argument("--train-per-class", type=int, default=32,
                        help="training videos per base class of parts 2-3 (the default demo: "
                             "16 in each of 3 splits; --full: 64)")
    parser.add_argument("--test-per-class", type=int, default=16,
                        help="test videos per class of parts 2-3 (the default demo: 50)")
    parser.add_argument("--scenes", type=int, default=300,
                        help="pretraining scenes of 4 frames (the demo: 1500)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of each run in part 2")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)
    print(f"cores: {cpu_cores()}")
    print(f"torch_threads: {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if not args.no_demo:
            whole_demo(root)
        spec = BenchmarkSpec(train_per_class=args.train_per_class, test_per_class=args.test_per_class,
                             train_splits=1)
        bench = root / "bench"
        write_benchmark(bench, spec)
        clip = root / "clip.safetensors"
        pretrain(replace(PretrainConfig(), steps=5, scenes=100), clip)
        layout(bench, clip, root, args.rounds, args.epochs)
        savings(args, root, bench)


if __name__ == "__main__":
    sys.exit(main())
