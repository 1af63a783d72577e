"""Mixed precision: under bf16 autocast the head's normalisation and prototype layer, and the loss,
run in float32 (the authors train fp16 with a GradScaler; the recipe uses bf16 with these two
steps kept in fp32). Checked against a float64 computation from the same MLP output."""
import torch
import torch.nn.functional as F

from pretrain.head import ClusteringHead
from pretrain.loss import FLSLLoss

TEACHER_TEMP = 0.04


def _head_and_input(seed=0):
    torch.manual_seed(seed)
    head = ClusteringHead(64, out_dim=512, hidden_dim=128, bottleneck_dim=32)
    return head, torch.randn(300, 64)


def test_logits_are_fp32_and_match_float64_under_bf16_autocast():
    head, x = _head_and_input()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        bottleneck = head.mlp(x)                    # bf16, as in training
        logits = head(x)
    assert bottleneck.dtype == torch.bfloat16 and logits.dtype == torch.float32
    ref = F.normalize(bottleneck.double(), dim=-1) @ F.normalize(head.last_layer.weight.double(), dim=1).T
    err = (logits.double() - ref).abs().max().item()
    assert err < 1e-5, err
    # what the prototype layer in bf16 would have given: errors of order 1e-3 in the logits,
    # several hundredths of a nat after division by the teacher temperature
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        low = F.linear(F.normalize(bottleneck, dim=-1), F.normalize(head.last_layer.weight, dim=1))
    assert low.dtype == torch.bfloat16
    assert (low.double() - ref).abs().max().item() / TEACHER_TEMP > 0.02


def test_loss_is_computed_in_fp32_from_bf16_inputs():
    torch.manual_seed(1)
    t, c, k = 50, 16, 64
    tokens, modes = torch.randn(t, c), torch.randn(t, c)
    s_logits, t_logits = torch.randn(t, k) * 0.3, torch.randn(t, k) * 0.3
    loss = FLSLLoss(0.1, [TEACHER_TEMP], out_dim=k)
    low = [v.bfloat16() for v in (tokens, modes, s_logits, t_logits)]
    total, parts = loss(*low, epoch=0)
    assert total.dtype == torch.float32 and all(p.dtype == torch.float32 for p in parts)
    ref, _ = loss(*[v.double() for v in low], epoch=0)   # same bf16 values, float64 arithmetic
    assert abs(total.item() - ref.item()) < 1e-5
