"""The training loop: FROSTER (or plain fine-tuning) of a video CLIP student.

One optimiser step sees `batch_size` videos in total: `batch_size / (world_size *
grad_accum)` per rank and micro-step. A step draws one of the 28 templates (plus the bare
prompt) from a seeded generator that is part of the checkpoint, so a resumed run draws
the same templates. Videos arrive as uint8 and are normalised here, on the device.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from ..checkpoint import build_student, export_student, student_config, write_checkpoint
from ..clip import preprocess_config
from ..config import Config, save_config
from ..data import FailureLog, VideoDataset, build_loader, normalize, read_annotations, set_epoch
from ..data.loader import batches, loader_timeout
from ..distill import Froster
from ..errors import FrosterError
from ..student_spec import StudentSpec
from . import checkpoints as ckpt
from .averaging import WeightSum, run_epochs, sum_folders
from .batching import out_of_memory, split_batch
from .distributed import DistInfo, barrier, ddp_options, gather_objects, main_first, mean_over_ranks
from .epoch_progress import EpochProgress
from .evaluate import eval_dataset, eval_files, evaluate, write_report
from .init_weights import init_spec, load_init
from .inputs import class_bank, list_file, require_data_root
from .logger import RunLogger
from .optim import param_groups
from .precision import autocast, autocast_dtype, eval_autocast_dtype, grad_scaler
from .record import FAILED_FILE, RECORD_FILE, build_record, write_record
from .save_points import SavePoints, requeue_job
from .scalars import StepSums, step_record
from .schedule import learning_rate, set_lr


def student_spec(cfg: Config) -> StudentSpec:
    return StudentSpec(model=cfg.model, pretrained=cfg.pretrained, quick_gelu=cfg.quick_gelu,
                       temporal=cfg.temporal, neighbor_padding=cfg.neighbor_padding)


TEACHER_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Trainer:
    """Builds everything a run needs from a config; `run()` trains, saves and evaluates."""

    def __init__(self, cfg: Config, info: DistInfo):
        self.cfg, self.info, self.device = cfg, info, info.device
        self.output_dir = Path(cfg.output_dir)
        train_list = list_file(cfg.train_list, "train_list")
        require_data_root(cfg.data_root, cfg.train_list)
        if cfg.val_list:
            list_file(cfg.val_list, "val_list")
        micro, self.grad_accum = split_batch(cfg.batch_size, info.world_size, cfg.grad_accum,
                                             cfg.device_batch_size)
        self.micro_batch = micro

        torch.manual_seed(cfg.seed)  # same initial weights (and projector init) on every rank
        spec, imported = student_spec(cfg), None
        if cfg.init:
            from ..interop import read_checkpoint
            imported = read_checkpoint(cfg.init, trust_pickle=cfg.trust_pickle)
            spec = init_spec(spec, imported, cfg.init)
        with main_first(info):  # one download of pretrained weights, not one per rank
            student, self.tokenizer = build_student(spec)
        student.set_train_params(cfg.train_params)
        self.bank = class_bank(cfg.class_file, "class_file", self.tokenizer, cfg.templates,
                               cfg.clean_prompts)
        self.eval_bank = class_bank(cfg.eval_class_file, "eval_class_file", self.tokenizer,
                                    cfg.templates, cfg.clean_prompts) \
            if cfg.eval_class_file else self.bank
        self.model = Froster(student, distill=cfg.distill, distill_weight=cfg.distill_weight,
                             alpha=cfg.alpha)  # the teacher: a copy of the pretrained CLIP
        if imported is not None:
            summary = load_init(self.model, imported, cfg.init)
            if info.is_main:
                print(f"init: {cfg.init}: {summary}", file=sys.stderr)
        # exact (sharding.py), and the text tower is a large share of a many-class step
        self.model.text_sharding = info.world_size > 1 if cfg.shard_text is None else cfg.shard_text
        student.set_grad_checkpointing(cfg.grad_checkpointing)
        if cfg.compile:
            student.enable_compile()
        if self.model.teacher is not None and cfg.teacher_precision != "fp32":
            self.model.teacher.set_dtype(TEACHER_DTYPES[cfg.teacher_precision])
        self.model.to(self.device).train()
        self.model.prepare_text(self.bank, self.device)  # the prompt plans, on the device once
        prep = preprocess_config(student.clip)
        self.size = prep["size"]
        # normalisation constants on the device, made once (not copied from the host per step)
        self.mean = torch.tensor(prep["mean"], device=self.device)
        self.std = torch.tensor(prep["std"], device=self.device)

        items = read_annotations(train_list, cfg.data_root or None, len(self.bank))
        self.dataset = VideoDataset(
            items, mode="train", view=cfg.view(), size=self.size,
            short_side_range=cfg.short_side_range(self.size), seed=cfg.seed, flip=cfg.flip,
            decode_timeout=cfg.decode_timeout)
        self.loader = build_loader(self.dataset, micro, num_workers=cfg.num_workers,
                                   timeout=loader_timeout(cfg.decode_timeout, micro),
                                   seed=cfg.seed, rank=info.rank, world_size=info.world_size,
                                   pin_memory=self.device.type == "cuda")
        self.steps_per_epoch = len(self.loader) // self.grad_accum
        if self.steps_per_epoch == 0:
            raise FrosterError(f"{train_list} has {len(items)} videos: too few for one step of "
                               f"batch_size={cfg.batch_size}")
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.warmup_steps = cfg.warmup_epochs * self.steps_per_epoch

        self.dtype = autocast_dtype(cfg.precision, self.device)
        self.eval_dtype = eval_autocast_dtype(cfg.eval_precision, self.device)
        self.scaler = grad_scaler(self.device, self.dtype)
        self.optimizer = torch.optim.AdamW(
            param_groups(self.model, cfg.weight_decay, cfg.logit_scale_decay,
                         student.added_parameters(), cfg.added_lr_scale), lr=cfg.lr)
        self.ddp = None
        if dist.is_available() and dist.is_initialized():  # a process group: DDP, even of one
            self.ddp = DistributedDataParallel(self.model, **ddp_options(self.device))
        self.template_rng = random.Random(cfg.seed)
        self.train_failures: dict[str, None] = {}  # messages of training videos that failed
        self.epoch = 0  # epochs finished
        self.step = 0   # optimiser steps taken
        self.progress: EpochProgress | None = None  # the unfinished epoch a resume goes on with
        self.resumed_from: Path | None = None
        self.save_points = SavePoints(info, cfg.save_every_minutes, cfg.save_every_steps)
        self.stopped: str | None = None  # the signal that stopped the run (state saved)
        # the running sum of the averaged epochs' weights; rank 0 only (DDP keeps them equal)
        self.average = WeightSum() if self.averaging and info.is_main else None
        self.logger = RunLogger(self.output_dir, enabled=info.is_main)

    @property
    def student(self):
        return self.model.student

    @property
    def averaging(self) -> bool:
        return 0 < self.cfg.average_from_epoch <= self.cfg.epochs

    def kept_exports(self) -> int | None:
        """Per-epoch exports to keep (None: all); without an average, the last epoch's
        export is the run's result and is always kept."""
        keep = self.cfg.kept_epochs()
        return keep if keep is None or self.averaging else max(keep, 1)

    # -- state ---------------------------------------------------------------------
    def resume(self, path: Path) -> None:
        """Continue from a training state: at an epoch's end, or in the middle of one at its
        exact next batch (every rank's part of the state comes back to it)."""
        state = ckpt.load_training_state(path)
        self.model.load_state_dict(state["model"])
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except ValueError as err:  # the parameter groups changed (e.g. logit_scale_decay)
            raise FrosterError(f"{path}: its optimiser state does not fit this config's parameter "
                               f"groups ({err}); resume with the weight-decay settings it was "
                               f"trained with (weight_decay, logit_scale_decay)") from None
        notes = ckpt.load_scaler(self.scaler, state["scaler"])
        ranks = state.get("ranks") or []
        rng = state["rng"]  # rank 0's; each rank's own where the state has them
        if len(ranks) == self.info.world_size:
            rng = ranks[self.info.rank]["rng"]
        notes += ckpt.restore_rng(rng, self.template_rng)
        self.epoch, self.step = state["epoch"], state["step"]
        if state.get("progress"):
            self.progress, more = EpochProgress.from_state(
                state["progress"], ranks, self.info.rank, self.info.world_size, self.device)
            notes += more
        if self.average is not None:
            self.average = self._resumed_average(path, state.get("average"))
        self.resumed_from = path
        if self.info.is_main:
            dropped = self.logger.rewind(self.step)
            where = (f"at step {self.progress.step}/{self.steps_per_epoch} of epoch "
                     f"{self.epoch + 1}" if self.progress else f"after epoch {self.epoch}")
            print(f"resumed from {path} {where} (step {self.step})"
                  + (f"; {dropped} log lines written after it were dropped" if dropped else ""),
                  file=sys.stderr)
            for note in notes:
                print(f"note: {note}", file=sys.stderr)
            changed = {k: (v, getattr(self.cfg, k)) for k, v in state["config"].items()
                       if k not in RUN_CONTROL_KEYS and hasattr(self.cfg, k)
                       and getattr(self.cfg, k) != v}
            if changed:  # allowed (e.g. more epochs), but the run is no longer one recipe
                print("warning: config differs from the checkpoint's: " + ", ".join(
                    f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items()),
                    file=sys.stderr)

    def _resumed_average(self, path: Path, saved: dict | None) -> WeightSum:
        """The running sum saved in `path`; for a checkpoint written before there was one,
        the sum of the run's epoch exports."""
        expected = list(range(self.cfg.average_from_epoch, self.epoch + 1))
        if saved is not None:
            average = WeightSum.from_state_dict(saved)
        elif not expected:
            average = WeightSum()
        else:
            folders = run_epochs(self.output_dir, expected[0], expected[-1])
            average, _ = sum_folders(folders.values(), list(folders))
        if average.tags != expected:
            raise FrosterError(f"{path} holds the weight sum of epochs {average.tags or 'none'}, but "
                               f"average_from_epoch={self.cfg.average_from_epoch} after "
                               f"{self.epoch} epochs asks for {expected or 'none'}; resume with the "
                               "average_from_epoch the run started with")
        return average

    def accumulate_average(self) -> None:
        """Add the student's weights to the running sum if this epoch is averaged (rank 0)."""
        if self.average is not None and self.epoch >= self.cfg.average_from_epoch:
            self.average.add(self.student.clip.state_dict(), self.epoch)

    def save(self) -> None:
        """Add this epoch to the running average, export the student if epochs are kept
        (rank 0), and write the full training state."""
        if self.info.is_main:
            self.accumulate_average()
            keep = self.kept_exports()
            if keep != 0:
                extra = {"epoch": self.epoch, "step": self.step, "config": self.cfg.to_dict()}
                export_student(self.student, student_spec(self.cfg),
                               ckpt.epoch_folder(self.output_dir, self.epoch), extra)
            ckpt.prune_epoch_folders(self.output_dir / "epochs", keep, self.epoch)
        self.save_state()

    def save_state(self, progress: EpochProgress | None = None) -> None:
        """The training state in checkpoints/last.pt, at an epoch's end or (`progress`) in
        the middle of one. Every rank calls it: each sends rank 0 its RNG states and its
        share of the unfinished epoch; rank 0 writes; all wait for the write."""
        part = {"rng": ckpt.rng_state(self.template_rng)}
        if progress is not None:
            part |= progress.rank_part()
        ranks = gather_objects(part)
        if self.info.is_main:
            self.logger.sync()  # the log up to this state is on the disk before the state
            ckpt.save_training_state(
                self.output_dir / ckpt.LAST, model=self.model, optimizer=self.optimizer,
                scaler=self.scaler, epoch=self.epoch, step=self.step,
                template_rng=self.template_rng, config=self.cfg.to_dict(),
                average=self.average.state_dict() if self.average is not None else None,
                ranks=ranks,
                progress=progress.shared(self.info.world_size) if progress else None)
        barrier()

    def write_average(self) -> Path:
        """The running average as a checkpoint folder, `<output_dir>/average` (rank 0)."""
        extra = {"epochs": list(self.average.tags), "step": self.step,
                 "config": self.cfg.to_dict()}
        return write_checkpoint(self.output_dir / "average", self.average.mean(),
                                student_config(self.student, student_spec(self.cfg), extra))

    # -- one step ------------------------------------------------------------------
    def train_step(self, micro_batches: list[dict]) -> dict:
        """One optimiser step over `grad_accum` micro-batches. Returns the loss terms and
        the gradient norm as 0-d float64 tensors on the device (read them at log steps:
        no host sync here but the fp16 scaler's own check), `skipped` (1 when the fp16
        scaler skipped the step for inf/nan gradients) and the learning rate (a float)."""
        try:
            return self._train_step(micro_batches)
        except torch.OutOfMemoryError as err:
            raise out_of_memory(err, self.device, self.micro_batch, self.grad_accum) from None

    def _train_step(self, micro_batches: list[dict]) -> dict:
        cfg, module = self.cfg, self.ddp or self.model
        templates = self.bank.training_templates(self.template_rng)
        totals: dict = {}
        for k, batch in enumerate(micro_batches):
            video = normalize(batch["video"].to(self.device, non_blocking=True), self.mean, self.std)
            labels = batch["label"].to(self.device, non_blocking=True)
            last = k == len(micro_batches) - 1
            sync = contextlib.nullcontext() if (self.ddp is None or last) else self.ddp.no_sync()
            with sync:
                with autocast(self.device, self.dtype):
                    terms = module(video, labels, self.bank, templates)
                self.scaler.scale(terms.loss / len(micro_batches)).backward()
            for key, value in terms.scalars().items():
                share = value / len(micro_batches)
                totals[key] = share if key not in totals else totals[key] + share
        self.scaler.unscale_(self.optimizer)
        norm = None
        if cfg.clip_grad > 0:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.clip_grad)
        elif self.scaler.is_enabled():  # the norm tells a skipped step without a host sync
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), float("inf"))
        if norm is not None:
            finite = torch.isfinite(norm)
            totals["skipped"] = (~finite).double()
            if cfg.clip_grad > 0:  # a skipped step's norm is not averaged in
                totals["grad_norm"] = torch.where(finite, norm.double(), 0.0)
        lr = learning_rate(self.step, self.total_steps, self.warmup_steps, cfg.lr,
                           cfg.warmup_start_lr, cfg.min_lr, cfg.cosine_after_warmup)
        set_lr(self.optimizer, lr)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        totals["lr"] = lr
        return totals

    def epoch_batches(self, epoch: int, failures: FailureLog, start_step: int = 0):
        """This rank's micro-batches of one epoch, grouped per optimiser step, from step
        `start_step` on (a resumed epoch: this rank's samples of the steps done are skipped)."""
        set_epoch(self.loader, epoch, start=start_step * self.grad_accum * self.micro_batch)
        group = []
        for batch in batches(self.loader):
            failures.add(batch)
            group.append(batch)
            if len(group) == self.grad_accum:
                yield group
                group = []

    def train_epoch(self) -> dict[str, float] | None:
        """One epoch (the rest of it, resumed mid-epoch); None: a signal stopped the run in
        the middle of it, after saving the state."""
        epoch = self.epoch  # 0-based index of the epoch being trained
        progress, self.progress = self.progress or EpochProgress(), None
        failures = progress.failures
        sums = StepSums()
        sums.sums = dict(progress.sums)  # a resumed epoch's sums so far
        bar = tqdm(total=self.steps_per_epoch, desc=f"epoch {epoch + 1}/{self.cfg.epochs}",
                   initial=progress.step,
                   disable=not (self.cfg.progress and self.info.is_main) or None,
                   dynamic_ncols=True)
        start = time.perf_counter() - progress.seconds
        for i, group in enumerate(self.epoch_batches(epoch, failures, progress.step),
                                  start=progress.step):
            if i == self.steps_per_epoch:
                break
            scalars = self.train_step(group)
            sums.add(scalars)
            bar.update(1)
            if self.step % self.cfg.log_every == 0:  # the step's only host read
                values = step_record(mean_over_ranks(scalars, self.device))
                bar.set_postfix({k: f"{v:.3g}" for k, v in values.items()
                                 if k not in ("grad_norm", "skipped") and v is not None})
                self.logger.log("train", self.step, epoch=epoch + 1, **values)
            if self.after_step(i + 1, sums.sums, failures, start):
                bar.close()
                return None
        bar.close()
        self.epoch += 1
        means = sums.means(self.steps_per_epoch, self.device)
        parts = gather_objects(([tuple(f) for f in failures.failures],
                                [tuple(f) for f in failures.fallbacks]))
        if self.info.is_main:
            log = FailureLog()
            for failed, fallbacks in parts:
                log.add(failed)
                log.add_fallbacks(fallbacks)
            elapsed = time.perf_counter() - start
            self.logger.log("epoch", self.step, epoch=self.epoch, seconds=round(elapsed, 2),
                            steps_per_second=self.steps_per_epoch / elapsed,
                            failed_videos=len(log.paths),
                            fallback_videos=len(log.fallback_paths), **means)
            print(f"epoch {self.epoch}/{self.cfg.epochs}: " +
                  "  ".join(f"{k} {v:.4g}" for k, v in means.items()) + f"  ({elapsed:.1f} s)",
                  file=sys.stderr)
            if log.failures or log.fallbacks:
                print(log.report(), file=sys.stderr)
            self.train_failures.update(dict.fromkeys(f.message for f in log.failures))
        return means

    def after_step(self, done: int, sums: dict, failures: FailureLog, start: float) -> bool:
        """At the boundary after the epoch's step `done` (every rank): write the state
        mid-epoch when a save is due (`save_points.py`); True: a signal stops the run here,
        its state saved. Not after the epoch's last step, whose end saves anyway."""
        if done >= self.steps_per_epoch:
            return False

        def save():
            began = time.perf_counter()
            self.save_state(EpochProgress(done, sums, failures, began - start))
            if self.info.is_main:
                print(f"saved the training state at step {done}/{self.steps_per_epoch} of epoch "
                      f"{self.epoch + 1} ({time.perf_counter() - began:.1f} s): "
                      f"{self.output_dir / ckpt.LAST}", file=sys.stderr)

        if self.save_points.boundary(self.step, save):
            self.stopped = self.save_points.stopping
            return True
        return False

    # -- the reproduction record ------------------------------------------------------
    def write_run_record(self) -> None:
        """record.json of the run (rank 0), with the training videos that failed so far
        (their messages in failed_videos.txt)."""
        cfg = self.cfg
        files = {"train_list": cfg.train_list, "class_file": cfg.class_file,
                 "val_list": cfg.val_list, "eval_class_file": cfg.eval_class_file,
                 "templates": cfg.templates}
        failures = list(self.train_failures)
        path = self.output_dir / FAILED_FILE
        if failures:
            path.write_text("".join(f"{m}\n" for m in failures), encoding="utf-8")
        else:
            path.unlink(missing_ok=True)
        videos = {"train": len(self.dataset), "train_failed": len(failures),
                  "failed_file": FAILED_FILE if failures else None, "epochs_done": self.epoch}
        write_record(build_record(cfg, self.info, files, videos, training=True), self.output_dir)

    def read_failures(self) -> None:
        """On resume: the training failures of the epochs run before."""
        path = self.output_dir / FAILED_FILE
        if (self.output_dir / RECORD_FILE).is_file() and path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            self.train_failures.update(dict.fromkeys(line for line in lines if line))

    # -- evaluation ----------------------------------------------------------------
    def evaluate(self, student, name: str, checkpoint: Path | None = None):
        """Evaluate `student` (exported in `checkpoint`) on val_list; write eval/<name>/ and
        log (rank 0)."""
        cfg = self.cfg
        val_list = list_file(cfg.val_list, "val_list")
        dataset = eval_dataset(cfg, str(val_list), len(self.eval_bank), self.size)
        metrics = evaluate(student, dataset, self.eval_bank, self.info,
                           batch_size=cfg.eval_batch_size, num_workers=cfg.num_workers,
                           dtype=self.eval_dtype, progress=cfg.progress, desc=f"eval {name}")
        if self.info.is_main:
            files = eval_files(cfg, val_list, cfg.eval_class_file or cfg.class_file, checkpoint)
            write_report(metrics, self.output_dir / "eval" / name, self.eval_bank.names,
                         record=build_record(cfg, self.info, files))
            self.logger.log("eval", self.step, name=name, **metrics.summary())
            print(f"eval {name}: {metrics.describe()}", file=sys.stderr)
        return metrics

    # -- the run -------------------------------------------------------------------
    def run(self) -> dict:
        """Train the epochs left, saving after each (and mid-epoch when due), evaluate and
        average. A SIGTERM/SIGUSR1 stops it at the next step with its state saved: the
        result then has `stopped` (the signal) and the run continues with resume=auto."""
        cfg = self.cfg
        if self.info.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            # overwrite acts once: a run started again from its config.yaml must not wipe it
            save_config(dataclasses.replace(cfg, overwrite=False), self.output_dir / "config.yaml")
            if self.epoch:
                self.read_failures()
            self.write_run_record()
            if self.resumed_from is None:
                self.logger.log("start", self.step, config=cfg.to_dict(),
                                world_size=self.info.world_size,
                                steps_per_epoch=self.steps_per_epoch)
            else:
                self.logger.log("resume", self.step, path=str(self.resumed_from),
                                epoch=self.epoch, epoch_step=self.progress.step if self.progress
                                else 0, world_size=self.info.world_size, config=cfg.to_dict())
        result = {"output_dir": str(self.output_dir),
                  "record": str(self.output_dir / RECORD_FILE)}
        with self.save_points.catching_signals():
            if self.resumed_from is not None and self.progress is None and self.epoch \
                    and self.evaluation_due() and not self._evaluated(self.epoch):
                result["eval"] = self.evaluate_epoch()  # stopped after the save, before it
            while self.epoch < cfg.epochs and not self.stopped:
                means = self.train_epoch()
                if means is None:  # stopped mid-epoch, the state saved
                    break
                result["train"] = means
                self.save()
                if self.info.is_main:
                    self.write_run_record()
                if self.save_points.epoch_end():
                    self.stopped = self.save_points.stopping
                    break
                if self.evaluation_due():
                    result["eval"] = self.evaluate_epoch()
            self.save_points.close()
        if self.stopped:
            return self.stop(result)
        if self.averaging:
            if self.info.is_main:
                folder = self.write_average()
                print(f"averaged epochs {cfg.average_from_epoch}..{cfg.epochs} into {folder}",
                      file=sys.stderr)
            barrier()
            result["average"] = str(self.output_dir / "average")
            if cfg.val_list:
                from ..checkpoint import load_student
                averaged, _, _ = load_student(self.output_dir / "average", device=self.device)
                result["eval_average"] = self.evaluate(averaged, "average",
                                                       self.output_dir / "average").summary()
        self.logger.log("end", self.step, **{k: v for k, v in result.items() if k != "train"})
        self.logger.close()
        return result

    def stop(self, result: dict) -> dict:
        """The end of a run stopped by a signal: its state is saved; say so, and requeue the
        SLURM job if asked (rank 0)."""
        result |= {"stopped": self.stopped, "step": self.step, "epochs_done": self.epoch,
                   "state": str(self.output_dir / ckpt.LAST)}
        if self.info.is_main:
            self.logger.log("stopped", self.step, signal=self.stopped, epoch=self.epoch)
            print(f"stopped by {self.stopped} at step {self.step} with the training state saved "
                  f"in {self.output_dir / ckpt.LAST}; resume=auto (or resume=latest) continues "
                  "the run at its next batch", file=sys.stderr)
            if self.cfg.requeue:
                result["requeue"] = requeue_job()
                print(result["requeue"], file=sys.stderr)
        self.logger.close()
        return result

    def evaluation_due(self) -> bool:
        return bool(self.cfg.val_list and self.cfg.eval_every
                    and self.epoch % self.cfg.eval_every == 0)

    def _evaluated(self, epoch: int) -> bool:
        return (self.output_dir / "eval" / f"epoch_{epoch:03d}" / "metrics.json").is_file()

    def evaluate_epoch(self) -> dict:
        """Evaluate the student after this epoch (eval_every); prune old reports (rank 0)."""
        export = ckpt.epoch_folder(self.output_dir, self.epoch)
        summary = self.evaluate(  # the export, when kept, names the student
            self.student, f"epoch_{self.epoch:03d}", export if export.is_dir() else None).summary()
        if self.info.is_main:  # as many reports as exports, at least the latest
            keep = self.kept_exports()
            ckpt.prune_epoch_folders(self.output_dir / "eval",
                                     None if keep is None else max(keep, 1), self.epoch)
        return summary


def zero_shot(cfg: Config, info: DistInfo) -> dict:
    """The frozen CLIP baseline: export the untouched CLIP as a checkpoint and evaluate it."""
    output_dir = Path(cfg.output_dir)
    torch.manual_seed(cfg.seed)
    with main_first(info):
        student, tokenizer = build_student(student_spec(cfg))
    student.to(info.device).eval()
    result = {"output_dir": str(output_dir), "record": str(output_dir / RECORD_FILE)}
    files = {"val_list": cfg.val_list, "eval_class_file": cfg.eval_class_file or cfg.class_file,
             "templates": cfg.templates}
    if info.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, output_dir / "config.yaml")
        write_record(build_record(cfg, info, files), output_dir)
        export_student(student, student_spec(cfg), output_dir / "zero_shot",
                       {"config": cfg.to_dict(), "zero_shot": True})
    result["checkpoint"] = str(output_dir / "zero_shot")
    if cfg.val_list:
        bank = class_bank(cfg.eval_class_file or cfg.class_file, "eval_class_file", tokenizer,
                          cfg.templates, cfg.clean_prompts)
        require_data_root(cfg.data_root, cfg.val_list)
        size = preprocess_config(student.clip)["size"]
        dataset = eval_dataset(cfg, str(list_file(cfg.val_list, "val_list")), len(bank), size)
        metrics = evaluate(student, dataset, bank, info, cfg.eval_batch_size, cfg.num_workers,
                           eval_autocast_dtype(cfg.eval_precision, info.device), cfg.progress,
                           "zero-shot")
        if info.is_main:
            record = build_record(cfg, info, files)
            write_report(metrics, output_dir / "eval" / "zero_shot", bank.names, record=record)
            write_record(record | {"videos": {"evaluated": metrics.evaluated,
                                              "total": metrics.total,
                                              "failed": len(metrics.failed)}}, output_dir)
            print(f"zero-shot: {metrics.describe()}", file=sys.stderr)
        result["eval"] = metrics.summary()
    return result


#: config keys that say how a run is run, not what it computes (no warning on resume)
RUN_CONTROL_KEYS = ("resume", "overwrite", "save_every_minutes", "save_every_steps", "requeue",
                    "dist_timeout", "progress", "check_data")


def train(cfg: Config, info: DistInfo) -> dict:
    """Train (or, with zero_shot, only evaluate) as the config says; resumes if asked, and
    refuses to start over a training state already in output_dir (unless overwrite)."""
    resume = None if cfg.zero_shot else ckpt.start_or_resume(cfg.resume, cfg.output_dir,
                                                             cfg.overwrite)
    if cfg.check_data:
        from .data_check import check_run_data
        check_run_data(cfg, info)
    if cfg.zero_shot:
        return zero_shot(cfg, info)
    if resume is None and info.is_main:  # nothing of an earlier run is appended to
        if cfg.resume == "latest":
            print(f"note: resume=latest: no training state in {cfg.output_dir}; starting afresh",
                  file=sys.stderr)
        removed = ckpt.clear_run(cfg.output_dir, cfg.overwrite)
        if removed:
            why = "overwrite=true" if cfg.overwrite else "an earlier attempt saved no state"
            print(f"note: starting afresh in {cfg.output_dir} ({why}): removed "
                  f"{', '.join(removed)}", file=sys.stderr)
    barrier()
    trainer = Trainer(cfg, info)
    if resume is not None:
        trainer.resume(resume)
    return trainer.run()
