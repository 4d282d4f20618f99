"""The video backbones of the paper's Table 3 as options of the student, parametrised over
the registry (as timm's model tests are): each block against a direct re-statement of its
formula, the zero-init start, what trains, the fast paths, export/load and the engine."""

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F
from _engine_data import TINY, tiny_config, tiny_dataset

from froster import backbones
from froster.checkpoint import export_student, load_student
from froster.student_spec import StudentSpec
from froster.distill import Froster
from froster.engine.distributed import DistInfo
from froster.engine.train import Trainer
from froster.model import VideoCLIP
from froster.prompts import BARE_INDEX, PromptBank

ALL = backbones.names()
ADDED = ("aim", "st_adapter", "adaptformer", "actionclip")   # those that add parameters
ZERO_INIT = ("mean", "aim", "st_adapter", "adaptformer")     # per-frame features start as CLIP's
CLASSES = ["Juggling: a person throws balls", "Abseiling: a person descends a rope",
           "Archery: a person shoots arrows", "Rowing: a person rows a boat"]

pytestmark = pytest.mark.usefixtures("one_thread")


def plain_frames(clip, video):
    """Plain CLIP's normalised per-frame embeddings of (B, T, 3, H, W)."""
    return F.normalize(clip.encode_image(video.flatten(0, 1)), dim=-1).view(*video.shape[:2], -1)


def randomise_added(student, std=0.2, seed=0):
    """Give the added modules non-zero weights, so that they matter in a comparison."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in student.added_parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * std)
    return student


def student_of(clip, temporal, **options):
    return VideoCLIP(copy.deepcopy(clip), temporal=temporal, **options)


# -- the registry and the added parameters ------------------------------------------------

def test_registry_lists_every_table3_backbone():
    assert set(ALL) == {"neighbor", "mean", "aim", "st_adapter", "adaptformer", "actionclip"}
    for name in ALL:
        assert backbones.get(name).name == name
        assert backbones.get(name)().adds_parameters == (name in ADDED)
    with pytest.raises(ValueError, match="aim, st_adapter"):
        backbones.get("lstm")


def reference_keys(width: int, text_width: int, embed: int, context: int) -> dict[str, dict]:
    """Added keys of block 0 (or the fusion) and their shapes, as the reference (and
    ActionCLIP) name them: a reference checkpoint maps onto them by prefix only."""
    quarter, half = width // 4, width // 2
    adapter = lambda name: {f"{name}.adapter.0.weight": (quarter, width),  # noqa: E731
                            f"{name}.adapter.0.bias": (quarter,),
                            f"{name}.adapter.2.weight": (width, quarter),
                            f"{name}.adapter.2.bias": (width,)}
    block = "visual.transformer.resblocks.0."
    fusion = "visual.temporal_fusion."
    return {
        "aim": {block + k: v for k, v in (adapter("t_adapter") | adapter("s_adapter")
                                          | adapter("ffn_adapter")).items()},
        "adaptformer": {block + k: v for k, v in adapter("ffn_adapter").items()},
        "st_adapter": {block + "stadapt_down_1.weight": (half, width, 1, 1),
                       block + "stadapt_down_1.bias": (half,),
                       block + "stadapt_conv3d_1.weight": (half, 1, 3, 1),
                       block + "stadapt_conv3d_1.bias": (half,),
                       block + "stadapt_up_1.weight": (width, half, 1, 1),
                       block + "stadapt_up_1.bias": (width,)},
        "actionclip": {fusion + "frame_position_embeddings.weight": (context, embed),
                       fusion + "transformer.resblocks.5.attn.in_proj_weight": (3 * embed, embed),
                       fusion + "transformer.resblocks.5.attn.out_proj.weight": (embed, embed),
                       fusion + "transformer.resblocks.0.ln_1.weight": (embed,),
                       fusion + "transformer.resblocks.0.mlp.c_fc.weight": (4 * embed, embed),
                       fusion + "transformer.resblocks.0.mlp.c_proj.bias": (embed,)},
    }


@pytest.mark.parametrize("temporal", ADDED)
def test_added_keys_and_shapes_are_the_references(tiny_clip, temporal):
    clip, _ = tiny_clip
    plain = set(clip.state_dict())
    state = student_of(clip, temporal).clip.state_dict()
    assert plain <= set(state)  # the pretrained CLIP's keys are all kept, none renamed
    added = {k: tuple(v.shape) for k, v in state.items() if k not in plain}
    want = reference_keys(64, 64, 32, 77)[temporal]
    assert {k: added.get(k) for k in want} == want
    # nothing else: the same modules in both blocks; ActionCLIP: 6 blocks x 12 tensors + 1
    assert len(added) == {"aim": 2 * 12, "st_adapter": 2 * 6, "adaptformer": 2 * 4,
                          "actionclip": 6 * 12 + 1}[temporal]


def test_actionclip_settings_are_actionclips(tiny_clip):
    clip, _ = tiny_clip
    fusion = student_of(clip, "actionclip").clip.visual.temporal_fusion
    blocks = fusion.transformer.resblocks
    assert len(blocks) == 6
    assert blocks[0].attn.num_heads == 1                  # text width 64 // 64
    assert blocks[0].ln_1.eps == 1e-12 and type(blocks[0].mlp.gelu).__name__ == "QuickGELU"
    linears = torch.cat([b.mlp.c_fc.weight.flatten() for b in blocks]
                        + [fusion.frame_position_embeddings.weight.flatten()]).detach()
    assert abs(float(linears.std()) - 0.02) < 0.002 and abs(float(linears.mean())) < 0.002
    assert all(float(b.mlp.c_fc.bias.abs().max()) == 0 for b in blocks)


# -- each block against a direct re-statement of its formula --------------------------------

def mha(block, x):
    """The block's own nn.MultiheadAttention (batch first), as the reference calls it."""
    return block.attn(x, x, x, need_weights=False)[0]


def adapter(module, x):
    return module.adapter[2](F.gelu(module.adapter[0](x)))


def direct_tower(clip, video, block_fn):
    visual = clip.visual
    batch, frames = video.shape[:2]
    x = visual._embeds(video.flatten(0, 1))
    for block in visual.transformer.resblocks:
        x = block_fn(block, x, batch, frames)
    return visual.ln_post(x[:, 0]) @ visual.proj


def aim_direct(block, x, batch, frames):
    tokens, width = x.shape[1:]
    xt = x.view(batch, frames, tokens, width).permute(0, 2, 1, 3).reshape(batch * tokens, frames, width)
    t = mha(block, block.ln_1(xt)).view(batch, tokens, frames, width).permute(0, 2, 1, 3)
    x = x + adapter(block.t_adapter, t.reshape(batch * frames, tokens, width))
    a = mha(block, block.ln_1(x))
    x = x + a + adapter(block.s_adapter, a)
    h = block.ln_2(x)
    return x + block.mlp(h) + 0.5 * adapter(block.ffn_adapter, h)


def st_adapter_direct(block, x, batch, frames):
    """The reference's layout: patches as (B*P, D, T, 1) through its three Conv2d modules."""
    tokens, width = x.shape[1:]
    patches = x[:, 1:].reshape(batch, frames, tokens - 1, width)
    z = patches.permute(0, 2, 3, 1).reshape(batch * (tokens - 1), width, frames, 1)
    z = block.stadapt_up_1(block.stadapt_conv3d_1(block.stadapt_down_1(z)))
    z = z.view(batch, tokens - 1, width, frames).permute(0, 3, 1, 2)
    x = torch.cat([x[:, :1], (patches + z).reshape(batch * frames, tokens - 1, width)], dim=1)
    x = x + mha(block, block.ln_1(x))
    return x + block.mlp(block.ln_2(x))


def adaptformer_direct(block, x, batch, frames):
    x = x + mha(block, block.ln_1(x))
    h = block.ln_2(x)
    return x + block.mlp(h) + 0.5 * adapter(block.ffn_adapter, h)


@pytest.mark.parametrize("temporal, block_fn", [("aim", aim_direct), ("st_adapter", st_adapter_direct),
                                                ("adaptformer", adaptformer_direct)])
@pytest.mark.parametrize("frames", [1, 3])
def test_block_matches_its_formula(tiny_clip, temporal, block_fn, frames):
    clip, _ = tiny_clip
    student = randomise_added(student_of(clip, temporal))
    video = torch.randn(2, frames, 3, 32, 32)
    with torch.no_grad():
        want = F.normalize(direct_tower(student.clip, video, block_fn), dim=-1).view(2, frames, -1)
        got = student.encode_frames(video)
        assert not torch.allclose(got, plain_frames(clip, video), atol=1e-3)  # the adapters act
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_st_adapter_convolution_mixes_only_neighbouring_frames(tiny_clip):
    """Changing frame 0 changes the adapter's output of frames 0 and 1 in the first block,
    not frame 2 (kernel 3 along time), and never the CLS token before attention."""
    from froster.backbones.st_adapter import st_adapter_block
    clip, _ = tiny_clip
    block = randomise_added(student_of(clip, "st_adapter")).clip.visual.transformer.resblocks[0]
    block.attn.out_proj.weight.data.zero_()  # isolate the adapter: no mixing of tokens
    block.mlp.c_proj.weight.data.zero_()
    x = torch.randn(3, 5, 64)
    y = x.clone()
    y[0, 1:] += 1.0
    with torch.no_grad():
        a, b = (st_adapter_block(block, t, 3, F.scaled_dot_product_attention) for t in (x, y))
    changed = (a - b).abs().amax(dim=(1, 2)) > 1e-4
    assert changed.tolist() == [True, True, False]
    torch.testing.assert_close(a[1:, 0], b[1:, 0])


@pytest.mark.parametrize("frames", [1, 4])
def test_actionclip_matches_its_formula(tiny_clip, frames):
    clip, _ = tiny_clip
    student = student_of(clip, "actionclip")
    fusion = student.clip.visual.temporal_fusion
    video = torch.randn(2, frames, 3, 32, 32)
    with torch.no_grad():
        f = student.clip.encode_image(video.flatten(0, 1)).view(2, frames, -1)  # frames alone
        x = f + fusion.frame_position_embeddings(torch.arange(frames))
        for block in fusion.transformer.resblocks:
            x = x + mha(block, block.ln_1(x))
            x = x + block.mlp(block.ln_2(x))
        want = F.normalize(f + x, dim=-1)
        got = student.encode_frames(video)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(got, plain_frames(clip, video), atol=1e-3)  # not zero-init


def test_actionclip_refuses_more_frames_than_its_position_table(tiny_clip):
    clip, _ = tiny_clip
    student = student_of(clip, "actionclip")
    student.clip.visual.temporal_fusion.frame_position_embeddings = torch.nn.Embedding(4, 32)
    with pytest.raises(ValueError, match="4 entries; a clip of 5 frames"):
        student.encode_frames(torch.randn(1, 5, 3, 32, 32))


# -- start, one frame, what trains -----------------------------------------------------------

@pytest.mark.parametrize("temporal", ZERO_INIT)
@pytest.mark.parametrize("frames", [1, 4])
def test_zero_init_backbone_starts_as_plain_clip(tiny_clip, temporal, frames):
    clip, _ = tiny_clip
    video = torch.randn(2, frames, 3, 32, 32)
    with torch.no_grad():
        got = student_of(clip, temporal).encode_frames(video)
    torch.testing.assert_close(got, plain_frames(clip, video), atol=1e-6, rtol=0)


@pytest.mark.parametrize("temporal", ALL)
def test_one_frame_input_works(tiny_clip, temporal):
    clip, _ = tiny_clip
    student = randomise_added(student_of(clip, temporal))
    with torch.no_grad():
        emb = student.encode_frames(torch.randn(3, 1, 3, 32, 32))
    assert emb.shape == (3, 1, 32) and torch.isfinite(emb).all()
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3, 1))


@pytest.mark.parametrize("temporal", ADDED)
def test_teacher_is_the_plain_clip(tiny_clip, temporal):
    clip, _ = tiny_clip
    model = Froster(randomise_added(student_of(clip, temporal)))
    teacher = model.teacher.encoder.clip
    assert set(teacher.state_dict()) == set(clip.state_dict())
    video = torch.randn(1, 3, 3, 32, 32)
    torch.testing.assert_close(model.teacher.encode_frames(video), plain_frames(clip, video).flatten(0, 1))
    assert not any(p.requires_grad for p in teacher.parameters())


@pytest.fixture
def batch(tiny_clip):
    _, tokenizer = tiny_clip
    torch.manual_seed(1)
    return PromptBank(CLASSES, tokenizer), torch.randn(2, 3, 3, 32, 32), torch.tensor([1, 3])


def step(model, bank, video, labels, templates=(5, BARE_INDEX)):
    model.zero_grad(set_to_none=True)
    terms = model(video, labels, bank, templates)
    terms.loss.backward()
    return terms, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("temporal", ADDED)
def test_training_steps_change_every_added_parameter(tiny_clip, batch, temporal):
    """Two AdamW steps without weight decay: a parameter moves only if it got a gradient
    (zero-init adapters: the last layer at step 1, the first layer from step 2)."""
    clip, _ = tiny_clip
    bank, video, labels = batch
    model = Froster(student_of(clip, temporal))
    before = [p.detach().clone() for p in model.student.added_parameters()]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
    for _ in range(2):
        step(model, bank, video, labels)
        optimizer.step()
    after = model.student.added_parameters()
    assert len(after) == len(before) > 0
    unchanged = [i for i, (a, b) in enumerate(zip(before, after)) if torch.equal(a, b)]
    assert unchanged == []


@pytest.mark.parametrize("temporal", ("neighbor", "mean"))
def test_train_params_added_needs_added_modules(tiny_clip, temporal):
    clip, _ = tiny_clip
    with pytest.raises(ValueError, match="adds nothing; use one of aim, st_adapter"):
        student_of(clip, temporal).set_train_params("added")


# -- the fast paths are exact for every backbone -------------------------------------------

def froster_of(clip, temporal, **options):
    torch.manual_seed(0)
    model = Froster(randomise_added(student_of(clip, temporal, **options)), teacher_clip=copy.deepcopy(clip))
    torch.nn.init.normal_(model.projector_v.fc2.weight, std=0.1)
    torch.nn.init.normal_(model.projector_t.fc2.weight, std=0.1)
    return model


def assert_same_step(a, b, atol=1e-5):
    (terms_a, grads_a), (terms_b, grads_b) = a, b
    for key in ("loss", "ce", "distill_visual", "distill_text", "logits"):
        torch.testing.assert_close(getattr(terms_a, key), getattr(terms_b, key), atol=atol, rtol=1e-4)
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 10
    for name in grads_a:  # float noise grows with the gradient's scale (token rows reach ~16)
        scale = max(1.0, float(grads_a[name].abs().max()))
        torch.testing.assert_close(grads_a[name], grads_b[name], atol=atol * scale, rtol=1e-4,
                                   msg=name)


@pytest.mark.parametrize("temporal", ALL)
def test_gradient_checkpointing_gives_identical_gradients(tiny_clip, batch, temporal,
                                                         checkpoint_calls):
    clip, _ = tiny_clip
    model = froster_of(clip, temporal)
    plain = step(model, *batch)
    assert checkpoint_calls[0] == 0
    model.student.set_grad_checkpointing(True)
    checkpointed = step(model, *batch)
    assert checkpoint_calls[0] >= len(clip.visual.transformer.resblocks)
    assert_same_step(plain, checkpointed, atol=1e-6)


@pytest.mark.parametrize("temporal", ALL)
def test_fused_and_unfused_attention_agree(tiny_clip, batch, temporal):
    clip, _ = tiny_clip
    fused = step(froster_of(clip, temporal), *batch)
    unfused = step(froster_of(clip, temporal, fused_attention=False), *batch)
    assert_same_step(fused, unfused)


@pytest.mark.parametrize("temporal", ALL)
def test_every_visual_attention_goes_through_the_one_kernel(tiny_clip, temporal):
    """A recording kernel set in the one place sees every attention of the visual tower:
    per block one (AIM: two, temporal then spatial), plus ActionCLIP's six fusion blocks."""
    clip, _ = tiny_clip
    student = student_of(clip, temporal)
    calls = []

    def recording(q, k, v, attn_mask=None, is_causal=False):
        calls.append(tuple(q.shape))
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal)

    student.visual_kernel = recording
    video = torch.randn(2, 3, 3, 32, 32)
    got = student.encode_frames(video)
    student.visual_kernel = None
    torch.testing.assert_close(got, student.encode_frames(video))
    per_block = {"aim": 2}.get(temporal, 1)
    assert len(calls) == 2 * per_block + (6 if temporal == "actionclip" else 0)
    if temporal == "aim":
        assert calls[0][2] == 3 and calls[1][2] == 17  # along time, then along space
    student.encode_text(torch.tensor([[49406, 320, 49407]]))
    assert len(calls) == 2 * per_block + (6 if temporal == "actionclip" else 0)  # text: not visual


@pytest.mark.parametrize("temporal", ALL)
def test_bf16_autocast_runs(tiny_clip, batch, temporal):
    clip, _ = tiny_clip
    bank, video, labels = batch
    model = froster_of(clip, temporal)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = model(video, labels, bank, (5, BARE_INDEX))
    terms.loss.backward()
    assert terms.logits.dtype == torch.bfloat16 and torch.isfinite(terms.loss)
    grads = [p.grad for p in model.student.added_parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(g.abs().sum() > 0 for g in grads)


# -- export / load -----------------------------------------------------------------------------

@pytest.mark.parametrize("temporal", ALL)
def test_export_load_round_trip_gives_identical_logits(tiny_clip, tmp_path, temporal):
    clip, tokenizer = tiny_clip
    student = randomise_added(student_of(clip, temporal), seed=3)
    export_student(student, StudentSpec(model="froster-tiny", pretrained=None, temporal=temporal),
                   tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["temporal"] == temporal
    torch.manual_seed(123)  # a fresh init of the added modules would differ
    loaded, _, _ = load_student(tmp_path)
    assert loaded.temporal == temporal
    video = torch.randn(2, 3, 3, 32, 32)
    classes = student.encode_classes(tokenizer(["a", "b", "c"]).unsqueeze(1))
    with torch.no_grad():
        assert torch.equal(loaded(video, classes), student(video, classes))


# -- the engine: train_params, the optimiser, every command ------------------------------------

@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("data"))


@pytest.mark.parametrize("temporal", ADDED)
def test_train_params_added_trains_only_the_added_modules(data, tmp_path, temporal):
    cfg = tiny_config(data, tmp_path, temporal=temporal, train_params="added", added_lr_scale=10,
                      epochs=1, average_from_epoch=0, val_list="")
    trainer = Trainer(cfg, DistInfo())
    model, student = trainer.model, trainer.student
    added = {id(p) for p in student.added_parameters()}
    allowed = added | {id(student.clip.logit_scale)} | {
        id(p) for n, p in model.named_parameters() if n.startswith(("projector_v.", "projector_t."))}
    assert {id(p) for p in model.parameters() if p.requires_grad} == allowed
    in_optimizer = [p for g in trainer.optimizer.param_groups for p in g["params"]]
    assert {id(p) for p in in_optimizer} == allowed and len(in_optimizer) == len(allowed)
    assert {g.get("lr_scale", 1.0) for g in trainer.optimizer.param_groups
            if any(id(p) in added for p in g["params"])} == {10}

    # one forward/backward: nothing else gets a gradient, the text tower builds no graph
    batch = next(iter(trainer.loader))
    from froster.data import normalize
    video = normalize(batch["video"], trainer.mean, trainer.std)
    templates = trainer.bank.training_templates(trainer.template_rng)
    terms = model(video, batch["label"], trainer.bank, templates)
    assert not model.class_embeddings(trainer.bank, templates, video.device).requires_grad
    terms.loss.backward()
    got_grad = {id(p) for p in model.parameters() if p.grad is not None}
    assert got_grad <= allowed and added & got_grad
    model.zero_grad(set_to_none=True)

    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.run()
    after = dict(model.named_parameters())
    moved = {n for n in before if not torch.equal(before[n], after[n])}
    assert {id(after[n]) for n in moved} <= allowed
    assert {id(after[n]) for n in moved} & added
    # the scaled groups ran at 10x the schedule's rate
    rates = {g.get("lr_scale", 1.0): g["lr"] for g in trainer.optimizer.param_groups}
    assert rates[10] == pytest.approx(10 * rates[1.0])


@pytest.mark.parametrize("temporal", ADDED)
def test_every_command_takes_every_backbone(data, tmp_path, temporal, capsys):
    """train -> export -> eval -> predict -> search through the CLI with each backbone's student."""
    from froster.cli import main
    run = tmp_path / "run"
    values = TINY | data | {"output_dir": str(run), "epochs": 1, "average_from_epoch": 0,
                            "temporal": temporal}
    assert main(["train", *[f"{k}={v}" for k, v in values.items()]]) == 0
    assert main(["export", str(run), str(tmp_path / "exported")]) == 0
    exported = tmp_path / "exported"
    assert json.loads((exported / "config.json").read_text())["temporal"] == temporal
    epoch, _, _ = load_student(run / "epochs/epoch_001")
    again, _, _ = load_student(exported)
    for (name, a), (_, b) in zip(epoch.clip.state_dict().items(), again.clip.state_dict().items()):
        assert torch.equal(a, b), name
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(exported)]) == 0
    assert "over 9 of 9 videos" in capsys.readouterr().out
    video = data["data_root"] + "/videos/c0_0.mp4"
    assert main(["predict", video, "--checkpoint", str(exported), "--labels", "juggling,rowing",
                 "--no-cache", "--frames", "2", "--views", "1", "--workers", "0",
                 "--no-progress"]) == 0
    assert "juggling" in capsys.readouterr().out
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips/clip.mp4").symlink_to(video)
    assert main(["search", str(tmp_path / "clips"), "a person juggling", "--checkpoint",
                 str(exported), "--index", str(tmp_path / "index.safetensors"), "--no-cache",
                 "--frames", "2", "--views", "1", "--workers", "0", "--no-progress",
                 "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["video"] == "clip.mp4"


@pytest.mark.slow
def test_two_process_gloo_run_matches_one_process_with_adapters(tmp_path):
    from test_engine_distributed import SETTINGS, two_processes_match_one
    two_processes_match_one(tmp_path, SETTINGS | {"temporal": "st_adapter"})


def test_plain_clip_with_an_untrained_fusion_is_refused(capsys):
    """`--model` gives a plain CLIP: fine for zero-init adapters (they start as CLIP), but
    ActionCLIP's fusion would run with random weights."""
    from froster.cli import main
    from froster.inference.api import Recognizer
    with pytest.raises(ValueError, match="pass a trained checkpoint"):
        Recognizer.from_pretrained("froster-tiny", None, temporal="actionclip")
    for allowed in ("neighbor", "mean", "aim"):  # no module, or one that starts as CLIP
        assert Recognizer.from_pretrained("froster-tiny", None,
                                          temporal=allowed).model.temporal == allowed
    assert main(["predict", "x.mp4", "--model", "froster-tiny", "--pretrained", "none",
                 "--temporal", "actionclip", "--labels", "a,b"]) == 2
    assert "temporal='actionclip' adds a module" in capsys.readouterr().err


def test_config_validates_backbone_options():
    from froster.config import load_config
    assert load_config(overrides=["temporal=st_adapter", "train_params=added"]).train_params == "added"
    with pytest.raises(ValueError, match="temporal='lstm': expected one of neighbor, mean, aim"):
        load_config(overrides=["temporal=lstm"])
    with pytest.raises(ValueError, match="train_params='some'"):
        load_config(overrides=["train_params=some"])
    with pytest.raises(ValueError, match="added_lr_scale must be positive"):
        load_config(overrides=["added_lr_scale=0"])


@pytest.mark.parametrize("name", ["mean", "aim", "st_adapter", "adaptformer", "actionclip"])
def test_table3_configs_are_the_cross_dataset_recipe(name):
    """Each backbone's FROSTER and fine-tuning configs: FROSTER's cross-dataset recipe with
    only the backbone and `distill` changed."""
    from pathlib import Path

    from froster.config import load_config
    configs = Path(__file__).resolve().parents[1] / "configs"
    base = load_config(configs / "cross_k400.yaml")
    froster_cfg = load_config(configs / f"cross_k400_{name}.yaml")
    finetune = load_config(configs / f"cross_k400_{name}_finetune.yaml")
    assert froster_cfg.temporal == finetune.temporal == name
    assert froster_cfg.distill and not finetune.distill
    for cfg in (froster_cfg, finetune):
        differ = {k for k, v in cfg.to_dict().items() if v != getattr(base, k)}
        assert differ <= {"temporal", "distill", "output_dir"}, differ
    assert math.isclose(froster_cfg.added_lr_scale, 1.0) and froster_cfg.train_params == "all"
