import math

import pytest
import torch

from froster.engine.metrics import compute_metrics
from froster.engine.schedule import learning_rate
from froster.engine.train import param_groups


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


def test_no_weight_decay_on_one_dimensional_parameters(tiny_clip):
    from froster.distill import Froster
    from froster.model import VideoCLIP

    model = Froster(VideoCLIP(tiny_clip[0]))
    decay, no_decay = param_groups(model, 0.01)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim < 2 for p in no_decay["params"])
    ids = {id(p) for p in no_decay["params"]}
    assert id(model.student.clip.logit_scale) in ids
    assert id(model.projector_v.fc1.weight) in {id(p) for p in decay["params"]}
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
