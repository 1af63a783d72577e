"""Student / teacher network: encoder + clustering head, and the FLSL forward pass."""
from __future__ import annotations

import torch
from torch import nn

from .encoder import EncoderSpec, build_encoder, encode
from .head import ClusteringHead
from .loss import attend, mean_shift


class FLSLNet(nn.Module):
    """``backbone`` (timm ViT, no class token) and ``head`` (:class:`ClusteringHead`)."""

    def __init__(self, spec: EncoderSpec, drop_path_rate: float = 0.0, out_dim: int = 4096,
                 hidden_dim: int = 2048, bottleneck_dim: int = 256, norm_last_layer: bool = True):
        super().__init__()
        self.backbone = build_encoder(spec, drop_path_rate=drop_path_rate)
        self.head = ClusteringHead(self.backbone.embed_dim, out_dim, hidden_dim, bottleneck_dim,
                                   norm_last_layer=norm_last_layer)

    def forward(self, global_view: torch.Tensor, local_views: torch.Tensor,
                global_index: torch.Tensor, local_index: torch.Tensor, beta_sa: float):
        """Student pass over all student views.

        Args:
            global_view ``[B, 3, G, G]``; local_views ``[B, L, 3, l, l]``;
            global_index ``[B, n_g]``, local_index ``[B, L, n_l]`` sampled token positions.
        Returns:
            ``(x_global [B, n_g, C], x_local [B*L, n_l, C], tokens [T, C], modes [T, C],
            logits [T, K])`` with T = B*n_g + B*L*n_l; ``modes`` are the intra-view mean-shift
            steps of the selected tokens ``x`` and ``logits = head(modes)``.
        """
        b, n_local = local_views.shape[:2]
        z_global = encode(self.backbone, global_view, check_finite=False)
        x_global, m_global = mean_shift(z_global, z_global, global_index, beta_sa)
        parts_x, parts_m = [x_global.flatten(0, 1)], [m_global.flatten(0, 1)]
        x_local = None
        if n_local:
            z_local = encode(self.backbone, local_views.flatten(0, 1), check_finite=False)
            x_local, m_local = mean_shift(z_local, z_local, local_index.flatten(0, 1), beta_sa)
            parts_x.append(x_local.flatten(0, 1))
            parts_m.append(m_local.flatten(0, 1))
        tokens, modes = torch.cat(parts_x), torch.cat(parts_m)
        return x_global, x_local, tokens, modes, self.head(modes)

    @torch.no_grad()
    def teacher_targets(self, teacher_view: torch.Tensor, x_global: torch.Tensor,
                        x_local: torch.Tensor | None, beta_ca: float) -> torch.Tensor:
        """Teacher pass: inter-view modes ``u`` of the student's selected tokens over the
        teacher's tokens of view 0, and their logits ``[T, K]`` (same order as the student's)."""
        t = encode(self.backbone, teacher_view, check_finite=False)                      # [B, M, C]
        u = [attend(x_global.detach().to(t.dtype), t, beta_ca).flatten(0, 1)]
        if x_local is not None:
            b = t.shape[0]
            n_local = x_local.shape[0] // b
            t_rep = t.repeat_interleave(n_local, dim=0)              # [B*L, M, C]
            u.append(attend(x_local.detach().to(t.dtype), t_rep, beta_ca).flatten(0, 1))
        return self.head(torch.cat(u))
