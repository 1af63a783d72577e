"""The probe table: one step per checkpoint and column, published numbers with their sources beside
ours, unknown cells empty."""
from __future__ import annotations

import json
from pathlib import Path

from benchmarks.probes import table as TB


def test_steps_cover_every_column_with_the_tool_command(tmp_path):
    steps = TB.steps({"mine": "ckpt.safetensors"}, Path("data"), {"nyu": "/elsewhere/nyu"}, tmp_path)
    assert [s.label.split(": ")[1] for s in steps] == [c.label for c in TB.COLUMNS]
    hb = next(s for s in steps if "1024x10^3" in s.label)
    assert hb.argv[1:3] == ["tools/probe.py", "--protocol"] and "hbird.memory_size=1024000" in hb.argv
    assert hb.output == tmp_path / "probes" / "mine" / "hb_voc_1e3" / "probe_results.json"
    assert str(Path("data") / "voc/VOCdevkit/VOC2012") in hb.argv
    nyu = next(s for s in steps if s.label.endswith("NYU lin.4 RMSE"))
    assert "/elsewhere/nyu" in nyu.argv and nyu.config.endswith("configs/probes/depth_lin4_nyu.py")


def test_published_numbers_carry_their_sources_and_unknown_cells_stay_empty():
    md, csv = TB.render(["dinov2_vitb14", "somebody"], {"somebody": {"ade_lin": 41.25}})
    refs = json.loads(TB.REFERENCES.read_text())
    rows = {tuple(r.split(",")[:2]): r.split(",")[2:] for r in csv.strip().splitlines()[1:]}
    cols = [c.id for c in TB.COLUMNS] + ["davis"]
    pub = dict(zip(cols, rows[("dinov2_vitb14", "published")]))
    for col, (value, _) in refs["checkpoints"]["dinov2_vitb14"].items():
        assert float(pub[col]) == value
    assert pub["ade_lin"] == "" and pub["spair"] == ""           # not published / not confirmed
    assert rows[("somebody", "published")] == [""] * len(cols)
    assert dict(zip(cols, rows[("somebody", "ours")]))["ade_lin"] == "41.2"
    assert "MODEL_CARD.md" in md and "open-hummingbird-eval README" in md and "issue #517" in md
    assert all(src in refs["sources"] for cols_ in refs["checkpoints"].values() for _, src in cols_.values())
