"""The leaderboard speed benchmark runs end to end on a small store (timings are never asserted)."""
import re

from speed import bench_leaderboard


def test_bench_leaderboard_prints_build_time_page_sizes_and_ratio(capsys):
    assert bench_leaderboard.main(["--runs", "60", "--checkpoints", "6", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"build_site: \d+\.\d+ s wall, \d+\.\d+ s CPU \(median\) for 60 runs", out)
    assert re.search(r"plain / ours \(wall\): \d+\.\dx", out)
    assert "largest benchmark page" in out and "under 1 MB: True" in out
