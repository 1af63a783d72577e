"""The speed benchmarks run end to end on tiny settings and their built-in equality checks hold
(timings themselves are never asserted)."""
import re

from speed import bench_davis, bench_pretrain, bench_views


def test_bench_views_prints_every_variant_and_the_ratio(capsys):
    assert bench_views.main(["--images", "2", "--rounds", "1", "--size", "160x120"]) == 0
    out = capsys.readouterr().out
    for name in ("project", "photometric on device", "authors (as released)", "without the un-augmented"):
        assert name in out
    assert re.search(r"project / authors \(CPU time\): \d+\.\d+x", out)


def test_bench_pretrain_times_the_trainer_step_with_the_reference_loss(capsys):
    bench_pretrain.main(["--arch", "vit_tiny_patch16_224", "--batch", "2", "--steps", "1", "--out-dim", "128"])
    out = capsys.readouterr().out
    losses = re.findall(r"^(?:trainer step|plain reference)\s+\S+\s+\S+\s+(\S+)", out, re.M)
    assert len(losses) == 2 and losses[0] == losses[1]
    assert "loss difference: 0.00e+00" in out and "GFLOP per image" in out


def test_bench_davis_process_section_finds_identical_csv_files(capsys):
    assert bench_davis.main(["--sections", "process", "--runs", "1"]) == 0
    assert "CSV files identical: True" in capsys.readouterr().out
