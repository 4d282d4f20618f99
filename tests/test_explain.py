"""Attention maps (froster.explain) on tiny random-weight students: each method against an
independent computation, the joint relevance across neighbour frames, maps for every
backbone, the logits and the fast path left as they were, and a rigged model that
provably ignores a region getting no relevance there."""

import math

import pytest
import torch
import torch.nn.functional as F

from froster.backbones import names as backbone_names
from froster.clip import create_clip
from froster.explain import joint
from froster.explain.maps import explain_clips
from froster.model import VideoCLIP
from froster.temporal import FUSED

GRID, TOKENS = (4, 4), 17  # froster-tiny: 32 px frames, 8 px patches


def student(temporal="neighbor", layers=None, padding="zeros", seed=0, adapters=True):
    """A tiny student; `adapters` gives zero-initialised adapters random weights, so that
    they take part (a fresh AIM would not use its temporal attention at all)."""
    torch.manual_seed(seed)
    clip, _ = create_clip("froster-tiny")
    if layers is not None:
        clip.visual.transformer.resblocks = clip.visual.transformer.resblocks[:layers]
    model = VideoCLIP(clip, temporal, neighbor_padding=padding).eval()
    if adapters:
        with torch.no_grad():
            for p in model.added_parameters():
                if not p.any():
                    p.normal_(0, 0.2)
    return model


def classifier(model, classes=5, seed=1):
    torch.manual_seed(seed)
    return F.normalize(torch.randn(classes, model.embed_dim), dim=-1)


class Recorder:
    """The test's own kernel: softmax(q k^T / sqrt(d) [masked]) v, keeping the probabilities."""

    def __init__(self):
        self.probabilities = []

    def __call__(self, q, k, v, attn_mask=None, is_causal=False):
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        if attn_mask is not None:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        p = scores.softmax(dim=-1)
        self.probabilities.append(p)
        return p @ v


def recorded(model, video, cls):
    recorder = Recorder()
    model.visual_kernel = recorder
    try:
        with torch.no_grad():
            logits = model(video, cls)
    finally:
        model.visual_kernel = None
    return logits, recorder.probabilities


# What each recorded call is, written out here for the brute force (independent of joint.py).
def kinds_of(model, frames):
    blocks = len(model.clip.visual.transformer.resblocks)
    per_block = {"neighbor": ["neighbor"], "aim": ["time", "frame"]}.get(model.temporal, ["frame"])
    if model.temporal == "neighbor" and frames == 1 and model.neighbor_padding == "masked":
        per_block = ["frame"]
    kinds = per_block * blocks
    if model.temporal == "actionclip":
        kinds += ["clip"] * len(model.clip.visual.temporal_fusion.transformer.resblocks)
    return kinds


def dense_layer(fused, kind, b, frames, tokens):
    """The (T*L, T*L) matrix of one heads-fused call for clip b, entry by entry."""
    n = frames * tokens
    J = torch.zeros(n, n, dtype=torch.float64)
    for t in range(frames):
        for i in range(tokens):
            row = t * tokens + i
            if kind == "frame":
                for j in range(tokens):
                    J[row, t * tokens + j] = fused[b * frames + t, i, j]
            elif kind == "neighbor":
                for block, s in ((0, t + 1), (1, t - 1), (2, t)):
                    if 0 <= s < frames:  # a missing neighbour has no token: dropped
                        for j in range(tokens):
                            J[row, s * tokens + j] = fused[b * frames + t, i, block * tokens + j]
            elif kind == "time":
                for s in range(frames):
                    J[row, s * tokens + i] = fused[b * tokens + i, t, s]
            elif kind == "clip" and i == 0:
                for s in range(frames):
                    J[row, s * tokens] = fused[b, t, s]
    return J


def read_maps(R, frames, tokens):
    """map[t, j] = mean over s of R[(s, CLS), (t, j)], normalised over the clip."""
    maps = torch.zeros(frames, tokens - 1, dtype=torch.float64)
    for t in range(frames):
        for j in range(1, tokens):
            maps[t, j - 1] = sum(R[s * tokens, t * tokens + j] for s in range(frames)) / frames
    return (maps / maps.sum()).view(frames, *GRID)


@pytest.mark.parametrize("temporal, padding, fusion, frames", [
    ("neighbor", "zeros", "mean", 3), ("neighbor", "masked", "max", 3), ("mean", "zeros", "mean", 3),
    ("aim", "zeros", "max", 3), ("actionclip", "zeros", "mean", 3),
    ("neighbor", "zeros", "mean", 1), ("neighbor", "masked", "mean", 1)])
def test_rollout_equals_brute_force_over_the_recorded_attention(one_thread, temporal, padding,
                                                                 fusion, frames):
    """Dense per-layer matrices built entry by entry; one frame under zero padding still
    attends to two all-zero blocks (the reference), under masked padding it does not."""
    model = student(temporal, padding=padding)
    batch = 2
    torch.manual_seed(2)
    video, cls = torch.randn(batch, frames, 3, 32, 32), classifier(model)
    _, probabilities = recorded(model, video, cls)
    kinds = kinds_of(model, frames)
    assert len(probabilities) == len(kinds)
    ours = explain_clips(model, video, cls, method="rollout", head_fusion=fusion).maps
    n = frames * TOKENS
    for b in range(batch):
        R = torch.eye(n, dtype=torch.float64)
        for kind, p in zip(kinds, probabilities):  # first layer to last: R = Â_l R
            fused = p.double().mean(dim=1) if fusion == "mean" else p.double().amax(dim=1)
            layer = dense_layer(fused, kind, b, frames, TOKENS) + torch.eye(n, dtype=torch.float64)
            R = (layer / layer.sum(dim=1, keepdim=True)) @ R
        torch.testing.assert_close(ours[b].double(), read_maps(R, frames, TOKENS), rtol=1e-5, atol=1e-7)


def test_gradient_equals_the_relevance_derived_by_hand_on_one_layer(one_thread):
    """One block with its MLP zeroed, frames encoded alone, 2 frames. The video's logit
    y = mean_t y_t reads each frame's CLS token z_t = x_t + W_o concat_h(o_h) + b_o with
    o_h = sum_j A_h[0, j] v_h[j] (the CLS query's attention). So dy/dA_h[0, j] =
    (W_o^T dy/dz_t)_h . v_h[j], and dy/dA_h[i, j] = 0 for every other query i; R = I + Ā
    with Ā = mean_h relu(dy/dA * A), and frame t's map is R[(t, CLS), (t, j)] / T = Ā_t[0, j] / T."""
    model = student("mean", layers=1)
    block, visual = model.clip.visual.transformer.resblocks[0], model.clip.visual
    with torch.no_grad():
        block.mlp.c_proj.weight.zero_()
        block.mlp.c_proj.bias.zero_()
    torch.manual_seed(3)
    frames, target = 2, 3
    video, cls = torch.randn(1, frames, 3, 32, 32), classifier(model)
    ours = explain_clips(model, video, cls, target=target, method="gradient").maps[0]

    with torch.no_grad():
        x = visual._embeds(video[0])                                 # (T, L, W)
        heads, width = block.attn.num_heads, x.shape[-1]
        d = width // heads
        qkv = block.ln_1(x) @ block.attn.in_proj_weight.T + block.attn.in_proj_bias
        q, k, v = (t.view(frames, TOKENS, heads, d).transpose(1, 2) for t in qkv.chunk(3, dim=-1))
        A = (q @ k.transpose(-2, -1) / math.sqrt(d)).softmax(dim=-1)  # (T, H, L, L)
        o = (A @ v).transpose(1, 2).reshape(frames, TOKENS, width)
        z = (x + o @ block.attn.out_proj.weight.T + block.attn.out_proj.bias)[:, 0]
    z.requires_grad_(True)
    features = F.normalize(visual.ln_post(z) @ visual.proj, dim=-1)
    y = (model.logit_scale.exp() * features @ cls[target]).mean()
    (dy_dz,) = torch.autograd.grad(y, z)                                # (T, W)
    dy_do = (dy_dz @ block.attn.out_proj.weight).view(frames, heads, d)
    grad_A = torch.zeros_like(A)
    grad_A[:, :, 0, :] = torch.einsum("thd,thjd->thj", dy_do, v)
    relevance = (grad_A * A).clamp_min(0).mean(dim=1)                  # Ā: (T, L, L)
    expected = relevance[:, 0, 1:] / frames
    expected = (expected / expected.sum()).view(frames, *GRID)
    assert expected.max() > 0
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-7)


def test_neighbour_relevance_reaches_adjacent_frames_as_derived(one_thread):
    """One neighbour layer, 4 frames, rollout: the CLS of frame s takes A_s[0, block] from
    frames s+1, s-1 and s (the missing neighbour at the clip ends dropped), plus the
    identity, over the row's sum; frame t's map is the mean over s of what reaches it."""
    model = student("neighbor", layers=1)
    frames, L = 4, TOKENS
    torch.manual_seed(4)
    video, cls = torch.randn(1, frames, 3, 32, 32), classifier(model)
    _, (p,) = recorded(model, video, cls)
    cls_rows = p[:, :, 0].mean(dim=1)                                  # (T, 3L) CLS queries
    expected = torch.zeros(frames, L - 1)
    for s in range(frames):
        blocks = {0: s + 1, 1: s - 1, 2: s}                            # key blocks: t+1, t-1, t
        kept = {b: t for b, t in blocks.items() if 0 <= t < frames}
        total = sum(cls_rows[s, b * L:(b + 1) * L].sum() for b in kept) + 1.0
        for b, t in kept.items():
            expected[t] += cls_rows[s, b * L + 1:(b + 1) * L] / total / frames
    expected = (expected / expected.sum()).view(frames, *GRID)
    ours = explain_clips(model, video, cls, method="rollout").maps[0]
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-7)

    # From one frame's CLS: one neighbour layer reaches the adjacent frame and no further;
    # a second layer reaches the neighbour's neighbour.
    for layers, reached in ((1, {0, 1}), (2, {0, 1, 2})):
        deeper = student("neighbor", layers=layers)
        _, probabilities = recorded(deeper, video, cls)
        row = torch.zeros(1, frames, L)
        row[0, 0, 0] = 1.0                                             # frame 0's CLS
        for p in reversed(probabilities):
            weights = joint.fuse_heads(p)
            scaled = row / (joint.row_sums(weights, "neighbor", 1, frames, L) + 1)
            row = joint.propagate(scaled, weights, "neighbor") + scaled
        on_patches = row[0, :, 1:].sum(dim=-1)
        assert {t for t in range(frames) if on_patches[t] > 0} == reached


def test_zero_padded_neighbours_get_exactly_zero_gradient(one_thread):
    """The gradient method needs no dropping: dy/dA of an all-zero value block is 0."""
    model = student("neighbor")
    frames, L = 3, TOKENS
    torch.manual_seed(5)
    video, cls = torch.randn(1, frames, 3, 32, 32, requires_grad=True), classifier(model)
    recorder = Recorder()
    model.visual_kernel = recorder
    try:
        y = model(video, cls)[0, 1]
        grads = torch.autograd.grad(y, recorder.probabilities)
    finally:
        model.visual_kernel = None
    for g in grads:
        assert g[frames - 1, :, :, 0:L].abs().max() == 0       # the last frame's "t+1" block
        assert g[0, :, :, L:2 * L].abs().max() == 0            # the first frame's "t-1" block
        assert g[1].abs().max() > 0


@pytest.mark.parametrize("method", ["rollout", "gradient"])
@pytest.mark.parametrize("temporal", backbone_names())
def test_every_backbone_gets_maps_and_keeps_its_logits_and_fast_path(one_thread, temporal, method):
    model = student(temporal)
    torch.manual_seed(6)
    video, cls = torch.randn(2, 4, 3, 32, 32), classifier(model)
    with torch.no_grad():
        before = model(video, cls)
    result = explain_clips(model, video, cls, method=method)
    assert result.maps.shape == (2, 4, *GRID)
    assert torch.isfinite(result.maps).all() and (result.maps >= 0).all()
    torch.testing.assert_close(result.maps.sum(dim=(1, 2, 3)), torch.ones(2))
    assert result.maps.flatten(1).max(dim=1).values.lt(1).all()  # not all on one patch
    torch.testing.assert_close(result.logits, before, rtol=1e-5, atol=1e-5)
    assert torch.equal(result.target, before.argmax(dim=-1))
    # nothing is left behind: the fused kernel, the same plain forward, trainable weights
    assert model.visual_kernel is None and model.attention_kernel("visual") is FUSED
    with torch.no_grad():
        assert torch.equal(model(video, cls), before)
    assert all(p.requires_grad for p in model.parameters())


def test_gradient_maps_follow_the_label_and_head_fusion_rollout_ignores_the_label(one_thread):
    """Different labels and head fusions give different gradient maps; rollout is the same for any label."""
    model = student("neighbor")
    torch.manual_seed(7)
    video, cls = torch.randn(1, 3, 3, 32, 32), classifier(model)
    first = explain_clips(model, video, cls, target=0, method="gradient").maps
    other = explain_clips(model, video, cls, target=1, method="gradient").maps
    maxed = explain_clips(model, video, cls, target=0, method="gradient", head_fusion="max").maps
    rolled = explain_clips(model, video, cls, target=0, method="rollout").maps
    rolled_other = explain_clips(model, video, cls, target=1, method="rollout").maps
    assert not torch.allclose(first, other) and not torch.allclose(first, maxed)
    assert torch.equal(rolled, rolled_other)  # rollout does not depend on the label


def rig_to_ignore(model, ignored_tokens, strength=100.0):
    """Make every attention of a tiny student give the `ignored_tokens` (patch positions)
    exactly zero probability, whatever the frames show.

    Channels 0 and 1 of every token are made equal everywhere (equal conv1, class and
    position rows, LayerNorm and projection rows), except that the ignored positions get
    +-1000 in them from the position table (and ln_pre scales those channels by 100, so
    they dominate after every block). Queries are a constant c (W_q = 0), keys are
    -K (c / |c|^2) (x_0 - x_1) / sqrt(2): 0 for every other token, about -K * 8 for an
    ignored one; the softmax of that is exactly 0 in float32."""
    visual = model.clip.visual
    with torch.no_grad():
        for weight in (visual.conv1.weight, visual.class_embedding, visual.positional_embedding.T,
                       visual.ln_pre.weight, visual.ln_pre.bias):
            weight[1] = weight[0]
        for j in ignored_tokens:
            visual.positional_embedding[j, 0] += 1000.0
            visual.positional_embedding[j, 1] -= 1000.0
        visual.ln_pre.weight[:2] = 100.0
        for block in visual.transformer.resblocks:
            width, heads = block.ln_1.weight.shape[0], block.attn.num_heads
            for weight in (block.ln_1.weight, block.ln_1.bias, block.ln_2.weight, block.ln_2.bias,
                           block.attn.out_proj.weight, block.attn.out_proj.bias,
                           block.mlp.c_proj.weight, block.mlp.c_proj.bias):
                weight[1] = weight[0]
            w, b = block.attn.in_proj_weight, block.attn.in_proj_bias
            w[:width] = 0
            b[:width] = 0.5
            e1 = torch.zeros(width)
            e1[0], e1[1] = 2 ** -0.5, -(2 ** -0.5)
            d = width // heads
            for h in range(heads):
                c = b[h * d:(h + 1) * d]
                w[width + h * d:width + (h + 1) * d] = -strength * torch.outer(c / c.dot(c), e1)
            b[width:2 * width] = 0


@pytest.mark.parametrize("method", ["rollout", "gradient"])
@pytest.mark.parametrize("temporal", ["mean", "neighbor"])
def test_a_region_the_model_ignores_gets_no_relevance(one_thread, temporal, method):
    """A video in which only the top-right quadrant changes from frame to frame, and a
    model rigged to ignore that quadrant: the quadrant gets no relevance at all, though it
    is all that moves; the same video through the unrigged model does give it relevance."""
    rows, cols = torch.meshgrid(torch.arange(4), torch.arange(4), indexing="ij")
    quadrant = ((rows < 2) & (cols >= 2)).flatten()                   # top right, not symmetric
    ignored = [1 + int(j) for j in torch.nonzero(quadrant)]
    torch.manual_seed(8)
    frames = 4
    still = torch.randn(1, 1, 3, 32, 32).expand(1, frames, 3, 32, 32).clone()
    video = still.clone()
    video[..., :16, 16:] = torch.randn(1, frames, 3, 16, 16)           # only this quadrant varies
    model = student(temporal, seed=9)
    cls = classifier(model)
    plain = explain_clips(model, video, cls, target=0, method=method).maps[0]
    assert plain.flatten(1)[:, quadrant].sum() > 0.05

    rig_to_ignore(model, ignored)
    with torch.no_grad():  # the rig works: the quadrant's content does not reach the logits
        other = video.clone()
        other[..., :16, 16:] = torch.randn(1, frames, 3, 16, 16)
        assert torch.equal(model(video, cls), model(other, cls))
        changed = video.clone()
        changed[..., 16:, :16] += 1.0
        assert not torch.equal(model(video, cls), model(changed, cls))
    maps = explain_clips(model, video, cls, target=0, method=method).maps[0].flatten(1)
    assert maps[:, quadrant].abs().max() == 0
    torch.testing.assert_close(maps[:, ~quadrant].sum(), torch.tensor(1.0))


def test_unsupported_models_and_options_are_refused(one_thread):
    model = student("mean")
    video, cls = torch.randn(1, 2, 3, 32, 32), classifier(model)
    with pytest.raises(ValueError, match="method='saliency': expected one of gradient, rollout"):
        explain_clips(model, video, cls, method="saliency")
    with pytest.raises(ValueError, match="head fusion must be one of mean, max"):
        explain_clips(model, video, cls, head_fusion="min")
    with pytest.raises(ValueError, match="label index out of range"):
        explain_clips(model, video, cls, target=9)
    with pytest.raises(ValueError, match=r"\(batch, frames, 3, H, W\)"):
        explain_clips(model, video[0], cls)
    with pytest.raises(ValueError, match="VideoCLIP"):
        explain_clips(model.clip, video, cls)
