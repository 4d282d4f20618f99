"""Every speed-up is exact: each fast path against the plain path on tiny fp32 models."""

import copy
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from froster.clip import create_clip
from froster.distill import Froster
from froster.model import VideoCLIP
from froster.prompts import BARE_INDEX, PromptBank
from froster.sharding import shard_sizes


CLASSES = [f"Action {i}: a person doing action {i} " + "slowly " * (i % 4) for i in range(7)]


def step(model, bank, video, labels, templates=(5, BARE_INDEX)):
    """Loss terms and every gradient of one training step."""
    model.zero_grad(set_to_none=True)
    terms = model(video, labels, bank, templates)
    terms.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return terms, grads


def assert_same_step(a, b, atol=1e-5):
    (terms_a, grads_a), (terms_b, grads_b) = a, b
    for key in ("loss", "ce", "distill_visual", "distill_text", "logits"):
        assert torch.allclose(getattr(terms_a, key), getattr(terms_b, key), atol=atol), key
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 10
    for name in grads_a:
        assert torch.allclose(grads_a[name], grads_b[name], atol=atol, rtol=1e-4), name


@pytest.fixture
def setup(tiny_clip):
    clip, tokenizer = tiny_clip
    torch.manual_seed(1)
    video, labels = torch.randn(2, 3, 3, 32, 32), torch.tensor([4, 1])
    return clip, PromptBank(CLASSES, tokenizer), video, labels


def froster(clip, **student_options):
    model = Froster(VideoCLIP(copy.deepcopy(clip), **student_options), teacher_clip=copy.deepcopy(clip))
    torch.nn.init.normal_(model.projector_v.fc2.weight, std=0.1)  # so projector grads are non-trivial
    torch.nn.init.normal_(model.projector_t.fc2.weight, std=0.1)
    return model


@pytest.mark.parametrize("padding", ["zeros", "masked"])
def test_fused_attention_equals_unfused(setup, padding):
    clip, bank, video, labels = setup
    torch.manual_seed(0)
    fast = step(froster(clip, neighbor_padding=padding), bank, video, labels)
    torch.manual_seed(0)
    slow = step(froster(clip, neighbor_padding=padding, fused_attention=False), bank, video, labels)
    assert_same_step(fast, slow)


def lengths_seen(model) -> list[int]:
    """The token lengths the student's text tower is run at (hooked on its embedding)."""
    seen = []
    model.student.clip.token_embedding.register_forward_hook(
        lambda module, args, out: seen.append(args[0].shape[1]))
    return seen


def test_trimmed_text_equals_77_token_padding(setup):
    clip, bank, video, labels = setup
    torch.manual_seed(0)
    fast = froster(clip, trim_text=True)
    fast_lengths = lengths_seen(fast)
    trimmed = step(fast, bank, video, labels)
    torch.manual_seed(0)
    slow = froster(clip, trim_text=False)
    slow_lengths = lengths_seen(slow)
    padded = step(slow, bank, video, labels)
    assert fast_lengths and max(fast_lengths) < 77 and set(slow_lengths) == {77}  # it trimmed
    assert_same_step(trimmed, padded)


def test_teacher_text_cache_equals_reencoding(setup):
    clip, bank, video, labels = setup
    torch.manual_seed(0)
    model = froster(clip)
    step(model, bank, video, labels)  # fills the cache
    cached = step(model, bank, video, labels)
    model.teacher.cache_text = False
    assert_same_step(cached, step(model, bank, video, labels))


def test_activation_checkpointing_equals_plain(setup, checkpoint_calls):
    clip, bank, video, labels = setup
    torch.manual_seed(0)
    model = froster(clip)
    plain = step(model, bank, video, labels)
    model.student.set_grad_checkpointing(True)
    checkpointed = step(model, bank, video, labels)
    blocks = len(clip.visual.transformer.resblocks) + len(clip.transformer.resblocks)
    assert checkpoint_calls[0] >= blocks  # every block of both towers (the text tower once per bucket)
    assert_same_step(plain, checkpointed)


def test_compile_gives_the_same_step(setup):
    clip, bank, video, labels = setup
    torch.manual_seed(0)
    model = froster(clip)
    plain = step(model, bank, video, labels)
    model.student.enable_compile(backend="aot_eager")
    compiled = step(model, bank, video, labels)
    calls = model.student.compiled_calls
    assert calls["compiled"] >= 2 and calls["eager"] == 0  # both towers ran compiled
    assert_same_step(plain, compiled)


def test_compile_failure_falls_back_to_eager(setup):
    clip, bank, video, labels = setup

    def broken_backend(graph, example_inputs):
        raise RuntimeError("no compiler here")

    torch.manual_seed(0)
    model = froster(clip)
    plain = step(model, bank, video, labels)
    torch._dynamo.reset()
    model.student.enable_compile(backend=broken_backend)
    with pytest.warns(UserWarning, match="falling back to eager"):
        fallback = step(model, bank, video, labels)
    assert model.student.compiled_calls["compiled"] == 0 < model.student.compiled_calls["eager"]
    assert_same_step(plain, fallback)


def test_reduced_precision_teacher_is_close(setup):
    """Not exact: measured. The distillation terms move by well under 1e-2 in bf16."""
    clip, bank, video, labels = setup
    torch.manual_seed(0)
    model = froster(clip)
    full = model(video, labels, bank, (5, BARE_INDEX))
    model.teacher.set_dtype(torch.bfloat16)
    assert model.teacher.encoder.clip.visual.conv1.weight.dtype == torch.bfloat16
    reduced = model(video, labels, bank, (5, BARE_INDEX))
    assert reduced.loss.dtype == torch.float32
    assert torch.equal(full.ce, reduced.ce)
    assert abs(float(full.distill_visual - reduced.distill_visual)) < 1e-2
    assert abs(float(full.distill_text - reduced.distill_text)) < 1e-2
    reduced.loss.backward()


def test_shard_sizes_are_balanced():
    assert shard_sizes(7, 2) == [4, 3]
    assert shard_sizes(400, 3) == [134, 133, 133]
    assert sum(shard_sizes(101, 8)) == 101


def _sharded_worker(rank, world, port, result_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.manual_seed(0)
        clip, tokenizer = create_clip("froster-tiny")
        bank = PromptBank(CLASSES, tokenizer)
        torch.manual_seed(100 + rank)  # each rank its own batch
        video, labels = torch.randn(2, 3, 3, 32, 32), torch.randint(0, len(CLASSES), (2,))
        out = {}
        for sharded in (False, True):
            torch.manual_seed(0)
            model = froster(clip)
            model.text_sharding = sharded
            terms, grads = step(model, bank, video, labels)
            for g in grads.values():  # what DDP does: average gradients over ranks
                dist.all_reduce(g)
                g /= world
            out[sharded] = (terms.loss.detach(), grads)
        torch.save(out, os.path.join(result_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sharded_classifier_equals_unsharded_in_two_processes(tmp_path):
    mp.spawn(_sharded_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    for rank in range(2):
        out = torch.load(tmp_path / f"rank{rank}.pt")
        (loss_full, grads_full), (loss_sharded, grads_sharded) = out[False], out[True]
        assert torch.allclose(loss_full, loss_sharded, atol=1e-6)
        assert grads_full.keys() == grads_sharded.keys()
        assert any("transformer.resblocks" in n and "visual" not in n for n in grads_full)
        for name in grads_full:
            assert torch.allclose(grads_full[name], grads_sharded[name], atol=1e-5, rtol=1e-5), name


def test_length_bucketed_text_equals_padding(tiny_clip):
    """Enough prompts for several length buckets; outputs and gradients as with padding."""
    clip, tokenizer = tiny_clip
    rng = torch.Generator().manual_seed(0)
    prompts = [" ".join(["word"] * int(n)) for n in torch.randint(1, 60, (100,), generator=rng)]
    tokens = tokenizer(prompts)
    results = []
    for trim in (True, False):
        student = VideoCLIP(copy.deepcopy(clip), trim_text=trim)
        out = student.encode_text(tokens)
        (out * torch.linspace(-1, 1, out.shape[-1])).sum().backward()
        results.append((out, student.clip.token_embedding.weight.grad, student.clip.positional_embedding.grad))
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)
