"""The end-to-end paths on every device this machine has (issue 21): training in fp16 and
bf16 with the teacher, resume, evaluation, predict / search / timeline / explain, an
imported reference checkpoint, DDP with gradient accumulation (the no_sync path) and the
sharded classifier. On CUDA they prove that tensors live on the model's device and that
the mixed-precision paths run; without CUDA the cuda cases are skipped (and listed by
`pytest -ra`), and the cpu cases keep the suite from rotting. `python bench/gpu.py` runs
this suite first on a GPU machine."""

import os
import socket

import pytest
import torch
from _engine_data import make_videos, tiny_config, tiny_dataset
from _foreign import reference_cfg, reference_training_checkpoint

from froster.data import FailureLog
from froster.engine.distributed import DistInfo
from froster.engine.evaluate import evaluate_checkpoint
from froster.engine.train import Trainer, train
from froster.inference.api import Recognizer

pytestmark = [pytest.mark.gpu, pytest.mark.slow]

CUDA = torch.cuda.is_available()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not CUDA, reason="no CUDA device"))]
LABELS = ["red square", "green circle", "blue triangle"]


def precisions(device: str) -> list[str]:
    """The training precisions a device runs (fp16 autocast is CUDA's)."""
    return ["fp16", "bf16"] if device == "cuda" else ["bf16"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("data"))


@pytest.mark.parametrize("device", DEVICES)
def test_training_in_mixed_precision_with_the_teacher_resumes_and_evaluates(data, tmp_path, device):
    for precision in precisions(device):
        out = tmp_path / precision
        cfg = tiny_config(data, out, device=device, precision=precision, epochs=2,
                          average_from_epoch=1, eval_every=1, batch_size=4, device_batch_size=2)
        first = Trainer(cfg, DistInfo(device=torch.device(device)))
        assert first.dtype == {"fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        assert first.scaler.is_enabled() == (precision == "fp16")
        assert next(first.model.student.parameters()).device.type == device
        first.cfg.epochs = 1
        first.run()
        cfg = tiny_config(data, out, device=device, precision=precision, epochs=2,
                          average_from_epoch=1, eval_every=1, batch_size=4, device_batch_size=2,
                          resume="latest")
        result = train(cfg, DistInfo(device=torch.device(device)))
        assert result["eval_average"]["evaluated"] == 9
        records = [line for line in (out / "log.jsonl").read_text().splitlines() if '"epoch"' in line]
        assert "Infinity" not in (out / "log.jsonl").read_text() and len(records) >= 2


@pytest.mark.parametrize("device", DEVICES)
def test_evaluation_on_the_device_in_each_precision(data, tmp_path, device):
    from froster.checkpoint import build_student
    from froster.engine.train import student_spec

    torch.manual_seed(0)
    cfg = tiny_config(data, tmp_path / "run", device=device)
    student, tokenizer = build_student(student_spec(cfg), device=device)
    results = {}
    for precision in ["fp32", "bf16"] + (["fp16"] if device == "cuda" else []):
        cfg = tiny_config(data, tmp_path / precision, device=device, eval_precision=precision)
        metrics = evaluate_checkpoint(student, tokenizer, cfg, cfg.val_list, cfg.class_file,
                                      DistInfo(device=torch.device(device)), tmp_path / precision)
        results[precision] = metrics
        assert metrics.evaluated == 9 and not metrics.failed
    assert results["bf16"].top1 == pytest.approx(results["fp32"].top1, abs=40)


def recognizer(checkpoint, device, **options):
    return Recognizer.from_checkpoint(checkpoint, device=device, use_cache=False, num_workers=0,
                                      **options)


@pytest.mark.parametrize("device", DEVICES)
def test_predict_search_timeline_and_explain_on_the_device(tiny_checkpoint, data, tmp_path, device):
    """The Recognizer keeps every tensor on the model's device: a CPU embedding meeting a
    GPU classifier (predict's crash) fails here on CUDA."""
    from froster.inference.predict import predict
    from froster.inference.search import search_folder

    rec = recognizer(tiny_checkpoint, device, num_frames=2, sampling_rate=4, num_views=2)
    folder = os.path.join(data["data_root"], "videos")
    videos = sorted(os.path.join(folder, name) for name in os.listdir(folder))[:3]
    summary = predict(rec, videos, LABELS, fmt="jsonl", output=tmp_path / "p.jsonl", progress=False)
    assert summary.ok == len(videos) and not summary.failed
    for result in rec.stream(videos):
        assert result.frames.device.type == device
    ranking, report = search_folder(rec, folder, "a red square", index_file=tmp_path / "index",
                                    progress=False)
    assert len(ranking) >= len(videos) and not report.failed
    windows = list(rec.timeline(videos[0], LABELS, stride=0.5))
    assert windows and abs(float(windows[0].probabilities.sum()) - 1) < 1e-4
    explanation = rec.explain(videos[0], LABELS)
    assert explanation.maps.shape[0] == 2 and torch.isfinite(explanation.maps).all()
    fast = recognizer(tiny_checkpoint, device, num_frames=2, sampling_rate=4, num_views=2,
                      precision="bf16")
    assert fast.classify(videos[0], LABELS)[0][0] in LABELS


@pytest.mark.parametrize("device", DEVICES)
def test_an_imported_reference_checkpoint_runs_on_the_device(tmp_path, device):
    from froster.clip import create_clip

    torch.manual_seed(0)
    clip, _ = create_clip("froster-tiny")
    path = tmp_path / "checkpoint_epoch_00012.pyth"
    torch.save(reference_training_checkpoint(clip, reference_cfg(frames=2)), path)
    video, _ = make_videos(tmp_path, 1, range(1))[0]
    rec = recognizer(path, device, num_views=1)
    assert rec.view.num_frames == 2 and next(rec.model.parameters()).device.type == device
    assert sum(p for _, p in rec.classify(str(tmp_path / video), LABELS)) == \
        pytest.approx(1.0, abs=1e-5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, data, out, device):
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("nccl" if device == "cuda" else "gloo", rank=rank, world_size=world)
    try:
        cfg = tiny_config(data, out, device=device, epochs=1, average_from_epoch=0, val_list="",
                          batch_size=4 * world, grad_accum=2, shard_text=world > 1)
        trainer = Trainer(cfg, DistInfo(rank=rank, world_size=world,
                                        device=torch.device(device, rank) if device == "cuda"
                                        else torch.device("cpu")))
        assert trainer.ddp is not None and trainer.ddp.gradient_as_bucket_view
        assert trainer.model.text_sharding == (world > 1)
        groups = list(trainer.epoch_batches(0, FailureLog()))
        for group in groups[:2]:
            scalars = trainer.train_step(group)
        assert torch.isfinite(scalars["loss"]) and scalars["loss"].device.type == device
        if rank == 0:
            torch.save({k: v.cpu() for k, v in trainer.model.state_dict().items()},
                       f"{out}/rank0.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("device", DEVICES)
def test_ddp_with_gradient_accumulation_on_the_device(data, tmp_path, device):
    """A one-process group: DDP's no_sync path for the first of 2 micro-steps."""
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(1, _free_port(), data, str(tmp_path), device), nprocs=1, join=True)
    assert (tmp_path / "rank0.pt").is_file()


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    torch.cuda.device_count() < 2, reason="the sharded classifier on CUDA needs 2 GPUs"))])
def test_the_sharded_classifier_trains_over_two_ranks(data, tmp_path, device):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, _free_port(), data, str(tmp_path), device), nprocs=2, join=True)
    assert (tmp_path / "rank0.pt").is_file()
