"""The default demo's full run (7 minutes on 2 quiet CPU cores, 17 on busy ones), opt-in because it would
double CI's test time:

    FLSL_FULL_DEMO=1 tools/test.sh tests/benchmarks/demo/test_demo_full.py

It checks what the quick variant cannot: the default budget's table, with every arm measured
over its full set of seeds (3 fine-tuning, 5 probe) and every paired protocol over all its
units; the verdicts are recomputed from the per-seed / per-unit numbers; and the FLSL-pretrained
encoder groups the patches of an object together better than its own initialisation (patch
grouping: no training, so the comparison repeats exactly; measured +7 points with a 95%
interval of about 3 on two runs, docs/reproduce.md). The fine-tuned detector and DAVIS are not
asserted either way: at the demo's budget their differences lie inside their spreads."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.demo import claims
from benchmarks.demo.run import DEFAULT

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(os.environ.get("FLSL_FULL_DEMO") != "1",
                                reason="the full demo runs only with FLSL_FULL_DEMO=1 (7-17 minutes)")


def test_default_demo_end_to_end(tmp_path):
    work = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.demo.run", "--work-dir", str(work)],
                          cwd=ROOT, capture_output=True, text=True, timeout=3600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    doc = json.loads((work / "results.json").read_text())
    assert doc["budget"]["name"] == "default"
    objects = None
    for arm in ("flsl", "random"):
        r = doc["results"][arm]
        assert sorted(r["mask_rcnn"]) == [str(s) for s in DEFAULT.mask_rcnn_seeds]
        assert sorted(r["probe"]) == [str(s) for s in DEFAULT.probe_seeds]
        assert len(r["grouping"]) == DEFAULT.coco["n_val"]
        objects = objects or sorted(r["davis"])
        assert sorted(r["davis"]) == objects and len(objects) >= DEFAULT.davis["n_sequences"]
        values = [v for seed in r["mask_rcnn"].values() for v in seed.values()] + list(r["probe"].values()) \
            + [v for v in r["grouping"].values() if v is not None] + [v for o in r["davis"].values() for v in o.values()]
        assert all(v is not None and 0.0 <= v <= 100.0 for v in values)
    for key, c in doc["comparisons"].items():
        assert c["verdict"] == claims.verdict(c["difference"], c["half_width"]), key
    assert doc["comparisons"]["grouping_AUC"]["verdict"] == claims.GAIN
    print(f"\ndemo wall time {doc['wall_seconds'] / 60:.1f} min; stages {doc['stage_seconds']}")
    print((work / "results.md").read_text())
