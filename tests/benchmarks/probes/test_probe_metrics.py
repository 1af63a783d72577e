"""Scores, heads and search of the probes against independent computations: MMSegmentation's own
IoUMetric and decode head, brute force, hand-counted pixels and keypoints."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmarks.probes import correspondence as C
from benchmarks.probes import depth as D
from benchmarks.probes import hummingbird as H
from benchmarks.probes import linear as L
from benchmarks.probes import metrics as M
from benchmarks.probes import transforms as T


def _maps(seed: int, k: int, shape=(3, 37, 41)):
    g = torch.Generator().manual_seed(seed)
    truth = torch.randint(0, k - 1, shape, generator=g)  # class k-1 in neither truth nor prediction
    truth[torch.rand(shape, generator=g) < 0.1] = 255
    truth[truth == k - 3] = 0                            # class k-3 only predicted
    pred = torch.where(torch.rand(shape, generator=g) < 0.6, truth.clamp(max=k - 2), torch.randint(0, k - 1, shape, generator=g))
    pred[pred == k - 2] = 0                              # class k-2 never predicted
    return truth, pred


def test_miou_equals_mmsegmentation_iou_metric():
    from mmseg.evaluation.metrics import IoUMetric
    k = 6
    truth, pred = _maps(0, k)
    conf = sum(M.confusion(t, p, k) for t, p in zip(truth, pred))
    ours = M.iou_mmseg(conf)
    metric = IoUMetric(ignore_index=255)
    metric.dataset_meta = {"classes": [f"c{i}" for i in range(k)]}
    areas = [IoUMetric.intersect_and_union(p, t, k, 255) for t, p in zip(truth, pred)]
    totals = [sum(a[i] for a in areas) for i in range(4)]
    ref = IoUMetric.total_area_to_metrics(*totals, metrics=["mIoU"])
    ref_iou = np.asarray(ref["IoU"], dtype=np.float64)
    assert [v is None for v in ours["IoU"]] == list(np.isnan(ref_iou))
    got = np.array([np.nan if v is None else v for v in ours["IoU"]])
    # mmseg counts pixels in float32 histograms: equal to its precision
    np.testing.assert_allclose(got, ref_iou * 100, rtol=1e-6, equal_nan=True)
    assert np.isnan(ref_iou[-1]) and ref_iou[-2] == 0 and ref_iou[-3] == 0
    assert ours["mIoU"] == pytest.approx(float(np.nanmean(ref_iou)) * 100, rel=1e-6)
    assert ours["aAcc"] == pytest.approx(float(ref["aAcc"]) * 100, rel=1e-6)
    # the full metric object, as the MMSegmentation runner calls it (rounded to 2 decimals there)
    metric.process({}, [{"pred_sem_seg": {"data": p[None]}, "gt_sem_seg": {"data": t[None]}} for t, p in zip(truth, pred)])
    assert metric.compute_metrics(metric.results)["mIoU"] == pytest.approx(round(ours["mIoU"], 2))


def test_hungarian_miou_is_the_best_permutation_by_brute_force():
    k = 4
    truth, pred = _maps(1, k, (2, 20, 23))
    conf = M.confusion(truth, pred, k)
    ours = M.iou_hungarian(conf)
    t, p = truth.flatten().numpy(), pred.flatten().numpy()
    keep = t != 255
    t, p = t[keep], p[keep]

    def ious(perm):
        q = np.asarray(perm)[p]
        return [((q == c) & (t == c)).sum() / max(((q == c) | (t == c)).sum(), 1) for c in range(k)]

    def matched_score(perm):      # the assignment's objective: IoU of each predicted class with its match
        return sum(((p == j) & (t == perm[j])).sum() / max(((p == j) | (t == perm[j])).sum(), 1) for j in range(k))

    best = max(itertools.permutations(range(k)), key=matched_score)
    assert ours["mapping"] == list(best)
    assert ours["mIoU"] == pytest.approx(100 * float(np.mean(ious(best))), rel=1e-12)


def test_depth_errors_against_a_pixel_loop():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0.5, 12.0, (480, 640)).astype(np.float32)
    gt[rng.uniform(size=gt.shape) < 0.1] = 0
    pred = np.clip(gt * rng.uniform(0.7, 1.4, gt.shape), 0.01, None).astype(np.float32)
    sq = ab = d1 = n = 0.0
    for y in range(45, 471, 3):                          # a subsample, same definition, by hand
        for x in range(41, 601, 3):
            g, p = float(gt[y, x]), float(pred[y, x])
            if 1e-3 < g < 10.0:
                sq += (g - p) ** 2
                ab += abs(g - p) / g
                d1 += max(g / p, p / g) < 1.25
                n += 1
    mask = np.zeros_like(gt, bool)
    mask[45:471:3, 41:601:3] = True
    thin = np.where(mask, gt, 0)
    ref = M.depth_errors(pred, thin, eigen_crop=True)
    assert ref["rmse"] == pytest.approx(math.sqrt(sq / n), rel=1e-9)
    assert ref["abs_rel"] == pytest.approx(ab / n, rel=1e-9)
    assert ref["a1"] == pytest.approx(d1 / n, rel=1e-12)
    # the data-set score averages per-image RMSE, it does not pool pixels
    assert M.mean_depth_errors([{"rmse": 1.0}, {"rmse": 3.0}])["rmse"] == 2.0


def test_pck_probe3d_and_dift_by_hand():
    # one-hot "features": cell (r, c) of a 4x4 grid has its own direction, so the nearest target
    # cell of a source point is the source cell itself
    g = 4
    feat = torch.eye(g * g).reshape(g * g, g, g)
    size, side = 64, 64                                    # square image, no resize
    src = np.array([[8.0, 8.0], [40.0, 24.0], [56.0, 56.0]])   # pixel (x, y), on cell centres
    # grid_sample with align_corners=True maps pixel x to cell x/size*(g-1): 8 -> 0.375 -> cell 0
    cells = np.round(src / size * (g - 1)).astype(int)
    pred = cells / g                                       # corner of the chosen cell, in [0, 1]
    trg = np.array([[0.0, 0.0], [40.0, 16.0], [10.0, 60.0]])
    scale = 0.5
    want = np.linalg.norm(pred - trg / size, axis=1) / scale
    got = C.probe3d_errors(feat, feat, src, trg, side, side, size, scale).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # DIFT counts the boundary as correct, Probe3D does not
    assert M.pck_hits(np.array([[10.0, 0.0]]), np.array([[0.0, 0.0]]), 100, 0.1, strict=False).tolist() == [True]
    assert M.pck_hits(np.array([[10.0, 0.0]]), np.array([[0.0, 0.0]]), 100, 0.1, strict=True).tolist() == [False]


def test_probe3d_pair_choice_is_pythons_seeded_shuffle():
    import random
    pairs = [{"category": "cat" if i % 3 else "dog", "viewpoint_variation": i % 2, "pair": i} for i in range(50)]
    chosen = C.probe3d_pairs(pairs, per_bucket=5)
    cats = [p for p in pairs if p["category"] == "cat" and p["viewpoint_variation"] == 1]
    random.seed(20)
    random.shuffle(cats)
    assert [p["pair"] for p in chosen[("cat", 1)]] == [p["pair"] for p in cats[:5]]
    assert chosen[("dog", 2)] == [] and len(chosen[("cat", "all")]) == 5


def test_linear_head_equals_dinov2_bnhead_on_mmseg_base_decode_head():
    """DINOv2's BNHead restated on MMSegmentation's own BaseDecodeHead (its ``resize_concat``
    input transform, ``cls_seg`` and initialisation), against ours: same parameters, same outputs."""
    from mmseg.models.decode_heads.decode_head import BaseDecodeHead

    class BNHead(BaseDecodeHead):        # the logic of dinov2/eval/segmentation/.../linear_head.py
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.bn = torch.nn.SyncBatchNorm(self.in_channels)

        def forward(self, inputs):
            x = [inputs[i] for i in self.in_index]
            x = torch.cat([F.interpolate(t, size=x[0].shape[2:], mode="bilinear", align_corners=False) for t in x], 1)
            return self.cls_seg(self.bn(x))

    c, k = 12, 5
    ref = BNHead(in_channels=[c] * 4, in_index=[0, 1, 2, 3], channels=4 * c, num_classes=k, dropout_ratio=0,
                 input_transform="resize_concat", align_corners=False)
    ref.init_weights()
    ref.bn = torch.nn.BatchNorm2d(4 * c)      # SyncBatchNorm equals BatchNorm in one process
    ours = L.LinearHead(4 * c, k)
    assert {n: tuple(v.shape) for n, v in ours.state_dict().items()} == \
        {n: tuple(v.shape) for n, v in ref.state_dict().items()}
    # initialisation: N(0, 0.01) weights and zero bias in both
    assert float(ref.conv_seg.bias.detach().abs().max()) == 0 == float(ours.conv_seg.bias.detach().abs().max())
    assert abs(float(ours.conv_seg.weight.std()) - 0.01) < 0.003 and abs(float(ref.conv_seg.weight.std()) - 0.01) < 0.003
    ours.load_state_dict(ref.state_dict())
    g = torch.Generator().manual_seed(0)
    maps = [torch.randn(3, c, 5, 7, generator=g) for _ in range(4)]
    stacked = torch.stack(maps, 1)                       # our cache layout [B, L, C, h, w]
    for mode in (True, False):
        ref.train(mode)
        ours.train(mode)
        torch.testing.assert_close(ours(L.stack_layers(stacked)), ref(maps), rtol=1e-6, atol=1e-6)
    # the loss: mmseg's CrossEntropyLoss (avg_non_ignore=False) on the logits resized to the label
    from mmseg.models.losses import CrossEntropyLoss
    logits = ours(L.stack_layers(stacked)).detach()
    labels = torch.randint(0, k, (3, 20, 28), generator=g)
    labels[:, :4] = 255
    up = F.interpolate(logits, size=(20, 28), mode="bilinear", align_corners=False)
    want = CrossEntropyLoss(avg_non_ignore=False)(up, labels, ignore_index=255)
    torch.testing.assert_close(L.seg_loss(logits, labels), want)


def test_schedules_match_mmcv_formulas():
    assert L.poly_lr(0, 1e-3, 40000, 1500, 1e-6) == pytest.approx(1e-3 * 1e-6)
    assert L.poly_lr(750, 1e-3, 40000, 1500, 1e-6) == pytest.approx(1e-3 * (1 - 750 / 40000) * (1 - 0.5 * (1 - 1e-6)))
    assert L.poly_lr(20000, 1e-3, 40000, 1500, 1e-6) == pytest.approx(0.5e-3)
    assert D.cosine_lr(19200, 1e-4, 38400, 12800, 1e-3, 1e-8) == pytest.approx(1e-4 * 1e-8 + (1e-4 - 1e-12) / 2)
    assert D.one_cycle_beta1(0, 1000) == pytest.approx(0.95)
    assert D.one_cycle_beta1(299, 1000) == pytest.approx(0.85)
    assert D.one_cycle_beta1(999, 1000) == pytest.approx(0.95)


def test_depth_head_and_losses_by_hand():
    head = D.DepthHead(2 * 3, n_bins=4, min_depth=1.0, max_depth=4.0, upsample=2)
    patch, cls = torch.randn(1, 1, 3, 2, 2), torch.randn(1, 1, 3)
    out = head(patch, cls)
    x = torch.cat([patch[0, 0], cls[0, 0, :, None, None].expand(3, 2, 2)])[None]
    x = F.interpolate(x, size=(4, 4), mode="bilinear", align_corners=False)
    logit = torch.relu(head.conv_depth(x)) + 0.1
    want = (logit / logit.sum(1, keepdim=True) * torch.tensor([1.0, 2.0, 3.0, 4.0])[None, :, None, None]).sum(1, keepdim=True)
    torch.testing.assert_close(out, want)
    pred, gt = torch.rand(2, 1, 6, 5) + 0.5, torch.rand(2, 1, 6, 5) + 0.5
    gt[0, 0, 0, 0] = 0
    g = (torch.log(pred + 1e-3) - torch.log(gt + 1e-3))[gt > 0].double()
    n = g.numel()
    var = ((g - g.mean()) ** 2).sum() / (n - 1)
    assert float(D.sig_loss(pred, gt, warm=False)) == pytest.approx(float(torch.sqrt(var + 0.15 * g.mean() ** 2)), rel=1e-5)
    # the gradient loss as written is zero for the reference's batch of 2, not for 3
    assert float(D.gradient_loss_as_written(pred, gt)) == 0.0
    assert float(D.gradient_loss_as_written(torch.rand(3, 1, 6, 5) + 0.5, torch.rand(3, 1, 6, 5) + 0.5)) > 0


def test_exact_and_faiss_search_equal_brute_force_float64():
    g = torch.Generator().manual_seed(0)
    memory = F.normalize(torch.randn(3000, 24, generator=g), dim=1)
    queries = torch.randn(257, 24, generator=g) * 3          # not normalised, as the reference
    sims = queries.double() @ memory.double().T
    ref_s, ref_i = sims.topk(30, dim=1)
    for chunk in (1 << 14, 1 << 28):                         # many blocks, one block
        s, i = H.exact_search(queries, memory, 30, chunk_bytes=chunk)
        assert torch.equal(i, ref_i)
        torch.testing.assert_close(s.double(), ref_s, rtol=1e-5, atol=1e-5)
    s, i = H.faiss_search(queries, memory, 30)
    assert torch.equal(i, ref_i)
    # label transfer against a float64 restatement
    labels = torch.rand(3000, 5, generator=g)
    got = H.transfer(queries, memory[ref_i], labels[ref_i], 0.02)
    q = queries.double() / queries.double().norm(dim=1, keepdim=True)
    w = torch.softmax((q[:, None] * memory.double()[ref_i]).sum(-1) / 0.02, dim=1)
    torch.testing.assert_close(got.double(), (w[..., None] * labels.double()[ref_i]).sum(1), rtol=1e-4, atol=1e-5)


def test_memory_sampling_equals_the_reference_per_image_loop():
    g = torch.Generator().manual_seed(0)
    label = torch.randint(0, 5, (3, 32, 32), generator=g)
    label[0] = 2                                              # one class only in an image
    hist = H.patch_labels(label, 8, 5)
    # the histogram is the one-hot mean of the patch's pixels
    assert torch.allclose(hist[1, 5], F.one_hot(label[1, 8:16, 8:16].flatten(), 5).float().mean(0))
    got = H.sample_patches(hist, 4, torch.Generator().manual_seed(7))
    rng = torch.Generator().manual_seed(7)
    for b in range(3):                                        # the reference's original loop
        present = [set(label[b, r * 8:(r + 1) * 8, c * 8:(c + 1) * 8].unique().tolist()) for r in range(4) for c in range(4)]
        freq = {k: sum(k in p for p in present) for k in range(5)}
        score = torch.tensor([float(sum(freq[k] for k in p)) for p in present])
        score *= torch.rand(16, generator=rng)
        assert torch.equal(got[b], score.topk(4, largest=False).indices)


def test_slide_windows_follow_mmseg_slide_inference():
    boxes = T.slide_windows(512, 683, (512, 512), (341, 341))
    assert boxes == [(0, 512, 0, 512), (0, 512, 171, 683)]
    boxes = T.slide_windows(1107, 1476, (512, 512), (341, 341))
    cover = np.zeros((1107, 1476), int)
    for y1, y2, x1, x2 in boxes:
        assert (y2 - y1, x2 - x1) == (512, 512)
        cover[y1:y2, x1:x2] += 1
    assert cover.min() >= 1 and len(boxes) == 3 * 4
    assert T.rescale_size(480, 640, 99999999, 512) == (512, 683)


def test_layer_features_are_the_encoders_own_outputs():
    """Patch maps equal the encoder's block outputs (and, with the final norm, its forward
    features); the class token is the forward's first token; input padded to whole patches."""
    from benchmarks.features import layer_features
    from pretrain.encoder import block_outputs, build_encoder
    torch.manual_seed(0)
    model = build_encoder("vit_tiny_patch16_224", depth=3, img_size=64, class_token=True).eval()
    x = torch.randn(2, 3, 40, 56)
    patch, cls = layer_features(model, x, [0, 2], norm=False, class_token=True)
    padded = F.pad(x, (4, 4, 4, 4))                          # 40 -> 48, 56 -> 64: 4 before, 4 after
    ref = block_outputs(model, padded, [0, 2])
    assert patch.shape == (2, 2, 192, 3, 4)
    torch.testing.assert_close(patch[:, 1].flatten(2).transpose(1, 2), ref[1])
    torch.testing.assert_close(patch[:, 0].flatten(2).transpose(1, 2), ref[0])
    normed, cls_n = layer_features(model, x, [2], norm=True, class_token=True)
    full = model.forward_features(padded)
    torch.testing.assert_close(normed[:, 0].flatten(2).transpose(1, 2), full[:, 1:])
    torch.testing.assert_close(cls_n[:, 0], full[:, 0])
    assert not torch.allclose(cls[:, 1], cls_n[:, 0])        # raw vs normalised class token


def test_sliding_window_multi_scale_prediction_equals_mmseg_slide_inference():
    """Our prediction from cached window logits against MMSegmentation's own ``slide_inference``
    (called on a minimal segmentor whose ``encode_decode`` is a fixed pooled linear map), with the
    multi-scale flip passes of ``aug_test``: resize, flip, slide, resize back, softmax, un-flip,
    average, argmax."""
    import types

    from mmengine.config import Config
    from mmseg.models.segmentors import EncoderDecoder
    k, crop, stride = 5, (32, 32), (21, 21)
    g = torch.Generator().manual_seed(0)
    conv = torch.nn.Conv2d(3, k, 1)
    torch.nn.init.normal_(conv.weight, generator=g)

    def window_logits(x):                                   # [B, 3, 32, 32] -> [B, K, 4, 4]
        return conv(F.avg_pool2d(x, 8))

    seg = types.SimpleNamespace(test_cfg=types.SimpleNamespace(stride=stride, crop_size=crop), out_channels=k,
                                encode_decode=lambda x, metas: F.interpolate(window_logits(x), size=x.shape[2:],
                                                                             mode="bilinear", align_corners=False))
    cfg = Config(dict(test=dict(short_side=32, ratios=[1.0, 1.5], flip=True, crop_size=crop, stride=stride)))
    img = np.random.default_rng(0).integers(0, 255, (37, 53, 3), dtype=np.uint8)
    items, logits, total = [], [], 0
    for p, (ratio, flip) in enumerate(L.passes(cfg)):
        size = T.rescale_size(37, 53, int(99999999 * ratio), int(32 * ratio))
        x = T.normalise(T.resize(img, size), (0.5,) * 3, (0.25,) * 3)[None]
        x = x.flip(-1) if flip else x
        with torch.no_grad():
            ref = EncoderDecoder.slide_inference(seg, x, [{}])
            ref = F.interpolate(ref, size=(37, 53), mode="bilinear", align_corners=False).softmax(1)
            total = total + (ref.flip(-1) if flip else ref)
            for box in T.slide_windows(*size, crop, stride):
                items.append((0, p, box))
                y1, y2, x1, x2 = box
                logits.append(window_logits(x[:, :, y1:y2, x1:x2])[0])
    want = (total / len(L.passes(cfg))).argmax(1)[0]
    got = L.predict(torch.stack(logits), items, (37, 53), cfg, k)
    assert len(L.passes(cfg)) == 4 and len(items) > 4
    assert torch.equal(got, want)
