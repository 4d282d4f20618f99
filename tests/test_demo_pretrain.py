"""Pretraining the demo CLIP on captioned frames: it learns, and its file loads back."""

import numpy as np
import pytest
import torch

from froster.clip import create_clip
from froster.demo.pretrain import PretrainConfig, contrastive_loss, make_corpus, pretrain, save_clip

# froster-tiny keeps this fast; the demo's own architecture is checked for loading below.
CFG = PretrainConfig(model="froster-tiny", scenes=24, frames_per_scene=2, steps=25, batch_size=24,
                     lr=2e-3, warmup_steps=3)


@pytest.fixture(scope="module")
def corpus():
    return make_corpus(CFG.scenes, CFG.frames_per_scene, seed=CFG.seed)


def _loss(clip, tokenizer, corpus) -> float:
    batch = np.arange(24)
    with torch.no_grad():
        tokens = tokenizer(corpus.captions(batch, np.random.default_rng(0)))
        return contrastive_loss(clip.eval(), corpus.images[batch], tokens).item()


def test_corpus_is_deterministic_and_captions_follow_the_frames(corpus):
    again = make_corpus(CFG.scenes, CFG.frames_per_scene, seed=CFG.seed)
    assert corpus.images.shape == (48, 3, 32, 32) and corpus.images.dtype == torch.uint8
    assert torch.equal(corpus.images, again.images)
    assert not torch.equal(corpus.images, make_corpus(CFG.scenes, CFG.frames_per_scene, seed=1).images)
    captions = corpus.captions(range(len(corpus)), np.random.default_rng(0))
    for caption, scene in zip(captions, corpus.scenes):
        assert caption.startswith("an empty") or scene.shape in caption or "shape" in caption


def test_pretraining_lowers_the_contrastive_loss_and_saves_a_loadable_clip(corpus, tmp_path):
    torch.manual_seed(CFG.seed)
    before = _loss(*create_clip(CFG.model), corpus)
    result = pretrain(CFG, out=tmp_path / "demo.safetensors", corpus=corpus)
    after = _loss(result.clip, result.tokenizer, corpus)
    assert len(result.losses) == CFG.steps and np.isfinite(result.losses).all()
    assert after < before - 0.3, (before, after)

    for path in (result.path, save_clip(result.clip, tmp_path / "demo.pt")):
        loaded, _ = create_clip(CFG.model, pretrained=str(path))
        reference = result.clip.state_dict()
        for key, value in loaded.state_dict().items():
            assert torch.equal(value, reference[key]), (path.name, key)
        assert _loss(loaded, result.tokenizer, corpus) == pytest.approx(after, abs=1e-5)


def test_demo_architecture_round_trips_through_a_weights_file(tmp_path):
    clip, _ = create_clip("froster-demo")
    assert clip.visual.image_size == (32, 32)
    path = save_clip(clip, tmp_path / "demo.safetensors")
    loaded, _ = create_clip("froster-demo", pretrained=str(path))
    reference = clip.state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in loaded.state_dict().items())


def test_corpus_is_the_same_whatever_the_number_of_processes():
    one, two = (make_corpus(24, 2, workers=n) for n in (1, 2))
    assert torch.equal(one.images, two.images) and one.images.shape == (48, 3, 32, 32)
    assert (one.scenes, one.times, one.shows_action) == (two.scenes, two.times, two.shows_action)


def test_used_token_rows_give_the_updates_of_the_whole_table(corpus):
    """Pretraining only the token rows the captions use, with the others' weight decay
    applied at the end, ends where optimising the whole 49408-row table does."""
    from dataclasses import replace

    from froster.demo.pretrain import lr_at

    cfg = replace(CFG, steps=8)
    whole = pretrain(cfg, corpus=corpus).clip.state_dict()
    used = pretrain(replace(cfg, used_token_rows=True), corpus=corpus).clip.state_dict()
    assert list(used) == list(whole)
    for key in whole:
        assert torch.allclose(whole[key], used[key], rtol=1e-5, atol=1e-8), key
    torch.manual_seed(cfg.seed)  # the initial table, as pretrain draws it
    row = create_clip(cfg.model)[0].token_embedding.weight.detach()[40000].clone()
    for step in range(cfg.steps):  # a word no caption has: decay alone, step by step
        row.mul_(1 - lr_at(step, cfg) * cfg.weight_decay)
    assert torch.equal(used["token_embedding.weight"][40000], row)
    assert torch.equal(whole["token_embedding.weight"][40000], row)
