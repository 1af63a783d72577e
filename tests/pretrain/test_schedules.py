"""Schedules against their closed forms; EMA and per-parameter clipping against plain loops."""
import math

import torch

from pretrain.schedules import cosine_schedule, linear_warmup_constant
from pretrain.trainer import clip_per_parameter, ema_update, param_groups


def test_cosine_with_warmup_closed_form():
    s = cosine_schedule(1.0, 0.1, epochs=5, iters_per_epoch=4, warmup_epochs=1, start_warmup=0.0)
    assert len(s) == 20
    assert [round(v, 12) for v in s[:4]] == [0.0, 0.25, 0.5, 0.75]
    for i in range(16):
        assert math.isclose(s[4 + i], 0.1 + 0.45 * (1 + math.cos(math.pi * i / 16)), rel_tol=1e-12)


def test_teacher_temperature_warmup():
    t = linear_warmup_constant(0.04, 0.07, warmup_epochs=4, epochs=6)
    assert [round(v, 6) for v in t] == [0.04, 0.05, 0.06, 0.07, 0.07, 0.07]


def test_ema_and_clipping_match_plain_loops():
    torch.manual_seed(0)
    student, teacher = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    before = [p.clone() for p in teacher.parameters()]
    ema_update(teacher, student, 0.9)
    for b, t, s in zip(before, teacher.parameters(), student.parameters()):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * s)
    for p in student.parameters():
        p.grad = torch.randn_like(p) * 10
    plain = []
    for p in student.parameters():
        n = p.grad.norm()
        plain.append(p.grad * min(1.0, 3.0 / (float(n) + 1e-6)))
    clip_per_parameter(list(student.parameters()), 3.0)
    for p, g in zip(student.parameters(), plain):
        torch.testing.assert_close(p.grad, g)


def test_no_weight_decay_on_biases_and_norms():
    m = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    decay, no_decay = param_groups(m)
    assert [p.shape for p in decay["params"]] == [(4, 4)]
    assert len(no_decay["params"]) == 3 and no_decay["weight_decay"] == 0.0
