import math

import pytest
import torch
import torch.nn.functional as F

from froster.model import VideoCLIP
from froster.temporal import neighbor_attention


def image_embeddings(clip, images):
    return F.normalize(clip.encode_image(images), dim=-1)


@pytest.mark.parametrize("temporal", ["neighbor", "mean"])
@pytest.mark.parametrize("batch,frames", [(1, 1), (2, 3), (3, 8)])
def test_shapes_over_batch_and_frames(tiny_clip, temporal, batch, frames):
    clip, _ = tiny_clip
    student = VideoCLIP(clip, temporal=temporal)
    video = torch.randn(batch, frames, 3, 32, 32)
    emb = student.encode_frames(video)
    assert emb.shape == (batch, frames, 32)
    assert torch.allclose(emb.norm(dim=-1), torch.ones(batch, frames), atol=1e-5)
    logits = student(video, F.normalize(torch.randn(5, 32), dim=-1))
    assert logits.shape == (batch, 5)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("temporal,padding", [("neighbor", "masked"), ("mean", "zeros")])
def test_one_frame_equals_image_clip(tiny_clip, temporal, padding):
    clip, _ = tiny_clip
    student = VideoCLIP(clip, temporal=temporal, neighbor_padding=padding)
    images = torch.randn(4, 3, 32, 32)
    got = student.encode_frames(images[:, None])[:, 0]
    assert torch.allclose(got, image_embeddings(clip, images), atol=1e-6)


def test_one_frame_with_zero_padding_attends_to_two_zero_blocks(tiny_clip):
    """The reference quirk at T = 1: the softmax also runs over the 2 x L zero keys (logit 0)
    whose values are zero, so each block's attention output is the plain one scaled by
    sum(exp(s)) / (sum(exp(s)) + 2L): not the image CLIP."""
    clip, _ = tiny_clip
    block = clip.visual.transformer.resblocks[0]
    x = torch.randn(3, 17, 64)
    q, k, v = (x @ block.attn.in_proj_weight.t() + block.attn.in_proj_bias).split(64, dim=-1)
    heads = block.attn.num_heads
    dim = 64 // heads
    out = torch.zeros_like(x)
    for h in range(heads):
        cols = slice(h * dim, (h + 1) * dim)
        weights = (q[..., cols] @ k[..., cols].transpose(1, 2) / math.sqrt(dim)).exp()
        out[..., cols] = weights @ v[..., cols] / (weights.sum(-1, keepdim=True) + 2 * 17)
    want = block.attn.out_proj(out)
    assert torch.allclose(neighbor_attention(1, "zeros")(block, x), want, atol=1e-5)
    images = torch.randn(2, 3, 32, 32)
    video = VideoCLIP(clip, neighbor_padding="zeros").encode_frames(images[:, None])[:, 0]
    assert not torch.allclose(video, image_embeddings(clip, images), atol=1e-3)


def test_mean_mode_is_per_frame_clip(tiny_clip):
    clip, _ = tiny_clip
    video = torch.randn(2, 5, 3, 32, 32)
    got = VideoCLIP(clip, temporal="mean").encode_frames(video)
    want = image_embeddings(clip, video.flatten(0, 1)).view(2, 5, -1)
    assert torch.allclose(got, want, atol=1e-6)


def slow_neighbor_attention(block, x, frames, padding):
    """Direct loops over clips, frames and heads: q of frame t against k/v of t+1, t-1, t."""
    attn = block.attn
    heads, width = attn.num_heads, x.shape[-1]
    dim = width // heads
    q, k, v = (x @ attn.in_proj_weight.t() + attn.in_proj_bias).split(width, dim=-1)
    clips = x.shape[0] // frames
    out = torch.zeros_like(x)
    for b in range(clips):
        for t in range(frames):
            row = b * frames + t
            keys, values = [], []
            for s in (t + 1, t - 1, t):
                if 0 <= s < frames:
                    keys.append(k[b * frames + s])
                    values.append(v[b * frames + s])
                elif padding == "zeros":
                    keys.append(torch.zeros_like(k[row]))
                    values.append(torch.zeros_like(v[row]))
            keys, values = torch.cat(keys), torch.cat(values)
            for h in range(heads):
                cols = slice(h * dim, (h + 1) * dim)
                scores = q[row][:, cols] @ keys[:, cols].t() / math.sqrt(dim)
                out[row][:, cols] = torch.softmax(scores, dim=-1) @ values[:, cols]
    return attn.out_proj(out)


@pytest.mark.parametrize("padding", ["zeros", "masked"])
@pytest.mark.parametrize("frames", [1, 2, 4])
def test_neighbor_attention_matches_direct_computation(tiny_clip, padding, frames):
    clip, _ = tiny_clip
    block = clip.visual.transformer.resblocks[0]
    x = torch.randn(2 * frames, 17, 64)
    got = neighbor_attention(frames, padding)(block, x)
    want = slow_neighbor_attention(block, x, frames, padding)
    assert torch.allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("padding", ["zeros", "masked"])
@pytest.mark.parametrize("frames", [1, 3])
def test_neighbor_tower_matches_direct_computation(tiny_clip, padding, frames):
    clip, _ = tiny_clip
    visual = clip.visual
    video = torch.randn(2, frames, 3, 32, 32)
    x = visual._embeds(video.flatten(0, 1))
    for block in visual.transformer.resblocks:
        x = x + slow_neighbor_attention(block, block.ln_1(x), frames, padding)
        x = x + block.mlp(block.ln_2(x))
    want = F.normalize(visual.ln_post(x[:, 0]) @ visual.proj, dim=-1).view(2, frames, -1)
    got = VideoCLIP(clip, neighbor_padding=padding).encode_frames(video)
    assert torch.allclose(got, want, atol=1e-5)


def test_padding_modes_differ_only_at_clip_ends(tiny_clip):
    clip, _ = tiny_clip
    block = clip.visual.transformer.resblocks[0]
    x = torch.randn(5, 17, 64)
    zeros = neighbor_attention(5, "zeros")(block, x)
    masked = neighbor_attention(5, "masked")(block, x)
    assert torch.allclose(zeros[1:4], masked[1:4], atol=1e-6)
    assert not torch.allclose(zeros[0], masked[0], atol=1e-4)
    assert not torch.allclose(zeros[4], masked[4], atol=1e-4)


def test_neighbor_differs_from_mean_for_videos(tiny_clip):
    clip, _ = tiny_clip
    video = torch.randn(1, 4, 3, 32, 32)
    a = VideoCLIP(clip, temporal="neighbor").encode_frames(video)
    b = VideoCLIP(clip, temporal="mean").encode_frames(video)
    assert not torch.allclose(a, b, atol=1e-4)


def test_trimmed_text_equals_full_length_encoding(tiny_clip):
    clip, tokenizer = tiny_clip
    tokens = tokenizer(["a video of a person abseiling.", "juggling", "a much longer prompt "
                        "with quite a few more words in it than the others"])
    trimmed = VideoCLIP(clip, trim_text=True).encode_text(tokens)
    full = VideoCLIP(clip, trim_text=False).encode_text(tokens)
    reference = F.normalize(clip.encode_text(tokens), dim=-1)
    assert torch.allclose(trimmed, reference, atol=1e-5)
    assert torch.allclose(full, reference, atol=1e-5)


def test_class_embeddings_average_normalised_prompts(tiny_clip):
    clip, tokenizer = tiny_clip
    student = VideoCLIP(clip)
    prompts = [["a photo of x.", "x", "x"], ["a video of y.", "y", "a video of y."]]
    tokens = torch.stack([tokenizer(p) for p in prompts])
    got = student.encode_classes(tokens)
    want = []
    for p in prompts:
        per_prompt = F.normalize(clip.encode_text(tokenizer(p)), dim=-1)
        want.append(F.normalize(per_prompt.mean(0), dim=-1))
    assert torch.allclose(got, torch.stack(want), atol=1e-5)


def test_logits_average_per_frame_logits(tiny_clip):
    clip, _ = tiny_clip
    student = VideoCLIP(clip)
    frames = F.normalize(torch.randn(2, 3, 32), dim=-1)
    classes = F.normalize(torch.randn(4, 32), dim=-1)
    scale = clip.logit_scale.exp()
    want = torch.stack([sum(scale * frames[b, t] @ classes.t() for t in range(3)) / 3
                        for b in range(2)])
    assert torch.allclose(student.logits(frames, classes), want, atol=1e-5)


def test_gradients_reach_both_towers(tiny_clip):
    clip, tokenizer = tiny_clip
    student = VideoCLIP(clip)
    classes = student.encode_classes(tokenizer(["a", "b"]).unsqueeze(1))
    student(torch.randn(1, 2, 3, 32, 32), classes).sum().backward()
    assert clip.visual.conv1.weight.grad.abs().sum() > 0
    assert clip.token_embedding.weight.grad.abs().sum() > 0


def test_grad_checkpointing_gives_same_gradients(tiny_clip):
    clip, _ = tiny_clip
    video = torch.randn(1, 3, 3, 32, 32)
    grads = []
    for enable in (False, True):
        clip.zero_grad()
        student = VideoCLIP(clip)
        student.set_grad_checkpointing(enable)
        student.encode_frames(video).sum().backward()
        grads.append(clip.visual.conv1.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_bad_options_are_rejected(tiny_clip):
    clip, _ = tiny_clip
    with pytest.raises(ValueError, match="temporal"):
        VideoCLIP(clip, temporal="lstm")
    with pytest.raises(ValueError, match="padding"):
        VideoCLIP(clip, neighbor_padding="reflect")
    with pytest.raises(ValueError, match="batch, frames"):
        VideoCLIP(clip).encode_frames(torch.randn(2, 3, 32, 32))


def test_a_resnet_clip_runs_as_mean_and_the_other_backbones_say_why_not():
    """`mean` takes any open_clip visual tower; the rest need a plain ViT (README)."""
    import open_clip

    from froster.backbones import names
    from froster.errors import FrosterError

    clip = open_clip.CLIP(embed_dim=32, vision_cfg={"layers": (1, 1, 1, 1), "width": 16,
                                                     "image_size": 64, "head_width": 16},
                          text_cfg={"context_length": 77, "vocab_size": 49408, "width": 32,
                                    "heads": 2, "layers": 1})
    frames = VideoCLIP(clip, "mean").encode_frames(torch.randn(1, 2, 3, 64, 64))
    assert frames.shape == (1, 2, 32)
    for name in set(names()) - {"mean"}:
        with pytest.raises(FrosterError, match="needs a plain open_clip ViT.*ModifiedResNet"):
            VideoCLIP(clip, name)
