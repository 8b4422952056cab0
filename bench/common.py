"""Shared machinery of the benchmark scripts (not part of the portal, not imported by it).

* the benchmark database: its URL, the ``portal_bench*`` name rule, create / reset / migrate / clone;
* ``Loader``: bulk inserts that stream rows. PostgreSQL: binary ``COPY ... FROM STDIN`` (psycopg 3
  ``cursor.copy``), one connection per open table stream so several tables can be filled at once from one
  generator loop; SQLite: ``executemany`` in batches (small sizes only). Rows are never collected in
  memory beyond one batch;
* ``QueryCounter`` / ``percentiles``: statement counting with a ``before_cursor_execute`` listener and
  latency summaries for the measuring scripts.

The scripts run from the repository root: ``.venv/bin/python bench/<script>.py``.
"""
from __future__ import annotations

import contextlib
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, event, inspect, text  # noqa: E402
from sqlalchemy.engine import Engine, make_url  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

BENCH_PREFIX = "portal_bench"
# A Redis database of its own, so jobs the measured code enqueues (notification delivery) never reach the
# portal's queues (db 0) or the test suite's (db 10+). Override with BENCH_REDIS_URL.
BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")


def log(*parts: Any) -> None:
    """Progress goes to stderr; stdout is kept for results."""
    print(*parts, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the benchmark database

def database_url(value: str | None = None) -> str:
    url = value or os.environ.get("DATABASE_URL", "")
    if not url:
        raise SystemExit("DATABASE_URL is not set (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/portal_bench)")
    check_bench_name(url)
    return url


def is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def bench_name(url: str) -> str:
    u = make_url(url)
    if is_postgres(url):
        return u.database or ""
    return Path(u.database or "").stem


def check_bench_name(url: str) -> None:
    """Only databases named portal_bench* (a SQLite file portal_bench*.db) are ever created, filled,
    reset or dropped by these scripts."""
    if not bench_name(url).startswith(BENCH_PREFIX):
        raise SystemExit(f"refusing to use {bench_name(url)!r}: benchmark databases must be named "
                         f"{BENCH_PREFIX}* (PostgreSQL database or SQLite file)")


def _admin_engine(url: str) -> Engine:
    return create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT",
                         poolclass=NullPool)


def ensure_database(url: str, reset: bool = False) -> bool:
    """Create the database when missing (drop it first with ``reset``). Returns True when created."""
    check_bench_name(url)
    if not is_postgres(url):
        path = Path(make_url(url).database or "")
        if reset:
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        created = not path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        return created
    name = bench_name(url)
    admin = _admin_engine(url)
    try:
        with admin.connect() as conn:
            if reset:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            exists = conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            return not exists
    finally:
        admin.dispose()


def drop_database(url: str) -> None:
    check_bench_name(url)
    if not is_postgres(url):
        ensure_database(url, reset=True)
        Path(make_url(url).database or "").unlink(missing_ok=True)
        return
    admin = _admin_engine(url)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{bench_name(url)}" WITH (FORCE)'))
    finally:
        admin.dispose()


def clone_database(url: str, suffix: str = "_run") -> str:
    """PostgreSQL: a scratch copy (CREATE DATABASE ... TEMPLATE) so a measurement that writes (the scan
    closes a day, clock-ins add punches) leaves the generated data as it was. Returns the copy's URL."""
    check_bench_name(url)
    src = bench_name(url)
    dst = f"{src}{suffix}"
    admin = _admin_engine(url)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{dst}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{dst}" TEMPLATE "{src}"'))
    finally:
        admin.dispose()
    return make_url(url).set(database=dst).render_as_string(hide_password=False)


def schema_is_empty(url: str) -> bool:
    eng = create_engine(url, poolclass=NullPool)
    try:
        return not inspect(eng).get_table_names()
    finally:
        eng.dispose()


def migrate(url: str) -> None:
    """``alembic upgrade heads`` (the plural: modules built in parallel may add heads before they are
    merged; with one head it is ``upgrade head``)."""
    from alembic import command
    from alembic.config import Config
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["url"] = url
    command.upgrade(cfg, "heads")


def make_app(url: str, **config: Any):
    """The portal app on ``url``; Redis jobs go to the benchmark's own Redis database."""
    from portal import create_app
    from portal.core import jobs
    app = create_app({"DATABASE_URL": url, "REDIS_URL": BENCH_REDIS_URL, **config})
    jobs.set_app(app)
    return app


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpus": os.cpu_count()}
    with contextlib.suppress(OSError):
        info["load_avg"] = [round(x, 2) for x in os.getloadavg()]
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["mem_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    info["python"] = sys.version.split()[0]
    return info


# ---------------------------------------------------------------- bulk loading

@dataclass
class TableStats:
    table: str
    rows: int = 0
    seconds: float = 0.0  # wall time from opening the stream to its commit (generation included)
    # time the generating thread spent blocked in the driver: executemany + commit (SQLite), or COPY
    # start + final flush + commit (PostgreSQL: the data itself is sent by the queued writer's thread)
    write_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


class _Stream:
    def __init__(self, loader: "Loader", table: str, columns: Sequence[str]):
        self.loader, self.table, self.columns = loader, table, list(columns)
        self.stats = TableStats(table)
        self._t0 = time.perf_counter()

    def write(self, row: Sequence[Any]) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class _CopyStream(_Stream):
    """Binary COPY on a connection of its own (types read from the catalog)."""

    def __init__(self, loader, table, columns):
        super().__init__(loader, table, columns)
        self.raw = loader.engine.raw_connection()
        self.conn = self.raw.driver_connection
        self.cur = self.conn.cursor()
        t = time.perf_counter()
        if table in loader.replica_tables:  # foreign keys verified after the load (Loader.bulk_mode)
            self.cur.execute("SET session_replication_role = replica")
        oids = dict(self.cur.execute(
            "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped", (table,)).fetchall())
        missing = [c for c in self.columns if c not in oids]
        if missing:
            raise ValueError(f"{table}: unknown columns {missing}")
        cols = ", ".join(f'"{c}"' for c in self.columns)
        from psycopg.copy import QueuedLibpqWriter
        # The queued writer sends from a thread: generating rows in Python overlaps with the network.
        self._ctx = self.cur.copy(f'COPY "{table}" ({cols}) FROM STDIN (FORMAT BINARY)',
                                  writer=QueuedLibpqWriter(self.cur))
        self.copy = self._ctx.__enter__()
        self.copy.set_types([oids[c] for c in self.columns])
        self.stats.write_seconds += time.perf_counter() - t
        self._write_row = self.copy.write_row

    def write(self, row):
        self._write_row(row)
        self.stats.rows += 1

    def close(self, error: BaseException | None = None) -> None:
        t = time.perf_counter()
        try:
            if error is None:
                self._ctx.__exit__(None, None, None)
                self.conn.commit()
            else:
                self._ctx.__exit__(type(error), error, error.__traceback__)
                self.conn.rollback()
        finally:
            self.cur.close()
            self.raw.close()
        self.stats.write_seconds += time.perf_counter() - t
        self.stats.seconds = time.perf_counter() - self._t0


class _ManyStream(_Stream):
    """Batched executemany on the loader's shared connection (SQLite and other fallbacks)."""

    BATCH = 5000

    def __init__(self, loader, table, columns):
        super().__init__(loader, table, columns)
        marks = ", ".join("?" if loader.paramstyle == "qmark" else "%s" for _ in self.columns)
        cols = ", ".join(f'"{c}"' for c in self.columns)
        self.sql = f'INSERT INTO "{table}" ({cols}) VALUES ({marks})'
        self.buf: list[Sequence[Any]] = []

    def write(self, row):
        self.buf.append(tuple(self.loader.adapt(v) for v in row))
        self.stats.rows += 1
        if len(self.buf) >= self.BATCH:
            self.flush()

    def flush(self):
        if self.buf:
            t = time.perf_counter()
            self.loader.shared_cursor().executemany(self.sql, self.buf)
            self.stats.write_seconds += time.perf_counter() - t
            self.buf = []

    def close(self, error: BaseException | None = None) -> None:
        if error is None:
            self.flush()
            t = time.perf_counter()
            self.loader.shared_commit()
            self.stats.write_seconds += time.perf_counter() - t
        self.stats.seconds = time.perf_counter() - self._t0


class Loader:
    """``with loader.streams({"table": [cols], ...}) as out: out["table"].write(row)``.

    Streams are closed (and committed) in the order given, so list referenced tables before the tables
    that point at them (COPY checks foreign keys at the end of each COPY). Stats accumulate in ``stats``."""

    def __init__(self, url: str):
        self.url = url
        self.engine = create_engine(url, poolclass=NullPool)
        self.copy = is_postgres(url)
        self.stats: list[TableStats] = []
        self._shared = None
        self.paramstyle = self.engine.dialect.paramstyle
        self.replica_tables: set[str] = set()

    # -- the SQLite path
    def shared_cursor(self):
        if self._shared is None:
            self._shared = self.engine.raw_connection()
            if self.engine.dialect.name == "sqlite":
                self._shared.driver_connection.execute("PRAGMA foreign_keys=ON")
        return self._shared.cursor()

    def shared_commit(self):
        if self._shared is not None:
            self._shared.commit()

    def adapt(self, value):
        import datetime as dt
        if self.engine.dialect.name == "sqlite" and isinstance(value, dt.datetime) and value.tzinfo:
            # the portal stores naive UTC in SQLite (see portal.core.db.UTCDateTime)
            return value.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
        if self.engine.dialect.name == "sqlite" and isinstance(value, dt.date):
            return value.isoformat()
        return value

    @contextlib.contextmanager
    def streams(self, spec: dict[str, Sequence[str]]):
        opened: dict[str, _Stream] = {}
        error: BaseException | None = None
        try:
            for table, cols in spec.items():
                opened[table] = (_CopyStream if self.copy else _ManyStream)(self, table, cols)
            yield opened
        except BaseException as exc:
            error = exc
            raise
        finally:
            for s in opened.values():
                s.close(error)
                if error is None:
                    self.stats.append(s.stats)
            if error is not None and self._shared is not None:
                self._shared.rollback()

    @contextlib.contextmanager
    def bulk_mode(self, tables: Sequence[str]):
        """PostgreSQL bulk-load mode for big tables (empty before the load):

        * secondary indexes and unique constraints are dropped and rebuilt afterwards (one sorted build
          instead of millions of random B-tree inserts; the primary key stays);
        * foreign keys are not checked row by row (``session_replication_role = replica`` on the COPY
          connections, superuser only) but verified after the load with one anti-join per foreign key.

        Yields a dict that receives the timings. Elsewhere it does nothing."""
        timings: dict[str, float] = {}
        if not self.copy:
            yield timings
            return
        with self.engine.begin() as conn:
            superuser = conn.scalar(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
            saved = []  # (drop sql, create sql)
            for t in tables:
                for name, definition in conn.execute(text(
                        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                        "WHERE conrelid = CAST(:t AS regclass) AND contype = 'u'"), {"t": t}):
                    saved.append((f'ALTER TABLE "{t}" DROP CONSTRAINT "{name}"',
                                  f'ALTER TABLE "{t}" ADD CONSTRAINT "{name}" {definition}'))
                for name, definition in conn.execute(text(
                        "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x "
                        "JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = CAST(:t AS regclass) "
                        "AND NOT x.indisprimary AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
                        "WHERE c.conindid = x.indexrelid)"), {"t": t}):
                    saved.append((f'DROP INDEX "{name}"', definition))
            fks = list(conn.execute(text(
                "SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text, fa.attname "
                "FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
                "JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1] "
                "WHERE c.contype = 'f' AND c.conrelid = ANY(CAST(:ts AS regclass[])) "
                "AND array_length(c.conkey, 1) = 1"), {"ts": list(tables)}))
            for drop, _create in saved:
                conn.execute(text(drop))
        if superuser:
            self.replica_tables = set(tables)
        try:
            yield timings
        finally:
            self.replica_tables = set()
            t0 = time.perf_counter()
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("SET maintenance_work_mem = '256MB'"))
                for _drop, create in saved:
                    conn.execute(text(create))
            timings["index_rebuild_s"] = round(time.perf_counter() - t0, 1)
            if superuser:
                t0 = time.perf_counter()
                with self.engine.connect() as conn:
                    for table, col, ref, refcol in fks:
                        bad = conn.scalar(text(
                            f'SELECT count(*) FROM "{table}" t WHERE t."{col}" IS NOT NULL AND NOT EXISTS '
                            f'(SELECT 1 FROM "{ref}" r WHERE r."{refcol}" = t."{col}")'))
                        if bad:
                            raise RuntimeError(f"{bad} row(s) of {table}.{col} point to no {ref}.{refcol}")
                timings["foreign_key_check_s"] = round(time.perf_counter() - t0, 1)

    def load(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> TableStats:
        with self.streams({table: columns}) as out:
            s = out[table]
            for row in rows:
                s.write(row)
        return self.stats[-1]

    def execute(self, sql: str, params: Any = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(text(sql), params or {})

    def reset_sequences(self, tables: Iterable[str]) -> None:
        """After explicit ids: move each table's id sequence past its largest id (PostgreSQL)."""
        if not self.copy:
            return
        with self.engine.begin() as conn:
            for t in tables:
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('\"{t}\"', 'id'), "
                                  f"COALESCE((SELECT max(id) FROM \"{t}\"), 0) + 1, false)"))

    def analyze(self, tables: Iterable[str]) -> float:
        t = time.perf_counter()
        if self.copy:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for tb in tables:
                    conn.execute(text(f'VACUUM (ANALYZE) "{tb}"'))
        else:
            with self.engine.begin() as conn:
                conn.execute(text("ANALYZE"))
        return time.perf_counter() - t

    def close(self):
        if self._shared is not None:
            self._shared.close()
            self._shared = None
        self.engine.dispose()


def format_stats(stats: Iterable[TableStats]) -> str:
    lines = [f"{'table':34} {'rows':>11} {'wall s':>8} {'rows/s':>10}"]
    for s in stats:
        lines.append(f"{s.table:34} {s.rows:>11,} {s.seconds:>8.2f} {s.rate:>10,.0f}")
    return "\n".join(lines)


# ---------------------------------------------------------------- measuring

class QueryCounter:
    """Counts (and optionally times) the statements sent through ``engine``."""

    def __init__(self, engine: Engine, capture: bool = False):
        self.engine, self.capture = engine, capture
        self.count = 0
        self.statements: list[dict[str, Any]] = []
        self._started: list[float] = []

    def _before(self, conn, cursor, statement, params, context, executemany):
        self.count += 1
        self._started.append(time.perf_counter())

    def _after(self, conn, cursor, statement, params, context, executemany):
        took = time.perf_counter() - self._started.pop() if self._started else 0.0
        if self.capture:
            self.statements.append({"sql": statement, "params": params, "ms": took * 1000,
                                    "executemany": executemany})

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._before)
        event.listen(self.engine, "after_cursor_execute", self._after)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)
        return False


def percentiles(samples_ms: Sequence[float]) -> dict[str, float]:
    xs = sorted(samples_ms)
    if not xs:
        return {}

    def pct(p: float) -> float:  # nearest-rank
        k = max(0, min(len(xs) - 1, math.ceil(p / 100 * len(xs)) - 1))
        return xs[k]
    return {"n": len(xs), "p50_ms": round(statistics.median(xs), 1), "p95_ms": round(pct(95), 1),
            "min_ms": round(xs[0], 1), "max_ms": round(xs[-1], 1), "mean_ms": round(statistics.fmean(xs), 1)}
