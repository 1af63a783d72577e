"""core/normalise.py against torchvision's Normalize (an independent implementation)."""
from __future__ import annotations

import torch
from torchvision.transforms import functional as TF

from core.constants import DINO_DAVIS_STD, IMAGENET_MEAN, IMAGENET_STD
from core.normalise import normalise, normalise_affine


def test_normalise_equals_torchvision_for_uint8_and_unit_range():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (2, 3, 5, 7), generator=g, dtype=torch.uint8)
    want = TF.normalize(x.float() / 255.0, IMAGENET_MEAN, IMAGENET_STD)
    assert torch.equal(normalise(x), want)
    assert torch.equal(normalise(x.float() / 255.0, scale=1.0), want)
    other = TF.normalize(x[0].float() / 255.0, IMAGENET_MEAN, DINO_DAVIS_STD)
    assert torch.equal(normalise(x[0], IMAGENET_MEAN, DINO_DAVIS_STD), other)


def test_affine_form_agrees_to_rounding():
    x = torch.arange(256, dtype=torch.float32).repeat(3, 1).view(3, 16, 16)
    a, b = normalise_affine((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    assert torch.allclose(x * a + b, normalise(x, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)), atol=1e-5)
    assert not torch.allclose(x * a + b, normalise(x), atol=1e-3)     # the statistics matter
