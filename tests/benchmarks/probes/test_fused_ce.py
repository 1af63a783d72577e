"""The fused CPU loss of the linear probe (seg_ce.c) against PyTorch's own expression:
``F.cross_entropy(F.interpolate(logits, size, bilinear, align_corners=False), labels, ignore)``
averaged over all pixels, value and gradient, on shapes the kernel's shortcuts could get wrong."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from benchmarks.probes import fused_ce
from benchmarks.probes import linear as L

pytestmark = pytest.mark.skipif(not fused_ce.available(), reason="no C compiler: the eager expression runs")


def eager(logits: torch.Tensor, labels: torch.Tensor, ignore: int = 255):
    """PyTorch's expression, value and gradient (in the logits' dtype)."""
    x = logits.detach().clone().requires_grad_()
    up = F.interpolate(x, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    loss = F.cross_entropy(up, labels.long(), ignore_index=ignore, reduction="none").mean()
    (grad,) = torch.autograd.grad(loss, x)
    return loss.detach(), grad


def fused(logits: torch.Tensor, labels: torch.Tensor, ignore: int = 255):
    x = logits.detach().clone().requires_grad_()
    assert fused_ce.applies(x, labels, ignore)
    loss = fused_ce.seg_ce(x, labels, ignore)
    (grad,) = torch.autograd.grad(loss * 3.0, x)        # the incoming gradient is applied
    return loss.detach(), grad / 3.0


CASES = [  # (B, K, h, w, H, W): ViT-S/16 at 224 and DINOv2's /14 at 512 (non-integer factor),
    (2, 150, 14, 14, 224, 224),  # odd sizes, a downsampling, one class, more classes than a
    (1, 21, 37, 37, 512, 512),   # vector's lanes times ten
    (3, 19, 7, 9, 50, 61),
    (2, 5, 8, 6, 5, 4),
    (2, 1, 3, 3, 12, 12),
    (1, 255, 4, 5, 33, 17),
]


@pytest.mark.parametrize("shape", CASES, ids=lambda s: "x".join(map(str, s)))
def test_value_and_gradient_equal_pytorch(shape):
    b, k, h, w, H, W = shape
    g = torch.Generator().manual_seed(sum(shape))
    logits = torch.randn(b, k, h, w, generator=g) * 4
    labels = torch.randint(0, k, (b, H, W), generator=g)
    labels[:, : H // 4] = 255                       # ignored rows
    labels[0, H // 2, : W // 3] = 255               # and ignored runs inside a row
    want_loss, want_grad = eager(logits, labels)
    for lab in (labels, labels.to(torch.uint8)):
        loss, grad = fused(logits, lab)
        torch.testing.assert_close(loss, want_loss, rtol=2e-6, atol=1e-7)   # K = 1: 0 up to rounding
        torch.testing.assert_close(grad, want_grad, rtol=1e-5, atol=1e-5 * float(want_grad.abs().max()))


def test_against_float64():
    """Exponentials and sums of the kernel are float-accurate: the float32 kernel against the
    expression run in float64 on the same logits."""
    g = torch.Generator().manual_seed(7)
    logits = torch.randn(2, 150, 14, 14, generator=g) * 8
    labels = torch.randint(0, 150, (2, 224, 224), generator=g)
    loss, grad = fused(logits, labels)
    want_loss, want_grad = eager(logits.double(), labels)
    assert abs(float(loss) - float(want_loss)) <= 1e-6 * abs(float(want_loss))
    assert float((grad.double() - want_grad).abs().max()) <= 2e-6 * float(want_grad.abs().max())


def test_far_apart_columns_take_the_exact_maximum():
    """The kernel shifts each pixel by the larger of its two columns' maxima; where that is far
    above the pixel's own maximum (columns whose best classes differ by hundreds), it redoes the
    pixel with the exact maximum. Both paths against PyTorch."""
    k, h, w = 6, 4, 4
    logits = torch.zeros(1, k, h, w)
    logits[0, 0, :, 0::2] = 400.0          # class 0 huge in even columns, class 1 in odd ones
    logits[0, 1, :, 1::2] = 400.0
    logits[0, 2:] = torch.randn(k - 2, h, w, generator=torch.Generator().manual_seed(1))
    labels = torch.randint(0, k, (1, 40, 40), generator=torch.Generator().manual_seed(2))
    loss, grad = fused(logits, labels)
    want_loss, want_grad = eager(logits.double(), labels)
    assert float(loss) == pytest.approx(float(want_loss), rel=1e-6)
    torch.testing.assert_close(grad.double(), want_grad, rtol=1e-5, atol=1e-6 * float(want_grad.abs().max()))


def test_all_ignored_is_zero_loss_and_gradient():
    logits = torch.randn(2, 7, 3, 3)
    labels = torch.full((2, 9, 9), 255)
    loss, grad = fused(logits, labels)
    assert float(loss) == 0.0 and float(grad.abs().max()) == 0.0
    want_loss, _ = eager(logits, labels)
    assert float(want_loss) == 0.0


def test_other_ignore_index():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(1, 4, 5, 5, generator=g)
    labels = torch.randint(0, 4, (1, 20, 20), generator=g)
    labels[0, :5] = 7
    torch.testing.assert_close(fused(logits, labels, ignore=7)[0], eager(logits, labels, ignore=7)[0], rtol=2e-6, atol=0)


def test_bad_labels_name_the_pixel():
    logits = torch.randn(2, 4, 3, 3)
    labels = torch.zeros(2, 6, 6, dtype=torch.long)
    labels[1, 2, 5] = 4                     # == K, not the ignore index
    with pytest.raises(ValueError, match=r"label 4 at pixel \(y=2, x=5\) of batch item 1"):
        fused(logits, labels)
    labels[1, 2, 5] = -1
    with pytest.raises(ValueError, match="label -1"):
        fused(logits, labels)
    labels[1, 2, 5] = 300
    with pytest.raises(ValueError, match="label 300"):
        fused(logits, labels)


def test_seg_loss_routes_by_what_the_kernel_covers(monkeypatch):
    """CPU float32 finite logits take the kernel; NaN logits, float64 and ``fused=False`` take
    PyTorch's expression (a NaN stays NaN, as in PyTorch)."""
    calls = []
    real = fused_ce.seg_ce
    monkeypatch.setattr(fused_ce, "seg_ce", lambda *a: calls.append(1) or real(*a))
    logits, labels = torch.randn(1, 3, 4, 4), torch.randint(0, 3, (1, 8, 8))
    L.seg_loss(logits, labels)
    assert calls == [1]
    L.seg_loss(logits, labels, fused=False)
    L.seg_loss(logits.double(), labels)
    bad = logits.clone()
    bad[0, 1, 2, 2] = float("nan")
    assert torch.isnan(L.seg_loss(bad, labels))
    assert calls == [1]
    # without a compiler the probe's uint8 labels go through the expression as well
    monkeypatch.setattr(fused_ce, "available", lambda: False)
    torch.testing.assert_close(L.seg_loss(logits, labels.to(torch.uint8)), eager(logits, labels)[0])
    assert calls == [1]


def test_linear_probe_step_equal_with_and_without_kernel():
    """A few AdamW steps of the probe head with the kernel and with PyTorch's expression end in
    the same weights."""
    g = torch.Generator().manual_seed(5)
    feats = torch.randn(4, 2, 16, 6, 6, generator=g)
    labels = torch.randint(0, 9, (4, 48, 48), generator=g)
    labels[:, :6] = 255
    heads = []
    for use in (True, False):
        torch.manual_seed(0)
        head = L.LinearHead(32, 9)
        opt = torch.optim.AdamW(head.parameters(), lr=1e-2)
        for _ in range(5):
            loss = L.seg_loss(head(L.stack_layers(feats)), labels, fused=use)
            opt.zero_grad()
            loss.backward()
            opt.step()
        heads.append(head.state_dict())
    for name in heads[0]:
        torch.testing.assert_close(heads[0][name], heads[1][name], rtol=1e-4, atol=1e-6)
