"""core/steps.py (provenance): a result is up to date only while its command, its merged
config and the bytes of its inputs are those recorded when it was made."""
from __future__ import annotations

import json
import sys

import pytest
import torch

from core.steps import (config_digest, file_digest, read_record, record_path, set_aside, stale_reasons,
                        write_record)
from pretrain.checkpoint import file_sha256, save_atomic


def make_step(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "base.py").write_text("lr = 0.1\nepochs = 12\n")
    (tmp_path / "configs" / "row.py").write_text("_base_ = ['./base.py']\nname = 'row'\n")
    ckpt = tmp_path / "backbone.safetensors"
    save_atomic({"w": torch.zeros(4)}, ckpt)
    out = tmp_path / "row" / "test_metrics.json"
    out.parent.mkdir()
    out.write_text(json.dumps({"coco/bbox_mAP": 0.5}))
    argv = ["tools/dist_test.sh", "configs/row.py", "backbone.safetensors", "8"]
    return out, argv, ("backbone.safetensors",), "configs/row.py"


def test_fresh_record_is_up_to_date_and_holds_digests(tmp_path):
    out, argv, inputs, config = make_step(tmp_path)
    assert stale_reasons(out, argv, inputs, config, root=tmp_path)[0].startswith("no provenance record")
    path = write_record(out, argv, inputs, config, root=tmp_path)
    assert path == record_path(out) and path.name == "test_metrics.json.provenance.json"
    record = read_record(out)
    assert record["inputs"] == {"backbone.safetensors": file_sha256(tmp_path / "backbone.safetensors")}
    assert record["command"] == "tools/dist_test.sh configs/row.py backbone.safetensors 8"
    assert record["config"]["sha256"] == config_digest(tmp_path / config)
    assert stale_reasons(out, argv, inputs, config, root=tmp_path) == []


def test_changed_checkpoint_config_command_or_missing_output_is_stale(tmp_path):
    out, argv, inputs, config = make_step(tmp_path)
    write_record(out, argv, inputs, config, root=tmp_path)
    # another checkpoint under the same name: the previous numbers must not be reused
    save_atomic({"w": torch.ones(4)}, tmp_path / "backbone.safetensors")
    reasons = stale_reasons(out, argv, inputs, config, root=tmp_path)
    assert len(reasons) == 1 and reasons[0].startswith("input backbone.safetensors changed (sha256 ")
    write_record(out, argv, inputs, config, root=tmp_path)
    # the base config changes the merged config although the row's own file is unchanged
    (tmp_path / "configs" / "base.py").write_text("lr = 0.2\nepochs = 12\n")
    assert stale_reasons(out, argv, inputs, config, root=tmp_path) == ["config configs/row.py changed"]
    write_record(out, argv, inputs, config, root=tmp_path)
    assert stale_reasons(out, [*argv[:-1], "4"], inputs, config, root=tmp_path)[0].startswith("command changed")
    (tmp_path / "backbone.safetensors").unlink()
    assert stale_reasons(out, argv, inputs, config, root=tmp_path) == ["input backbone.safetensors missing"]
    out.unlink()
    assert stale_reasons(out, argv, inputs, config, root=tmp_path) == ["no result"]


def test_file_digest_reuses_a_current_sidecar_and_ignores_a_stale_one(tmp_path):
    import os
    path = tmp_path / "c.pth"
    save_atomic({"w": torch.zeros(2)}, path)
    assert file_digest(path) == file_sha256(path)
    side = tmp_path / "c.pth.sha256"
    side.write_text("f" * 64 + "  c.pth\n")  # newer than the file: taken as is (not re-hashed)
    assert file_digest(path) == "f" * 64
    t = path.stat().st_mtime_ns - 10**9
    os.utime(side, ns=(t, t))                  # older than the file: the file is hashed
    assert file_digest(path) == file_sha256(path)
    assert file_digest(tmp_path / "absent.pth") is None


def test_unreadable_record_counts_as_missing(tmp_path):
    out, argv, inputs, config = make_step(tmp_path)
    record_path(out).write_text("{not json")
    assert read_record(out) is None
    assert stale_reasons(out, argv, inputs, config, root=tmp_path)[0].startswith("no provenance record")


def test_set_aside_keeps_the_old_run_under_a_free_name(tmp_path):
    run = tmp_path / "coco" / "row"
    run.mkdir(parents=True)
    (run / "epoch_12.pth").write_bytes(b"old")
    first = set_aside(run)
    assert first == tmp_path / "coco" / "row.stale-1" and (first / "epoch_12.pth").read_bytes() == b"old"
    run.mkdir()
    assert set_aside(run) == tmp_path / "coco" / "row.stale-2" and not run.exists()
    assert set_aside(run) is None


def test_plan_steps_are_recorded_and_checked(tmp_path):
    from core.steps import Step
    out, argv, inputs, config = make_step(tmp_path)
    step = Step("test", "coco/row: evaluation", argv, out.relative_to(tmp_path), inputs=inputs, root=tmp_path)
    assert step.stale_reasons[0].startswith("no provenance record")
    step.record()
    assert step.stale_reasons == [] and step.done
    save_atomic({"w": torch.full((4,), 3.0)}, tmp_path / "backbone.safetensors")
    assert step.stale_reasons[0].startswith("input backbone.safetensors changed")
    # a step that now reads one more input (a split list, say) than when it was recorded is stale
    (tmp_path / "split.txt").write_text("a\n")
    wider = Step("test", "coco/row: evaluation", argv, out.relative_to(tmp_path),
                 inputs=(*inputs, "split.txt"), root=tmp_path)
    assert "input split.txt added" in wider.stale_reasons


def test_run_steps_records_provenance_and_sets_aside_a_stale_run(tmp_path):
    """core.steps.run_steps: a success writes the record (the step is then done); a finished result
    whose input changed is redone after its run folder is renamed, never deleted."""
    from core.steps import Step, run_steps
    src = tmp_path / "input.bin"
    src.write_bytes(b"first")
    wd = tmp_path / "run"
    out = wd / "result.txt"
    code = ("import sys, pathlib; p = pathlib.Path(sys.argv[1]); p.parent.mkdir(parents=True, exist_ok=True); "
            "p.write_bytes(pathlib.Path(sys.argv[2]).read_bytes())")
    step = Step("train", "toy", [sys.executable, "-c", code, str(out), str(src)], out, inputs=(str(src),),
                work_dir=wd)
    assert step.stale_reasons == ["no result"]
    logs = []
    assert run_steps([step], log=logs.append) == 1
    assert step.done and out.read_bytes() == b"first"
    assert run_steps([step], log=logs.append) == 0  # nothing to redo
    src.write_bytes(b"second")
    assert not step.done and step.stale_reasons[0].startswith(f"input {src} changed")
    assert run_steps([step], log=logs.append) == 1
    assert out.read_bytes() == b"second" and step.done
    assert (tmp_path / "run.stale-1" / "result.txt").read_bytes() == b"first"  # kept
    assert any("previous run kept as" in line for line in logs)


def test_lanes_run_side_by_side_and_the_first_failure_is_raised_after_the_others(tmp_path):
    """Steps of a lane run in order; lanes run side by side with prefixed output; a failing lane
    stops at its failure while the other lane finishes, and its error is raised at the end."""
    from core.steps import Step, StepError, run_steps
    write = ("import sys, pathlib; p = pathlib.Path(sys.argv[1]); p.parent.mkdir(parents=True, exist_ok=True); "
             "p.write_text(sys.argv[2]); print('made', p.name)")
    good = [Step("x", f"a{i}", [sys.executable, "-c", write, str(tmp_path / "a" / f"{i}.txt"), str(i)],
                 tmp_path / "a" / f"{i}.txt", lane="a") for i in range(2)]
    bad = [Step("x", "b0", [sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path / "b" / "0.txt", lane="b"),
           Step("x", "b1", [sys.executable, "-c", write, str(tmp_path / "b" / "1.txt"), "1"],
                tmp_path / "b" / "1.txt", lane="b")]
    logs = []
    with pytest.raises(StepError, match="b0: command failed with exit status 3"):
        run_steps([good[0], bad[0], good[1], bad[1]], log=logs.append, jobs=2)
    assert all(s.done for s in good) and not (tmp_path / "b" / "1.txt").exists()
    assert "[a] made 0.txt" in logs and "[a] made 1.txt" in logs
    # the same call resumes: lane a is done, lane b runs from its failed step
    bad[0].argv = [sys.executable, "-c", write, str(tmp_path / "b" / "0.txt"), "0"]
    assert run_steps([*good, *bad], log=logs.append, jobs=2) == 2
    assert [p.read_text() for p in sorted((tmp_path / "b").glob("*.txt"))] == ["0", "1"]


def test_config_digest_is_the_same_with_and_without_a_gpu():
    """A plan checked on a machine without a GPU finds the GPU nodes' results up to date: the
    detection schedule's CUDA-dependent optimizer wrapper does not enter the digest."""
    from unittest import mock

    from mmengine.config import Config

    from core.steps import REPO
    path = REPO / "configs" / "coco" / "mask_rcnn_flsl_vits16.py"
    with mock.patch("torch.cuda.is_available", return_value=True):
        assert Config.fromfile(str(path)).optim_wrapper.type == "AmpOptimWrapper"   # the case that matters
        on_gpu = config_digest(path)
    assert on_gpu == config_digest(path) is not None


def test_config_digests_taken_side_by_side_are_right():
    """Lanes record their steps from threads: digests of one config computed at once must all be
    the one a single thread computes (MMEngine's reader is not thread-safe; unguarded, most of
    them came out wrong and the next run redid finished steps)."""
    import threading

    from core.steps import REPO
    path = REPO / "configs" / "demo" / "mask_rcnn_vit_tiny_synthetic.py"
    want, got = config_digest(path), []

    def work():
        got.extend(config_digest(path) for _ in range(6))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 18 and set(got) == {want}
