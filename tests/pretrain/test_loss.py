"""The FLSL loss parts against a plain, loop-based computation of docs/method.md's formulas."""
import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from pretrain.loss import FLSLLoss, mean_shift


def plain_mean_shift(src, tgt, mask, scale):
    xs, ms = [], []
    for b in range(src.shape[0]):
        rows_x, rows_m = [], []
        for i in range(src.shape[1]):
            if not mask[b, i]:
                continue
            x = src[b, i]
            logits = [scale * float(x @ tgt[b, j]) for j in range(tgt.shape[1])]
            mx = max(logits)
            w = [math.exp(v - mx) for v in logits]
            s = sum(w)
            m = sum((w[j] / s) * tgt[b, j] for j in range(tgt.shape[1]))
            rows_x.append(x)
            rows_m.append(m)
        xs.append(torch.stack(rows_x))
        ms.append(torch.stack(rows_m))
    return torch.stack(xs), torch.stack(ms)


def plain_loss(tokens, modes, s_logits, t_logits, tau_s, tau_t, coefs, vmr_on=True, center=None):
    T, K = s_logits.shape
    ms = 0.0
    for i in range(T):
        cos = float(tokens[i] @ modes[i]) / (float(tokens[i].norm()) * float(modes[i].norm()))
        ms += cos
    ms = 2 - 2 * ms / T
    km, p_bar = 0.0, [0.0] * K
    for i in range(T):
        tl = [float(v) for v in t_logits[i]]
        if center is not None:
            tl = [v - float(c) for v, c in zip(tl, center)]
        tl = [v / tau_t for v in tl]
        mt = max(tl)
        q = [math.exp(v - mt) for v in tl]
        zq = sum(q)
        q = [v / zq for v in q]
        sl = [float(v) / tau_s for v in s_logits[i]]
        ms_ = max(sl)
        lse = ms_ + math.log(sum(math.exp(v - ms_) for v in sl))
        logp = [v - lse for v in sl]
        km += -sum(qk * lp for qk, lp in zip(q, logp))
        for k in range(K):
            p_bar[k] += math.exp(logp[k]) / T
    km /= T
    vmr = sum(p * math.log(p) for p in p_bar) + math.log(K) if vmr_on else 0.0
    return coefs[0] * ms + coefs[1] * km + coefs[2] * vmr, (ms, km, vmr)


def test_mean_shift_matches_plain_definition():
    g = torch.Generator().manual_seed(0)
    B, N, M, C = 2, 12, 9, 8
    src = torch.randn(B, N, C, generator=g, dtype=torch.float64)
    tgt = torch.randn(B, M, C, generator=g, dtype=torch.float64)
    mask = torch.zeros(B, N, dtype=torch.bool)
    mask[0, [1, 4, 7]] = True
    mask[1, [0, 5, 11]] = True
    x, m = mean_shift(src, tgt, mask, scale=0.7)
    px, pm = plain_mean_shift(src, tgt, mask, 0.7)
    assert x.shape == m.shape == (B, 3, C)
    torch.testing.assert_close(x, px, atol=1e-10, rtol=0)
    torch.testing.assert_close(m, pm, atol=1e-10, rtol=0)
    # intra-view (target = source) differs from cross-view modes
    _, m_self = mean_shift(src, src, mask, 0.7)
    assert not torch.allclose(m_self, m)


def test_mean_shift_rejects_uneven_masks():
    mask = torch.tensor([[True, False, True], [True, False, False]])
    with pytest.raises(ValueError, match="same number"):
        mean_shift(torch.randn(2, 3, 4), torch.randn(2, 3, 4), mask, 1.0)


@pytest.mark.parametrize("vmr_on", [True, False])
@pytest.mark.parametrize("epoch", [0, 3, 99])
def test_flsl_loss_matches_plain_definition(vmr_on, epoch):
    g = torch.Generator().manual_seed(epoch + 10 * vmr_on)
    T, C, K = 20, 6, 11
    tokens, modes = torch.randn(T, C, generator=g), torch.randn(T, C, generator=g)
    s, t = torch.randn(T, K, generator=g) * 3, torch.randn(T, K, generator=g) * 3
    temps = [0.04, 0.05, 0.06, 0.07]
    loss = FLSLLoss(0.1, temps, (0.03, 1.0, 5.0), volume_maximization=vmr_on)
    total, (ms, km, vmr) = loss(tokens, modes, s, t, epoch)
    ref_total, (rms, rkm, rvmr) = plain_loss(tokens.double(), modes.double(), s.double(), t.double(),
                                             0.1, temps[min(epoch, 3)], (0.03, 1.0, 5.0), vmr_on)
    assert abs(float(ms) - rms) < 1e-5
    assert abs(float(km) - rkm) < 1e-5 * max(1, abs(rkm))
    assert abs(float(vmr) - rvmr) < 1e-5
    assert abs(float(total) - ref_total) < 1e-5 * max(1, abs(ref_total))
    if not vmr_on:
        assert float(vmr) == 0.0


def test_loss_gradients_flow_to_tokens_and_modes_not_teacher():
    T, C, K = 10, 4, 7
    tokens = torch.randn(T, C, requires_grad=True)
    modes = torch.randn(T, C, requires_grad=True)
    s = torch.randn(T, K, requires_grad=True)
    t = torch.randn(T, K, requires_grad=True)
    total, _ = FLSLLoss(0.1, [0.04])(tokens, modes, s, t, 0)
    total.backward()
    assert tokens.grad.abs().sum() > 0 and modes.grad.abs().sum() > 0 and s.grad.abs().sum() > 0
    assert t.grad is None


def test_centering_subtracts_ema_center():
    T, C, K = 6, 4, 5
    g = torch.Generator().manual_seed(3)
    tokens, modes = torch.randn(T, C, generator=g), torch.randn(T, C, generator=g)
    s, t = torch.randn(T, K, generator=g), torch.randn(T, K, generator=g)
    loss = FLSLLoss(0.1, [0.05], (0.03, 1.0, 5.0), volume_maximization=False, centering=True, out_dim=K)
    loss.center.copy_(torch.randn(1, K, generator=g))
    center = loss.center.clone()
    total, (_, km, _) = loss(tokens, modes, s, t, 0)
    _, (_, rkm, _) = plain_loss(tokens.double(), modes.double(), s.double(), t.double(), 0.1, 0.05,
                                (0.03, 1.0, 5.0), False, center=center[0].double())
    assert abs(float(km) - rkm) < 1e-5
    torch.testing.assert_close(loss.center, 0.9 * center + 0.1 * t.mean(0, keepdim=True))


WORKER = textwrap.dedent("""
    import os, sys, torch, torch.distributed as dist
    from pretrain.loss import FLSLLoss
    dist.init_process_group("gloo")
    r = dist.get_rank()
    g = torch.Generator().manual_seed(123)
    T, C, K = 8, 5, 9
    data = [torch.randn(2 * T, d, generator=g) for d in (C, C, K, K)]
    mine = [x[r * T:(r + 1) * T].clone().requires_grad_(i == 2) for i, x in enumerate(data)]
    total, parts = FLSLLoss(0.1, [0.06])(*mine, 0)
    total.backward()
    vals = torch.stack([total.detach(), *[p.detach() for p in parts]])
    dist.all_reduce(vals)
    grad = mine[2].grad.clone()
    grads = [torch.zeros_like(grad) for _ in range(2)]
    dist.all_gather(grads, grad)
    if r == 0:
        torch.save({"vals": vals / 2, "vmr_rank0": parts[2].detach(), "grad": torch.cat(grads) / 2}, os.environ["OUT"])
    dist.destroy_process_group()
""")


def test_volume_regulariser_all_reduce_two_gloo_processes(tmp_path, repo_root):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / "out.pt"
    env = {**os.environ, "REPO_ROOT": str(repo_root), "OUT": str(out), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                    "--master_port=29531", str(script)], check=True, env=env, capture_output=True, timeout=300)
    res = torch.load(out, weights_only=True)
    g = torch.Generator().manual_seed(123)
    T, C, K = 8, 5, 9
    data = [torch.randn(2 * T, d, generator=g) for d in (C, C, K, K)]
    ref_total, (rms, rkm, rvmr) = plain_loss(*[d.double() for d in data], 0.1, 0.06, (0.03, 1.0, 5.0))
    # ms and k-means are per-process means, averaged over equal counts -> the global means;
    # vmr uses the all-reduced p_bar -> already global on each rank.
    assert abs(float(res["vals"][1]) - rms) < 1e-5
    assert abs(float(res["vals"][2]) - rkm) < 1e-5
    assert abs(float(res["vmr_rank0"]) - rvmr) < 1e-5
    assert abs(float(res["vals"][0]) - ref_total) < 1e-5
    # gradients (as DDP would average them) equal the single-process gradient of the global loss
    s = data[2].clone().requires_grad_(True)
    total, _ = FLSLLoss(0.1, [0.06])(data[0], data[1], s, data[3], 0)
    total.backward()
    torch.testing.assert_close(res["grad"], s.grad, atol=1e-6, rtol=1e-5)
