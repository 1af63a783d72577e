"""Scoring a split: frame exclusion, object ids, void, perfect and shifted predictions."""
import numpy as np
import pytest

from benchmarks.davis.evaluate import Scorer, evaluate_folder
from benchmarks.davis.io import DavisError, read_palette, write_index_png
from benchmarks.davis.metrics import sequence_scores


def perfect(data, seq):
    lab = data.labels[seq]
    return np.where(lab == 255, 0, lab).astype(np.uint8)


def as_dict(masks):
    return {f"{t:05d}": m for t, m in enumerate(masks)}


def test_perfect_prediction_scores_one(davis_small):
    scorer = Scorer(davis_small.root)
    for seq in davis_small.sequences:
        scorer.score_arrays(seq, as_dict(perfect(davis_small, seq)))
    g = scorer.results.global_scores()
    assert g["J&F-Mean"] == 1.0 and g["J-Mean"] == 1.0 and g["F-Mean"] == 1.0
    assert g["J-Recall"] == 1.0 and g["J-Decay"] == 0.0 and g["F-Decay"] == 0.0
    assert len(scorer.results.per_object()) == sum(davis_small.n_objects.values()) == 8


def test_shifted_prediction_scores_between_zero_and_one(davis_small, tmp_path):
    for seq in davis_small.sequences:
        pred = np.zeros_like(perfect(davis_small, seq))
        pred[:, 3:, 2:] = perfect(davis_small, seq)[:, :-3, :-2]
        pal = read_palette(davis_small.root / "Annotations/480p" / seq / "00000.png")
        for t, m in enumerate(pred):
            write_index_png(tmp_path / seq / f"{t:05d}.png", m, pal)
    res = evaluate_folder(davis_small.root, tmp_path)
    g = res.global_scores()
    assert 0.0 < g["J-Mean"] < 1.0 and 0.0 < g["F-Mean"] < 1.0 and 0.0 < g["J&F-Mean"] < 1.0
    # same numbers as scoring the arrays directly, frames 1..n-2
    seq = davis_small.sequences[1]
    lab = davis_small.labels[seq]
    pred = np.zeros_like(lab)
    pred[:, 3:, 2:] = perfect(davis_small, seq)[:, :-3, :-2]
    J, _ = sequence_scores(lab[1:-1], pred[1:-1], davis_small.n_objects[seq])
    assert res.per_object()[f"{seq}_1"]["J-Mean"] == pytest.approx(J[0].mean())


def test_first_and_last_frames_are_not_scored(davis_small):
    seq = davis_small.sequences[2]
    pred = perfect(davis_small, seq)
    pred[0] = 0
    pred[-1] = 0                       # wrong first and last frames: still perfect
    scorer = Scorer(davis_small.root)
    J, F = scorer.score_arrays(seq, as_dict(pred))
    assert J.shape == (3, davis_small.n_frames[seq] - 2)
    assert (J == 1).all() and (F == 1).all()
    pred[1] = 0                        # the second frame is scored
    J, _ = scorer.score_arrays(seq, as_dict(pred))
    assert (J[:, 0] == 0).all() and (J[:, 1:] == 1).all()


def test_missing_id_is_an_empty_mask_and_extra_id_is_an_error(davis_small):
    seq = davis_small.sequences[1]     # two objects
    pred = perfect(davis_small, seq)
    pred[pred == 2] = 0                # object 2 never predicted
    J, F = Scorer(davis_small.root).score_arrays(seq, as_dict(pred))
    truth2 = (davis_small.labels[seq][1:-1] == 2).reshape(len(J[1]), -1).any(1)
    assert (J[0] == 1).all()
    assert (J[1][truth2] == 0).all() and (F[1][truth2] == 0).all()
    pred[3, 0, 0] = 3                  # id above the object count
    with pytest.raises(DavisError, match=f"{seq}/00003.*id 3.*2 object"):
        Scorer(davis_small.root).score_arrays(seq, as_dict(pred))


def test_void_counts_as_background(davis_small):
    seq = davis_small.void_sequence
    lab = davis_small.labels[seq]
    assert (lab == 255).any()
    J, F = Scorer(davis_small.root).score_arrays(seq, as_dict(perfect(davis_small, seq)))
    assert (J == 1).all() and (F == 1).all()
    pred = perfect(davis_small, seq)
    pred[lab == 255] = 1               # predicting object 1 on void pixels is a mistake
    J, _ = Scorer(davis_small.root).score_arrays(seq, as_dict(pred))
    assert (J[0] < 1).all()


def test_prediction_size_and_missing_frame_errors(davis_small, tmp_path):
    seq = davis_small.sequences[0]
    pred = as_dict(perfect(davis_small, seq))
    pred["00002"] = pred["00002"][:, :-1]
    with pytest.raises(DavisError, match=r"00002.*159x96.*160x96"):
        Scorer(davis_small.root).score_arrays(seq, pred)
    del pred["00002"]
    with pytest.raises(DavisError, match=r"00002 \(in-memory prediction\): prediction not found"):
        Scorer(davis_small.root).score_arrays(seq, pred)
    for t, m in enumerate(perfect(davis_small, seq)[:3]):
        write_index_png(tmp_path / seq / f"{t:05d}.png", m)
    with pytest.raises(DavisError, match=f"{seq}/00003.png: prediction not found"):
        evaluate_folder(davis_small.root, tmp_path)
