import math

import pytest
import torch

from froster.engine.metrics import compute_metrics
from froster.engine.schedule import learning_rate
from froster.engine.optim import param_groups


def test_metrics_on_known_logits():
    logits = torch.tensor([[9., 1, 0, 0, 0, 0],    # true 0, predicted 0
                           [0., 9, 1, 0, 0, 0],    # true 1, predicted 1
                           [9., 0, 1, 0, 0, 0],    # true 2, predicted 0 (2nd)
                           [-1., 0, 0, 1, 2, 3],   # true 0, predicted 5 (not in top 5)
                           [0., 0, 9, 0, 0, 0]])   # true 2, predicted 2
    labels = torch.tensor([0, 1, 2, 0, 2])
    m = compute_metrics(logits, labels, total=7, failed=["a.mp4: broken", "b.mp4: missing"])
    assert m.top1 == pytest.approx(60.0)
    assert m.top5 == pytest.approx(80.0)
    assert m.per_class == [pytest.approx(50.0), pytest.approx(100.0), pytest.approx(50.0),
                           None, None, None]
    assert m.mean_class_accuracy == pytest.approx(200 / 3)
    assert m.confusion[0].tolist() == [1, 0, 0, 0, 0, 1]
    assert m.confusion[2].tolist() == [1, 0, 1, 0, 0, 0]
    assert int(m.confusion.sum()) == 5
    assert (m.evaluated, m.total) == (5, 7)
    assert "over 5 of 7 videos" in m.describe()


def test_no_video_is_an_error():
    with pytest.raises(ValueError, match="no video"):
        compute_metrics(torch.empty(0, 3), torch.empty(0, dtype=torch.long))


def test_schedule_warmup_then_cosine():
    kw = dict(total_steps=100, warmup_steps=10, peak=1.0, warmup_start=0.01, end=0.001)
    top = 0.001 + 0.999 * 0.5 * (1 + math.cos(math.pi * 10 / 100))  # PySlowFast: cosine at the warm-up end
    assert learning_rate(0, **kw) == pytest.approx(0.01)
    assert learning_rate(5, **kw) == pytest.approx(0.01 + (top - 0.01) / 2)
    assert learning_rate(10, **kw) == pytest.approx(top)
    assert learning_rate(55, **kw) == pytest.approx(0.001 + 0.999 * 0.5 * (1 + math.cos(math.pi * 0.55)))
    assert learning_rate(100, **kw) == pytest.approx(0.001)
    after = dict(kw, after_warmup=True)
    assert learning_rate(10, **after) == pytest.approx(1.0)
    assert learning_rate(55, **after) == pytest.approx(0.001 + 0.999 * 0.5)
    lrs = [learning_rate(s, **kw) for s in range(100)]
    assert lrs.index(max(lrs)) == 10


def test_weight_decay_groups_follow_the_reference_by_name(tiny_clip):
    """PySlowFast's rule: no decay on 1-D parameters and on names ending in .bias; the rest,
    the 0-D logit_scale included, is decayed."""
    from froster.distill import Froster
    from froster.model import VideoCLIP

    model = Froster(VideoCLIP(tiny_clip[0]))
    decay, no_decay = param_groups(model, 0.01)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    decayed, exempt = set(decay["names"]), set(no_decay["names"])
    assert "student.clip.logit_scale" in decayed
    assert {"projector_v.fc1.weight", "projector_t.fc2.weight", "student.clip.positional_embedding",
            "student.clip.visual.conv1.weight", "student.clip.token_embedding.weight",
            "student.clip.visual.proj", "student.clip.text_projection"} <= decayed
    assert {"student.clip.visual.class_embedding", "student.clip.ln_final.weight",
            "student.clip.ln_final.bias", "student.clip.visual.transformer.resblocks.0.attn.in_proj_bias",
            "student.clip.visual.transformer.resblocks.0.mlp.c_fc.bias"} <= exempt
    named = dict(model.named_parameters())
    assert decayed | exempt == set(named) and not decayed & exempt
    assert [id(p) for p in decay["params"]] == [id(named[n]) for n in decay["names"]]
    for name in decayed:  # exactly the reference's rule, checked name by name
        assert named[name].ndim != 1 and not name.endswith(".bias")
    for name in exempt:
        assert named[name].ndim == 1 or name.endswith(".bias")


def test_logit_scale_decay_off_exempts_it(tiny_clip):
    from froster.distill import Froster
    from froster.model import VideoCLIP

    model = Froster(VideoCLIP(tiny_clip[0]))
    on = param_groups(model, 0.01)
    off = param_groups(model, 0.01, logit_scale_decay=False)
    assert "student.clip.logit_scale" in off[1]["names"]
    assert set(on[0]["names"]) - set(off[0]["names"]) == {"student.clip.logit_scale"}


def test_the_trainer_decays_logit_scale_unless_told_not_to(tmp_path):
    from _engine_data import tiny_config, tiny_dataset
    from froster.engine.distributed import DistInfo
    from froster.engine.train import Trainer

    data = tiny_dataset(tmp_path / "data", per_class=2, num_classes=2)
    for setting, group in ((True, 0), (False, 1)):
        cfg = tiny_config(data, tmp_path / "run", logit_scale_decay=setting)
        groups = Trainer(cfg, DistInfo()).optimizer.param_groups
        assert "student.clip.logit_scale" in groups[group]["names"]
        assert groups[group]["weight_decay"] == (0.01 if group == 0 else 0.0)
