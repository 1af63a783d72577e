"""The results store: every benchmark run of the suite, one record each, in one SQLite file.

Where it lives: ``$FLSL_RESULTS`` when set, else ``work_dirs/results.db`` under the repository;
every tool that writes or reads results takes ``--store PATH`` instead (:func:`store_path`;
the flag itself is ``core.cli.flags("store")``).

One record (a row of ``runs``) per run, with its metrics (rows of ``metrics``, one per metric and
seed, in percent as the tables print them)::

    runs     id, uid (unique: a re-import of the same file adds nothing), kind (dense | davis |
             probe | demo), benchmark, dataset, protocol, protocol_default (0 = a non-default
             protocol, e.g. the authors' 8-head split), protocol_note, checkpoint (name shown),
             checkpoint_path, checkpoint_digest (SHA-256), family, architecture, paper_row,
             command, argv (JSON), config_path, config_digest (SHA-256 of the merged config),
             inputs (JSON {path: SHA-256}), commit_id, machine, gpu, started, finished (ISO 8601,
             UTC), source (the result file the run wrote or the record was imported from),
             extra (JSON)
    metrics  run_id, metric, seed, value

Several processes may write at once: the database runs in write-ahead-log mode, every write is
one ``BEGIN IMMEDIATE`` transaction and a writer waits up to :data:`BUSY_TIMEOUT_S` for the lock,
so records finishing together are all kept. A new store is built in a temporary file and linked
into place (``os.link`` never replaces a file): a file that exists is always a store, and a
damaged or foreign file is a :class:`StoreError` naming it, never silently recreated.

``record_run(...)`` is the one call a benchmark makes after it has written its own result files.
"""
from __future__ import annotations

import datetime
import json
import math
import os
import platform
import shlex
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterable, Mapping

from .digests import cached_sha256
from .errors import FLSLError

ROOT = Path(__file__).resolve().parents[1]
ENV_VAR = "FLSL_RESULTS"
DEFAULT_RELATIVE = Path("work_dirs") / "results.db"
SCHEMA_VERSION = "1"
APPLICATION_ID = 0x464C534C       # "FLSL": marks the file as ours (PRAGMA application_id)
BUSY_TIMEOUT_S = 60.0
KINDS = ("dense", "davis", "probe", "demo")

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    benchmark TEXT NOT NULL,
    dataset TEXT NOT NULL DEFAULT '',
    protocol TEXT NOT NULL DEFAULT 'default',
    protocol_default INTEGER NOT NULL DEFAULT 1,
    protocol_note TEXT NOT NULL DEFAULT '',
    checkpoint TEXT NOT NULL,
    checkpoint_path TEXT,
    checkpoint_digest TEXT,
    family TEXT,
    architecture TEXT,
    paper_row TEXT,
    command TEXT,
    argv TEXT,
    config_path TEXT,
    config_digest TEXT,
    inputs TEXT,
    commit_id TEXT,
    machine TEXT,
    gpu TEXT,
    started TEXT,
    finished TEXT,
    source TEXT,
    extra TEXT
);
CREATE INDEX runs_benchmark ON runs (benchmark, dataset);
CREATE INDEX runs_checkpoint ON runs (checkpoint_digest);
CREATE TABLE metrics (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    metric TEXT NOT NULL,
    seed INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (run_id, metric, seed)
) WITHOUT ROWID;
"""

#: columns of ``runs`` a record may set (``id`` is given by the store)
RUN_FIELDS = ("uid", "kind", "benchmark", "dataset", "protocol", "protocol_default", "protocol_note",
              "checkpoint", "checkpoint_path", "checkpoint_digest", "family", "architecture",
              "paper_row", "command", "argv", "config_path", "config_digest", "inputs", "commit_id",
              "machine", "gpu", "started", "finished", "source", "extra")
JSON_FIELDS = ("argv", "inputs", "extra")
SQLITE_HEADER = b"SQLite format 3\x00"


class StoreError(FLSLError):
    """A results store that cannot be used (damaged, not a store, locked too long); names the file."""


# ----------------------------------------------------------------------------- location
def store_path(option: str | os.PathLike | None = None) -> Path:
    """The store a tool uses: ``--store PATH`` when given, else ``$FLSL_RESULTS``, else
    ``work_dirs/results.db`` under the repository."""
    if option:
        return Path(option)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return ROOT / DEFAULT_RELATIVE


# ----------------------------------------------------------------------------- the store
def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None)
    con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
    con.execute("PRAGMA foreign_keys = ON")
    return con


def _create(path: Path) -> None:
    """Build an empty store beside ``path`` and link it into place unless one appeared meanwhile."""
    from .files import make_parent
    make_parent(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.new")
    try:
        con = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            con.executescript(SCHEMA)
            now = _now()
            con.executemany("INSERT INTO meta VALUES (?, ?)", [("schema_version", SCHEMA_VERSION),
                                                             ("created", now)])
            # WAL is a property of the file: readers and writers of every process then share it
            con.execute("PRAGMA journal_mode = WAL")
        finally:
            con.close()
        os.chmod(tmp, 0o666 & ~_umask())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass    # another process created it first: use theirs
    except OSError as err:
        raise StoreError(f"{path}: cannot create the results store ({err.strerror})") from None
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            if leftover.exists():
                leftover.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class Store:
    """An open results store (use as a context manager, or call :meth:`close`)."""

    def __init__(self, path: str | os.PathLike | None = None, create: bool = True):
        self.path = store_path(path)
        if not self.path.exists():
            if not create:
                raise StoreError(f"{self.path}: no results store here (nothing has been recorded yet)")
            _create(self.path)
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a folder, not a results store file")
        self._check_header()
        try:
            self.con = _connect(self.path)
            self._check_schema()
        except sqlite3.DatabaseError as err:
            raise self._damaged(err) from None

    # -- checks
    def _check_header(self) -> None:
        try:
            with open(self.path, "rb") as f:
                head = f.read(100)
        except OSError as err:
            raise StoreError(f"{self.path}: cannot be read ({err.strerror})") from None
        if len(head) < 100 or not head.startswith(SQLITE_HEADER):
            raise StoreError(f"{self.path}: damaged or not a results store (no SQLite header); "
                             "move it aside to start a new store")
        if int.from_bytes(head[68:72], "big") != APPLICATION_ID:
            raise StoreError(f"{self.path}: an SQLite file of another application, not a results store")

    def _check_schema(self) -> None:
        ok = self.con.execute("PRAGMA quick_check").fetchone()[0]
        if ok != "ok":
            raise StoreError(f"{self.path}: damaged results store ({ok}); move it aside to start a new one")
        row = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or row[0] != SCHEMA_VERSION:
            raise StoreError(f"{self.path}: results store of schema {row and row[0]!r}, expected {SCHEMA_VERSION}")

    def _damaged(self, err: Exception) -> StoreError:
        text = str(err)
        if "locked" in text or "busy" in text:
            return StoreError(f"{self.path}: results store locked by another process for over "
                              f"{BUSY_TIMEOUT_S:.0f} s ({text})")
        return StoreError(f"{self.path}: damaged results store ({text}); move it aside to start a new one")

    # -- life
    def close(self) -> None:
        if getattr(self, "con", None) is not None:
            self.con.close()
            self.con = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing
    def add(self, record: Mapping, metrics: Mapping) -> int:
        """Insert one run and its metrics in one transaction; returns its id. A record whose
        ``uid`` is already stored is not added again (its id is returned)."""
        row = _run_row(record)
        values = list(_metric_rows(metrics, record.get("seed", 0)))
        if not values:
            raise StoreError(f"{self.path}: a run of {row['benchmark']} with no metric is not recorded")
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        try:
            self.con.execute("BEGIN IMMEDIATE")
            try:
                old = self.con.execute("SELECT id FROM runs WHERE uid = ?", (row["uid"],)).fetchone()
                if old is not None:
                    self.con.execute("ROLLBACK")
                    return int(old[0])
                cur = self.con.execute(f"INSERT INTO runs ({cols}) VALUES ({marks})", list(row.values()))
                run_id = int(cur.lastrowid)
                self.con.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?)",
                                     [(run_id, m, s, v) for m, s, v in values])
                self.con.execute("COMMIT")
            except BaseException:
                if self.con.in_transaction:
                    self.con.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as err:
            raise self._damaged(err) from None
        return run_id

    # -- reading
    def runs(self, benchmark: str | None = None, dataset: str | None = None, checkpoint: str | None = None,
             kind: str | None = None, protocol: str | None = None) -> list[dict]:
        """Stored runs (oldest first) matching every filter given (``checkpoint`` matches the
        name or a digest prefix), each with ``metrics``: ``{metric: {seed: value}}``."""
        where, args = [], []
        for col, val in (("benchmark", benchmark), ("dataset", dataset), ("kind", kind), ("protocol", protocol)):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        if checkpoint is not None:
            where.append("(checkpoint = ? OR checkpoint_digest LIKE ?)")
            args += [checkpoint, checkpoint + "%"]
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        try:
            cur = self.con.execute(f"SELECT id, {', '.join(RUN_FIELDS)} FROM runs{clause} ORDER BY id", args)
            names = [d[0] for d in cur.description]
            out = {}
            for r in cur.fetchall():
                rec = dict(zip(names, r))
                for f in JSON_FIELDS:
                    rec[f] = json.loads(rec[f]) if rec[f] is not None else None
                rec["protocol_default"] = bool(rec["protocol_default"])
                rec["metrics"] = {}
                out[rec["id"]] = rec
            if out:
                if where:
                    self.con.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (id INTEGER PRIMARY KEY)")
                    self.con.execute("DELETE FROM wanted")
                    self.con.executemany("INSERT INTO wanted VALUES (?)", [(i,) for i in out])
                    mcur = self.con.execute("SELECT run_id, metric, seed, value FROM metrics "
                                            "WHERE run_id IN (SELECT id FROM wanted)")
                else:
                    mcur = self.con.execute("SELECT run_id, metric, seed, value FROM metrics")
                for run_id, metric, seed, value in mcur:
                    out[run_id]["metrics"].setdefault(metric, {})[seed] = value
        except sqlite3.DatabaseError as err:
            raise self._damaged(err) from None
        return list(out.values())

    def count(self) -> int:
        try:
            return int(self.con.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
        except sqlite3.DatabaseError as err:
            raise self._damaged(err) from None


def open_store(path: str | os.PathLike | None = None, create: bool = True) -> Store:
    """:class:`Store` at :func:`store_path` ``(path)``."""
    return Store(path, create=create)


# ----------------------------------------------------------------------------- records
def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _run_row(record: Mapping) -> dict:
    unknown = sorted(set(record) - set(RUN_FIELDS) - {"seed"})
    if unknown:
        raise StoreError(f"record: unknown field {unknown[0]!r} (fields: {', '.join(RUN_FIELDS)})")
    for need in ("kind", "benchmark", "checkpoint"):
        if not record.get(need):
            raise StoreError(f"record: {need!r} is required")
    if record["kind"] not in KINDS:
        raise StoreError(f"record: kind {record['kind']!r} is not one of {', '.join(KINDS)}")
    row = {k: record.get(k) for k in RUN_FIELDS if k in record}
    row.setdefault("uid", uuid.uuid4().hex)
    row["protocol_default"] = int(bool(record.get("protocol_default", True)))
    for f in JSON_FIELDS:
        if row.get(f) is not None:
            row[f] = json.dumps(row[f], sort_keys=True, default=str)
    return row


def _metric_rows(metrics: Mapping, default_seed) -> Iterable[tuple[str, int, float]]:
    """``{metric: value | {seed: value} | [values]}`` -> ``(metric, seed, value)``; a list is
    numbered from seed 0; NaN, infinities and None are dropped (pycocotools' -1 is the caller's)."""
    for metric, got in metrics.items():
        if isinstance(got, Mapping):
            items = got.items()
        elif isinstance(got, (list, tuple)):
            items = enumerate(got)
        else:
            items = [(default_seed if default_seed is not None else 0, got)]
        for seed, value in items:
            if value is None:
                continue
            try:
                v, s = float(value), int(seed)
            except (TypeError, ValueError):
                raise StoreError(f"record: metric {metric!r} seed {seed!r}: not a number: {value!r}") from None
            if math.isfinite(v):
                yield str(metric), s, v


def project_commit() -> str | None:
    """The repository's commit (``+dirty`` when tracked files differ from it), or None."""
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--"], capture_output=True,
                               timeout=20).returncode == 1
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def machine() -> str:
    """Host, system and CPU count of this machine."""
    return f"{platform.node()} ({platform.system()} {platform.release()}, {platform.machine()}, " \
           f"{os.cpu_count()} CPUs, Python {platform.python_version()})"


def gpu() -> str | None:
    """The CUDA device(s) torch sees, when torch is already imported by the run; else None."""
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            return f"{len(names)} x {names[0]}" if len(set(names)) == 1 else ", ".join(names)
    except Exception:  # noqa: BLE001 - a broken driver must not lose the run's record
        return None
    return None


def process_started() -> str:
    """When this process started (Linux ``/proc``), else now; ISO 8601 UTC."""
    try:
        stat = Path("/proc/self/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        t = boot + ticks / os.sysconf("SC_CLK_TCK")
        return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="seconds")
    except (OSError, ValueError, IndexError, StopIteration):
        return _now()


def record_run(benchmark: str, metrics: Mapping, *, kind: str, checkpoint: str | os.PathLike,
               dataset: str = "", protocol: str = "default", protocol_default: bool = True,
               protocol_note: str = "", checkpoint_digest: str | None = None, family: str | None = None,
               architecture: str | None = None, paper_row: str | None = None, seed: int = 0,
               argv: list | None = None, config_path: str | os.PathLike | None = None,
               config_digest: str | None = None, inputs: Mapping | Iterable | None = None,
               started: str | None = None, source: str | os.PathLike | None = None,
               extra: Mapping | None = None, store: str | os.PathLike | None = None,
               uid: str | None = None, strict: bool = False, log=None) -> int | None:
    """Record one finished run in the store; call it after the run's own result files are written.

    ``metrics``: ``{metric: value}`` (percent) for one seed (``seed``), or ``{metric: {seed: value}}``
    / ``{metric: [value per seed 0, 1, ...]}`` for a run over several seeds. ``checkpoint``: the
    encoder file (its digest is computed unless ``checkpoint_digest`` is given) or a name.
    ``inputs``: ``{path: sha256}``, or paths to hash. ``uid``: the run's identity when it has one
    (a record with a stored uid is not added again); a new random one otherwise. ``argv`` defaults to this process's command
    line; commit, machine, GPU and the end time are filled in here, the start time defaults to
    this process's start.

    Returns the run's id. A store that cannot be written (damaged, locked too long, disk full)
    loses only the record: the error is printed (``warning: ...``, through ``log``) and None
    returned, unless ``strict``, when it is raised.
    """
    ckpt = str(checkpoint)
    if checkpoint_digest is None and Path(ckpt).is_file():
        checkpoint_digest = cached_sha256(ckpt)
    if inputs is not None and not isinstance(inputs, Mapping):
        inputs = {str(p): cached_sha256(p) for p in inputs}
    argv = [str(a) for a in (sys.argv if argv is None else argv)]
    record = dict(
        kind=kind, benchmark=benchmark, dataset=str(dataset or ""), protocol=protocol,
        protocol_default=protocol_default, protocol_note=protocol_note,
        checkpoint=Path(ckpt).name if Path(ckpt).name else ckpt, checkpoint_path=ckpt,
        checkpoint_digest=checkpoint_digest, family=family, architecture=architecture, paper_row=paper_row,
        command=shlex.join(argv), argv=argv, config_path=None if config_path is None else str(config_path),
        config_digest=config_digest, inputs=dict(inputs or {}), commit_id=project_commit(), machine=machine(),
        gpu=gpu(), started=started or process_started(), finished=_now(),
        source=None if source is None else str(source), extra=dict(extra or {}), seed=seed)
    if uid is not None:
        record["uid"] = uid
    try:
        with Store(store) as st:
            return st.add(record, metrics)
    except (FLSLError, OSError) as err:
        if strict:
            raise
        (log or (lambda m: print(m, file=sys.stderr)))(
            f"warning: {err}; the run's own result files are complete, only its store record is missing")
        return None


# ----------------------------------------------------------------------------- summaries
def spread(values: Iterable[float]) -> tuple[float, float | None, int]:
    """``(mean, sample standard deviation or None for one value, n)`` of per-seed values."""
    vals = [float(v) for v in values]
    n = len(vals)
    if n == 0:
        raise ValueError("no values")
    mean = math.fsum(vals) / n
    if n == 1:
        return mean, None, 1
    var = math.fsum((v - mean) ** 2 for v in vals) / (n - 1)
    return mean, math.sqrt(var), n


__all__ = ["StoreError", "Store", "open_store", "store_path", "record_run",
           "project_commit", "machine", "gpu", "process_started", "spread", "ENV_VAR", "DEFAULT_RELATIVE",
           "KINDS", "RUN_FIELDS", "SCHEMA", "SCHEMA_VERSION"]
