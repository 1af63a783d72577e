"""Store records of each benchmark's results: written by the benchmark tools right after their own
result files, and imported from the result files of earlier runs.

Result files this suite writes (and :func:`import_file` reads):

``test_metrics.json``          tools/test.py (COCO, UAVDT, ADE20K): MMEngine's metric dict; the
                               benchmark is told by its keys (:func:`benchmarks.reproduce.collect.classify`)
``davis_results.json``         tools/davis_propagate.py --evaluate, tools/davis_eval.py:
                               ``{"global": {"J&F-Mean", ...}, "per_object": ...}`` (fractions)
``global_results-<split>.csv`` the official DAVIS evaluator's table (fractions)
``probe_results.json``         the demo's frozen-encoder probes (benchmarks/probes/demo_linear.py):
                               linear-probe mIoU per seed, patch-grouping AUC per image
``results.json``               the demo (benchmarks/demo/run.py): per arm, every per-seed number

Numbers are stored in percent under the table keys of :data:`benchmarks.reproduce.collect.KEYMAPS`.
Where a result file has a provenance record beside it (``<file>.provenance.json``, written by the
table runner) its command, config digest and input digests are kept.
"""
from __future__ import annotations

import csv
import datetime
import hashlib
import json
import shlex
from pathlib import Path

from core.errors import FLSLError
from core.digests import cached_sha256 as file_digest
from core.results import record_run, spread

PROBE_BENCHMARK = "linear-probe"
GROUPING_BENCHMARK = "patch-grouping"


class ResultFileError(FLSLError):
    """A result file that cannot be imported; the message names it."""


def _never_fails(fn):
    """A benchmark tool records its run after writing its own result files: whatever goes wrong
    in recording (a metric file of an unknown kind, an unreadable checkpoint, a damaged store) is
    a warning, never a failed run."""
    import functools
    import sys

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - see above
            print(f"warning: the run was not recorded in the results store: {err}", file=sys.stderr)
            return None
    return wrapper


def _relative(path) -> str:
    """``path`` relative to the current folder when inside it (stored names stay short)."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def describe_checkpoint(path, which: str = "teacher", heads: bool = False) -> dict:
    """``{"family", "architecture"}`` (and with ``heads`` the attention heads it was trained with)
    of an encoder file as the suite reads it (format detected from the content); empty values when
    it cannot be read (a record is still written)."""
    out = {"family": None, "architecture": None, **({"heads": None} if heads else {})}
    if not path or not Path(path).is_file():
        return out
    try:
        from pretrain.checkpoint import load_encoder_weights
        loaded = load_encoder_weights(path, which=which)
        out.update(family=loaded.format, architecture=loaded.spec.arch)
        if heads:
            from benchmarks.dense.backbone import num_heads_of
            out["heads"] = num_heads_of(loaded.spec)
    except Exception:  # noqa: BLE001 - describing is best effort; the run's numbers are what matter
        pass
    return out


def dense_protocol(cfg, trained_heads: int | None) -> dict:
    """``protocol``, ``protocol_default`` and ``protocol_note`` of a dense config: the backbone split
    into other attention heads than the encoder was trained with (the FLSL authors' 8-head COCO
    protocol, configs/coco/mask_rcnn_flsl_vits16_8heads.py), or a config's own
    ``protocol_variant`` / ``protocol_note``, make it non-default."""
    heads = ((cfg.get("model") or {}).get("backbone") or {}).get("num_heads")
    names, notes = [], []
    if heads is not None and heads != trained_heads:
        names.append(f"{heads}-head split")
        notes.append(f"backbone split into {heads} attention heads"
                     + (f" (trained with {trained_heads})" if trained_heads else "")
                     + ", as the FLSL authors' detection config")
    if cfg.get("protocol_variant"):
        names.append(str(cfg.protocol_variant))
        notes.append(str(cfg.get("protocol_note") or cfg.protocol_variant))
    return {"protocol": ", ".join(names) or "default", "protocol_default": not names, "protocol_note": "; ".join(notes)}


def _sidecar_provenance(result_file: Path) -> dict:
    """Command, config and input digests from ``<file>.provenance.json`` when present."""
    side = Path(f"{result_file}.provenance.json")
    try:
        rec = json.loads(side.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(rec, dict):
        return {}
    out = {}
    if isinstance(rec.get("argv"), list):
        out["argv"] = rec["argv"]
    cfg = rec.get("config") or {}
    if isinstance(cfg, dict):
        out["config_path"], out["config_digest"] = cfg.get("path"), cfg.get("sha256")
    if isinstance(rec.get("inputs"), dict):
        out["inputs"] = rec["inputs"]
    if rec.get("written"):
        out["finished_at"] = rec["written"]
    return out


def result_uid(path, benchmark: str, part: str = "") -> str:
    """The identity of the record of a result file: its content, where it lies and which part of
    it the record holds. The tool that wrote the file and a later import of it give the same
    uid, so the run is stored once; a re-run (new content) is a new record."""
    path = Path(path)
    h = hashlib.sha256(path.read_bytes())
    for p in (str(path.resolve()), benchmark, part):
        h.update(b"\0" + str(p).encode())
    return "result:" + h.hexdigest()


# ----------------------------------------------------------------------------- dense
def dense_metrics(raw: dict, where: str) -> tuple[str, dict]:
    """``(benchmark, {table key: percent})`` of MMEngine's metric dict (COCO / UAVDT / ADE20K)."""
    from benchmarks.reproduce.collect import classify, to_table_keys
    bench = classify(raw) if isinstance(raw, dict) else None
    if bench is None or bench == "davis":
        raise ResultFileError(f"{where}: not a COCO, UAVDT or ADE20K metric file (no coco/bbox_mAP or mIoU)")
    return bench, to_table_keys(bench, raw, where)


@_never_fails
def record_dense_test(raw: dict, *, config_path, cfg, checkpoint, metrics_path, store=None, argv=None) -> int | None:
    """Record a finished tools/test.py run: ``raw`` its metrics, ``cfg`` the merged config it ran
    (its digest is stored), ``checkpoint`` the trained detector / segmentor file. The encoder is the
    one the model was trained from (its saved config's backbone ``init_cfg``), the seed the
    training's."""
    from benchmarks.dense.runner import trained_meta
    bench, metrics = dense_metrics(raw, str(metrics_path))
    meta = trained_meta(checkpoint) or {}
    encoder = meta.get("encoder")
    data_root = str(cfg.get("data_root") or "").rstrip("/")
    desc = describe_checkpoint(encoder or None, heads=True)
    trained_heads = desc.pop("heads")
    return record_run(
        bench, metrics, kind="dense", checkpoint=encoder or checkpoint, **desc,
        dataset=_relative(data_root) if data_root else bench, **dense_protocol(cfg, trained_heads),
        seed=int(meta.get("seed") or 0), argv=argv, config_path=config_path,
        config_digest=hashlib.sha256(cfg.pretty_text.encode()).hexdigest(),
        inputs={str(checkpoint): file_digest(checkpoint), **({str(encoder): file_digest(encoder)} if encoder else {})},
        source=metrics_path, extra={"detector_checkpoint": str(checkpoint)}, store=store,
        uid=result_uid(metrics_path, bench))


# ----------------------------------------------------------------------------- DAVIS
def davis_metrics(global_scores: dict, where: str) -> dict:
    """The DAVIS global scores (fractions) in percent under the table keys. Unlike COCO's -1 for
    "no ground truth", a negative decay is a real value (the score rose over the video): kept."""
    import math
    from benchmarks.reproduce.collect import KEYMAPS
    out = {}
    for key, (raw_key, factor) in KEYMAPS["davis"].items():
        if raw_key in global_scores:
            try:
                value = float(global_scores[raw_key])
            except (TypeError, ValueError):
                raise ResultFileError(f"{where}: {raw_key}: not a number: {global_scores[raw_key]!r}") from None
            if math.isfinite(value):
                out[key] = value * factor
    return out


#: settings of DINO's DAVIS protocol (benchmarks/davis/config.py); another value makes a run non-default
DAVIS_PROTOCOL_KEYS = ("n_last_frames", "neighborhood", "topk", "temperature", "short_side", "multiple")


def davis_protocol(settings: dict) -> dict:
    """``protocol``, ``protocol_default`` and ``protocol_note`` of DAVIS propagation ``settings``:
    values other than DINO's protocol (benchmarks/davis/config.py) make it non-default, named."""
    from benchmarks.davis.config import DEFAULTS
    changed = {k: settings.get(k) for k in DAVIS_PROTOCOL_KEYS if settings.get(k) != DEFAULTS[k]}
    return {"protocol": "label propagation" + "".join(f", {k}={v}" for k, v in changed.items()),
            "protocol_default": not changed,
            "protocol_note": ("differs from DINO's protocol in " + ", ".join(changed)) if changed else ""}


@_never_fails
def record_davis(global_scores: dict, *, checkpoint, data_root, settings: dict, result_file, subset: bool = False,
                 family: str | None = None, config_path=None, store=None, argv=None) -> int | None:
    """Record a DAVIS evaluation (``global_scores``: the 7 official numbers, fractions) made with
    the protocol ``settings`` (:func:`davis_protocol`)."""
    digest = None
    if config_path and Path(config_path).is_file():
        digest = hashlib.sha256(Path(config_path).read_bytes()).hexdigest()
    desc = describe_checkpoint(checkpoint, settings.get("which") or "teacher")
    if family:
        desc["family"] = family
    return record_run(
        "davis", davis_metrics(global_scores, str(result_file)), kind="davis", checkpoint=checkpoint, **desc,
        dataset=davis_dataset(data_root, settings.get("split", "val"), subset), **davis_protocol(settings),
        argv=argv, config_path=config_path, config_digest=digest,
        inputs={str(checkpoint): file_digest(checkpoint)}, source=result_file,
        extra={"settings": {k: settings.get(k) for k in DAVIS_PROTOCOL_KEYS}}, store=store,
        uid=result_uid(result_file, "davis"))


def davis_dataset(data_root, split: str, subset: bool = False) -> str:
    return f"{_relative(Path(data_root))} ({split}{', subset' if subset else ''})"


# ----------------------------------------------------------------------------- demo probes
def probe_records(doc: dict) -> list[tuple[str, dict]]:
    """``[(benchmark, metrics)]`` of the demo probes' ``probe_results.json``: linear-probe mIoU and
    pixel accuracy per seed, patch-grouping AUC (mean over the images that have one)."""
    linear = doc.get("linear") or []
    out = []
    if linear:
        out.append((PROBE_BENCHMARK, {"mIoU": {int(r["seed"]): r["mIoU"] for r in linear},
                                      "pixel_acc": {int(r["seed"]): r["pixel_acc"] for r in linear}}))
    aucs = [v for v in (doc.get("grouping") or {}).values() if v is not None]
    if aucs:
        out.append((GROUPING_BENCHMARK, {"AUC": spread(aucs)[0]}))
    return out


@_never_fails
def record_demo_probes(doc: dict, *, data_root, result_file, store=None, argv=None) -> list:
    ckpt = doc.get("checkpoint") or "unknown"
    desc = describe_checkpoint(ckpt)
    return [record_run(bench, metrics, kind="probe", checkpoint=ckpt, **desc, dataset=_relative(data_root),
                       protocol="demo probe", argv=argv, inputs={str(ckpt): file_digest(ckpt)},
                       source=result_file, extra={"settings": doc.get("settings")}, store=store,
                       uid=result_uid(result_file, bench, bench))
            for bench, metrics in probe_records(doc)]


# ----------------------------------------------------------------------------- frozen-feature probes
#: per-seed keys of the probes' summary metrics where the names differ (benchmarks/probes/depth.py)
PROBE_SEED_KEYS = {"RMSE": "rmse", "delta1": "a1"}


def probe_metrics(doc: dict) -> dict:
    """``{metric: {seed: value}}`` of a tools/probe.py results document: per seed where the
    protocol trains (``per_seed``), else its single value; spreads (``*_std``) are not stored,
    the site computes them from the seeds."""
    per_seed = doc.get("per_seed") or []
    out = {}
    for name, value in (doc.get("metrics") or {}).items():
        if name.endswith("_std") or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        key = name if per_seed and name in per_seed[0] else PROBE_SEED_KEYS.get(name)
        if per_seed and key in per_seed[0]:
            out[name] = {int(r["seed"]): r[key] for r in per_seed if r.get(key) is not None}
        else:
            out[name] = value
    return out


@_never_fails
def record_probe(doc: dict, *, result_file, config_path=None, options: dict | None = None, store=None,
                 argv=None) -> int | None:
    """Record a tools/probe.py run (``doc``: its probe_results.json). ``options`` (--cfg-options)
    make the protocol non-default, named."""
    import json
    ck = doc.get("checkpoint") or {}
    bench = f"probe-{doc['protocol']}"
    settings = json.dumps(doc.get("settings"), sort_keys=True, default=str).encode()
    data = doc.get("data") or {}
    inputs = {str(ck.get("path")): ck.get("sha256"),
              **{f"{data.get('root')} ({k})": v for k, v in data.items() if k != "root"}}
    return record_run(
        bench, probe_metrics(doc), kind="probe", checkpoint=ck.get("path") or "unknown",
        checkpoint_digest=ck.get("sha256"), family=ck.get("format"), architecture=ck.get("arch"),
        dataset=str(doc.get("dataset") or ""), protocol=str(doc["protocol"]), protocol_default=not options,
        protocol_note=("changed: " + ", ".join(f"{k}={v}" for k, v in options.items())) if options else "",
        argv=argv, config_path=config_path, config_digest=hashlib.sha256(settings).hexdigest(), inputs=inputs,
        source=result_file, extra={"which": ck.get("which")}, store=store, uid=result_uid(result_file, bench))


# ----------------------------------------------------------------------------- import
def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as err:
        raise ResultFileError(f"{path}: cannot be read ({err})") from None
    except json.JSONDecodeError as err:
        raise ResultFileError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from None


def _imported(path: Path, benchmark: str, metrics: dict, kind: str, checkpoint, store, part="", **fields) -> int:
    """Store one record read from the earlier result file ``path``. Its provenance is what the
    file and a ``<file>.provenance.json`` beside it say (the command, config and input digests of
    the run); the commit and machine of the run are unknown (empty), the import's are in ``extra``."""
    from core.results import Store, _now, machine, project_commit
    prov = _sidecar_provenance(path)
    argv = [str(a) for a in (prov.get("argv") or ["(imported)", str(path)])]
    ckpt = str(checkpoint)
    finished = prov.get("finished_at") or datetime.datetime.fromtimestamp(
        path.stat().st_mtime, datetime.timezone.utc).isoformat(timespec="seconds")
    extra = {**(fields.pop("extra", None) or {}), "imported": _now(), "imported_at_commit": project_commit(),
             "imported_on": machine()}
    row = dict(uid=result_uid(path, benchmark, part), kind=kind, benchmark=benchmark, checkpoint=Path(ckpt).name or ckpt,
               checkpoint_path=ckpt, checkpoint_digest=file_digest(ckpt) if Path(ckpt).is_file() else None,
               command=shlex.join(argv), argv=argv, config_path=prov.get("config_path"),
               config_digest=prov.get("config_digest"), inputs=prov.get("inputs") or {}, finished=finished,
               source=str(path), extra=extra)
    if Path(ckpt).is_file():
        row.update(describe_checkpoint(ckpt))
    row.update({k: v for k, v in fields.items() if not (k == "checkpoint_digest" and row["checkpoint_digest"])})
    with Store(store) as st:     # a "seed" among fields numbers single-valued metrics
        return st.add(row, metrics)


def _trained_of(run_dir: Path) -> dict:
    """Encoder and seed of a dense run folder's newest checkpoint (MMEngine's ``last_checkpoint``
    names it), or nothing."""
    marker = run_dir / "last_checkpoint"
    try:
        newest = Path(marker.read_text().strip())
    except OSError:
        return {}
    if not newest.is_absolute() and not newest.is_file():
        newest = run_dir / newest.name
    if not newest.is_file():
        return {}
    try:
        from benchmarks.dense.runner import trained_meta
        return trained_meta(str(newest)) or {}
    except ImportError:     # MMEngine missing: the import still works, without these two
        return {}


def import_file(path, store=None, checkpoint: str | None = None, **fields) -> list[int]:
    """Import one earlier result file (kinds in the module doc); returns the run ids (already
    stored ones included). ``checkpoint`` names the encoder when the file does not; ``fields``
    (``dataset``, ``protocol``, ``protocol_default``, ``protocol_note``, ``family``,
    ``architecture``) replace what is guessed from the file."""
    path = Path(path)
    if not path.is_file():
        raise ResultFileError(f"{path}: no such file")
    name = path.name
    run_dir = path.parent.parent if path.parent.name == "test" else path.parent
    if name == "test_metrics.json":
        raw = _read_json(path)
        bench, metrics = dense_metrics(raw, str(path))
        trained = _trained_of(run_dir)
        return [_imported(path, bench, metrics, "dense", checkpoint or trained.get("encoder") or run_dir.name, store,
                          **{"dataset": bench, "seed": int(trained.get("seed") or 0), **fields})]
    if name in ("davis_results.json", "davis_results-subset.json") or (name.startswith("global_results-")
                                                                       and name.endswith(".csv")):
        if name.endswith(".json"):
            doc = _read_json(path)
            scores = doc.get("global") if isinstance(doc, dict) else None
        else:
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
            scores = rows[0] if len(rows) == 1 else None
        if not isinstance(scores, dict) or "J&F-Mean" not in scores:
            raise ResultFileError(f"{path}: expected the DAVIS global scores (J&F-Mean, ...)")
        subset = "-subset" in name     # fewer sequences than the split: never mixed with whole splits
        return [_imported(path, "davis", davis_metrics(scores, str(path)), "davis", checkpoint or path.parent.name,
                          store, **{"dataset": "davis (subset of the split)" if subset else "davis",
                                    "protocol": "label propagation", **fields})]
    if name == "probe_results.json":
        doc = _read_json(path)
        if isinstance(doc, dict) and "protocol" in doc and isinstance(doc.get("metrics"), dict):   # tools/probe.py
            ck = doc.get("checkpoint") or {}
            bench = f"probe-{doc['protocol']}"
            return [_imported(path, bench, probe_metrics(doc), "probe", checkpoint or ck.get("path") or path.parent.name,
                              store, **{"dataset": str(doc.get("dataset") or ""), "protocol": str(doc["protocol"]),
                                        "family": ck.get("format"), "architecture": ck.get("arch"),
                                        "checkpoint_digest": ck.get("sha256"), **fields})]
        if not isinstance(doc, dict) or "linear" not in doc:
            raise ResultFileError(f"{path}: expected the probes' results (\"linear\", \"grouping\")")
        ckpt = checkpoint or doc.get("checkpoint") or path.parent.name
        return [_imported(path, bench, metrics, "probe", ckpt, store, part=bench,
                          **{"dataset": "", "protocol": "demo probe", **fields})
                for bench, metrics in probe_records(doc)]
    if name == "results.json":
        if fields or checkpoint:
            raise ResultFileError(f"{path}: a demo's results.json names its own checkpoints and data sets")
        return import_demo(path, store)
    raise ResultFileError(f"{path}: not a result file this suite writes (test_metrics.json, davis_results.json, "
                       "global_results-<split>.csv, probe_results.json, results.json)")


#: the demo's protocols -> (benchmark, {demo metric key: stored key})
DEMO_PROTOCOLS = {
    "mask_rcnn": ("coco", None),
    "probe": (PROBE_BENCHMARK, "mIoU"),
    "grouping": (GROUPING_BENCHMARK, "AUC"),
    "davis": ("davis", None),
}


def demo_records(doc: dict) -> list[tuple[str, str, dict]]:
    """``[(arm, benchmark, metrics)]`` of a demo ``results.json``: Mask R-CNN per seed (table
    keys), linear-probe mIoU per seed, patch-grouping AUC and DAVIS J&F / J / F (means over images
    and objects: those protocols train nothing and repeat exactly)."""
    out = []
    for arm, protocols in (doc.get("results") or {}).items():
        coco = protocols.get("mask_rcnn") or {}
        if coco:
            per = {}
            for seed, keys in coco.items():
                for k, v in keys.items():
                    per.setdefault(k, {})[int(seed)] = v
            out.append((arm, "coco", per))
        if protocols.get("probe"):
            out.append((arm, PROBE_BENCHMARK, {"mIoU": {int(s): v for s, v in protocols["probe"].items()}}))
        aucs = [v for v in (protocols.get("grouping") or {}).values() if v is not None]
        if aucs:
            out.append((arm, GROUPING_BENCHMARK, {"AUC": spread(aucs)[0]}))
        objs = list((protocols.get("davis") or {}).values())
        if objs:
            j = spread([o["J"] for o in objs])[0]
            f = spread([o["F"] for o in objs])[0]
            out.append((arm, "davis", {"JF_mean": (j + f) / 2, "J_mean": j, "F_mean": f}))
    return out


def import_demo(path, store=None) -> list[int]:
    """Import a demo ``results.json``: one record per arm and protocol (kind ``demo``); the
    checkpoint is the arm's backbone file beside it (``backbones/<arm>.safetensors``) when present."""
    path = Path(path)
    doc = _read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), dict):
        raise ResultFileError(f"{path}: expected the demo's results.json (\"results\" per arm)")
    budget = (doc.get("budget") or {}).get("name", "")
    ids = []
    for arm, bench, metrics in demo_records(doc):
        backbone = path.parent / "backbones" / f"{arm}.safetensors"
        ckpt = str(backbone) if backbone.is_file() else arm
        ids.append(_imported(path, bench, metrics, "demo", ckpt, store, part=f"{arm}/{bench}",
                             dataset=f"synthetic (demo {budget})".replace(" )", ")"),
                             protocol=f"demo {budget}".strip(), extra={"arm": arm}))
    return ids


@_never_fails
def record_demo_runs(work, backbones: dict, roots: dict, davis_settings: dict, store=None) -> list[int]:
    """Make sure the store holds every result of a demo work dir: its tools record their runs as
    they finish; a step skipped as already done (its record went to another store, or none
    existed) is imported here from its result file with what the demo knows (the arm's backbone,
    the data set, the protocol). Runs already stored are found by their identity, not added."""
    work = Path(work)
    ids = []
    for arm, backbone in backbones.items():
        runs = work / "runs" / arm
        for f in sorted((runs / "coco").glob("seed*/test/test_metrics.json")):
            ids += import_file(f, store, checkpoint=str(backbone), dataset=_relative(roots["coco"]))
        probe = runs / "probe" / "probe_results.json"
        if probe.is_file():
            ids += import_file(probe, store, checkpoint=str(backbone), dataset=_relative(roots["coco"]))
        davis = runs / "davis" / "davis_results.json"
        if davis.is_file():
            ids += import_file(davis, store, checkpoint=str(backbone), **davis_protocol(davis_settings),
                               dataset=davis_dataset(roots["davis"], davis_settings.get("split", "val")))
    return ids


IMPORTABLE = ("test_metrics.json", "davis_results.json", "global_results-*.csv", "probe_results.json", "results.json")


def find_importable(root) -> list[Path]:
    """Every result file under ``root`` :func:`import_file` reads (a folder's DAVIS CSV is skipped
    when its davis_results.json is there: same run)."""
    root = Path(root)
    found = set()
    for pattern in IMPORTABLE:
        for p in root.rglob(pattern):
            if p.name.startswith("global_results-") and (p.parent / "davis_results.json").is_file():
                continue
            if p.name == "results.json" and not _looks_like_demo(p):
                continue
            found.add(p)
    return sorted(found)


def _looks_like_demo(path: Path) -> bool:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and isinstance(doc.get("results"), dict) and "budget" in doc


__all__ = ["describe_checkpoint", "record_dense_test", "record_davis", "record_demo_probes", "import_file",
           "import_demo", "find_importable", "dense_metrics", "demo_records", "probe_records",
           "PROBE_BENCHMARK", "GROUPING_BENCHMARK", "ResultFileError", "record_demo_runs", "davis_protocol", "record_probe", "probe_metrics", "dense_protocol",
           "result_uid"]
