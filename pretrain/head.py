"""Projection head (DINO-style) with weight-normalised prototypes."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Prototypes(nn.Module):
    """Weight-normalised linear layer without bias: ``x @ (g * v / |v|)^T``.

    With ``norm_last_layer=True`` the norm ``g`` is fixed at 1 (the layer computes cosine
    similarities between the L2-normalised input and the K prototype directions ``v``).
    """

    def __init__(self, in_dim: int, out_dim: int, norm_last_layer: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_dim, in_dim))
        nn.init.trunc_normal_(self.weight, std=0.02)
        self.gain = None if norm_last_layer else nn.Parameter(torch.ones(out_dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.normalize(self.weight, dim=1)
        if self.gain is not None:
            w = w * self.gain
        return F.linear(x, w)


class ClusteringHead(nn.Module):
    """MLP ``C -> hidden -> hidden -> bottleneck`` with GELU, L2 normalisation, then
    :class:`Prototypes` ``bottleneck -> K``. Input ``[..., C]``, output logits ``[..., K]``."""

    def __init__(self, in_dim: int, out_dim: int = 4096, hidden_dim: int = 2048,
                 bottleneck_dim: int = 256, n_layers: int = 3, norm_last_layer: bool = True):
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (n_layers - 1) + [bottleneck_dim]
        layers: list[nn.Module] = []
        for i in range(n_layers):
            layers.append(nn.Linear(dims[i], dims[i + 1]))
            if i < n_layers - 1:
                layers.append(nn.GELU())
        self.mlp = nn.Sequential(*layers)
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.last_layer = Prototypes(bottleneck_dim, out_dim, norm_last_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[..., K]`` in float32 whatever the autocast dtype of the MLP: the normalisation
        and the prototype layer run in fp32, because the loss divides the logits by the teacher
        temperature (0.04), where bf16's 8-bit mantissa would cost about 0.1 nat of resolution."""
        x = self.mlp(x)
        with torch.autocast(x.device.type, enabled=False):
            return self.last_layer(F.normalize(x.float(), dim=-1, eps=1e-6))
