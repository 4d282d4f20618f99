import random

import torch
import torch.nn.functional as F

from froster.distill import Froster, ResidualProjector
from froster.model import VideoCLIP
from froster.prompts import BARE_INDEX, PromptBank

CLASSES = ["Abseiling: A person descends a rock face on a rope.", "Juggling: Someone keeps "
           "several balls in the air.", "archery"]


def make_froster(tiny_clip, **kwargs):
    clip, tokenizer = tiny_clip
    model = Froster(VideoCLIP(clip), **kwargs)
    return model, PromptBank(CLASSES, tokenizer)


def test_projectors_are_identity_at_init():
    head = ResidualProjector(32)
    z = torch.randn(7, 32)
    assert torch.equal(head(z), z)
    assert head.fc2.weight.abs().sum() == 0 and head.fc1.weight.abs().sum() > 0
    assert head.fc1.bias is None and head.fc2.bias is None


def test_projector_is_residual_with_alpha():
    head = ResidualProjector(8, alpha=0.1)
    torch.nn.init.normal_(head.fc2.weight)
    z = torch.randn(3, 8)
    want = z + 0.1 * (F.gelu(z @ head.fc1.weight.t()) @ head.fc2.weight.t())
    assert torch.allclose(head(z), want, atol=1e-6)


def test_teacher_is_frozen_and_never_saved_or_optimised(tiny_clip):
    model, bank = make_froster(tiny_clip)
    teacher_params = list(model.teacher.encoder.parameters())
    before = [p.detach().clone() for p in teacher_params]
    assert all(not p.requires_grad for p in teacher_params)
    ids = {id(p) for p in teacher_params}
    assert not ids & {id(p) for p in model.parameters()}
    assert not any(k.startswith("_teacher") or "teacher" in k for k in model.state_dict())

    model.train()
    assert not model.teacher.encoder.training
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
    video = torch.randn(2, 3, 3, 32, 32)
    terms = model(video, torch.tensor([0, 2]), bank, (4, BARE_INDEX))
    terms.loss.backward()
    optimiser.step()
    assert all(p.grad is None for p in teacher_params)
    assert all(torch.equal(a, b) for a, b in zip(before, teacher_params))
    # the student did move
    assert not torch.equal(model.student.clip.visual.conv1.weight, model.teacher.encoder.clip.visual.conv1.weight)


def test_loss_equals_hand_computation(tiny_clip):
    model, bank = make_froster(tiny_clip)
    torch.nn.init.normal_(model.projector_v.fc2.weight, std=0.1)
    torch.nn.init.normal_(model.projector_t.fc2.weight, std=0.1)
    clip, tokenizer = tiny_clip
    torch.manual_seed(3)
    with torch.no_grad():  # a student that has moved away from its teacher (a swap would show)
        for p in clip.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    video, labels, templates = torch.randn(2, 4, 3, 32, 32), torch.tensor([1, 0]), (9, BARE_INDEX)
    terms = model(video, labels, bank, templates)

    teacher = model.teacher.encoder.clip
    frames_s = model.student.encode_frames(video)
    per_prompt = [F.normalize(clip.encode_text(tokenizer(bank.prompts(i))), dim=-1) for i in templates]
    classes_s = F.normalize(sum(per_prompt) / 2, dim=-1)
    logits = (clip.logit_scale.exp() * frames_s @ classes_s.t()).mean(1)
    ce = -torch.log_softmax(logits, dim=-1)[torch.arange(2), labels].mean()
    frames_t = F.normalize(teacher.encode_image(video.flatten(0, 1)), dim=-1)
    prompts_t = [F.normalize(teacher.encode_text(tokenizer(bank.prompts(i))), dim=-1) for i in templates]
    classes_t = F.normalize(sum(prompts_t) / 2, dim=-1)
    zv = model.projector_v(frames_s.flatten(0, 1))
    zt = model.projector_t(classes_s)
    visual = (1 - (zv * frames_t).sum(-1) / zv.norm(dim=-1)).mean()
    text = (1 - (zt * classes_t).sum(-1) / zt.norm(dim=-1)).mean()
    assert (frames_s.flatten(0, 1) - frames_t).abs().max() > 1e-2  # student and teacher differ
    assert (classes_s - classes_t).abs().max() > 1e-2
    assert torch.allclose(terms.ce, ce, atol=1e-5)
    assert torch.allclose(terms.distill_visual, visual, atol=1e-5)
    assert torch.allclose(terms.distill_text, text, atol=1e-5)
    assert torch.allclose(terms.loss, ce + 2.0 * (visual + text), atol=1e-5)
    assert terms.distill_visual > 0 and terms.distill_text > 0


def test_distillation_weight_is_configurable_and_off_gives_plain_finetuning(tiny_clip):
    clip, tokenizer = tiny_clip
    bank = PromptBank(CLASSES, tokenizer)
    video, labels = torch.randn(1, 2, 3, 32, 32), torch.tensor([2])
    weighted = Froster(VideoCLIP(clip), distill_weight=5.0)(video, labels, bank, (0, BARE_INDEX))
    assert torch.allclose(weighted.loss, weighted.ce + 5.0 * (weighted.distill_visual + weighted.distill_text))
    plain = Froster(VideoCLIP(clip), distill=False)
    assert plain.teacher is None and not hasattr(plain, "projector_v")
    terms = plain(video, labels, bank, (0, BARE_INDEX))
    assert torch.allclose(terms.loss, terms.ce) and terms.distill_visual == 0
    assert torch.allclose(terms.ce, weighted.ce)


def test_cached_teacher_text_equals_fresh_encoding(tiny_clip):
    model, bank = make_froster(tiny_clip)
    teacher = model.teacher
    first = teacher.prompt_embeddings(bank, 3)
    assert teacher.prompt_embeddings(bank, 3) is first  # served from the cache
    fresh = F.normalize(teacher.encoder.clip.encode_text(bank.tokens(3)), dim=-1)
    assert torch.allclose(first, fresh, atol=1e-5)
    teacher.cache_text = False
    assert teacher.prompt_embeddings(bank, 3) is not first


def test_teacher_moves_with_the_model(tiny_clip):
    model, _ = make_froster(tiny_clip)
    model.to(torch.float64)
    assert model.teacher.encoder.clip.visual.conv1.weight.dtype == torch.float64
    assert model.student.clip.visual.conv1.weight.dtype == torch.float64


def test_training_draws_one_template_plus_bare(tiny_clip):
    _, bank = make_froster(tiny_clip)
    rng = random.Random(0)
    draws = [bank.training_templates(rng) for _ in range(300)]
    assert all(len(d) == 2 and d[1] == BARE_INDEX and 0 <= d[0] < 28 for d in draws)
    assert len({d[0] for d in draws}) == 28
