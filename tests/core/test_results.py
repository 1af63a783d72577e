"""The results store: every record kind comes back as written, writers in several processes lose
nothing, and a damaged or foreign file is an error naming it, never replaced."""
import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from core.errors import FLSLError, cli_main
from core.results import ENV_VAR, KINDS, Store, StoreError, record_run, spread, store_path


def _full_record(kind: str, i: int) -> dict:
    return dict(uid=f"u-{kind}-{i}", kind=kind, benchmark={"dense": "coco", "davis": "davis", "probe": "linear-probe",
                                                             "demo": "coco"}[kind],
                dataset=f"data/{kind} (val)", protocol="authors-8-heads" if i else "default", protocol_default=not i,
                protocol_note="the authors' 8-head split" if i else "", checkpoint=f"ck-{kind}.pth",
                checkpoint_path=f"checkpoints/ck-{kind}.pth", checkpoint_digest="ab" * 32, family="dino",
                architecture="vit_small_patch16_224", paper_row="dino_vits16", command="tools/test.py a 'b c'",
                argv=["tools/test.py", "a", "b c"], config_path="configs/coco/x.py", config_digest="cd" * 32,
                inputs={"checkpoints/ck.pth": "ef" * 32}, commit_id="0123abc+dirty", machine="host (Linux)",
                gpu="8 x NVIDIA H100", started="2026-01-01T00:00:00+00:00", finished="2026-01-01T02:00:00+00:00",
                source=f"work_dirs/{kind}/result.json", extra={"settings": {"topk": 5}})


@pytest.mark.parametrize("kind", KINDS)
def test_every_field_and_per_seed_metric_round_trips(tmp_path, kind):
    path = tmp_path / "r.db"
    metrics = {"AP": {0: 41.25, 1: 40.75, 7: 42.0}, "AP50": 60.5, "nan_dropped": float("nan")}
    with Store(path) as st:
        ids = [st.add(_full_record(kind, i), metrics) for i in range(2)]
    with Store(path, create=False) as st:
        runs = st.runs(kind=kind)
    assert [r["id"] for r in runs] == ids
    for i, run in enumerate(runs):
        want = _full_record(kind, i)
        for key, value in want.items():
            assert run[key] == value, key
        assert run["metrics"] == {"AP": {0: 41.25, 1: 40.75, 7: 42.0}, "AP50": {0: 60.5}}


def test_same_uid_is_stored_once_and_filters_select(tmp_path):
    path = tmp_path / "r.db"
    with Store(path) as st:
        a = st.add(_full_record("dense", 0), {"AP": 1.0})
        assert st.add(_full_record("dense", 0), {"AP": 2.0}) == a
        st.add({**_full_record("davis", 0), "checkpoint": "other.pth", "checkpoint_digest": "99" * 32}, {"JF": 3.0})
        assert st.count() == 2
        assert [r["benchmark"] for r in st.runs(checkpoint="other.pth")] == ["davis"]
        assert [r["benchmark"] for r in st.runs(checkpoint="9999")] == ["davis"]     # digest prefix
        assert st.runs(benchmark="coco")[0]["metrics"] == {"AP": {0: 1.0}}
        assert st.runs(benchmark="coco", dataset="nope") == []


def test_record_run_fills_provenance(tmp_path, monkeypatch):
    ckpt = tmp_path / "enc.safetensors"
    ckpt.write_bytes(b"weights")
    inp = tmp_path / "data.json"
    inp.write_text("{}")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env.db"))
    run_id = record_run("davis", {"JF_mean": 61.0}, kind="davis", checkpoint=ckpt, inputs=[inp],
                        argv=["tools/davis_propagate.py", "--out", "o d"], strict=True)
    with Store(create=False) as st:     # $FLSL_RESULTS
        assert st.path == tmp_path / "env.db"
        run = st.runs()[0]
    import hashlib
    assert run["id"] == run_id
    assert run["checkpoint"] == "enc.safetensors"
    assert run["checkpoint_digest"] == hashlib.sha256(b"weights").hexdigest()
    assert run["inputs"] == {str(inp): hashlib.sha256(b"{}").hexdigest()}
    assert run["command"] == "tools/davis_propagate.py --out 'o d'"
    assert run["started"] <= run["finished"] and run["machine"]
    assert run["commit_id"] is None or len(run["commit_id"].split("+")[0]) == 40


def test_store_location(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert store_path().parts[-2:] == ("work_dirs", "results.db")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "x.db"))
    assert store_path() == tmp_path / "x.db"
    assert store_path(tmp_path / "y.db") == tmp_path / "y.db"


WRITER = textwrap.dedent("""
    import sys
    from core.results import record_run
    store, who, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for j in range(n):
        got = record_run("coco", {"bbox_AP": {0: who + j / 1000, 1: -j}}, kind="dense",
                         checkpoint=f"writer{who}", store=store, strict=True)
        assert got is not None
""")


def test_concurrent_writers_in_several_processes_lose_nothing(tmp_path, repo_root):
    path = tmp_path / "shared.db"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    n_proc, n_each = 4, 25
    procs = [subprocess.Popen([sys.executable, str(script), str(path), str(w), str(n_each)], cwd=repo_root,
                              stderr=subprocess.PIPE, text=True) for w in range(n_proc)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    with Store(path, create=False) as st:
        runs = st.runs()
    assert len(runs) == n_proc * n_each
    got = sorted((r["checkpoint"], r["metrics"]["bbox_AP"][0], r["metrics"]["bbox_AP"][1]) for r in runs)
    want = sorted((f"writer{w}", w + j / 1000, -j) for w in range(n_proc) for j in range(n_each))
    assert got == want
    assert sqlite3.connect(str(path)).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _damaged(tmp_path):
    path = tmp_path / "r.db"
    with Store(path) as st:
        for i in range(30):
            st.add(_full_record("dense", i), {"AP": float(i)})
    data = bytearray(path.read_bytes())
    page = 4096
    for off in range(2 * page, len(data), 97):     # scribble over every page after the schema's
        data[off] = (data[off] + 91) % 256
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("damage", ["scribbled", "truncated header", "other sqlite", "text"])
def test_damaged_store_is_an_error_naming_it_and_is_kept(tmp_path, damage, capsys):
    if damage == "scribbled":
        path = _damaged(tmp_path)
    else:
        path = tmp_path / "r.db"
        if damage == "truncated header":
            with Store(path):
                pass
            path.write_bytes(path.read_bytes()[:50])
        elif damage == "other sqlite":
            con = sqlite3.connect(str(path))
            con.execute("CREATE TABLE t (x)")
            con.commit()
            con.close()
        else:
            path.write_text("not a database at all\n" * 20)
    before = path.read_bytes()
    with pytest.raises(StoreError, match=str(path)):
        with Store(path) as st:
            st.runs()
    # the one call a benchmark makes keeps going (its result files are already written), says why
    assert record_run("coco", {"AP": 1.0}, kind="dense", checkpoint="c", store=path) is None
    assert str(path) in capsys.readouterr().err
    with pytest.raises(StoreError):
        record_run("coco", {"AP": 1.0}, kind="dense", checkpoint="c", store=path, strict=True)
    # through a tool: one error line naming the file, exit status 2
    from tools.results import main
    assert cli_main(main, ["list", "--store", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {path}: ")
    assert path.read_bytes() == before     # never recreated or repaired


def test_missing_store_for_reading_is_an_error(tmp_path):
    with pytest.raises(FLSLError, match="no results store"):
        Store(tmp_path / "none.db", create=False)
    assert not (tmp_path / "none.db").exists()


def test_bad_records_are_refused(tmp_path):
    with Store(tmp_path / "r.db") as st:
        with pytest.raises(StoreError, match="kind"):
            st.add({**_full_record("dense", 0), "kind": "other"}, {"AP": 1})
        with pytest.raises(StoreError, match="no metric"):
            st.add(_full_record("dense", 0), {"AP": None})
        with pytest.raises(StoreError, match="not a number"):
            st.add(_full_record("dense", 0), {"AP": "high"})
        assert st.count() == 0


def test_spread_is_the_sample_standard_deviation():
    import statistics
    vals = [40.1, 41.7, 39.2, 40.0]
    mean, sd, n = spread(vals)
    assert n == 4 and mean == pytest.approx(statistics.fmean(vals)) and sd == pytest.approx(statistics.stdev(vals))
    assert spread([3.0]) == (3.0, None, 1)


def test_export_and_import_round_trip(tmp_path, capsys):
    from tools.results import main
    store = tmp_path / "r.db"
    with Store(store) as st:
        st.add(_full_record("dense", 0), {"bbox_AP": {0: 40.0, 1: 42.0}})
    assert cli_main(main, ["export", "--store", str(store), "--format", "json", "--out", str(tmp_path / "e.json")]) == 0
    rows = json.loads((tmp_path / "e.json").read_text())
    assert sorted((r["metric"], r["seed"], r["value"]) for r in rows) == [("bbox_AP", 0, 40.0), ("bbox_AP", 1, 42.0)]
    assert cli_main(main, ["export", "--store", str(store), "--format", "csv", "--out", str(tmp_path / "e.csv")]) == 0
    import csv
    with open(tmp_path / "e.csv", newline="") as f:
        assert [r["value"] for r in csv.DictReader(f)] == ["40.0", "42.0"]
    # --out onto the store itself is refused before anything is written
    assert cli_main(main, ["export", "--store", str(store), "--format", "csv", "--out", str(store)]) == 2
    with Store(store, create=False) as st:
        assert st.count() == 1
